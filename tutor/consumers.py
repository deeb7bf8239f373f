"""Websockets. `MasteryConsumer` pushes a learner's own mastery changes to every tab they have open."""

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer


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
