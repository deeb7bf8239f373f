"""Celery tasks: thin wrappers that load rows and call plain functions."""

from celery import shared_task

from knowledge import fitting
from knowledge.models import Course, TracingModel


@shared_task
def replay_learner_mastery(learner_id: int, course_id: int) -> dict[str, float]:
    """Recompute one learner's mastery of a course from their log (e.g. to repair stored state)."""
    return fitting.replay_mastery(Course.objects.get(pk=course_id), [learner_id]).get(learner_id, {})


@shared_task(bind=True)
def refit_tracing_model(self, tracing_model_id: int, activate: bool = True) -> dict:
    """Fit a queued TracingModel version (routed to the `gpu` queue; the device is chosen where it runs)."""
    record = TracingModel.objects.select_related("course").get(pk=tracing_model_id)

    def progress(stage: str, fraction: float) -> None:
        if not self.request.called_directly and not self.request.is_eager:
            self.update_state(state="PROGRESS", meta={"stage": stage, "progress": fraction})

    fitting.run_fit(record, activate=activate, progress=progress)
    return {"version": record.version, "device": record.device, "metrics": record.metrics,
            "seconds": record.duration_seconds}
