"""Websockets. `MasteryConsumer` pushes a learner's own mastery changes to every tab they have open;
`LiveClassConsumer` shows a teacher who in their class is practising and who needs help; `HintConsumer` runs
the Socratic tutor's turns for the practice page and streams each reply sentence by sentence."""

import asyncio
import json
import logging
import threading

from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)
_warm_up_started = threading.Event()


def learner_group(learner_id: int) -> str:
    return f"learner-{learner_id}"


class MasteryConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = learner_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def mastery_changed(self, event):
        await self.send_json({"type": "mastery", "skills": event["skills"]})


def publish_mastery_change(learner_id: int, change: dict[str, list[float]]):
    """Tell the learner's open pages; called after the attempt's transaction commits."""
    if change:
        async_to_sync(get_channel_layer().group_send)(
            learner_group(learner_id), {"type": "mastery.changed", "skills": change}
        )


def class_live_group(classroom_id: int) -> str:
    return f"class-{classroom_id}-live"


class LiveClassConsumer(AsyncJsonWebsocketConsumer):
    """`ws/teach/class/<id>/live/`: the class's live view for its teacher (or an admin); anyone else is refused
    (4401 signed out, 4403 not theirs). After each action of a learner of the class (a session started, an answer,
    a hint) it sends `{"type": "learner", "learner_id", "event", "row"}`, `row` being the learner's line of
    tutor.dashboards.live_class (null once they stop practising)."""

    async def connect(self):
        from tutor import dashboards

        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        classroom_id = self.scope["url_route"]["kwargs"]["classroom_id"]
        self.classroom = await database_sync_to_async(dashboards.watched_classroom)(user, classroom_id)
        if self.classroom is None:
            await self.close(code=4403)
            return
        self.group = class_live_group(self.classroom.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def class_activity(self, event):
        from django.utils import timezone

        from tutor import dashboards

        learner_id = event["learner_id"]
        rows = await database_sync_to_async(dashboards.live_class)(self.classroom, timezone.now(), [learner_id])
        row = rows[0] if rows else None
        await self.send_json({"type": "learner", "learner_id": learner_id, "event": event["event"], "row": row})


def publish_class_activity(classroom_id: int | None, learner_id: int, event: str):
    """Tell the class's live view that a learner did something ("session", "session-end", "attempt" or "hint");
    called after the transaction commits. Only ids travel: the teacher's socket reads the rest, scoped to its class."""
    if classroom_id is not None:
        async_to_sync(get_channel_layer().group_send)(
            class_live_group(classroom_id), {"type": "class.activity", "learner_id": learner_id, "event": event}
        )


class HintConsumer(AsyncJsonWebsocketConsumer):
    """`ws/hints/`: a learner's requests for the tutor, one at a time. Each message is
    `{"action": "help" | "reply", "session_id", "step_id", "message", "client_key"}`; the answer is
    `hint.start {level, total, mastery_change}`, one `hint.chunk {text}` per sentence the guard passed, then
    `hint.done {source, note, level, total, turn_id}`; a refusal is `error {status, message}` and stores nothing.
    The logic is in tutor.practice (the turn) and tutor.hints.dialogue (the reply); this only carries messages."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        if user.role != user.Role.LEARNER:
            await self.close(code=4403)
            return
        await self.accept()
        if settings.TUTOR_LLM_WARM_UP and not _warm_up_started.is_set():
            _warm_up_started.set()
            threading.Thread(target=_warm_up, name="hint-model-warm-up", daemon=True).start()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self._send({"type": "error", "status": 400, "message": "Send each request as JSON text."})
            return
        await super().receive(text_data=text_data, **kwargs)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return json.loads(text_data)
        except ValueError:
            return None  # refused with a message by _parse

    async def receive_json(self, content, **kwargs):
        # tutor.practice imports this module (publish_mastery_change): import it here, not at the top.
        from tutor import practice

        try:
            action, session_id, step_id, message, client_key = _parse(content)
            started = await database_sync_to_async(practice.start_tutor_turn)(
                self.scope["user"], session_id, step_id, action, message, client_key
            )
        except practice.PracticeError as exc:
            await self._send({"type": "error", "status": exc.status, "message": str(exc)})
            return
        # Shielded: a tab closed mid-reply (the server then cancels this handler) must not leave the turn unstored.
        await asyncio.shield(asyncio.ensure_future(self._answer(started)))

    async def _answer(self, started):
        from tutor import practice

        turn = started.turn
        await self._send(
            {
                "type": "hint.start",
                "level": turn.level,
                "total": started.total,
                "mastery_change": started.mastery_change,
            }
        )
        if started.replayed:
            await self._send({"type": "hint.chunk", "text": turn.text})
        else:
            async for piece in _reply_pieces(started):
                if isinstance(piece, str):
                    await self._send({"type": "hint.chunk", "text": piece})
                else:
                    turn = await database_sync_to_async(practice.finish_tutor_turn)(turn, piece)
        done = {"type": "hint.done", "source": turn.source, "note": practice.tutor_note(turn), "text": turn.text}
        await self._send({**done, "level": turn.level, "total": started.total, "turn_id": turn.pk})

    async def _send(self, message: dict):
        """Send if the page is still there: a closed tab must not stop the turn from being stored."""
        try:
            await self.send_json(message)
        except Exception as exc:  # whatever the server raises for a closed socket
            logger.info("Hint socket closed before %s: %s", message.get("type"), exc)


def _warm_up():
    """Load the process's local model in the background (a model server needs no loading)."""
    from tutor import practice
    from tutor.hints.backends import BackendError

    load = getattr(practice.hint_backend(), "load", None)
    if load is not None:
        try:
            load(timeout=60)
        except BackendError as exc:
            logger.warning("The tutor model did not load: %s", exc)


def _parse(content) -> tuple[str, int, int, str, str]:
    from tutor.practice import PracticeError

    if not isinstance(content, dict):
        raise PracticeError("Send a JSON object: {action, session_id, step_id, message, client_key}.")
    action = content.get("action")
    if action not in ("help", "reply"):
        raise PracticeError('Set "action" to "help" (the next hint) or "reply" (a message to the tutor).')
    ids = []
    for name in ("session_id", "step_id"):
        value = content.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PracticeError(f'Give "{name}" as a positive whole number.')
        ids.append(value)
    message = content.get("message") or ""
    client_key = content.get("client_key")
    if not isinstance(message, str):
        raise PracticeError('Give "message" as text.')
    if not isinstance(client_key, str):
        raise PracticeError('Give "client_key" as text of 1 to 64 characters.')
    return action, ids[0], ids[1], message, client_key


async def _reply_pieces(started):
    """The tutor's reply (tutor.hints.dialogue.reply_stream): its sentences, then the Reply. It runs in a worker
    thread of its own (the model blocks, and must not hold up other sockets or the database thread)."""
    from tutor.hints import dialogue

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def produce():
        shown = []
        try:
            for piece in dialogue.reply_stream(started.request, started.backend, seed=started.turn.pk):
                if isinstance(piece, str):
                    shown.append(piece)
                loop.call_soon_threadsafe(queue.put_nowait, piece)
        except Exception:  # a bug in the dialogue must not leave the learner without a hint
            logger.exception("The tutor's reply failed; the lesson's hint answers")
            text, source = dialogue.fallback_text(started.request)
            loop.call_soon_threadsafe(queue.put_nowait, text)
            reply = dialogue.Reply(" ".join([*shown, text]), source, fallback_reason="the tutor failed")
            loop.call_soon_threadsafe(queue.put_nowait, reply)

    worker = asyncio.ensure_future(sync_to_async(produce, thread_sensitive=False)())
    try:
        while True:
            piece = await queue.get()
            yield piece
            if isinstance(piece, dialogue.Reply):
                break
    finally:
        await worker
