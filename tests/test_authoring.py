"""Authoring: the admin for skills, prerequisites, items, steps and hint ladders; the live preview; the course
check; package import and export from the page, as Celery tasks (in-process here) with progress. Real
database and the real admin forms, posted as a browser would post them."""

import copy
import re
import time
from html.parser import HTMLParser

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from knowledge.content.package import read_package_text
from knowledge.models import ContentJob, Course, Item, Prerequisite, Skill, Step
from tests.conftest import make_user, small_package
from tests.test_browser import ARTIFACTS, browser, demo_server  # noqa: F401 (fixtures)
from tests.test_services import USES_SERVICES, celery_worker  # noqa: F401 (a fixture)
from tutor import practice
from tutor.models import Attempt


class _FormFields(HTMLParser):
    """The values a browser would submit from one form of a page (no JavaScript)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, []
        self._textarea, self._select, self._text = None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside:
            return
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.data.append((name, attrs.get("value", "on" if attrs.get("type") == "checkbox" else "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.data.append((self._select, attrs.get("value", "")))

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea:
            text = "".join(self._text)
            self.data.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form" and self.inside:
            self.inside = False


def form_data(client, url: str, form_id: str) -> dict:
    """The admin change form at `url` as a dict of field -> value (lists where a field repeats)."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    parser = _FormFields(form_id)
    parser.feed(response.content.decode())
    data: dict = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in data.items()}


@pytest.fixture
def author(db):
    user = make_user("author", "admin")
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def _skill(slug):
    return Skill.objects.get(slug=slug)


def named_cycle(page: str) -> list[str]:
    """The cycle a refusal names, as skill slugs (first repeated at the end)."""
    match = re.search(r"would create a cycle: ([a-z0-9-]+(?: -&gt; [a-z0-9-]+)+)", page)
    assert match, "no cycle named on the page"
    cycle = match.group(1).split(" -&gt; ")
    assert cycle[0] == cycle[-1]
    return cycle


# --- prerequisites: a cycle is refused, named -----------------------------------------------------------------


def test_the_skill_admin_refuses_a_prerequisite_that_closes_a_cycle_and_names_it(course, author):
    url = f"/admin/knowledge/skill/{_skill('add').pk}/change/"
    data = form_data(author, url, "skill_form")
    data.update(
        {
            "requires-TOTAL_FORMS": "1",
            "requires-0-prerequisite": str(_skill("equations").pk),
            "requires-0-skill": str(_skill("add").pk),
            "requires-0-id": "",
        }
    )
    response = author.post(url, data)
    assert response.status_code == 200, "the form comes back with the error, nothing saved"
    assert sorted(named_cycle(response.content.decode())[:-1]) == ["add", "equations", "multiply"]
    assert not Prerequisite.objects.filter(skill=_skill("add")).exists()


def test_a_prerequisite_that_closes_a_longer_cycle_is_refused_with_the_whole_cycle_named(course, author):
    extra = Skill.objects.create(course=course, slug="ratios", name="Ratios", position=3)
    url = f"/admin/knowledge/skill/{_skill('add').pk}/change/"
    Prerequisite.objects.create(prerequisite=_skill("equations"), skill=extra)  # equations -> ratios
    data = form_data(author, url, "skill_form")
    data.update({"requires-TOTAL_FORMS": "1", "requires-0-prerequisite": str(extra.pk), "requires-0-id": ""})
    cycle = named_cycle(author.post(url, data).content.decode())
    assert sorted(cycle[:-1]) == ["add", "equations", "multiply", "ratios"]
    assert not Prerequisite.objects.filter(skill=_skill("add")).exists()


def test_the_prerequisite_admin_refuses_a_cycle_too(course, author):
    response = author.post(
        "/admin/knowledge/prerequisite/add/",
        {"prerequisite": _skill("equations").pk, "skill": _skill("add").pk},
    )
    assert response.status_code == 200
    assert sorted(named_cycle(response.content.decode())[:-1]) == ["add", "equations", "multiply"]
    assert Prerequisite.objects.count() == 2


