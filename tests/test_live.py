"""The live class view over Channels, with two real websocket clients on the real ASGI application: a teacher's
live socket (LiveClassConsumer) and a learner practising, whose Help requests go over the practice page's own
socket (HintConsumer). The teacher hears each action without asking, and the learner moves into "needs help"
after repeated errors and after the worked answer."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from tutor import practice

ORIGIN = (b"origin", b"http://127.0.0.1")


def cookie_for(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()


async def next_update(socket, learner_id: int, until=lambda row: True, timeout: float = 10) -> dict:
    """Messages about `learner_id` until one whose row satisfies `until`."""
    while True:
        message = await socket.receive_json_from(timeout=timeout)
        assert message["type"] == "learner"
        if message["learner_id"] == learner_id and message["row"] and until(message["row"]):
            return message


def kinds(row) -> set[str]:
    return {reason["kind"] for reason in row["needs_help"]}


@pytest.fixture
def authored_class(people):
    """Class A on the lesson's own ladder, which ends with the worked answer (no model involved)."""
    classroom = people["class_a"]
    classroom.hint_policy = "authored"
    classroom.save()
    return classroom


def test_the_teachers_live_socket_hears_a_learner_practise_and_need_help(
    people, course, authored_class, transactional_db
):
    from tutor.asgi import application

    alice, carol = people["alice"], people["carol"]
    live_path = f"/ws/teach/class/{authored_class.pk}/live/"
    teacher_cookie, alice_cookie = cookie_for(people["teacher_a"]), cookie_for(alice)

    async def scenario():
        teacher = WebsocketCommunicator(application, live_path, headers=[ORIGIN, teacher_cookie])
        assert (await teacher.connect(timeout=10))[0]
        learner = WebsocketCommunicator(application, "/ws/hints/", headers=[ORIGIN, alice_cookie])
        assert (await learner.connect(timeout=10))[0]
        seen = {}

        session = await sync_to_async(practice.start_session)(alice, course.pk)
        started = await next_update(teacher, alice.pk)
        seen["started"] = started
        step = await sync_to_async(practice.current_step)(session)

        # Carol practises in another teacher's class: teacher A hears nothing of it.
        await sync_to_async(practice.start_session)(carol, course.pk)
        assert await teacher.receive_nothing(timeout=0.5)

        for n in range(3):
            await sync_to_async(practice.submit_attempt)(alice, session.pk, step.pk, "12345", f"wrong-{n}")
        seen["errors"] = await next_update(teacher, alice.pk, lambda row: "errors" in kinds(row))

        for level in (1, 2, 3):  # Help over the learner's own socket, up the ladder to the worked answer
            await learner.send_json_to(
                {
                    "action": "help",
                    "session_id": session.pk,
                    "step_id": step.pk,
                    "message": "",
                    "client_key": f"help-{level}",
                }
            )
            while (await learner.receive_json_from(timeout=20))["type"] not in ("hint.done", "error"):
                pass
        seen["bottom_out"] = await next_update(teacher, alice.pk, lambda row: "bottom-out" in kinds(row))

        await sync_to_async(practice.end_session)(alice, session.pk)  # she stops: her line leaves the view
        seen["ended"] = await teacher.receive_json_from(timeout=10)

        await learner.disconnect()
        await teacher.disconnect()
        await sync_to_async(connections.close_all)()
        return seen

    seen = asyncio.run(scenario())
    row = seen["started"]["row"]
    assert row["name"] == "alice" and row["item"] and row["step"] == 1 and row["needs_help"] == []
    assert seen["started"]["event"] == "session"
    assert seen["errors"]["event"] == "attempt"
    assert "3 wrong answers" in next(r["text"] for r in seen["errors"]["row"]["needs_help"] if r["kind"] == "errors")
    assert seen["bottom_out"]["event"] == "hint"
    assert seen["bottom_out"]["row"]["hint_level"] == 3
    assert seen["ended"] == {"type": "learner", "learner_id": alice.pk, "event": "session-end", "row": None}


def test_another_teachers_socket_is_refused_and_hears_nothing(people, course, authored_class, transactional_db):
    from tutor.asgi import application

    other_cookie = cookie_for(people["teacher_b"])

    async def scenario():
        other = WebsocketCommunicator(
            application, f"/ws/teach/class/{authored_class.pk}/live/", headers=[ORIGIN, other_cookie]
        )
        connected, code = await other.connect(timeout=10)
        own_class = WebsocketCommunicator(
            application,
            f"/ws/teach/class/{people['class_b'].pk}/live/",
            headers=[ORIGIN, other_cookie],
        )
        assert (await own_class.connect(timeout=10))[0]
        await sync_to_async(practice.start_session)(people["alice"], course.pk)  # class A
        quiet = await own_class.receive_nothing(timeout=0.5)
        await own_class.disconnect()
        await sync_to_async(connections.close_all)()
        return connected, code, quiet

    connected, code, quiet = asyncio.run(scenario())
    assert connected is False and code == 4403
    assert quiet
