"""The scheduling package wired into the practice loop: memory and the short-term queue in the database, the
class's policy and goals, the selection log, and the teacher's scheduling page. Real database, no mocks;
time moves through the `now=` arguments."""

import copy
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from knowledge.content.package import read_package
from knowledge.models import MasteryState, Skill
from knowledge.services import load_course_package
from tests.conftest import make_user, numeric_step, small_package
from tutor import access, grading, practice, scheduling
from tutor.classrooms import create_classroom, set_goal, set_policy
from tutor.demo import DEMO_COURSE, wrong_answer
from tutor.models import Attempt, ClassGoal, Enrollment, Selection
from tutor.scheduling.memory import Memory
from tutor.scheduling.policies import NEW_SKILLS_PER_DAY, RECENT_WINDOW

DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def answer(learner, session, correct=True, now=DAY0):
    """Answer the current step (right or wrong) at `now`; returns the attempt result."""
    step = practice.current_step(session)
    value = grading.canonical_answer(step.answer) if correct else wrong_answer(step.answer, random.Random(0))
    result = practice.submit_attempt(learner, session.pk, step.pk, value, f"k{Attempt.objects.count()}", now=now)
    session.refresh_from_db()
    return result


def finish_item(learner, session, correct=True, now=DAY0):
    """Work the current item to the end; `correct=False` answers each step wrong once first."""
    for _ in range(10):
        if not correct:
            answer(learner, session, correct=False, now=now)
        if answer(learner, session, correct=True, now=now).item_complete:
            return
    raise AssertionError("the item never finished")


def served_skills(session) -> set[str]:
    return set(session.current_item.skills.values_list("slug", flat=True))


def last_selection(session) -> Selection:
    return Selection.objects.filter(session=session).latest("pk")


def extended_package(**skills) -> dict:
    """The small course (add -> multiply -> equations) plus independent skills given as slug=(name, p_init),
    each with six one-step items."""
    package = copy.deepcopy(small_package())
    for slug, (name, p_init) in skills.items():
        package["skills"].append(
            {
                "slug": slug,
                "name": name,
                "description": "",
                "requires": [],
                "bkt": {"p_init": p_init, "p_learn": 0.2, "p_guess": 0.2, "p_slip": 0.1, "p_forget": 0.0},
            }
        )
        for i in range(1, 7):
            package["items"].append(
                {
                    "slug": f"{slug}-{i}",
                    "title": f"{name} {i}",
                    "body": f"{name} {i}?",
                    "skills": [slug],
                    "steps": [numeric_step("Your answer:", i)],
                    "template": None,
                    "source": "",
                    "license": "",
                    "difficulty": None,
                }
            )
    return package


@pytest.fixture
def demo(db):
    """The demo course with a class of one learner."""
    course = load_course_package(read_package(DEMO_COURSE))
    teacher, learner = make_user("demo_teacher", "teacher"), make_user("demo_learner", "learner")
    classroom = create_classroom(teacher, "Demo class", course)
    Enrollment.objects.create(classroom=classroom, learner=learner)
    return {"course": course, "classroom": classroom, "learner": learner, "teacher": teacher}


# --- the combined policy in the app ---------------------------------------------------------------


def test_a_skill_is_not_served_until_its_prerequisites_are_mastered(people, course):
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    add = MasteryState.objects.filter(learner=alice, skill__slug="add")
    for n, correct in enumerate((False, True, False, True, True, True, True, True, True)):
        assert served_skills(session) == {"add"}, "multiply or equations served before adding was mastered"
        finish_item(alice, session, correct=correct, now=DAY0 + timedelta(minutes=n))
        if add.get().p_known >= scheduling.MASTERY_THRESHOLD:
            break
    assert add.get().p_known >= scheduling.MASTERY_THRESHOLD
    assert served_skills(session) == {"multiply"}
    assert session.selection_reason == "New: you have mastered all prerequisites of Multiplying."
    assert last_selection(session).kind == "new"