def test_a_new_prerequisite_reorders_the_skills(course, author):
    extra = Skill.objects.create(course=course, slug="ratios", name="Ratios", position=3)
    author.post("/admin/knowledge/prerequisite/add/", {"prerequisite": extra.pk, "skill": _skill("add").pk})
    order = list(course.skills.order_by("position").values_list("slug", flat=True))
    assert order == ["ratios", "add", "multiply", "equations"]


@pytest.mark.usefixtures("celery_worker")
def test_an_uploaded_package_with_a_cycle_is_refused_with_the_cycle_named(people, author):
    package = copy.deepcopy(small_package())
    package["course"]["slug"] = "loop"
    package["skills"][0]["requires"] = ["equations"]  # add requires equations, which requires multiply, ...
    job = _finished(author, _upload(author, "loop.yaml", yaml.safe_dump(package)))
    assert job.status == ContentJob.Status.FAILED
    assert any("prerequisite cycle: add -> equations -> multiply -> add" in e for e in job.report["errors"])
    assert not Course.objects.filter(slug="loop").exists()
    page = author.get(f"/teach/content/job/{job.pk}/").content.decode()
    assert "prerequisite cycle: add -&gt; equations -&gt; multiply -&gt; add" in page


def test_the_import_command_refuses_a_cycle_with_the_cycle_named_too(db, tmp_path):
    package = copy.deepcopy(small_package())
    package["skills"][0]["requires"] = ["equations"]
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(package))
    with pytest.raises(CommandError, match="prerequisite cycle: add -> equations -> multiply -> add"):
        call_command("import_course", str(path), verbosity=0)
    assert not Course.objects.exists()


# --- an edit appears in practice without a restart ----------------------------------------------------------------


def test_an_item_edited_in_the_admin_appears_in_the_learners_practice_at_once(people, course, author):
    alice = people["alice"]
    learner = Client()
    learner.force_login(alice)
    session = practice.start_session(alice, course.pk)
    item = session.current_item
    assert item.title in learner.get(f"/practice/{session.pk}/problem/").content.decode()

    url = f"/admin/knowledge/item/{item.pk}/change/"
    data = form_data(author, url, "item_form")
    data["body"] = "A freshly edited question about apples."
    data["steps-0-prompt"] = "How many apples?"
    response = author.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]

    fragment = learner.get(f"/practice/{session.pk}/problem/").content.decode()
    assert "A freshly edited question about apples." in fragment and "How many apples?" in fragment
    item.refresh_from_db()
    assert item.version == 2, "a content change raises the item's version"
    step = practice.current_step(session)
    practice.submit_attempt(alice, session.pk, step.pk, str(step.answer["value"]), "after-edit")
    assert Attempt.objects.get(client_key="after-edit").item_version == 2


def test_saving_an_item_unchanged_keeps_its_version(course, author):
    item = Item.objects.get(slug="add-1")
    url = f"/admin/knowledge/item/{item.pk}/change/"
    assert author.post(url, form_data(author, url, "item_form")).status_code == 302
    item.refresh_from_db()
    assert item.version == 1


def test_a_skill_tag_changed_in_the_admin_reaches_the_scheduler_without_a_restart(course, author):
    item = Item.objects.get(slug="add-1")
    assert practice._course_map(course.pk)[0].items[item.pk].skills == {_skill("add").pk}
    url = f"/admin/knowledge/item/{item.pk}/change/"
    data = form_data(author, url, "item_form")
    data["itemskill_set-0-skill"] = str(_skill("multiply").pk)
    assert author.post(url, data).status_code == 302
    assert practice._course_map(course.pk)[0].items[item.pk].skills == {_skill("multiply").pk}


# --- steps and hint ladders -------------------------------------------------------------------------------------


