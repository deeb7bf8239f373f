"""The loop against the configured services. Under `make test` this file runs twice: on the embedded
default (SQLite, tasks in-process, in-memory channel layer) and on PostgreSQL + Redis with a real
Celery worker process, which this fixture starts against the test database."""

import asyncio
import os
import subprocess
import sys
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from knowledge import fitting
from knowledge.models import MasteryState, Skill
from knowledge.tasks import refit_tracing_model, replay_learner_mastery
from tutor import practice
from tutor.celery import app as celery_app

USES_SERVICES = bool(settings.REDIS_URL)


@pytest.fixture
def celery_worker(transactional_db):
    """A real `celery worker` process when REDIS_URL is set; tasks run in-process otherwise."""
    if not USES_SERVICES:
        yield None
        return
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    celery_app.control.purge()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tutor", "worker", "-Q", "default,gpu", "--pool", "solo",
         "--hostname", "test-worker@%h", "--loglevel", "warning"],
        env=env, cwd=settings.BASE_DIR,
    )
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(timeout=1.0):
            assert worker.poll() is None, "the Celery worker exited during start-up"
            assert time.monotonic() < deadline, "the Celery worker did not answer a ping within 60 s"
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def practise(learner, course, answers):
    session = practice.start_session(learner, course.pk)
    for n, correct in enumerate(answers):
        step = practice.current_step(session)
        answer = str(step.answer["value"]) if correct else "-999"
        practice.submit_attempt(learner, session.pk, step.pk, answer, f"{learner.pk}-{n}")
        session.refresh_from_db()
    return session


def test_the_loop_runs_and_a_worker_replays_mastery_from_the_log(people, course, celery_worker):
    alice = people["alice"]
    practise(alice, course, [True, False, True, True, True, False, True])
    online = {m.skill.slug: m.p_known for m in MasteryState.objects.filter(learner=alice)}
    assert online["add"] > 0.3
    MasteryState.objects.filter(learner=alice).update(p_known=0.01)

    result = replay_learner_mastery.delay(alice.pk, course.pk)
    if USES_SERVICES:
        assert type(result).__name__ == "AsyncResult"  # went through Redis to the worker process
    assert result.get(timeout=60) == pytest.approx(online)
    assert {m.skill.slug: m.p_known for m in MasteryState.objects.filter(learner=alice)} == pytest.approx(online)


def test_a_worker_on_the_gpu_queue_refits_the_tracing_model_and_reports_progress(people, course, celery_worker):
    for learner, answers in ((people["alice"], [True, False, True, True, False, True, True, True]),
                             (people["bob"], [False, False, True, False, True, True, True, True]),
                             (people["carol"], [True, True, True, False, True, True, True, True])):
        practise(learner, course, answers)
    assert celery_app.amqp.router.route({}, refit_tracing_model.name)["queue"].name == "gpu"
    record = fitting.queue_fit(course, "bkt")

    result = refit_tracing_model.delay(record.pk)
    if USES_SERVICES:
        assert type(result).__name__ == "AsyncResult"
    report = result.get(timeout=120)
    record.refresh_from_db()
    assert record.status == "done" and record.active and record.progress == 1.0 and record.stage == "Done"
    assert report["version"] == record.version and report["device"] == record.device in ("cpu", "cuda:0", "cuda")
    fitted = Skill.objects.get(course=course, slug="add")
    assert fitted.p_init == pytest.approx(record.parameters["add"]["p_init"])
    online = {m.skill.slug: m.p_known for m in MasteryState.objects.filter(learner=people["alice"])}
    assert online == pytest.approx(fitting.replay_mastery(course, [people["alice"]])[people["alice"].pk])


def test_the_database_in_use_is_the_configured_one(db):
    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert connection.vendor == expected


def test_a_learners_open_page_hears_their_mastery_change_over_the_channel_layer(people, course, transactional_db):
    from tutor.asgi import application

    alice = people["alice"]
    client = Client()
    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    session = practice.start_session(alice, course.pk)
    step = practice.current_step(session)

    async def scenario():
        socket = WebsocketCommunicator(
            application, "/ws/mastery/", headers=[(b"cookie", cookie), (b"origin", b"http://127.0.0.1")]
        )
        connected, _ = await socket.connect(timeout=10)
        assert connected
        await sync_to_async(practice.submit_attempt)(alice, session.pk, step.pk, str(step.answer["value"]), "ws-1")
        message = await socket.receive_json_from(timeout=10)
        await socket.disconnect()
        await sync_to_async(connections.close_all)()  # the helper thread's connection, before teardown
        return message

    message = asyncio.run(scenario())
    assert message["type"] == "mastery" and message["skills"]["add"][1] > message["skills"]["add"][0]


def test_an_anonymous_websocket_is_refused(transactional_db):
    from tutor.asgi import application

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/mastery/", headers=[(b"origin", b"http://127.0.0.1")])
        connected, _ = await socket.connect(timeout=10)
        await sync_to_async(connections.close_all)()
        return connected

    assert asyncio.run(scenario()) is False
