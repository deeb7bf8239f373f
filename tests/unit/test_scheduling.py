"""The next-item policies on small hand-made courses: what each one serves and why."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from knowledge.tracing.bkt import BKTParams
from tutor.scheduling import (
    MASTERY_THRESHOLD,
    POLICIES,
    CourseMap,
    ItemInfo,
    LearnerState,
    SkillInfo,
    choose,
    effectively_mastered,
    record_attempt,
)
from tutor.scheduling import memory as mem
from tutor.scheduling.policies import (
    NEW_SKILLS_PER_DAY,
    RECENT_WINDOW,
    band_weight,
    predicted_success,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PARAMS = BKTParams(p_init=0.2, p_learn=0.15, p_guess=0.2, p_slip=0.1, p_forget=0.0)


def chain_course(names="ABCD", items_per_skill=6) -> CourseMap:
    """A → B → C → D, each skill with items of spread difficulty."""
    skills = [
        SkillInfo(id=k + 1, name=name, position=k, requires=frozenset({k}) if k else frozenset())
        for k, name in enumerate(names)
    ]
    items = [
        ItemInfo(id=100 * s.id + j, skills=frozenset({s.id}), difficulty=j / (items_per_skill - 1))
        for s in skills
        for j in range(items_per_skill)
    ]
    return CourseMap(skills, items)


def fan_course(n_roots=8) -> CourseMap:
    """Independent skills with no prerequisites."""
    skills = [SkillInfo(id=k, name=f"S{k}", position=k) for k in range(1, n_roots + 1)]
    items = [
        ItemInfo(id=100 * k + j, skills=frozenset({k}), difficulty=0.5) for k in range(1, n_roots + 1) for j in range(4)
    ]
    return CourseMap(skills, items)


def learner(course: CourseMap, **mastery) -> LearnerState:
    by_name = {s.name: s.id for s in course.skills.values()}
    values = {s: 0.2 for s in course.skills}
    values.update({by_name[name]: p for name, p in mastery.items()})
    return LearnerState(mastery=values, now=NOW)


def learned(days_ago: float, stability: float = 3.0) -> mem.Memory:
    then = NOW - timedelta(days=days_ago)
    return mem.Memory(stability=stability, difficulty=5.0, last_review=then, introduced=then - timedelta(days=1))


# --- memory -------------------------------------------------------------------------------------


def test_recall_falls_with_time_and_is_ninety_percent_after_one_stability():
    memory = learned(days_ago=0, stability=4.0)
    assert mem.retrievability(memory, NOW) == pytest.approx(1.0)
    assert mem.retrievability(memory, NOW + timedelta(days=4)) == pytest.approx(0.9, abs=1e-6)
    assert mem.retrievability(memory, NOW + timedelta(days=20)) < 0.8


def test_a_correct_review_lengthens_memory_and_an_error_shortens_it():
    memory = learned(days_ago=5)
    assert mem.review(memory, True, NOW).stability > memory.stability
    lapsed = mem.review(memory, False, NOW)
    assert lapsed.stability < memory.stability and lapsed.lapses == 1 and lapsed.last_review == NOW


def test_only_the_first_review_of_a_day_counts():
    first = mem.review(learned(days_ago=5), True, NOW)
    assert mem.review(first, False, NOW + timedelta(hours=2)) == first


def test_partial_credit_forgives_half_the_elapsed_time():
    memory = learned(days_ago=10)
    credited = mem.credit(memory, NOW, 0.5)
    assert credited.last_review == NOW - timedelta(days=5) and credited.stability == memory.stability


def test_memory_survives_a_json_round_trip():
    memory = mem.review(learned(days_ago=5), True, NOW, mastered=True)
    assert memory.passed == 1
    assert mem.Memory.from_json(memory.to_json()) == memory
    stored_before_passed_existed = {k: v for k, v in memory.to_json().items() if k != "passed"}
    assert mem.Memory.from_json(stored_before_passed_existed).passed == 0


def test_passed_counts_right_answers_in_a_row_while_mastered_and_a_wrong_one_resets_it():
    memory = learned(days_ago=9)
    memory = mem.review(memory, True, NOW - timedelta(days=8))  # right, but not yet mastered: no check passed
    assert memory.passed == 0
    memory = mem.review(memory, True, NOW - timedelta(days=6), mastered=True)
    memory = mem.review(memory, True, NOW - timedelta(days=3), mastered=True)
    assert memory.passed == 2
    assert mem.review(memory, True, NOW - timedelta(days=3, hours=-1), mastered=True).passed == 2  # same day
    assert mem.review(memory, False, NOW, mastered=True).passed == 0


# --- the combined policy ------------------------------------------------------------------------


def test_a_skill_with_an_unmastered_prerequisite_is_not_served():
    course = chain_course()
    state = learner(course, A=0.5)
    for seed in range(20):
        assert choose("combined", course, state, seed).skill_id == 1
    state.mastery[1] = 0.97
    assert {choose("combined", course, state, seed).skill_id for seed in range(20)} == {2}


def test_mastering_a_later_skill_implies_its_prerequisites():
    course = chain_course()
    state = learner(course, C=0.97)
    assert effectively_mastered(course, state.mastery) == {1, 2, 3}
    choice = choose("combined", course, state, 0)
    assert choice.skill_id == 4 and choice.reason == "New: you have mastered all prerequisites of D."


def test_a_mastered_skill_whose_recall_has_faded_comes_back_as_a_review():
    course = chain_course()
    state = learner(course, A=0.97, B=0.97, C=0.6)
    state.memory = {1: learned(days_ago=20), 3: learned(days_ago=0.1)}
    choice = choose("combined", course, state, 0)
    assert (choice.skill_id, choice.kind) == (1, "review")
    assert choice.reason == "Review: you last practised A 20 days ago."
    state.memory[1] = learned(days_ago=1)  # still remembered: no review, learning goes on
    assert choose("combined", course, state, 0).skill_id == 3


def test_a_prerequisite_of_the_skill_being_learned_is_reviewed_by_using_it():
    course = chain_course()
    state = learner(course, A=0.97, B=0.97, C=0.6)
    state.memory = {2: learned(days_ago=20), 3: learned(days_ago=0.1)}
    assert choose("combined", course, state, 0).skill_id == 3  # C builds on B: practising C reviews B


def test_while_goals_are_open_reviews_wait_and_come_once_the_goals_are_learned():
    course = chain_course()
    state = learner(course, A=0.97, B=0.97, C=0.6)
    state.goals = frozenset({4})
    state.memory = {1: learned(days_ago=200, stability=1.0), 3: learned(days_ago=0.1)}
    assert mem.retrievability(state.memory[1], NOW) < mem.TARGET_RETENTION
    assert choose("combined", course, state, 0).skill_id == 3  # A has faded, but the goal's work goes on
    state.goals = frozenset({3})
    state.mastery[3] = 0.97  # the goal is learned: the faded skill comes back, after the goal check
    state.memory[3] = learned(days_ago=0.01)
    assert (choose("combined", course, state, 0).skill_id, choose("combined", course, state, 0).kind) == (1, "review")


def test_once_all_goals_are_learned_each_session_checks_every_goal_once_then_spreads_reviews():
    course = fan_course(n_roots=4)
    state = learner(course, S1=0.99, S2=0.99, S3=0.99, S4=0.99)
    state.goals = frozenset({1, 2})
    # nothing is due (recall over 90 %): what follows the goal check is keeping the rest fresh
    state.memory = {1: learned(days_ago=1.0), 2: learned(days_ago=2.0), 3: learned(days_ago=2.5), 4: learned(1.5)}
    first = choose("combined", course, state, 0)
    assert (first.skill_id, first.kind) == (2, "review")  # the goal most likely forgotten first
    assert first.reason == "Goal check: S2 is one of your teacher's goals; today's session checks each of them once."
    state.memory[2] = learned(days_ago=0.01)
    assert choose("combined", course, state, 0).skill_id == 1
    state.memory[1] = learned(days_ago=0.01)
    keep_fresh = choose("combined", course, state, 0)
    assert keep_fresh.skill_id == 3
    assert keep_fresh.reason == "Keep fresh: S3 is the skill you are most likely to forget next."
    state.memory[3] = learned(days_ago=0.01)
    assert choose("combined", course, state, 0).skill_id == 4  # not S3 again the same day
    state.mastery[2] = 0.6  # a goal open again (a wrong answer in the check): learning it comes first
    assert choose("combined", course, state, 0).skill_id == 2
    assert choose("combined", course, state, 0).kind == "goal"


def test_goal_checks_space_out_as_every_goal_passes_them_in_a_row():
    course = fan_course(n_roots=3)
    state = learner(course, S1=0.99, S2=0.99, S3=0.99)
    state.goals = frozenset({1, 2})

    def checked_goals(days_ago: float, passed: dict) -> set:
        """The goals today's session checks, each goal last practised `days_ago`."""
        state.memory = {g: replace(learned(days_ago), passed=passed[g]) for g in (1, 2)}
        state.memory[3] = learned(days_ago=0.01)
        checked = set()
        for _ in range(3):
            choice = choose("combined", course, state, 0)
            if choice.reason.startswith("Goal check"):
                checked.add(choice.skill_id)
                state.memory[choice.skill_id] = replace(state.memory[choice.skill_id], last_review=NOW)
        return checked

    assert checked_goals(1, {1: 1, 2: 1}) == {1, 2}  # not yet two passes each: checked every session
    assert checked_goals(1, {1: 2, 2: 3}) == set()  # both passed twice in a row: every other day
    assert checked_goals(2, {1: 2, 2: 3}) == {1, 2}
    assert checked_goals(3, {1: 3, 2: 3}) == set()  # three in a row: every 4 days
    assert checked_goals(4, {1: 3, 2: 3}) == {1, 2}
    assert checked_goals(7, {1: 9, 2: 9}) == set()  # never more than 8 days apart
    assert checked_goals(8, {1: 9, 2: 9}) == {1, 2}
    assert checked_goals(1, {1: 9, 2: 0}) == {1, 2}  # one goal answered wrong: daily checks for all again


