"""The practice loop as plain functions: grading, mastery, step and item flow, the policy."""

import pytest

from knowledge import fitting
from knowledge.models import MasteryState, Skill
from knowledge.tracing.bkt import BKTParams, mastery_after
from tutor import practice
from tutor.classrooms import set_hint_policy
from tutor.models import Attempt, HintTurn
from tutor.scheduling import MASTERY_THRESHOLD


def answer_current(learner, session, correct=True, key=None):
    step = practice.current_step(session)
    value = str(step.answer["value"]) if correct else "-999"
    result = practice.submit_attempt(learner, session.pk, step.pk, value, key or f"k{Attempt.objects.count()}")
    session.refresh_from_db()
    return step, result


def skill_params(slug):
    s = Skill.objects.get(slug=slug)
    return BKTParams(s.p_init, s.p_learn, s.p_guess, s.p_slip, s.p_forget)


def test_first_item_comes_from_a_skill_without_prerequisites(people):
    session = practice.start_session(people["alice"], people["class_a"].course_id)
    assert session.current_item.skills.get().slug == "add"
    assert session.selection_reason == "New: Adding is a good place to start."


def test_start_session_resumes_the_open_session(people):
    first = practice.start_session(people["alice"], people["class_a"].course_id)
    again = practice.start_session(people["alice"], people["class_a"].course_id)
    assert first.pk == again.pk


