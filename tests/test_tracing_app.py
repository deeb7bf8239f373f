"""Refitting the tracing model from the practice log, and the online update using what was fitted."""

import io
import json
import random

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from knowledge import fitting
from knowledge.models import MasteryState, Skill, TracingModel
from knowledge.tracing.bkt import BKTParams, mastery_after
from tutor import practice
from tutor.models import Attempt, Enrollment, HintTurn

from .conftest import make_user


def practise(learner, course, steps: int, skill_rate: float, rng: random.Random, key: str = ""):
    """A learner who answers right more often as they go, and sometimes asks for a hint first."""
    session = practice.start_session(learner, course.pk)
    for n in range(steps):
        step = practice.current_step(session)
        if step is None:
            break
        if rng.random() < 0.1:
            practice.request_hint(learner, session.pk, step.pk, f"{key}{learner.pk}-h{n}")
        p_right = min(0.95, 0.3 + skill_rate * n)
        answer = str(step.answer["value"]) if rng.random() < p_right else "-999"
        practice.submit_attempt(learner, session.pk, step.pk, answer, f"{key}{learner.pk}-{n}")
        session.refresh_from_db()
        if answer == "-999":  # move on, as a learner would after a bottom-out hint
            while session.hint_level < len(practice.hint_rungs(step, practice.hint_policy(session))):
                practice.request_hint(learner, session.pk, step.pk, f"{key}{learner.pk}-b{n}-{session.hint_level}")
                session.refresh_from_db()
            practice.submit_attempt(learner, session.pk, step.pk, str(step.answer["value"]), f"{key}{learner.pk}-r{n}")
            session.refresh_from_db()
    return session


@pytest.fixture
def history(people, course):
    """Twelve learners of class A with twenty steps each."""
    rng = random.Random(7)
    learners = []
    for i in range(12):
        learner = make_user(f"learner{i:02d}", "learner")
        Enrollment.objects.create(classroom=people["class_a"], learner=learner)
        practise(learner, course, 20, skill_rate=rng.uniform(0.01, 0.06), rng=rng)
        learners.append(learner)
    return learners


def online_mastery(course) -> dict:
    out = {}
    for m in MasteryState.objects.filter(skill__course=course).select_related("skill"):
        out.setdefault(m.learner_id, {})[m.skill.slug] = m.p_known
    return out


def test_a_refit_stores_a_scored_version_and_the_online_update_uses_its_parameters(history, people, course):
    # The log: every first action (answers and hint requests) once per skill it touched.
    log = fitting.course_log(course)
    first_attempts = Attempt.objects.filter(item__course=course, first_action=True)
    first_hints = HintTurn.objects.filter(step__item__course=course, first_action=True)
    expected_rows = sum(len(a.mastery_change) for a in first_attempts) + sum(len(h.mastery_change) for h in first_hints)
    assert len(log.interactions) == expected_rows
    assert log.interactions.n_users == len(history)
    assert log.interactions.correct.sum() == sum(len(a.mastery_change) for a in first_attempts if a.correct)

    record = fitting.run_fit(fitting.queue_fit(course, "bkt"))
    record.refresh_from_db()
    assert (record.status, record.version, record.active, record.progress) == ("done", 1, True, 1.0)
    assert record.learners == 12 and record.train_rows == len(fitting.course_log(course).interactions)
    assert record.device == "cpu" and record.duration_seconds > 0
    held_out = record.metrics
    assert held_out["held_out_learners"] >= 3 and 0.0 <= held_out["auc"] <= 1.0 and 0 < held_out["rmse"] < 1
    assert held_out["train_rows"] + held_out["held_out_attempts"] <= record.train_rows
    first = Attempt.objects.filter(item__course=course).order_by("created_at").first().created_at
    assert record.data_from == first

    for skill in Skill.objects.filter(course=course):
        fitted = record.parameters[skill.slug]
        assert fitted["rows"] > 0
        if fitted["fitted"]:
            assert fitted["p_guess"] < 0.5 and fitted["p_slip"] < 0.5
        assert (skill.p_init, skill.p_learn, skill.p_guess, skill.p_slip, skill.p_forget) == pytest.approx(
            tuple(fitted[f] for f in fitting.PARAM_FIELDS))
    assert any(record.parameters[s]["fitted"] for s in record.parameters)

    # A new learner starts from the fitted prior, and their first answer moves it with the fitted parameters.
    newcomer = make_user("newcomer", "learner")
    Enrollment.objects.create(classroom=people["class_a"], learner=newcomer)
    session = practice.start_session(newcomer, course.pk)
    step = practice.current_step(session)
    (skill,) = practice.step_skills(step)
    result = practice.submit_attempt(newcomer, session.pk, step.pk, str(step.answer["value"]), "after-refit")
    params = BKTParams(*(record.parameters[skill.slug][f] for f in fitting.PARAM_FIELDS))
    before, after = result.mastery_change[skill.slug]
    assert before == pytest.approx(params.p_init, abs=1e-6)
    assert after == pytest.approx(mastery_after(params.p_init, True, params), abs=1e-6)