def test_a_mastered_skill_practised_days_ago_comes_back_as_a_review_and_the_page_says_why(people, course):
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    mastered = MasteryState.objects.filter(learner=alice, p_known__gte=scheduling.MASTERY_THRESHOLD)
    for n in range(40):
        finish_item(alice, session, now=DAY0 + timedelta(minutes=n))
        if mastered.count() == 3:
            break
    assert mastered.count() == 3, "add, multiply and equations all mastered on day 0"
    practice.end_session(alice, session.pk, now=DAY0 + timedelta(hours=1))

    later = practice.start_session(alice, course.pk, now=DAY0 + timedelta(days=12))
    (skill,) = served_skills(later)
    name = Skill.objects.get(course=course, slug=skill).name
    assert later.selection_reason == f"Review: you last practised {name} 12 days ago."
    assert last_selection(later).kind == "review"
    client = Client()
    client.force_login(alice)
    assert later.selection_reason in client.get(f"/practice/{later.pk}/").content.decode()


def test_a_prerequisite_of_the_skill_being_learned_is_not_reviewed_on_its_own(people, course):
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    add = MasteryState.objects.filter(learner=alice, skill__slug="add")
    for n in range(10):
        finish_item(alice, session, now=DAY0 + timedelta(minutes=n))
        if add.get().p_known >= scheduling.MASTERY_THRESHOLD:
            break
    practice.end_session(alice, session.pk, now=DAY0 + timedelta(hours=1))

    later = practice.start_session(alice, course.pk, now=DAY0 + timedelta(days=12))
    assert served_skills(later) == {"multiply"}  # practising multiplication reviews adding
    assert last_selection(later).kind != "review"


def test_no_more_new_skills_a_day_than_the_cap(people, course):
    load_course_package(extended_package(**{f"solo-{i}": (f"Solo {i}", 0.1) for i in range(6)}))
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    started = set()
    for n in range(20):
        started |= served_skills(session)
        finish_item(alice, session, now=DAY0 + timedelta(minutes=n))
    assert len(started) == NEW_SKILLS_PER_DAY, started
    introduced = [m for m in MasteryState.objects.filter(learner=alice) if m.memory]
    assert len(introduced) == NEW_SKILLS_PER_DAY

    practice.end_session(alice, session.pk, now=DAY0 + timedelta(hours=1))
    next_day = DAY0 + timedelta(days=1)
    session = practice.start_session(alice, course.pk, now=next_day)
    for n in range(12):
        started |= served_skills(session)
        finish_item(alice, session, now=next_day + timedelta(minutes=n))
    assert NEW_SKILLS_PER_DAY < len(started) <= 2 * NEW_SKILLS_PER_DAY


def test_a_goal_skills_region_is_served_before_an_unrelated_open_skill(people, course):
    load_course_package(extended_package(count=("Counting", 0.05)))
    alice, carol = people["alice"], people["carol"]
    set_goal(people["class_a"], Skill.objects.get(slug="multiply").pk, DAY0.date() + timedelta(days=7), DAY0.date())
    count_items = set(course.items.filter(skills__slug="count").values_list("pk", flat=True))

    # Carol's class has no goal: Counting is open to her and competes with Adding.
    theirs = practice.start_session(carol, course.pk, now=DAY0)
    assert count_items & set(last_selection(theirs).candidates)

    session = practice.start_session(alice, course.pk, now=DAY0)
    served = []
    for n in range(8):
        selection = last_selection(session)
        assert not count_items & set(selection.candidates), "an unrelated skill competed with the goal's region"
        served.append((served_skills(session), selection.kind))
        finish_item(alice, session, now=DAY0 + timedelta(minutes=n))
        if served[-1][0] == {"multiply"}:
            break
    assert {"add"} == served[0][0]
    assert served[-1] == ({"multiply"}, "goal")
    assert session.selection_reason.startswith("Goal: your teacher set Multiplying as a goal")


