"""The practice API: the loop end to end, bad input, and scoping (A never reads B's records)."""

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from knowledge.models import MasteryState
from tutor import practice
from tutor.classrooms import set_hint_policy
from tutor.models import Attempt, HintTurn


def start(client, course):
    response = client.post("/api/sessions/", {"course": course.pk}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def submit(client, state, answer, key):
    return client.post(
        "/api/attempts/",
        {"session": state["session_id"], "step": state["step"]["id"], "answer": answer, "idempotency_key": key},
        format="json",
    )


def test_the_loop_through_the_api_with_token_authentication(people, course):
    token = Token.objects.create(user=people["alice"])
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    state = start(client, course)
    mastery_before = client.get(f"/api/mastery/?course={course.pk}").json()["skills"][0]["p_known"]
    for n in range(3):
        step = practice.current_step(practice.PracticeSession.objects.get(pk=state["session_id"]))
        response = submit(client, state, str(step.answer["value"]), f"key-{n}")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["correct"] and body["item_complete"]
        state = body["problem"]
    mastery_after = client.get(f"/api/mastery/?course={course.pk}").json()["skills"][0]
    assert mastery_after["slug"] == "add" and mastery_after["p_known"] > mastery_before
    assert client.get(f"/api/sessions/{state['session_id']}/next-item/").json()["item"]["id"] == state["item"]["id"]
    assert len(client.get("/api/attempts/").json()["results"]) == 3


def test_hints_come_one_rung_at_a_time(people, course, api):
    set_hint_policy(people["class_a"], "authored")  # the ladder as written, worked answer last
    client = api(people["alice"])
    state = start(client, course)
    body = {"session": state["session_id"], "step": state["step"]["id"]}
    kinds = [client.post("/api/hints/", {**body, "idempotency_key": f"h{i}"}, format="json").json()["kind"]
             for i in range(3)]
    assert kinds == ["hint", "scaffold", "bottom_out"]
    none_left = client.post("/api/hints/", {**body, "idempotency_key": "h9"}, format="json")
    assert none_left.status_code == 409 and "no more hints" in none_left.json()["detail"]
    repeat = client.post("/api/hints/", {**body, "idempotency_key": "h0"}, format="json")
    assert repeat.status_code == 200 and repeat.json()["replayed"] and HintTurn.objects.count() == 3
    scaffold = client.post("/api/scaffolds/", {**body, "level": 2, "answer": "2"}, format="json")
    assert scaffold.json()["correct"] is True


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"answer": "twelve"}, 400, "number"),
        ({"answer": ""}, 400, "blank"),
        ({"answer": "1" * 201}, 400, "200 characters"),
        ({"answer": None}, 400, "null"),
        ({"idempotency_key": ""}, 400, "blank"),
        ({"session": "abc"}, 400, "valid integer"),
        ({"session": 999999}, 404, "No such practice session"),
        ({"step": 999999}, 409, "not the step you are on"),
    ],
)
def test_bad_attempts_get_a_clear_4xx_and_nothing_is_saved(people, course, api, payload, status, message):
    client = api(people["alice"])
    state = start(client, course)
    body = {"session": state["session_id"], "step": state["step"]["id"], "answer": "2", "idempotency_key": "k"}
    response = client.post("/api/attempts/", {**body, **payload}, format="json")
    assert response.status_code == status
    assert message in json.dumps(response.json())
    assert Attempt.objects.count() == 0 and MasteryState.objects.count() == 0


def test_malformed_json_and_oversize_payloads_are_refused(people, course, api):
    client = api(people["alice"])
    start(client, course)
    broken = client.post("/api/attempts/", data="{not json", content_type="application/json")
    assert broken.status_code == 400 and "JSON parse error" in broken.json()["detail"]
    huge = client.post("/api/attempts/", data=json.dumps({"answer": "1" * 100_000}), content_type="application/json")
    assert huge.status_code == 413 and "64 KB" in huge.json()["detail"]
    assert Attempt.objects.count() == 0


def test_a_second_submit_with_the_same_key_returns_the_original_result(people, course, api):
    client = api(people["alice"])
    state = start(client, course)
    first = submit(client, state, "-1", "same")
    second = submit(client, state, "-1", "same")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["attempt_id"] == first.json()["attempt_id"] and second.json()["replayed"]
    assert Attempt.objects.count() == 1 and MasteryState.objects.get().observations == 1
    clash = submit(client, state, "5", "same")
    assert clash.status_code == 409 and Attempt.objects.count() == 1


def test_a_learner_cannot_read_another_learners_attempts_sessions_or_mastery(people, course, api):
    alice, bob = api(people["alice"]), api(people["bob"])
    state = start(alice, course)
    attempt_id = submit(alice, state, "1", "a1").json()["attempt_id"]
    assert bob.get(f"/api/attempts/{attempt_id}/").status_code == 404
    assert bob.get("/api/attempts/").json()["results"] == []
    assert bob.get(f"/api/sessions/{state['session_id']}/").status_code == 404
    assert bob.get(f"/api/sessions/{state['session_id']}/next-item/").status_code == 404
    assert bob.get(f"/api/mastery/?course={course.pk}&learner={people['alice'].pk}").status_code == 404
    assert bob.post(f"/api/sessions/{state['session_id']}/end/").status_code == 404
    assert bob.get("/api/hints/").json()["results"] == []


def test_a_teacher_reads_their_own_learners_but_not_another_teachers(people, course, api):
    alice = api(people["alice"])
    state = start(alice, course)
    attempt_id = submit(alice, state, "1", "a1").json()["attempt_id"]
    teacher_a, teacher_b = api(people["teacher_a"]), api(people["teacher_b"])
    assert teacher_a.get(f"/api/attempts/{attempt_id}/").status_code == 200
    mastery = teacher_a.get(f"/api/mastery/?course={course.pk}&learner={people['alice'].pk}")
    assert mastery.status_code == 200 and mastery.json()["learner"] == people["alice"].pk
    assert teacher_b.get(f"/api/attempts/{attempt_id}/").status_code == 404
    assert teacher_b.get("/api/attempts/").json()["results"] == []
    assert teacher_b.get(f"/api/mastery/?course={course.pk}&learner={people['alice'].pk}").status_code == 404


def test_a_learner_cannot_start_a_course_outside_their_classes(people, course, api):
    from knowledge.services import load_course_package
    from tests.conftest import small_package

    other = load_course_package({**small_package(), "course": {**small_package()["course"], "slug": "other"}})
    response = api(people["alice"]).post("/api/sessions/", {"course": other.pk}, format="json")
    assert response.status_code == 404


def test_mastery_needs_a_numeric_course(people, api):
    response = api(people["alice"]).get("/api/mastery/?course=abc")
    assert response.status_code == 400 and "numeric" in response.json()["detail"]


def test_anonymous_requests_are_refused(course):
    assert APIClient().get("/api/attempts/").status_code in (401, 403)


def test_the_openapi_schema_describes_the_loop(db):
    client = APIClient()
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/sessions/", "/api/attempts/", "/api/hints/", "/api/mastery/", "/api/sessions/{id}/next-item/"):
        assert path in paths, path
