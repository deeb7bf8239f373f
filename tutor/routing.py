from django.urls import path

from tutor.consumers import HintConsumer, MasteryConsumer

websocket_urlpatterns = [
    path("ws/mastery/", MasteryConsumer.as_asgi()),
    path("ws/hints/", HintConsumer.as_asgi()),
]