def test_a_goal_past_its_due_date_no_longer_steers_practice(people, course):
    load_course_package(extended_package(count=("Counting", 0.05)))
    ClassGoal.objects.create(
        classroom=people["class_a"], skill=Skill.objects.get(slug="multiply"), due=DAY0.date() - timedelta(days=1)
    )
    session = practice.start_session(people["alice"], course.pk, now=DAY0)
    count_items = set(course.items.filter(skills__slug="count").values_list("pk", flat=True))
    assert count_items & set(last_selection(session).candidates)


def test_no_item_repeats_within_the_recent_window(demo):
    learner, rng = demo["learner"], random.Random(4)
    session = practice.start_session(learner, demo["course"].pk, now=DAY0)
    served = []
    for n in range(3 * RECENT_WINDOW):
        served.append(session.current_item_id)
        finish_item(learner, session, correct=rng.random() < 0.6, now=DAY0 + timedelta(minutes=n))
    for i, item_id in enumerate(served):
        assert item_id not in served[max(0, i - RECENT_WINDOW) : i], f"item {item_id} repeated at {i}"


# --- memory and the short-term queue in the database ------------------------------------------------


def test_memory_is_stored_and_a_prerequisite_gets_partial_credit(people, course):
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    for n in range(5):
        finish_item(alice, session, now=DAY0 + timedelta(minutes=n))
        if served_skills(session) != {"add"}:
            break
    add = MasteryState.objects.get(learner=alice, skill__slug="add")
    memory = Memory.from_json(add.memory)
    assert memory.introduced == memory.last_review == DAY0 and memory.reviews == 1 and memory.stability > 0

    five_days = DAY0 + timedelta(days=5)
    assert served_skills(session) == {"multiply"}
    answer(alice, session, correct=True, now=five_days)
    credited = MasteryState.objects.get(learner=alice, skill__slug="add")
    assert credited.observations == add.observations and credited.p_known == add.p_known
    assert Memory.from_json(credited.memory).last_review == DAY0 + timedelta(days=2.5)
    multiply = Memory.from_json(MasteryState.objects.get(learner=alice, skill__slug="multiply").memory)
    assert multiply.introduced == multiply.last_review == five_days


def test_a_skill_tagged_only_on_steps_gets_a_memory_and_never_breaks_the_choice(people, course):
    package = small_package()
    package["skills"].append(
        {
            "slug": "carry",
            "name": "Carrying",
            "description": "",
            "requires": [],
            "bkt": {"p_init": 0.99, "p_learn": 0.2, "p_guess": 0.2, "p_slip": 0.1, "p_forget": 0},
        }
    )
    for item in package["items"]:
        if item["skills"] == ["add"]:
            item["steps"][0]["skills"] = ["carry"]
    load_course_package(package)
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    finish_item(alice, session)
    assert MasteryState.objects.get(learner=alice, skill__slug="carry").memory is not None
    practice.end_session(alice, session.pk, now=DAY0 + timedelta(minutes=5))
    later = practice.start_session(alice, course.pk, now=DAY0 + timedelta(days=60))  # Carrying is long overdue
    assert later.current_item is not None and "Carrying" not in later.selection_reason


def test_a_slip_queues_the_skill_once_per_item_and_a_clean_item_clears_it(people, course):
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    add_id = Skill.objects.get(slug="add").pk
    step = practice.current_step(session)
    practice.request_hint(alice, session.pk, step.pk, "h1", now=DAY0)
    session.refresh_from_db()
    answer(alice, session, correct=False)
    answer(alice, session, correct=True)
    assert session.short_term == {str(add_id): 2}
    assert served_skills(session) == {"add"}
    finish_item(alice, session, correct=True, now=DAY0 + timedelta(minutes=1))
    assert session.short_term == {}


