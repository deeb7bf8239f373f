"""Classes and rosters from the teacher's pages: opening a class, the join code and link, moving and removing
learners, audited password resets, archiving; and who may do what (a teacher only in their own classes, an admin
everywhere, a learner nowhere). Real database, the real pages through Django's test client."""

import re
from urllib.parse import quote

import pytest
from django.test import Client

from tests.conftest import make_user
from tutor import access, practice
from tutor.classrooms import create_classroom, join_classroom, set_policy
from tutor.models import Attempt, AuditEvent, Classroom, Enrollment, PracticeSession, Selection


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def roster_url(classroom) -> str:
    return f"/teach/class/{classroom.pk}/roster/"


@pytest.fixture
def class_a2(people, course):
    """A second class of teacher A's, on the same course."""
    return create_classroom(people["teacher_a"], "Class A2", course)


# --- opening a class and joining it ------------------------------------------------------------------------


def test_a_teacher_opens_a_class_and_shares_its_code_and_link(people, course):
    teacher = signed_in(people["teacher_a"])
    response = teacher.post("/teach/class/new/", {"name": "  Year 8   maths ", "course": course.pk})
    classroom = Classroom.objects.get(name="Year 8 maths")
    assert classroom.teacher == people["teacher_a"] and classroom.course == course and not classroom.archived
    assert response.status_code == 302 and response["Location"] == roster_url(classroom)
    page = teacher.get(roster_url(classroom)).content.decode()
    assert f'<code id="join-code">{classroom.join_code}</code>' in page
    assert f"/learn/join/?code={classroom.join_code}" in page
    assert "Year 8 maths" in teacher.get("/teach/").content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": " ", "course": "COURSE"}, "Give the class a name"),
        ({"name": "New class", "course": "999"}, "Pick the course"),
    ],
)
def test_a_class_without_a_name_or_a_known_course_is_refused(people, course, data, message):
    teacher = signed_in(people["teacher_a"])
    data = {**data, "course": str(course.pk) if data["course"] == "COURSE" else data["course"]}
    response = teacher.post("/teach/class/new/", data, follow=True)
    assert message in response.content.decode()
    assert Classroom.objects.count() == 2


def test_the_join_link_asks_for_sign_in_then_names_the_class_and_joins_on_confirmation(people, course):
    classroom = people["class_b"]
    link = f"/learn/join/?code={classroom.join_code}"
    response = Client().get(link)
    assert response.status_code == 302 and response["Location"] == f"/login/?next={quote(link, safe='/')}"

    dave = make_user("dave", "learner")
    client = signed_in(dave)
    page = client.get(link).content.decode()
    assert "Class B" in page and f'value="{classroom.join_code}"' in page
    assert not Enrollment.objects.filter(learner=dave).exists(), "opening the link alone changes nothing"
    client.post("/learn/join/", {"join_code": classroom.join_code.lower()})
    assert Enrollment.objects.filter(learner=dave, classroom=classroom).exists()
    assert "already in" in client.get(link).content.decode()


def test_an_unknown_code_in_a_link_says_so(people):
    page = signed_in(people["alice"]).get("/learn/join/?code=NOPE42")
    assert page.status_code == 404 and "No open class has the join code NOPE42" in page.content.decode()


# --- archiving ------------------------------------------------------------------------------------------------


def test_an_archived_class_leaves_the_list_and_its_code_stops_working_until_restored(people, course):
    classroom, teacher_a = people["class_a"], people["teacher_a"]
    session = practice.start_session(people["alice"], course.pk)
    client = signed_in(teacher_a)
    client.post(roster_url(classroom), {"action": "archive"})
    classroom.refresh_from_db()
    assert classroom.archived
    assert PracticeSession.objects.get(pk=session.pk).ended_at is not None, "no more practice through it"
    teach = client.get("/teach/").content.decode()
    main_list = teach.split("Archived classes")[0]
    assert "Class A</a>" not in main_list and "Class A</a>" in teach.split("Archived classes")[1]

    dave = make_user("dave", "learner")
    assert join_classroom(dave, classroom.join_code) is None
    assert signed_in(dave).get(f"/learn/join/?code={classroom.join_code}").status_code == 404
    assert course not in access.courses_for(people["alice"]), "its learners no longer practise through it"

    client.post(roster_url(classroom), {"action": "restore"})
    assert join_classroom(dave, classroom.join_code) == classroom
    actions = list(AuditEvent.objects.filter(classroom=classroom).values_list("action", "actor__username"))
    assert actions == [("restore-class", "teacher_a"), ("archive-class", "teacher_a")]