def test_the_online_update_gives_the_same_mastery_as_a_full_replay(history, people, course):
    online = online_mastery(course)
    assert sum(len(v) for v in online.values()) >= 12
    MasteryState.objects.filter(skill__course=course).update(p_known=0.5)
    replayed = fitting.replay_mastery(course)
    assert set(replayed) == set(online)
    for learner_id, mastery in online.items():
        assert replayed[learner_id] == pytest.approx(mastery, abs=1e-9)
    assert online_mastery(course) == replayed  # and stored
    one = history[0].pk
    assert fitting.replay_mastery(course, [one]) == {one: pytest.approx(online[one], abs=1e-9)}

    # A log read before an answer arrived is not used to replay: the answer's mastery change survives.
    late = make_user("late", "learner")
    Enrollment.objects.create(classroom=people["class_a"], learner=late)
    practise(late, course, 1, 0.05, random.Random(1), key="early-")
    stale = fitting.course_log(course)
    before_late = online_mastery(course)[late.pk]
    practise(late, course, 1, 0.05, random.Random(2), key="late-")
    with_late_answer = online_mastery(course)
    assert with_late_answer[late.pk] != before_late
    fitting.replay_mastery(course, log=stale)
    for learner_id, mastery in online_mastery(course).items():
        assert mastery == pytest.approx(with_late_answer[learner_id], abs=1e-9)

    # After a refit (new parameters, mastery replayed), more practice online still equals a replay.
    fitting.run_fit(fitting.queue_fit(course, "bkt-forget"))
    rng = random.Random(3)
    for learner in history[:4]:
        practise(learner, course, 8, 0.05, rng, key="more-")
    online = online_mastery(course)
    replayed = fitting.replay_mastery(course)
    for learner_id, mastery in online.items():
        assert replayed[learner_id] == pytest.approx(mastery, abs=1e-9)


def test_versions_count_up_and_only_the_newest_activated_one_is_in_use(history, course):
    first = fitting.run_fit(fitting.queue_fit(course, "bkt"))
    kept = {s.slug: s.p_learn for s in Skill.objects.filter(course=course)}
    second = fitting.run_fit(fitting.queue_fit(course, "bkt-forget"), activate=False)
    assert second.version == 2 and not second.active
    assert {s.slug: s.p_learn for s in Skill.objects.filter(course=course)} == kept  # not applied
    fitting.activate_model(second)
    assert list(TracingModel.objects.filter(course=course, active=True)) == [second]
    first.refresh_from_db()
    assert not first.active

    # A data window fits only the attempts inside it.
    times = sorted(Attempt.objects.filter(item__course=course).values_list("created_at", flat=True))
    middle = times[len(times) // 2]
    everything = second
    recent = fitting.run_fit(fitting.queue_fit(course, "bkt", since=middle), activate=False)
    assert 0 < recent.train_rows < everything.train_rows
    assert recent.data_from == middle


def test_the_command_fits_reports_and_refuses_what_it_cannot_do(history, course):
    out = io.StringIO()
    call_command("fit_tracing", "--course", course.slug, "--model", "bkt", stdout=out, verbosity=0)
    report = json.loads(out.getvalue())
    assert report["version"] == 1 and report["active"] and report["held_out"]["held_out_attempts"] > 0
    with pytest.raises(CommandError, match="No course"):
        call_command("fit_tracing", "--course", "nope", verbosity=0)
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("fit_tracing", "--course", course.slug, "--model", "magic", verbosity=0)
    with pytest.raises(CommandError, match="no attempts"):
        call_command("fit_tracing", "--course", course.slug, "--since", "2999-01-01", verbosity=0)
    failed = TracingModel.objects.get(course=course, version=2)
    assert failed.status == "failed" and "no attempts" in failed.error
    assert TracingModel.objects.get(course=course, active=True).version == 1  # the failure changed nothing


def test_teachers_read_the_parameters_and_only_admins_refit(history, people, course,
                                                           django_capture_on_commit_callbacks):
    fitting.run_fit(fitting.queue_fit(course, "bkt"))
    url = f"/teach/course/{course.pk}/model/"
    teacher = Client()
    teacher.force_login(people["teacher_a"])
    page = teacher.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Multiplying" in text and "Held-out AUC" in text and "(in use)" in text
    assert teacher.post(url, {"model": "bkt"}).status_code == 403

    learner = Client()
    learner.force_login(people["alice"])
    assert learner.get(url).status_code == 403
    stranger = make_user("teacher_c", "teacher")
    other = Client()
    other.force_login(stranger)
    assert other.get(url).status_code == 404  # no class of theirs uses this course

    admin = Client()
    admin.force_login(make_user("boss", "admin"))
    assert admin.post(url, {"model": "magic"}).status_code == 400
    with django_capture_on_commit_callbacks() as queued:
        response = admin.post(url, {"model": "bkt-forget"})
    assert response.status_code == 302 and len(queued) == 1  # the refit task, sent once the row is saved
    newest = TracingModel.objects.filter(course=course).order_by("-version").first()
    assert newest.version == 2 and newest.model == "bkt-forget"


def test_the_hierarchical_model_tells_teachers_how_each_learner_learns(history, people, course):
    record = fitting.run_fit(fitting.queue_fit(course, "hier"))
    assert record.status == "done" and record.active and 0.0 <= record.metrics["auc"] <= 1.0
    effect = record.posterior["prerequisite_effect"]
    assert effect["lo"] <= effect["mean"] <= effect["hi"]
    traits = record.posterior["learners"]
    assert set(traits) == {str(learner.pk) for learner in history}
    for learner in traits.values():
        assert "learns" in learner["words"] and "forgets" in learner["words"]
        assert all(low <= mean <= high for mean, low, high in (learner[t] for t in ("ability", "learn", "forget")))
    for values in record.parameters.values():  # what the online update uses: a typical learner's BKT
        assert 0 < values["p_guess"] < 0.5 and 0 < values["p_slip"] < 0.5 and values["p_forget"] == 0

    teacher = Client()
    teacher.force_login(people["teacher_a"])
    page = teacher.get(f"/teach/class/{people['class_a'].pk}/").content.decode()
    assert "How they learn" in page and traits[str(history[0].pk)]["words"] in page
    assert "What the hierarchical model says" in teacher.get(f"/teach/course/{course.pk}/model/").content.decode()