# --- the selection log ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["combined", "oatutor", "mastery", "fsrs"])
def test_every_item_served_is_logged_with_its_candidates_and_probabilities(people, course, policy):
    set_policy(people["class_a"], policy)
    alice = people["alice"]
    session = practice.start_session(alice, course.pk, now=DAY0)
    finish_item(alice, session)
    finish_item(alice, session, correct=False, now=DAY0 + timedelta(minutes=1))
    log = list(Selection.objects.filter(session=session).order_by("pk"))
    assert len(log) == 3
    for n, selection in enumerate(log):
        assert selection.policy == policy and selection.classroom == people["class_a"]
        assert selection.learner == alice and selection.item_id in selection.candidates
        assert len(selection.probabilities) == len(selection.candidates)
        assert sum(selection.probabilities) == pytest.approx(1, abs=1e-4)
        assert selection.seed == session.pk * 1_000_000 + n  # reproducible: (session, items completed)
        assert selection.skill.slug in {s.slug for s in selection.item.skills.all()}
    assert log[-1].reason == session.selection_reason and log[-1].item_id == session.current_item_id


def test_the_selection_log_is_read_by_the_class_teacher_and_admins_only(people, course):
    practice.start_session(people["alice"], course.pk, now=DAY0)
    admin_user = make_user("root", "admin")
    assert access.selections_for(people["teacher_a"]).count() == 1
    assert access.selections_for(admin_user).count() == 1
    for other in ("teacher_b", "alice", "bob"):
        assert not access.selections_for(people[other]).exists()