def test_a_step_with_an_answer_the_grader_cannot_read_is_refused_with_the_reason(course, author):
    item = Item.objects.get(slug="add-1")
    url = f"/admin/knowledge/item/{item.pk}/change/"
    data = form_data(author, url, "item_form")
    assert data["steps-0-answer"].startswith("type: numeric")  # edited as YAML, like a package
    data["steps-0-answer"] = "type: numeric\nvalue: seven\n"
    data["steps-0-hints"] = "- kind: bottom_out\n  text: 2\n- kind: hint\n  text: Count.\n"
    page = author.post(url, data).content.decode()
    assert "step answer: numeric value &#x27;seven&#x27; is not a number" in page
    assert "step hint 1: bottom_out must be the last rung" in page
    assert Step.objects.get(item=item).answer["value"] == 2


def test_a_step_without_hints_is_saved_with_a_warning(course, author):
    item = Item.objects.get(slug="add-1")
    url = f"/admin/knowledge/item/{item.pk}/change/"
    data = form_data(author, url, "item_form")
    data["steps-0-hints"] = ""
    response = author.post(url, data, follow=True)
    assert "has no hints" in response.content.decode()
    assert Step.objects.get(item=item).hints == []


def test_the_admin_lists_can_be_searched_and_filtered(course, author):
    page = author.get("/admin/knowledge/item/?q=Multiply").content.decode()
    assert "Multiply 1" in page and "Add 1" not in page
    assert author.get(f"/admin/knowledge/skill/?course__id__exact={course.pk}").status_code == 200
    assert author.get("/admin/knowledge/step/?q=Your+answer").status_code == 200


# --- preview --------------------------------------------------------------------------------------------------


def test_the_preview_shows_an_item_as_a_learner_sees_it_with_its_hint_ladder(people, course, author):
    item = Item.objects.get(slug="two-step")
    page = author.get(f"/teach/items/{item.pk}/preview/").content.decode()
    assert "Solve 2x + 1 = 7" in page and 'id="answer-form"' in page and "Step 1 of 2" in page
    assert "Think about what the question asks." in page and "The answer is 6." in page
    second = author.get(f"/teach/items/{item.pk}/preview/?step=1").content.decode()
    assert "Step 2 of 2" in second and "✓ 6" in second
    teacher = Client()
    teacher.force_login(people["teacher_a"])
    assert teacher.get(f"/teach/items/{item.pk}/preview/").status_code == 200
    assert f"/teach/items/{item.pk}/preview/" in author.get(f"/admin/knowledge/item/{item.pk}/change/").content.decode()


def test_the_live_preview_renders_the_unsaved_form_and_says_what_is_not_ready(course, author):
    item = Item.objects.get(slug="add-1")
    data = form_data(author, f"/admin/knowledge/item/{item.pk}/change/", "item_form")
    data.update({"title": "Draft title", "body": "Draft body $x^2$", "steps-0-answer": "type: numeric\n"})
    page = author.post(f"/teach/items/{item.pk}/preview/", data).content.decode()
    assert "Draft title" in page and 'data-tex="x^2"' in page
    assert "Step 1, answer" in page
    item.refresh_from_db()
    assert item.title == "Add 1", "previewing saves nothing"
    assert author.post("/teach/items/preview/", {"title": "New", "steps-TOTAL_FORMS": "0"}).status_code == 200


def test_a_teacher_cannot_preview_unsaved_drafts_or_change_content(people, course):
    teacher = Client()
    teacher.force_login(people["teacher_a"])
    assert teacher.post("/teach/items/preview/", {"title": "x"}).status_code == 403
    assert teacher.get("/teach/content/").status_code == 403
    assert teacher.get("/admin/knowledge/item/").status_code == 302  # the admin is for staff only


# --- checking a course ------------------------------------------------------------------------------------------


