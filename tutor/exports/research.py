"""Sharing data with researchers, and export jobs: services (`share_*`, `start_export`, `run_export`) and the
selectors that say what an export may read (`export_scope`).

Who may export what: an admin everything; a teacher their own classes; a researcher the classes a teacher shared
with them and the courses an admin shared. Learners appear under pseudonyms; only an admin's share may include
identities (usernames and learners' own messages to the tutor), and a job includes them only when every share it
reads says so. The scope is worked out again when the job runs, so a share withdrawn meanwhile is respected.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from knowledge.models import Course
from tutor import access
from tutor.exports import FORMATS, ExportError, LogFilter, write_export
from tutor.models import Classroom, ExportJob, ResearchShare, User

DOWNLOAD_LIFETIME = timedelta(hours=24)
PROGRESS_SAVE_EVERY = 0.02  # save progress each time another 2 % of the log is written


class ShareError(ValueError):
    """A share that cannot be made; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def export_dir() -> Path:
    folder = Path(getattr(settings, "TUTOR_EXPORT_DIR", "") or Path(settings.VAR_DIR) / "exports")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------- sharing (services)


def _researcher(username_or_user) -> User:
    if isinstance(username_or_user, User):
        researcher = username_or_user
    else:
        researcher = User.objects.filter(username=str(username_or_user).strip()).first()
    if researcher is None or researcher.role != User.Role.RESEARCHER:
        raise ShareError("There is no researcher account with that username.")
    return researcher


def share_classroom(actor: User, classroom_id: int, researcher, include_identities: bool = False) -> ResearchShare:
    """A teacher shares one of their classes (an admin any class) with a researcher."""
    classroom = access.classrooms_for(actor).filter(pk=classroom_id).first()
    if classroom is None or not (actor.is_teacher or actor.is_admin_role):
        raise ShareError("Not found among your classes.", 404)
    if include_identities and not actor.is_admin_role:
        raise ShareError("Only an administrator can include learners' identities in a share.", 403)
    share, _ = ResearchShare.objects.update_or_create(
        researcher=_researcher(researcher),
        classroom=classroom,
        defaults={"shared_by": actor, "include_identities": include_identities},
    )
    return share


def share_course(actor: User, course_id: int, researcher, include_identities: bool = False) -> ResearchShare:
    """An admin shares a whole course (every class and every session in it) with a researcher."""
    if not actor.is_admin_role:
        raise ShareError("Only an administrator can share a whole course.", 403)
    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        raise ShareError("No such course.", 404)
    share, _ = ResearchShare.objects.update_or_create(
        researcher=_researcher(researcher),
        course=course,
        defaults={"shared_by": actor, "include_identities": include_identities},
    )
    return share


def unshare(actor: User, share_id: int) -> None:
    share = access.research_shares_for(actor).filter(pk=share_id).first()
    if share is None or not (actor.is_admin_role or (share.classroom and share.classroom.teacher_id == actor.pk)):
        raise ShareError("Not found among the shares you made.", 404)
    share.delete()


# ---------------------------------------------------------------- what an export may read (selectors)


@dataclass
class Scope:
    everything: bool
    courses: list[int]
    classrooms: list[int]
    identities: bool  # every share in the scope includes identities

    def log_filter(self, **narrowing) -> LogFilter:
        if self.everything:
            return LogFilter(**narrowing)
        return LogFilter(scope_courses=self.courses, scope_classrooms=self.classrooms, **narrowing)


def export_scope(user: User, identities_only: bool = False) -> Scope:
    if user.is_admin_role:
        return Scope(True, [], [], True)
    if user.is_teacher:
        return Scope(False, [], list(access.classrooms_for(user).values_list("id", flat=True)), False)
    shares = access.research_shares_for(user)
    if identities_only:
        shares = shares.filter(include_identities=True)
    shares = list(shares.values_list("course_id", "classroom_id", "include_identities"))
    return Scope(
        False,
        [course for course, _, _ in shares if course],
        [classroom for _, classroom, _ in shares if classroom],
        bool(shares) and all(identities for _, _, identities in shares),
    )


def exportable_courses(user: User):
    scope = export_scope(user)
    if scope.everything:
        return Course.objects.order_by("title")
    via_classes = Classroom.objects.filter(pk__in=scope.classrooms).values("course_id")
    return Course.objects.filter(Q(pk__in=scope.courses) | Q(pk__in=via_classes)).order_by("title")


def exportable_classrooms(user: User):
    scope = export_scope(user)
    if scope.everything:
        return Classroom.objects.select_related("course").order_by("course__title", "name")
    return (
        Classroom.objects.filter(Q(pk__in=scope.classrooms) | Q(course_id__in=scope.courses))
        .select_related("course")
        .order_by("course__title", "name")
    )


