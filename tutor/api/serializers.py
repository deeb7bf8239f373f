"""Request bodies of the practice API. Responses are the plain dicts of tutor.practice."""

from rest_framework import serializers

from knowledge.models import Course
from tutor.models import Attempt, HintTurn, PracticeSession

KEY_HELP = "A client-chosen key (e.g. a UUID), unique per request: a retry with the same key returns the first result."


class StartSessionIn(serializers.Serializer):
    course = serializers.IntegerField(min_value=1)


class AttemptIn(serializers.Serializer):
    session = serializers.IntegerField(min_value=1)
    step = serializers.IntegerField(min_value=1)
    answer = serializers.CharField(max_length=200, trim_whitespace=False)
    idempotency_key = serializers.CharField(max_length=64, help_text=KEY_HELP)


class HintIn(serializers.Serializer):
    session = serializers.IntegerField(min_value=1)
    step = serializers.IntegerField(min_value=1)
    idempotency_key = serializers.CharField(max_length=64, help_text=KEY_HELP)


class ScaffoldIn(serializers.Serializer):
    session = serializers.IntegerField(min_value=1)
    step = serializers.IntegerField(min_value=1)
    level = serializers.IntegerField(min_value=1)
    answer = serializers.CharField(max_length=200, trim_whitespace=False)


class CourseOut(serializers.ModelSerializer):
    class Meta:
        model = Course
        fields = ["id", "slug", "title", "description", "language"]


class SessionOut(serializers.ModelSerializer):
    class Meta:
        model = PracticeSession
        fields = ["id", "learner", "course", "classroom", "started_at", "ended_at", "items_completed"]


class AttemptOut(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "id", "learner", "session", "item", "step", "raw_answer", "normalized_answer", "correct",
            "feedback", "hint_level", "first_action", "mastery_change", "created_at",
        ]


class HintTurnOut(serializers.ModelSerializer):
    class Meta:
        model = HintTurn
        fields = ["id", "learner", "session", "step", "level", "kind", "source", "text", "created_at"]