def test_items_are_never_easier_than_the_skill_s_typical_item():
    course = chain_course(items_per_skill=11)
    for p_known in (0.2, 0.5, 0.85):
        state = learner(course, A=p_known)
        served = {course.items[choose("combined", course, state, seed).item_id].difficulty for seed in range(30)}
        assert min(served) >= course.typical_difficulty[1], p_known


def test_no_more_new_skills_than_the_daily_cap():
    course = fan_course(n_roots=8)
    state = learner(course)
    started_today = {
        k: replace(learned(days_ago=0.05), introduced=NOW - timedelta(hours=1))
        for k in range(1, NEW_SKILLS_PER_DAY + 1)
    }
    state.memory = started_today
    served = {choose("combined", course, state, seed).skill_id for seed in range(40)}
    assert served <= set(started_today)
    state.now = NOW + timedelta(days=1)  # a new day opens new skills again
    served = {choose("combined", course, state, seed).skill_id for seed in range(40)}
    assert served - set(started_today)


def test_teacher_goals_come_first():
    skills = [
        SkillInfo(1, "Counting", 0),
        SkillInfo(2, "Adding", 1, frozenset({1})),
        SkillInfo(3, "Drawing", 2),
    ]
    items = [ItemInfo(10 * s + j, frozenset({s}), difficulty=0.3) for s in (1, 2, 3) for j in range(3)]
    course = CourseMap(skills, items)
    state = learner(course, Counting=0.5, Drawing=0.2)
    state.goals = frozenset({2})
    assert {choose("combined", course, state, seed).skill_id for seed in range(30)} == {1}
    state.goals = frozenset({3})
    assert {choose("combined", course, state, seed).skill_id for seed in range(30)} == {3}


