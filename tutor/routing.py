from django.urls import path

from tutor.consumers import HintConsumer, LiveClassConsumer, MasteryConsumer

websocket_urlpatterns = [
    path("ws/mastery/", MasteryConsumer.as_asgi()),
    path("ws/hints/", HintConsumer.as_asgi()),
    path("ws/teach/class/<int:classroom_id>/live/", LiveClassConsumer.as_asgi()),
]