# --- moving, removing, resetting passwords -----------------------------------------------------------------


def test_moving_a_learner_keeps_their_history_and_the_new_class_s_policy_applies(people, course, class_a2):
    alice, teacher = people["alice"], people["teacher_a"]
    set_policy(people["class_a"], "random")
    set_policy(class_a2, "mastery")
    session = practice.start_session(alice, course.pk)
    step = practice.current_step(session)
    practice.submit_attempt(alice, session.pk, step.pk, str(step.answer["value"]), "k1")

    response = signed_in(teacher).post(
        roster_url(people["class_a"]), {"action": "move", "learner": alice.pk, "target": class_a2.pk}
    )
    assert response.status_code == 302
    assert list(Enrollment.objects.filter(learner=alice).values_list("classroom__name", flat=True)) == ["Class A2"]
    assert Attempt.objects.filter(learner=alice).count() == 1
    session.refresh_from_db()
    assert session.classroom == class_a2 and session.ended_at is None

    practice.end_session(alice, session.pk)
    fresh = practice.start_session(alice, course.pk)
    assert Selection.objects.filter(session=fresh).latest("pk").policy == "mastery"

    event = AuditEvent.objects.get(action="move-learner")
    assert (event.actor, event.subject, event.classroom) == (teacher, alice, people["class_a"])
    assert event.detail["to_classroom"] == class_a2.pk
    page = signed_in(teacher).get(roster_url(people["class_a"])).content.decode()
    assert "Moved a learner to another class (Class A2)" in page


def test_removing_a_learner_ends_their_session_in_the_class_and_keeps_their_attempts(people, course):
    alice, teacher = people["alice"], people["teacher_a"]
    session = practice.start_session(alice, course.pk)
    step = practice.current_step(session)
    practice.submit_attempt(alice, session.pk, step.pk, str(step.answer["value"]), "k1")
    signed_in(teacher).post(roster_url(people["class_a"]), {"action": "remove", "learner": alice.pk})
    assert not Enrollment.objects.filter(learner=alice).exists()
    assert PracticeSession.objects.get(pk=session.pk).ended_at is not None
    assert Attempt.objects.filter(learner=alice).count() == 1
    assert AuditEvent.objects.filter(action="remove-learner", subject=alice, actor=teacher).count() == 1
    assert signed_in(alice).get(f"/learn/course/{course.pk}/").status_code == 404


def test_a_password_reset_is_audited_without_the_password_and_lets_the_learner_in(people):
    alice, teacher = people["alice"], people["teacher_a"]
    client = signed_in(teacher)
    response = client.post(
        roster_url(people["class_a"]),
        {"action": "reset-password", "learner": alice.pk, "password": "blue-kite-42"},
        follow=True,
    )
    assert "password is now blue-kite-42" in response.content.decode()
    assert Client().login(username="alice", password="blue-kite-42")
    assert not Client().login(username="alice", password="pw-for-tests")
    event = AuditEvent.objects.get(action="reset-password")
    assert (event.actor, event.subject) == (teacher, alice)
    assert "blue-kite-42" not in str(event.detail)
    page = client.get(roster_url(people["class_a"])).content.decode()
    assert "Reset a learner&#x27;s password" in page and "alice" in page.split('id="audit"')[1]


def test_a_blank_reset_makes_up_a_readable_password(people):
    response = signed_in(people["teacher_a"]).post(
        roster_url(people["class_a"]),
        {"action": "reset-password", "learner": people["bob"].pk, "password": ""},
        follow=True,
    )
    made_up = re.search(r"password is now ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})", response.content.decode()).group(1)
    assert Client().login(username="bob", password=made_up)


def test_a_weak_password_is_refused_with_the_reason_and_nothing_changes(people):
    response = signed_in(people["teacher_a"]).post(
        roster_url(people["class_a"]), {"action": "reset-password", "learner": people["alice"].pk, "password": "123"}
    )
    assert response.status_code == 400
    assert "Choose another temporary password" in response.content.decode()
    assert Client().login(username="alice", password="pw-for-tests")
    assert not AuditEvent.objects.exists()