def test_check_this_course_lists_errors_and_warnings(people, course, author):
    lonely = Skill.objects.create(course=course, slug="ratios", name="Ratios", position=3)
    after = Skill.objects.create(course=course, slug="rates", name="Rates", position=4)
    Prerequisite.objects.create(prerequisite=lonely, skill=after)
    item = Item.objects.create(course=course, slug="rates-1", title="Rates 1")
    item.skills.add(after)
    Step.objects.create(item=item, position=0, prompt="?", answer_type="numeric", answer={"type": "numeric"})
    page = author.get(f"/teach/course/{course.pk}/check/").content.decode()
    errors, warnings = page.split('id="course-errors"')[1], page.split('id="course-warnings"')[1]
    assert "item &#x27;rates-1&#x27; step 1 answer: numeric value missing" in errors.split("</ul>")[0]
    assert "skill &#x27;ratios&#x27;: no item practises this skill" in warnings
    assert "skill &#x27;rates&#x27;: unreachable: it needs &#x27;ratios&#x27;" in warnings
    assert "item &#x27;rates-1&#x27; step 1: no hints" in warnings
    teacher = Client()
    teacher.force_login(people["teacher_a"])
    assert teacher.get(f"/teach/course/{course.pk}/check/").status_code == 200  # their class's course


def test_a_clean_course_checks_clean(course, author):
    page = author.get(f"/teach/course/{course.pk}/check/").content.decode()
    assert "Errors (0)" in page and "Warnings (0)" in page


# --- import and export from the page --------------------------------------------------------------------------


def _upload(client, name: str, text: str) -> ContentJob:
    """Upload a package: the import is queued when the request commits (tests using it run on a transactional
    database with the `celery_worker` fixture: a worker process on Redis, in-process on the embedded default)."""
    response = client.post("/teach/content/", {"action": "import", "package": SimpleUploadedFile(name, text.encode())})
    assert response.status_code == 302, response.content.decode()[:2000]
    return ContentJob.objects.latest("pk")


def _finished(client, job: ContentJob) -> ContentJob:
    """Poll the job's status endpoint, as its page does, until the job ends."""
    deadline = time.monotonic() + 90
    while not client.get(f"/teach/content/job/{job.pk}/status/").json()["finished"]:
        assert time.monotonic() < deadline, "the job did not finish within 90 s"
        time.sleep(0.1)
    job.refresh_from_db()
    return job


@pytest.mark.usefixtures("celery_worker")
def test_a_package_imported_from_the_page_runs_as_a_task_and_reports_progress(author):
    package = copy.deepcopy(small_package())
    package["course"]["slug"] = "uploaded"
    job = _finished(author, _upload(author, "uploaded.yaml", yaml.safe_dump(package)))
    assert job.status == ContentJob.Status.DONE and job.task_id
    assert Course.objects.get(slug="uploaded").items.count() == len(package["items"])
    status = author.get(f"/teach/content/job/{job.pk}/status/").json()
    assert status["finished"] and status["progress"] == 1.0
    assert status["report"]["summary"].startswith("Imported 'uploaded': 3 skills, 10 items")
    page = author.get(f"/teach/content/job/{job.pk}/").content.decode()
    assert 'id="job-progress"' in page and 'value="100"' in page


@pytest.mark.usefixtures("celery_worker")
def test_an_export_downloads_a_package_that_imports_again(course, author):
    response = author.post("/teach/content/", {"action": "export", "course": course.pk})
    job = _finished(author, ContentJob.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1])))
    assert job.status == ContentJob.Status.DONE
    download = author.get(f"/teach/content/job/{job.pk}/download/")
    assert download["Content-Disposition"] == 'attachment; filename="small.yaml"'
    package = read_package_text(download.content.decode(), "small.yaml")
    assert len(package["items"]) == course.items.count()
    assert {s["slug"]: s["requires"] for s in package["skills"]}["equations"] == ["multiply"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [("notes.txt", "hello", "Upload a course package as a .yaml"), ("bad.yaml", "\udcff", "not UTF-8")],
)
def test_a_file_that_is_not_a_package_gets_a_400_that_says_why(db, author, name, text, message):
    data = text.encode("utf-8", "surrogateescape")
    response = author.post("/teach/content/", {"action": "import", "package": SimpleUploadedFile(name, data)})
    assert response.status_code == 400 and message in response.content.decode()
    assert not ContentJob.objects.exists()


