"""Who may export what through the research page and the command: teachers their own classes, researchers
only what a teacher or an admin shared with them, with downloads that expire; export files where the settings
say."""

import csv
import io
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.conftest import make_user
from tests.test_exports import export_folder  # noqa: F401 (an autouse fixture)
from tests.test_services import celery_worker  # noqa: F401 (a fixture)
from tutor import practice
from tutor.exports.pseudonyms import Pseudonyms
from tutor.models import ExportJob


@pytest.fixture
def practised(people, course):
    """Alice and Bob (class A) and Carol (class B) answer and ask for hints through the practice loop."""
    clock = timezone.now() - timedelta(days=2)
    for n, name in enumerate(("alice", "bob", "carol")):
        learner = people[name]
        session = practice.start_session(learner, course.pk, now=clock)
        for k in range(4):
            step = practice.current_step(session)
            clock += timedelta(seconds=30)
            if k == 1:
                practice.request_hint(learner, session.pk, step.pk, f"h-{n}-{k}", now=clock)
                clock += timedelta(seconds=20)
            answer = str(step.answer["value"]) if (k + n) % 3 else "-999"
            practice.submit_attempt(learner, session.pk, step.pk, answer, f"a-{n}-{k}", now=clock)
            session.refresh_from_db()
            if answer == "-999":
                clock += timedelta(seconds=15)
                practice.submit_attempt(
                    learner, session.pk, step.pk, str(step.answer["value"]), f"b-{n}-{k}", now=clock
                )
                session.refresh_from_db()
        practice.end_session(learner, session.pk, now=clock + timedelta(seconds=30))
    return people


def test_export_logs_command_filters_by_course_and_dates(practised, course, tmp_path):
    out = tmp_path / "log.csv"
    call_command("export_logs", "--format", "pybkt", "--output", str(out), "--course", course.slug, verbosity=0)
    everything = out.read_text().splitlines()
    assert len(everything) > 1
    call_command("export_logs", "--format", "pybkt", "--output", str(out), "--since", "2999-01-01", verbosity=0)
    assert out.read_text().splitlines() == everything[:1]  # the header only
    with pytest.raises(Exception, match="No course"):
        call_command("export_logs", "--format", "pybkt", "--output", str(out), "--course", "nope", verbosity=0)


# ---------------------------------------------------------------- who may export what


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def run_export(client, **form) -> dict:
    """Start an export on the research page and poll its progress endpoint until it is done."""
    response = client.post("/research/", form)
    assert response.status_code == 302, response.content.decode()[:500]
    job_id = int(response["Location"].split("job=")[1])
    deadline = time.monotonic() + 120
    while True:
        status = client.get(f"/research/jobs/{job_id}/").json()
        if status["status"] in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def download(client, status) -> str:
    response = client.get(status["download"])
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