# ---------------------------------------------------------------- export jobs (services)


def start_export(
    user: User,
    format_name: str,
    *,
    courses=(),
    classrooms=(),
    since: datetime | None = None,
    until: datetime | None = None,
    study: str = "",
    include_identities: bool = False,
) -> ExportJob:
    """Check the request against what the user may read and queue the job (it runs after the commit)."""
    from tutor.tasks import run_export_job

    if format_name not in FORMATS:
        raise ExportError(f"Unknown format {format_name!r}; choose from {', '.join(FORMATS)}.")
    if since and until and since >= until:
        raise ExportError("The start of the date range must come before its end.")
    scope = export_scope(user, identities_only=include_identities)
    if include_identities and not scope.identities:
        raise ShareError("Identities can only be included from shares an administrator made with them.", 403)
    allowed_courses = {c.pk for c in exportable_courses(user)}
    allowed_classes = set(exportable_classrooms(user).values_list("id", flat=True))
    if not set(courses) <= allowed_courses or not set(classrooms) <= allowed_classes:
        raise ShareError("Not found among the courses and classes shared with you.", 404)
    if not scope.everything and not scope.courses and not scope.classrooms:
        raise ShareError("Nothing has been shared with you yet.", 404)
    job = ExportJob.objects.create(
        researcher=user,
        format=format_name,
        filters={
            "courses": sorted(courses),
            "classrooms": sorted(classrooms),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "study": (study or "default").strip()[:100],
            "include_identities": bool(include_identities),
        },
    )
    transaction.on_commit(lambda: run_export_job.delay(job.pk))
    return job


def run_export(job: ExportJob) -> ExportJob:
    """Write the job's file, saving progress as it goes; a failure is recorded on the job, not raised."""
    filters = job.filters
    delete_expired()  # housekeeping: expired files go when the next export runs
    job.status = ExportJob.Status.RUNNING
    job.save(update_fields=["status"])
    scope = export_scope(job.researcher, identities_only=filters.get("include_identities", False))
    log_filter = scope.log_filter(
        courses=filters.get("courses") or None,
        classrooms=filters.get("classrooms") or None,
        since=_moment(filters.get("since")),
        until=_moment(filters.get("until")),
    )
    found = FORMATS[job.format]
    path = export_dir() / f"export-{job.pk}-{secrets.token_hex(8)}.{found.extension}"
    saved = [0.0]

    def progress(done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        if fraction - saved[0] >= PROGRESS_SAVE_EVERY:
            saved[0] = fraction
            ExportJob.objects.filter(pk=job.pk).update(progress=min(fraction, 0.99), rows=done)

    try:
        rows = write_export(
            job.format,
            log_filter,
            path,
            study=f"user-{job.researcher_id}:{filters.get('study', 'default')}",
            include_identities=filters.get("include_identities", False) and scope.identities,
            progress=progress,
        )
    except Exception as error:  # recorded for the researcher; the partial file is removed
        path.unlink(missing_ok=True)
        job.status, job.error, job.finished_at = ExportJob.Status.FAILED, str(error)[:2000], timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        return job
    now = timezone.now()
    job.status, job.progress, job.rows, job.file = ExportJob.Status.DONE, 1.0, rows, path.name
    job.finished_at, job.expires_at = now, now + DOWNLOAD_LIFETIME
    job.save(update_fields=["status", "progress", "rows", "file", "finished_at", "expires_at"])
    return job


def downloadable_file(user: User, job_id: int, now: datetime | None = None) -> tuple[ExportJob, Path]:
    """The job's file for its owner, while it lasts. Raises ShareError 404 (not theirs, not ready) or 410."""
    job = access.export_jobs_for(user).filter(pk=job_id).first()
    if job is None or job.status != ExportJob.Status.DONE or not job.file:
        raise ShareError("No such export among yours, or it is not finished.", 404)
    if job.expires_at and (now or timezone.now()) >= job.expires_at:
        (export_dir() / job.file).unlink(missing_ok=True)
        raise ShareError("This download has expired: start the export again.", 410)
    path = export_dir() / job.file
    if not path.exists():
        raise ShareError("The export's file is gone: start the export again.", 410)
    return job, path


def delete_expired(now: datetime | None = None) -> int:
    """Remove expired files (the download view also refuses them); returns how many went."""
    removed = 0
    for job in ExportJob.objects.filter(expires_at__lte=now or timezone.now()).exclude(file=""):
        (export_dir() / job.file).unlink(missing_ok=True)
        job.file = ""
        job.save(update_fields=["file"])
        removed += 1
    return removed


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