def test_a_correct_first_attempt_raises_mastery_by_the_bkt_update(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    _, result = answer_current(alice, session, correct=True)
    expected = mastery_after(0.3, True, skill_params("add"))
    assert result.correct and result.item_complete
    assert result.mastery_change["add"] == [0.3, pytest.approx(expected, abs=1e-6)]
    assert MasteryState.objects.get(learner=alice, skill__slug="add").p_known == pytest.approx(expected)


def test_only_the_first_action_on_a_step_counts_for_mastery(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    _, wrong = answer_current(alice, session, correct=False)
    after_wrong = mastery_after(0.3, False, skill_params("add"))
    assert wrong.mastery_change["add"][1] == pytest.approx(after_wrong, abs=1e-6)
    _, right = answer_current(alice, session, correct=True)
    assert right.correct and right.mastery_change == {}
    state = MasteryState.objects.get(learner=alice, skill__slug="add")
    assert (state.observations, state.correct) == (1, 0)
    assert state.p_known == pytest.approx(after_wrong)


def test_a_hint_before_answering_counts_as_an_error_and_climbs_the_ladder(people):
    alice = people["alice"]
    set_hint_policy(people["class_a"], "authored")  # the ladder as written, worked answer last
    session = practice.start_session(alice, people["class_a"].course_id)
    step = practice.current_step(session)
    first = practice.request_hint(alice, session.pk, step.pk, "h1")
    assert (first.level, first.total, first.kind) == (1, 3, "hint")
    assert first.mastery_change["add"][1] == pytest.approx(mastery_after(0.3, False, skill_params("add")), abs=1e-6)
    second = practice.request_hint(alice, session.pk, step.pk, "h2")
    assert second.kind == "scaffold" and second.has_answer and second.mastery_change == {}
    assert practice.check_scaffold(alice, session.pk, step.pk, 2, "2").correct
    assert not practice.check_scaffold(alice, session.pk, step.pk, 2, "3").correct
    assert practice.request_hint(alice, session.pk, step.pk, "h3").kind == "bottom_out"
    with pytest.raises(practice.Conflict, match="no more hints"):
        practice.request_hint(alice, session.pk, step.pk, "h4")
    session.refresh_from_db()
    _, result = answer_current(alice, session)
    assert result.correct and result.mastery_change == {}
    assert Attempt.objects.get(pk=result.attempt_id).hint_level == 3


def test_the_worked_answer_is_not_on_the_ladder_where_the_class_keeps_it_back(people):
    alice = people["alice"]  # class A keeps the default hint policy, "model": no bottom-out
    session = practice.start_session(alice, people["class_a"].course_id)
    step = practice.current_step(session)
    assert practice.problem_state(session)["hints_total"] == 2
    kinds = [practice.request_hint(alice, session.pk, step.pk, f"h{n}").kind for n in (1, 2)]
    assert kinds == ["hint", "scaffold"]
    with pytest.raises(practice.Conflict, match="no more hints"):
        practice.request_hint(alice, session.pk, step.pk, "h3")
    assert not HintTurn.objects.filter(learner=alice, kind="bottom_out").exists()


def test_a_scaffold_not_yet_shown_cannot_be_checked(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    step = practice.current_step(session)
    with pytest.raises(practice.NotFound):
        practice.check_scaffold(alice, session.pk, step.pk, 2, "2")


def test_a_repeated_idempotency_key_returns_the_original_result_and_saves_nothing(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    step = practice.current_step(session)
    first = practice.submit_attempt(alice, session.pk, step.pk, "-5", "same-key")
    again = practice.submit_attempt(alice, session.pk, step.pk, "-5", "same-key")
    assert again.replayed and again.attempt_id == first.attempt_id and again.mastery_change == first.mastery_change
    assert Attempt.objects.count() == 1
    assert MasteryState.objects.get(learner=alice).observations == 1
    with pytest.raises(practice.Conflict, match="different answer"):
        practice.submit_attempt(alice, session.pk, step.pk, "7", "same-key")


def test_an_unreadable_answer_is_refused_and_not_recorded(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    step = practice.current_step(session)
    with pytest.raises(practice.PracticeError) as refused:
        practice.submit_attempt(alice, session.pk, step.pk, "seven-ish", "k1")
    assert refused.value.status == 400 and "number" in str(refused.value).lower()
    assert not Attempt.objects.exists() and not MasteryState.objects.exists()


def test_answering_a_step_that_is_not_current_is_a_conflict(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    other_step = practice.current_step(session).pk + 1000
    with pytest.raises(practice.Conflict):
        practice.submit_attempt(alice, session.pk, other_step, "2", "k1")


def test_another_learners_session_is_not_found(people):
    session = practice.start_session(people["alice"], people["class_a"].course_id)
    step = practice.current_step(session)
    with pytest.raises(practice.NotFound):
        practice.submit_attempt(people["bob"], session.pk, step.pk, "2", "k1")
    with pytest.raises(practice.NotFound):
        practice.request_hint(people["bob"], session.pk, step.pk, "k1")


def test_an_ended_session_takes_no_more_answers(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    step = practice.current_step(session)
    practice.end_session(alice, session.pk)
    with pytest.raises(practice.Conflict, match="ended"):
        practice.submit_attempt(alice, session.pk, step.pk, "2", "k1")


def test_mastering_prerequisites_unlocks_the_next_skill_and_items_do_not_repeat(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    served = []
    while session.current_item.skills.get().slug == "add":
        served.append(session.current_item.slug)
        answer_current(alice, session)
        assert len(served) < 20, "adding was never mastered"
    add = MasteryState.objects.get(learner=alice, skill__slug="add")
    assert add.p_known >= MASTERY_THRESHOLD and add.mastered_at is not None
    assert len(served) == len(set(served)), "an item repeated within the recent window"
    assert session.current_item.skills.get().slug == "multiply"
    assert session.selection_reason == "New: you have mastered all prerequisites of Multiplying."


def test_a_two_step_item_moves_step_by_step_and_tags_each_steps_own_skill(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    session.current_item = session.course.items.get(slug="two-step")
    session.save()
    state = practice.problem_state(session)
    assert (state["step"]["position"], state["step"]["count"]) == (0, 2)
    _, first = answer_current(alice, session)
    assert first.step_complete and not first.item_complete and set(first.mastery_change) == {"add"}
    state = practice.problem_state(session)
    assert state["step"]["position"] == 1 and state["steps_done"][0]["answer"] == "6"
    _, second = answer_current(alice, session)
    assert second.item_complete and set(second.mastery_change) == {"equations"}
    session.refresh_from_db()
    assert session.items_completed == 1 and session.current_item.slug != "two-step"


def test_problem_state_never_reveals_the_answer(people):
    session = practice.start_session(people["alice"], people["class_a"].course_id)
    state = practice.problem_state(session)
    assert "answer" not in state["step"] and state["hints"] == []
    assert "value" not in repr(state)


def test_replaying_the_log_reproduces_the_online_mastery(people):
    alice = people["alice"]
    session = practice.start_session(alice, people["class_a"].course_id)
    for correct in (False, True, True, False, True, True, True):
        step = practice.current_step(session)
        if not correct:
            practice.request_hint(alice, session.pk, step.pk, f"h{HintTurn.objects.count()}")
            session.refresh_from_db()
        answer_current(alice, session, correct=True)
    online = {m.skill.slug: m.p_known for m in MasteryState.objects.filter(learner=alice)}
    MasteryState.objects.filter(learner=alice).update(p_known=0.5)
    replayed = fitting.replay_mastery(session.course, [alice])[alice.pk]
    assert replayed == pytest.approx(online)
    assert {m.skill.slug: m.p_known for m in MasteryState.objects.filter(learner=alice)} == pytest.approx(online)
