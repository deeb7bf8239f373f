"""API errors as JSON with a message that says what to fix."""

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tutor.practice import PracticeError


def exception_handler(exc, context):
    if isinstance(exc, PracticeError):
        return Response({"detail": str(exc)}, status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "The request body is too large; send at most 64 KB."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return drf_exception_handler(exc, context)