@pytest.mark.usefixtures("celery_worker")
def test_a_researcher_sees_only_what_a_teacher_shared_and_the_download_expires(practised, course):
    researcher = make_user("rita", "researcher")
    teacher_a, class_a, class_b = practised["teacher_a"], practised["class_a"], practised["class_b"]
    rita = client_for(researcher)
    assert "nothing-shared" in rita.get("/research/").content.decode()
    assert rita.post("/research/", {"format": "pybkt", "courses": [course.pk]}).status_code == 404
    assert rita.post("/research/", {"format": "pybkt"}).status_code == 404
    assert not ExportJob.objects.exists()

    teacher = client_for(teacher_a)
    assert teacher.post(f"/teach/class/{class_b.pk}/research/", {"researcher": "rita"}).status_code == 404
    response = teacher.post(f"/teach/class/{class_a.pk}/research/", {"researcher": "nobody"})
    assert response.status_code == 400
    assert teacher.post(f"/teach/class/{class_a.pk}/research/", {"researcher": "rita"}).status_code == 302
    assert "rita" in teacher.get(f"/teach/class/{class_a.pk}/research/").content.decode()
    assert "share with a researcher" in teacher.get(f"/teach/class/{class_a.pk}/").content.decode()

    page = rita.get("/research/").content.decode()
    assert "Class A" in page and "Class B" not in page
    assert rita.post("/research/", {"format": "pybkt", "classrooms": [class_b.pk]}).status_code == 404
    status = run_export(rita, format="pybkt", study="s1")
    assert status["status"] == "done", status
    rows = list(csv.DictReader(io.StringIO(download(rita, status))))
    pseudonyms = Pseudonyms(f"user-{researcher.pk}:s1")
    assert {row["user_id"] for row in rows} == {pseudonyms.learner(practised[n].pk) for n in ("alice", "bob")}
    assert status["rows"] == len(rows)

    # Another researcher, and the teacher of the other class, cannot see or fetch the job.
    job_id = status["id"]
    for other in (make_user("otto", "researcher"), practised["teacher_b"]):
        client = client_for(other)
        assert client.get(f"/research/jobs/{job_id}/").status_code == 404
        assert client.get(f"/research/jobs/{job_id}/download/").status_code == 404
    # Downloads expire.
    ExportJob.objects.filter(pk=job_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert rita.get(f"/research/jobs/{job_id}/download/").status_code == 410
    assert rita.get(f"/research/jobs/{job_id}/").json()["download"] is None
    # Sharing stopped: new exports read nothing of the class.
    share_id = researcher.research_shares.get().pk
    teacher.post(f"/teach/class/{class_a.pk}/research/", {"action": "unshare", "share": share_id})
    assert rita.post("/research/", {"format": "pybkt"}).status_code == 404


@pytest.mark.usefixtures("celery_worker")
def test_a_teacher_exports_their_own_classes_only(practised, course):
    teacher = client_for(practised["teacher_a"])
    class_b = practised["class_b"]
    assert teacher.post("/research/", {"format": "datashop", "classrooms": [class_b.pk]}).status_code == 404
    response = teacher.post("/research/", {"format": "datashop", "include_identities": "on"})
    assert response.status_code == 403  # only an admin's share may include identities
    assert teacher.post("/research/", {"format": "nope"}).status_code == 400
    assert teacher.post("/research/", {"format": "pybkt", "since": "yesterday"}).status_code == 400
    status = run_export(teacher, format="datashop")
    rows = list(csv.DictReader(io.StringIO(download(teacher, status)), delimiter="\t"))
    carol = Pseudonyms(f"user-{practised['teacher_a'].pk}:default").learner(practised["carol"].pk)
    assert rows and carol not in {row["Anon Student Id"] for row in rows}
    assert len({row["Anon Student Id"] for row in rows}) == 2
    learner = client_for(practised["alice"])
    assert learner.get("/research/").status_code == 403
    assert learner.post("/research/", {"format": "pybkt"}).status_code == 403


@pytest.mark.usefixtures("celery_worker")
def test_an_admin_shares_a_course_with_identities_and_the_researcher_gets_them(practised, course):
    from tutor.exports import research

    admin = make_user("root", "admin")
    researcher = make_user("rosa", "researcher")
    with pytest.raises(research.ShareError):
        research.share_course(practised["teacher_a"], course.pk, researcher)
    research.share_course(admin, course.pk, researcher, include_identities=True)
    rosa = client_for(researcher)
    status = run_export(rosa, format="datashop", include_identities="on", courses=[course.pk])
    text = download(rosa, status)
    assert "CF (Username)" in text and "carol" in text
    status = run_export(rosa, format="datashop", courses=[course.pk])
    assert "carol" not in download(rosa, status)


def test_export_files_are_written_where_the_settings_say(practised, tmp_path):
    from tutor.exports import research

    job = ExportJob.objects.create(researcher=practised["teacher_a"], format="xapi", filters={"study": "x"})
    research.run_export(job)
    job.refresh_from_db()
    assert job.status == "done" and (tmp_path / "exports" / job.file).exists()
    assert job.expires_at > timezone.now() and job.rows > 0
    assert research.delete_expired(now=job.expires_at) == 1
    assert not (tmp_path / "exports" / job.file).exists()