def test_no_item_is_repeated_within_the_window():
    course = chain_course(items_per_skill=RECENT_WINDOW + 2)
    state = learner(course)
    rng = random.Random(0)
    served = []
    for k in range(3 * RECENT_WINDOW):
        choice = choose("combined", course, state, k)
        assert choice.item_id not in served[-RECENT_WINDOW:]
        served.append(choice.item_id)
        record_attempt(state, course, choice.item_id, rng.random() < 0.5, {s: PARAMS for s in course.skills})
        state.mastery = {s: min(p, 0.9) for s, p in state.mastery.items()}  # stay on the first skill
        state.now += timedelta(minutes=2)


def test_practice_alternates_between_open_skills():
    course = fan_course(n_roots=3)
    state = learner(course)
    state.memory = {k: learned(days_ago=0.01) for k in (1, 2, 3)}
    state.recent_items = [300]  # just practised S3
    choices = [choose("combined", course, state, seed).skill_id for seed in range(60)]
    assert choices.count(3) < 10


def test_a_skill_that_took_two_of_the_last_twelve_items_waits_while_others_are_open():
    course = fan_course(n_roots=3)
    state = learner(course)
    state.memory = {k: learned(days_ago=0.01) for k in (1, 2, 3)}
    state.recent_items = [201, 101, 300, 100]  # S1 twice, S2 and S3 once
    choices = {choose("combined", course, state, seed).skill_id for seed in range(40)}
    assert 1 not in choices and choices == {2, 3}
    # Alone on the frontier it is still served: spacing never leaves the learner without practice.
    chain = chain_course()
    state = learner(chain)
    state.recent_items = [100, 101, 102]
    assert choose("combined", chain, state, 0).skill_id == 1


