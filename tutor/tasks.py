"""Celery tasks of the tutor app: thin wrappers around plain functions."""

from celery import shared_task

from tutor.exports import research
from tutor.models import ExportJob


@shared_task
def run_export_job(job_id: int) -> dict:
    """Write a queued research export (default queue); progress is saved on the job as it goes."""
    job = research.run_export(ExportJob.objects.select_related("researcher").get(pk=job_id))
    return {"job": job.pk, "status": job.status, "rows": job.rows}