@pytest.mark.usefixtures("celery_worker")
def test_another_authors_jobs_are_not_found(author):
    job = _upload(author, "x.yaml", yaml.safe_dump(small_package()))
    staff = make_user("staff", "teacher")
    staff.is_staff = True
    staff.save()
    client = Client()
    client.force_login(staff)
    assert client.get(f"/teach/content/job/{job.pk}/").status_code == 404
    assert client.get(f"/teach/content/job/{job.pk}/status/").status_code == 404


@pytest.mark.usefixtures("celery_worker")
def test_a_large_import_shows_its_progress_while_a_worker_runs_it(author):
    """On PostgreSQL + Redis a real worker process runs the import while the page polls; on the embedded default
    the task runs in-process and the first poll sees it done."""
    package = copy.deepcopy(small_package())
    package["course"]["slug"] = "large"
    package["items"] += [
        {**copy.deepcopy(package["items"][0]), "slug": f"extra-{n}", "title": f"Extra {n}"} for n in range(3000)
    ]
    response = author.post(
        "/teach/content/",
        {"action": "import", "package": SimpleUploadedFile("large.yaml", yaml.safe_dump(package).encode())},
    )
    job_id = int(response["Location"].rstrip("/").split("/")[-1])
    seen, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        status = author.get(f"/teach/content/job/{job_id}/status/").json()
        seen.append((status["status"], status["progress"]))
        if status["finished"]:
            break
        time.sleep(0.05)
    assert status["status"] == "done", status
    assert Course.objects.get(slug="large").items.count() == 3010
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    if USES_SERVICES:
        assert any(state == "running" and 0 < p < 1 for state, p in seen), seen


# --- in a real browser --------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_item_admin_previews_the_item_live_as_the_author_types(request):
    """Headless Chromium against the demo server: the admin's item page shows the item as a learner sees it, and
    the preview follows the title and body as they are typed, before anything is saved. Screenshots go to
    artifacts/browser/authoring-*.png."""
    url, _ = request.getfixturevalue("demo_server")
    chromium = request.getfixturevalue("browser")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(f"{url}/login/?next=/admin/knowledge/item/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "tutor-demo")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/admin/knowledge/item/")
    page.click("#result_list tbody tr th a")
    preview = page.frame_locator("#item-preview")
    title = page.input_value("#id_title")
    preview.locator("#item-title").wait_for()
    assert preview.locator("#item-title").inner_text() == title
    page.fill("#id_title", "Live preview check")
    page.fill("#id_body", "A body typed just now: $\\frac{3}{4}$ of 8.")
    preview.locator("#item-title", has_text="Live preview check").wait_for()
    preview.locator(".body .math[data-rendered]").wait_for()  # KaTeX ran inside the preview
    page.locator("#live-preview").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "authoring-item-preview.png", full_page=True)
    page.goto(f"{url}/teach/content/")
    page.screenshot(path=ARTIFACTS / "authoring-content.png", full_page=True)
    page.goto(f"{url}/teach/")
    page.click('a:text-is("roster") >> nth=0')
    page.wait_for_selector("#join-link")
    page.screenshot(path=ARTIFACTS / "roster.png", full_page=True)
    page.close()


def test_an_item_keeps_at_least_one_step_and_one_skill(course, author):
    item = Item.objects.get(slug="add-1")
    url = f"/admin/knowledge/item/{item.pk}/change/"
    data = form_data(author, url, "item_form")
    data["steps-0-DELETE"] = "on"
    data["itemskill_set-0-DELETE"] = "on"
    page = author.post(url, data).content.decode()
    assert "An item needs at least one step" in page and "Name at least one skill" in page
    assert item.steps.count() == 1 and item.skills.count() == 1


def test_deleting_a_step_numbers_the_rest_from_the_start(people, course, author):
    item = Item.objects.get(slug="two-step")
    url = f"/admin/knowledge/item/{item.pk}/change/"
    data = form_data(author, url, "item_form")
    data["steps-0-DELETE"] = "on"
    assert author.post(url, data).status_code == 302
    assert list(item.steps.values_list("position", "prompt")) == [(0, "What is $x$?")]
    page = author.get(f"/teach/items/{item.pk}/preview/").content.decode()
    assert "What is" in page and "Step 1 of" not in page  # one step now
