"""Server-rendered pages: sign-in, learner pages with mastery bars, teacher pages, and who sees what."""

import re

from django.test import Client

from tutor import practice


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password="pw-for-tests")
    return client


def test_sign_in_sends_each_role_to_its_home(people):
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": "pw-for-tests"}, follow=True)
    assert response.redirect_chain[-1][0] == "/learn/"
    assert Client().post("/login/", {"username": "alice", "password": "nope"}).status_code == 200
    assert signed_in(people["teacher_a"]).get("/", follow=True).redirect_chain[-1][0] == "/teach/"


def test_pages_need_a_signed_in_user(db):
    for path in ("/learn/", "/teach/", "/practice/1/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_course_page_shows_a_mastery_bar_per_skill_that_moves_after_practice(people, course):
    alice = people["alice"]
    client = signed_in(alice)
    page = client.get(f"/learn/course/{course.pk}/").content.decode()
    assert len(re.findall(r'role="progressbar"', page)) == 3
    assert 'aria-valuenow="30"' in page  # Adding starts at its prior, 30 %
    session = practice.start_session(alice, course.pk)
    step = practice.current_step(session)
    practice.submit_attempt(alice, session.pk, step.pk, str(step.answer["value"]), "k1")
    page = client.get(f"/learn/course/{course.pk}/").content.decode()
    assert 'aria-valuenow="73"' in page  # after one correct answer


def test_the_practice_page_renders_the_problem_with_math_and_a_numeric_input(people, course):
    client = signed_in(people["alice"])
    response = client.post(f"/learn/course/{course.pk}/practise/")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert 'class="math" data-tex="' in page and 'inputmode="decimal"' in page
    assert "Hint (0 of 2)" in page  # the class keeps the worked answer back


def test_a_learner_cannot_open_another_learners_practice_page(people, course):
    session = practice.start_session(people["alice"], course.pk)
    bob = signed_in(people["bob"])
    assert bob.get(f"/practice/{session.pk}/").status_code == 404
    assert bob.get(f"/practice/{session.pk}/problem/").status_code == 404


def test_a_teacher_sees_their_class_with_learner_mastery(people, course):
    session = practice.start_session(people["alice"], course.pk)
    step = practice.current_step(session)
    practice.submit_attempt(people["alice"], session.pk, step.pk, str(step.answer["value"]), "k1")
    page = signed_in(people["teacher_a"]).get(f"/teach/class/{people['class_a'].pk}/").content.decode()
    assert "alice" in page and "bob" in page and "carol" not in page
    assert people["class_a"].join_code in page


def test_a_teacher_cannot_see_another_teachers_class(people):
    teacher_b = signed_in(people["teacher_b"])
    assert teacher_b.get(f"/teach/class/{people['class_a'].pk}/").status_code == 404
    assert "Class A" not in teacher_b.get("/teach/").content.decode()


def test_learners_get_none_of_the_teacher_pages(people):
    alice = signed_in(people["alice"])
    assert alice.get("/teach/").status_code == 403
    assert alice.get(f"/teach/class/{people['class_a'].pk}/").status_code == 403


def test_joining_a_class_by_code(people, course):
    from tests.conftest import make_user

    dana = make_user("dana", "learner")
    client = signed_in(dana)
    client.post("/learn/join/", {"join_code": people["class_b"].join_code.lower()})
    assert people["class_b"].learners.filter(pk=dana.pk).exists()
    response = client.post("/learn/join/", {"join_code": "NOPE00"}, follow=True)
    assert "No open class has that join code" in response.content.decode()


def test_the_admin_can_browse_content_and_the_log(people, course):
    from tests.conftest import make_user

    admin_user = make_user("root", "admin")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client = signed_in(admin_user)
    item = course.items.get(slug="two-step")
    for path in ("/admin/", "/admin/knowledge/item/", f"/admin/knowledge/item/{item.pk}/change/",
                 "/admin/knowledge/skill/", "/admin/tutor/attempt/", "/admin/tutor/classroom/"):
        assert client.get(path).status_code == 200, path
    assert signed_in(people["alice"]).get("/admin/knowledge/item/").status_code == 302
