"""Celery tasks: thin wrappers that load rows and call plain functions."""

import logging

from celery import shared_task

from knowledge import fitting, services
from knowledge.models import ContentJob, Course, TracingModel

logger = logging.getLogger(__name__)


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


def _reporter(task):
    """Progress into the task's state (read by the authoring page's poll); a no-op when run in-process, where the
    page only asks once the job has finished."""

    def progress(stage: str, fraction: float) -> None:
        if not task.request.called_directly and not task.request.is_eager:
            task.update_state(state="PROGRESS", meta={"stage": stage, "progress": fraction})

    return progress


def _run_job(task, job_id: int, run) -> dict:
    job = ContentJob.objects.select_related("course").get(pk=job_id)
    try:
        run(job, progress=_reporter(task))
    except Exception as exc:  # the page must not wait on a job that died: say so, keep the trace in the log
        logger.exception("content job %s failed", job_id)
        services.fail_job(job, f"The {job.kind} stopped on an unexpected error; nothing was changed.", [repr(exc)])
    return {"status": job.status, "summary": job.report.get("summary", "")}


@shared_task(bind=True)
def import_course_job(self, job_id: int) -> dict:
    """Check and load an uploaded course package (knowledge.services.run_import)."""
    return _run_job(self, job_id, services.run_import)


@shared_task(bind=True)
def export_course_job(self, job_id: int) -> dict:
    """Write a course as a package kept on the job (knowledge.services.run_export)."""
    return _run_job(self, job_id, services.run_export)
