"""Celery tasks: thin wrappers that load rows and call plain functions."""

from celery import shared_task

from knowledge.models import Course
from tutor.models import User
from tutor.practice import replay_mastery


@shared_task
def replay_learner_mastery(learner_id: int, course_id: int) -> dict[str, float]:
    """Recompute one learner's mastery of a course from their log (e.g. after new parameters)."""
    return replay_mastery(User.objects.get(pk=learner_id), Course.objects.get(pk=course_id))