def test_moving_into_an_archived_class_is_refused(people, class_a2):
    class_a2.archived = True
    class_a2.save()
    response = signed_in(people["teacher_a"]).post(
        roster_url(people["class_a"]), {"action": "move", "learner": people["alice"].pk, "target": class_a2.pk}
    )
    assert response.status_code == 400 and "archived" in response.content.decode()
    assert Enrollment.objects.filter(learner=people["alice"], classroom=people["class_a"]).exists()


# --- who may do what ------------------------------------------------------------------------------------------


ACTIONS = [
    {"action": "archive"},
    {"action": "remove", "learner": "ALICE"},
    {"action": "reset-password", "learner": "ALICE", "password": "blue-kite-42"},
    {"action": "move", "learner": "ALICE", "target": "CLASS_B"},
]


def _form(data, people):
    ids = {"ALICE": people["alice"].pk, "CLASS_B": people["class_b"].pk, "CLASS_A": people["class_a"].pk}
    return {key: ids.get(value, value) for key, value in data.items()}


def _unchanged(people) -> bool:
    class_a = Classroom.objects.get(pk=people["class_a"].pk)
    return (
        not class_a.archived
        and Enrollment.objects.filter(learner=people["alice"], classroom=class_a).exists()
        and Client().login(username="alice", password="pw-for-tests")
        and not AuditEvent.objects.exists()
    )


def test_another_teacher_gets_404_for_a_class_s_pages_learners_and_actions(people):
    other = signed_in(people["teacher_b"])
    class_a = people["class_a"]
    for path in (roster_url(class_a), f"/teach/class/{class_a.pk}/", f"/teach/class/{class_a.pk}/scheduling/"):
        assert other.get(path).status_code == 404, path
    for data in ACTIONS:
        assert other.post(roster_url(class_a), _form(data, people)).status_code == 404, data
    assert _unchanged(people)
    assert "Class A<" not in other.get("/teach/").content.decode()


def test_a_teacher_cannot_act_on_another_class_s_learner_or_move_into_another_teacher_s_class(people):
    teacher_a = signed_in(people["teacher_a"])
    carol = people["carol"]
    for action in ("remove", "reset-password"):
        response = teacher_a.post(roster_url(people["class_a"]), {"action": action, "learner": carol.pk})
        assert response.status_code == 404
    response = teacher_a.post(
        roster_url(people["class_a"]), {"action": "move", "learner": people["alice"].pk, "target": people["class_b"].pk}
    )
    assert response.status_code == 404
    assert _unchanged(people) and Enrollment.objects.filter(learner=carol).count() == 1


def test_a_learner_gets_none_of_the_teacher_pages(people, course):
    alice = signed_in(people["alice"])
    class_a = people["class_a"]
    item = course.items.first()
    for path in (
        "/teach/",
        roster_url(class_a),
        f"/teach/class/{class_a.pk}/",
        f"/teach/course/{course.pk}/check/",
        f"/teach/items/{item.pk}/preview/",
        "/teach/content/",
    ):
        assert alice.get(path).status_code == 403, path
    assert alice.post("/teach/class/new/", {"name": "Mine", "course": course.pk}).status_code == 403
    for data in ACTIONS:
        assert alice.post(roster_url(class_a), _form(data, people)).status_code == 403
    assert _unchanged(people) and Classroom.objects.count() == 2


def test_an_admin_sees_every_class_and_may_change_any(people):
    admin = make_user("root", "admin")
    client = signed_in(admin)
    listing = client.get("/teach/").content.decode()
    assert "Class A" in listing and "Class B" in listing and "teacher_b" in listing
    assert client.get(roster_url(people["class_b"])).status_code == 200
    client.post(
        roster_url(people["class_b"]), {"action": "move", "learner": people["carol"].pk, "target": people["class_a"].pk}
    )
    assert Enrollment.objects.get(learner=people["carol"]).classroom == people["class_a"]
    event = AuditEvent.objects.get()
    assert event.actor == admin and event.classroom == people["class_b"]
    # teacher B sees what the admin did in their class; teacher A's audit list does not show class B's changes
    assert "carol" in signed_in(people["teacher_b"]).get(roster_url(people["class_b"])).content.decode()