def test_items_in_the_productive_band_are_preferred():
    assert band_weight(0.6) == 1.0 and band_weight(0.98) < 0.3 and band_weight(0.15) < 0.3
    course = chain_course(items_per_skill=11)
    state = learner(course, A=0.7)
    choice = choose("combined", course, state, 0)
    p = predicted_success(0.7, course.items[choice.item_id].difficulty)
    assert 0.4 <= p <= 0.85


def test_a_choice_logs_its_candidates_and_their_probabilities():
    course = chain_course()
    state = learner(course)
    for name in POLICIES:
        choice = choose(name, course, state, 3)
        assert choice.item_id in choice.candidates, name
        assert len(choice.candidates) == len(choice.probabilities)
        assert all(0 < p <= 1 for p in choice.probabilities)
        assert choice.reason


def test_the_same_seed_gives_the_same_choice():
    course = fan_course(n_roots=6)
    state = learner(course)
    assert [choose("combined", course, state, s).item_id for s in range(10)] == [
        choose("combined", course, state, s).item_id for s in range(10)
    ]


def test_a_wrong_answer_brings_the_skill_back_after_two_other_items():
    course = fan_course(n_roots=4)
    state = learner(course)
    params = {s: PARAMS for s in course.skills}
    record_attempt(state, course, 100, False, params)
    assert state.short_term == {1: 2} and state.memory[1].lapses == 1 and state.mastery[1] < 0.2
    record_attempt(state, course, 200, True, params)
    record_attempt(state, course, 300, True, params)
    choice = choose("combined", course, state, 0)
    assert (choice.skill_id, choice.kind) == (1, "repeat")


def test_a_repeat_waits_when_the_skill_already_took_two_of_the_last_twelve_items():
    course = fan_course(n_roots=4)
    state = learner(course)
    params = {s: PARAMS for s in course.skills}
    for item_id, correct in ((101, True), (100, False), (200, True), (300, True)):
        record_attempt(state, course, item_id, correct, params)
    assert state.short_term[1] == 0  # the slip on S1 is due for a repeat, but S1 already had two items
    choices = [choose("combined", course, state, seed) for seed in range(20)]
    assert all(c.kind != "repeat" and c.skill_id != 1 for c in choices)


# --- baselines ----------------------------------------------------------------------------------


def test_oatutor_takes_the_least_mastered_skill_even_before_its_prerequisites():
    course = chain_course()
    state = learner(course, A=0.5, B=0.4, C=0.3, D=0.1)
    assert choose("oatutor", course, state, 0).skill_id == 4


def test_mastery_learning_follows_the_course_order_until_95_percent():
    course = chain_course()
    state = learner(course, A=MASTERY_THRESHOLD - 0.01, B=0.9)
    assert choose("mastery", course, state, 0).skill_id == 1
    state.mastery[1] = MASTERY_THRESHOLD
    assert choose("mastery", course, state, 0).skill_id == 2


def test_fsrs_reviews_what_is_due_then_introduces_skills_in_graph_order():
    course = chain_course()
    state = learner(course)
    state.memory = {2: learned(days_ago=10)}
    assert choose("fsrs", course, state, 0).kind == "review"
    state.memory = {2: learned(days_ago=0.5)}
    choice = choose("fsrs", course, state, 0)
    assert (choice.skill_id, choice.kind) == (1, "new")


def test_random_covers_every_skill():
    course = chain_course()
    state = learner(course)
    assert {choose("random", course, state, seed).skill_id for seed in range(60)} == {1, 2, 3, 4}


def test_a_due_skill_without_items_of_its_own_is_not_served():
    skills = [SkillInfo(1, "Steps only", 0), SkillInfo(2, "Adding", 1)]
    course = CourseMap(skills, [ItemInfo(20, frozenset({2}))])
    state = learner(course, **{"Steps only": 0.99})
    state.memory = {1: learned(days_ago=30)}
    for name in POLICIES:
        assert choose(name, course, state, 0).skill_id == 2, name
