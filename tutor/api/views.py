"""Thin DRF views over tutor.practice; every queryset is scoped through tutor.access."""

from dataclasses import asdict

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from tutor import access, practice
from tutor.api import serializers as s


class ScopedQuerysetMixin:
    """List and detail views see only what `scope(user)` returns, so a foreign id is a 404."""

    scope = None

    def get_queryset(self):
        return type(self).scope(self.request.user).order_by("-pk")


class CourseList(ScopedQuerysetMixin, generics.ListAPIView):
    scope = access.courses_for
    serializer_class = s.CourseOut


class SessionList(ScopedQuerysetMixin, generics.ListAPIView):
    scope = access.sessions_for
    serializer_class = s.SessionOut

    @extend_schema(request=s.StartSessionIn, responses={201: dict})
    def post(self, request):
        """Start (or resume) a practice session on a course; the response holds the first problem."""
        data = _valid(s.StartSessionIn, request)
        session = practice.start_session(request.user, data["course"])
        return Response(practice.problem_state(session), status=status.HTTP_201_CREATED)


class SessionDetail(ScopedQuerysetMixin, generics.RetrieveAPIView):
    scope = access.sessions_for
    serializer_class = s.SessionOut


class NextItem(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        """The problem the learner is on: the item the policy chose, the current step, hints shown."""
        session = access.sessions_for(request.user).filter(pk=pk).first()
        if session is None:
            raise NotFound("No such practice session.")
        return Response(practice.problem_state(session))


class EndSession(APIView):
    @extend_schema(request=None, responses={200: s.SessionOut})
    def post(self, request, pk: int):
        return Response(s.SessionOut(practice.end_session(request.user, pk)).data)


class AttemptList(ScopedQuerysetMixin, generics.ListAPIView):
    scope = access.attempts_for
    serializer_class = s.AttemptOut

    def get_queryset(self):
        queryset = super().get_queryset()
        if session := self.request.query_params.get("session"):
            queryset = queryset.filter(session_id=int(session) if session.isdigit() else -1)
        return queryset

    @extend_schema(request=s.AttemptIn, responses={201: dict, 200: dict})
    def post(self, request):
        """Answer the current step. A repeated idempotency key returns the original result (200)."""
        data = _valid(s.AttemptIn, request)
        result = practice.submit_attempt(
            request.user, data["session"], data["step"], data["answer"], data["idempotency_key"]
        )
        session = access.sessions_for(request.user).get(pk=data["session"])
        body = {**asdict(result), "problem": practice.problem_state(session)}
        return Response(body, status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class AttemptDetail(ScopedQuerysetMixin, generics.RetrieveAPIView):
    scope = access.attempts_for
    serializer_class = s.AttemptOut


class HintList(ScopedQuerysetMixin, generics.ListAPIView):
    scope = access.hint_turns_for
    serializer_class = s.HintTurnOut

    @extend_schema(request=s.HintIn, responses={201: dict, 200: dict})
    def post(self, request):
        """Reveal the next rung of the current step's hint ladder."""
        data = _valid(s.HintIn, request)
        result = practice.request_hint(request.user, data["session"], data["step"], data["idempotency_key"])
        return Response(asdict(result), status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class ScaffoldCheck(APIView):
    @extend_schema(request=s.ScaffoldIn, responses={200: dict})
    def post(self, request):
        """Check an answer to a scaffold sub-question shown in the hint ladder (no mastery change)."""
        data = _valid(s.ScaffoldIn, request)
        grade = practice.check_scaffold(request.user, data["session"], data["step"], data["level"], data["answer"])
        return Response({"correct": grade.correct, "feedback": grade.feedback})


class Mastery(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("course", int, required=True),
            OpenApiParameter("learner", int, description="A learner you may see; default: yourself."),
        ],
        responses={200: dict},
    )
    def get(self, request):
        """P(known) for every skill of a course, in prerequisite order."""
        course_id, learner_id = request.query_params.get("course", ""), request.query_params.get("learner")
        course = access.courses_for(request.user).filter(pk=_int(course_id, "course")).first()
        if course is None:
            raise NotFound("No such course among yours.")
        learner = request.user
        if learner_id is not None:
            learner = access.learners_for(request.user).filter(pk=_int(learner_id, "learner")).first()
            if learner is None:
                raise NotFound("No such learner among yours.")
        skills = practice.course_mastery(learner, course)
        return Response({"learner": learner.pk, "course": course.pk, "skills": skills})


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _int(value: str, name: str) -> int:
    if not value.isdigit():
        raise practice.PracticeError(f"'{name}' must be a numeric id.")
    return int(value)
