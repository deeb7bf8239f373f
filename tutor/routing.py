from django.urls import path

from tutor.consumers import MasteryConsumer

websocket_urlpatterns = [path("ws/mastery/", MasteryConsumer.as_asgi())]