def test_the_admin_shows_the_selection_log_read_only(people, course):
    practice.start_session(people["alice"], course.pk, now=DAY0)
    admin_user = make_user("root", "admin")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client = Client()
    client.force_login(admin_user)
    selection = Selection.objects.get()
    assert client.get("/admin/tutor/selection/").status_code == 200
    assert client.get(f"/admin/tutor/selection/{selection.pk}/change/").status_code == 200  # a read-only view
    assert client.get("/admin/tutor/selection/add/").status_code == 403
    assert client.post(f"/admin/tutor/selection/{selection.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Selection.objects.filter(pk=selection.pk).exists()


# --- the class's policy -------------------------------------------------------------------------------


def test_switching_the_class_policy_changes_what_is_served_from_the_next_item(demo):
    learner, classroom, course = demo["learner"], demo["classroom"], demo["course"]
    set_policy(classroom, "mastery")
    session = practice.start_session(learner, course.pk, now=DAY0)
    first_in_course = course.skills.order_by("position").first()
    assert served_skills(session) == {first_in_course.slug}
    assert session.selection_reason.startswith(f"Next in the course: {first_in_course.name}")

    set_policy(classroom, "oatutor")
    finish_item(learner, session)
    least = min(course.skills.all(), key=lambda s: (s.p_init, s.position))
    assert served_skills(session) == {least.slug} != {first_in_course.slug}
    assert session.selection_reason.startswith(f"Practice: {least.name} is your least-mastered skill")
    assert [s.policy for s in Selection.objects.filter(session=session).order_by("pk")] == ["mastery", "oatutor"]


# --- the teacher's scheduling page ----------------------------------------------------------------------


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_teacher_sets_the_policy_and_goals_of_their_class(people, course):
    classroom, client = people["class_a"], page(people["teacher_a"])
    url = f"/teach/class/{classroom.pk}/scheduling/"
    practice.start_session(people["alice"], course.pk, now=DAY0)
    body = client.get(url).content.decode()
    assert "Combined: prerequisites, reviews and goals" in body and "New: Adding is a good place to start." in body
    assert f"/teach/class/{classroom.pk}/scheduling/" in client.get(f"/teach/class/{classroom.pk}/").content.decode()

    response = client.post(url, {"action": "policy", "policy": "fsrs"}, follow=True)
    assert response.status_code == 200 and "Spaced repetition (FSRS)" in response.content.decode()
    classroom.refresh_from_db()
    assert classroom.policy == "fsrs"

    multiply = Skill.objects.get(slug="multiply")
    due = (datetime.now(UTC) + timedelta(days=7)).date()
    response = client.post(url, {"action": "add-goal", "skill": multiply.pk, "due": due.isoformat()}, follow=True)
    assert f"Goal set: Multiplying by {due.isoformat()}" in response.content.decode()
    later = due + timedelta(days=3)
    client.post(url, {"action": "add-goal", "skill": multiply.pk, "due": later.isoformat()})
    goal = ClassGoal.objects.get(classroom=classroom)
    assert (goal.skill, goal.due) == (multiply, later)
    client.post(url, {"action": "remove-goal", "goal": goal.pk})
    assert not ClassGoal.objects.exists()


def test_another_teacher_and_learners_cannot_see_or_change_a_class_s_scheduling(people):
    classroom = people["class_a"]
    url = f"/teach/class/{classroom.pk}/scheduling/"
    goal = ClassGoal.objects.create(classroom=classroom, skill=Skill.objects.get(slug="add"), due=DAY0.date())
    other = page(people["teacher_b"])
    assert other.get(url).status_code == 404
    assert other.post(url, {"action": "policy", "policy": "random"}).status_code == 404
    assert other.post(url, {"action": "remove-goal", "goal": goal.pk}).status_code == 404
    learner = page(people["alice"])
    assert learner.get(url).status_code == 403
    assert learner.post(url, {"action": "policy", "policy": "random"}).status_code == 403
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    classroom.refresh_from_db()
    assert classroom.policy == scheduling.DEFAULT_POLICY and ClassGoal.objects.filter(pk=goal.pk).exists()


def test_an_admin_may_change_any_class(people):
    admin_user = make_user("root", "admin")
    url = f"/teach/class/{people['class_b'].pk}/scheduling/"
    assert page(admin_user).post(url, {"action": "policy", "policy": "mastery"}).status_code == 302
    people["class_b"].refresh_from_db()
    assert people["class_b"].policy == "mastery"


def _other_course_skill():
    package = small_package()
    package["course"] = {**package["course"], "slug": "other", "title": "Other course"}
    return load_course_package(package).skills.get(slug="add")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "policy", "policy": "bandit"}, "Unknown policy &#x27;bandit&#x27;; choose one of: combined"),
        ({"action": "policy"}, "Unknown policy"),
        ({"action": "add-goal", "skill": "multiply", "due": "2099-01-01"}, "Pick a skill from the list."),
        ({"action": "add-goal", "skill": "OTHER", "due": "2099-01-01"}, "not in this class&#x27;s course"),
        ({"action": "add-goal", "skill": "MULTIPLY", "due": "31/01/2099"}, "Give the due date as YYYY-MM-DD"),
        ({"action": "add-goal", "skill": "MULTIPLY", "due": ""}, "Give the due date as YYYY-MM-DD"),
        ({"action": "add-goal", "skill": "MULTIPLY", "due": "2020-01-01"}, "is in the past"),
        ({"action": "remove-goal", "goal": "x"}, "Say which goal to remove."),
        ({"action": "rename"}, "Unknown change"),
    ],
)
def test_bad_settings_get_a_400_that_says_what_to_fix_and_change_nothing(people, data, message):
    classroom = people["class_a"]
    ClassGoal.objects.create(classroom=classroom, skill=Skill.objects.get(slug="add"), due=DAY0.date())
    before = list(ClassGoal.objects.values_list("pk", "skill_id", "due"))
    multiply = Skill.objects.get(course=classroom.course, slug="multiply")
    ids = {"OTHER": str(_other_course_skill().pk), "MULTIPLY": str(multiply.pk)}
    data = {key: ids.get(value, value) for key, value in data.items()}
    response = page(people["teacher_a"]).post(f"/teach/class/{classroom.pk}/scheduling/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    classroom.refresh_from_db()
    assert classroom.policy == scheduling.DEFAULT_POLICY
    assert list(ClassGoal.objects.values_list("pk", "skill_id", "due")) == before


def test_removing_another_class_s_goal_is_not_found_and_keeps_it(people):
    theirs = ClassGoal.objects.create(classroom=people["class_b"], skill=Skill.objects.get(slug="add"), due=DAY0.date())
    url = f"/teach/class/{people['class_a'].pk}/scheduling/"
    response = page(people["teacher_a"]).post(url, {"action": "remove-goal", "goal": theirs.pk})
    assert response.status_code == 404 and "no such goal" in response.content.decode()
    assert ClassGoal.objects.filter(pk=theirs.pk).exists()
