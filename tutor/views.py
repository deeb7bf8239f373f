"""Server-rendered pages. Thin: they read through tutor.access and act through tutor.practice."""

import csv
import uuid
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from celery.result import AsyncResult
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from knowledge import fitting
from knowledge import services as kcontent
from knowledge.models import Course
from knowledge.tasks import export_course_job, import_course_job, refit_tracing_model
from tutor import access, authoring, classrooms, dashboards, practice, reports
from tutor.classrooms import join_classroom
from tutor.exports import FORMATS as EXPORT_FORMATS
from tutor.exports import ExportError
from tutor.exports import research as research_exports
from tutor.models import HINT_POLICY_CHOICES, User

HINT_POLICY_DESCRIPTIONS = {
    "authored": "Help shows the lesson's own hints one by one, its worked answer last. No model is used.",
    "model": "The tutor model asks guiding questions and answers learners' messages, checked so that it never "
    "gives the answer; the lesson's hints stand in when it is slow or busy. The worked answer is never shown.",
    "model-bottom-out": "As above, and a learner who has climbed every hint gets the worked answer at the end.",
}


def role_required(*roles):
    def decorator(view):
        @login_required
        def wrapped(request, *args, **kwargs):
            if request.user.role not in roles and not request.user.is_admin_role:
                return HttpResponseForbidden("This page is not for your account.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


@login_required
def home(request):
    destination = {
        User.Role.LEARNER: "learn",
        User.Role.TEACHER: "teach",
        User.Role.RESEARCHER: "research",
    }.get(request.user.role, "admin:index")
    return redirect(destination)


@role_required(User.Role.LEARNER)
def learn(request):
    courses = [
        {"course": course, "skills": practice.course_mastery(request.user, course)}
        for course in access.courses_for(request.user)
    ]
    for entry in courses:
        skills = entry["skills"]
        entry["mastered"] = sum(s["mastered"] for s in skills)
        entry["mean"] = sum(s["p_known"] for s in skills) / len(skills) if skills else 0
    return render(request, "tutor/learn.html", {"courses": courses})


@role_required(User.Role.LEARNER)
def join(request):
    """POST: join by code. GET (the join link a teacher shares, `?code=…`; sign-in comes first when needed): a
    page that names the class and asks the learner to confirm, so that opening a link changes nothing."""
    if request.method == "GET":
        code = request.GET.get("code", "").strip().upper()[:12]
        classroom = classrooms.find_open_classroom(code) if code else None
        already = classroom is not None and access.classrooms_for(request.user).filter(pk=classroom.pk).exists()
        context = {"code": code, "classroom": classroom, "already": already}
        return render(request, "tutor/join.html", context, status=200 if classroom or not code else 404)
    if request.method != "POST":
        return HttpResponseBadRequest("Join with the form on this page.")
    classroom = join_classroom(request.user, request.POST.get("join_code", ""))
    if classroom is None:
        messages.error(request, "No open class has that join code. Check it with your teacher.")
    else:
        messages.success(request, f"You joined {classroom.name}.")
    return redirect("learn")


@role_required(User.Role.LEARNER)
def course_page(request, course_id: int):
    course = _get_or_404(access.courses_for(request.user), course_id)
    skills = practice.course_mastery(request.user, course)
    return render(request, "tutor/course.html", {"course": course, "skills": skills})


@require_POST
@role_required(User.Role.LEARNER)
def start_practice(request, course_id: int):
    try:
        session = practice.start_session(request.user, course_id)
    except practice.NotFound as exc:
        raise Http404(str(exc)) from exc
    return redirect("practice", session_id=session.pk)


@role_required(User.Role.LEARNER)
def practice_page(request, session_id: int):
    return render(request, "tutor/practice.html", _practice_context(request, session_id))


@role_required(User.Role.LEARNER)
def practice_fragment(request, session_id: int):
    """The problem panel alone, fetched by the page's script after each step."""
    return render(request, "tutor/_problem.html", _practice_context(request, session_id))


def _practice_context(request, session_id: int) -> dict:
    session = _get_or_404(access.sessions_for(request.user).filter(learner=request.user), session_id)
    state = practice.problem_state(session)
    focus = set()
    if state["item"]:
        step = practice.current_step(session)
        focus = {s.slug for s in practice.step_skills(step)}
    skills = practice.course_mastery(request.user, session.course)
    return {
        "session": session,
        "state": state,
        "focus_skills": [s for s in skills if s["slug"] in focus],
        "skills": skills,
    }


@role_required(User.Role.TEACHER)
def teach(request):
    """The teacher's classes (archived ones apart, to restore) and the form that opens a new one."""
    mine = access.classrooms_for(request.user).select_related("course", "teacher").order_by("name")
    context = {
        "classrooms": mine.filter(archived=False),
        "archived_classrooms": mine.filter(archived=True),
        "courses": access.courses_to_teach(request.user).order_by("title"),
        "can_author": access.can_author(request.user),
    }
    return render(request, "tutor/teach.html", context)


@role_required(User.Role.TEACHER)
def classroom_page(request, classroom_id: int):
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    return render(request, "tutor/classroom.html", {"classroom": classroom, **reports.class_overview(classroom)})


@role_required(User.Role.TEACHER)
def classroom_scheduling(request, classroom_id: int):
    """The class's scheduling policy and goals, its hint policy, and the items served lately. A refused change
    re-renders the page with a 4xx and the reason, and saves nothing."""
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    now = timezone.now()
    error, status = None, 200
    if request.method == "POST":
        try:
            done = _change_scheduling(classroom, request.POST, now.date())
        except classrooms.SettingsError as exc:
            error, status = str(exc), exc.status
        else:
            messages.success(request, done)
            return redirect("classroom-scheduling", classroom_id=classroom.pk)
    selections = access.selections_for(request.user)
    hint_policies = [
        {"name": name, "label": label, "description": HINT_POLICY_DESCRIPTIONS[name]}
        for name, label in HINT_POLICY_CHOICES
    ]
    context = {
        "classroom": classroom,
        "error": error,
        "hint_policies": hint_policies,
        **reports.class_scheduling(classroom, selections, now),
    }
    return render(request, "tutor/classroom_scheduling.html", context, status=status)


def _change_scheduling(classroom, data, today: date) -> str:
    """Read one change from the settings form and apply it; returns what was done, to confirm it."""
    action = data.get("action", "")
    if action == "policy":
        classrooms.set_policy(classroom, data.get("policy", ""))
        return f"From the next item on, {classroom.name} uses the {classroom.get_policy_display()} policy."
    if action == "hint-policy":
        classrooms.set_hint_policy(classroom, data.get("hint_policy", ""))
        return f"From the next hint on, {classroom.name} gets hints from: {classroom.get_hint_policy_display()}."
    if action == "add-goal":
        skill_id = _form_id(data.get("skill", ""), "Pick a skill from the list.")
        try:
            due = date.fromisoformat(data.get("due", "").strip())
        except ValueError:
            raise classrooms.SettingsError("Give the due date as YYYY-MM-DD, for example 2026-05-31.") from None
        goal = classrooms.set_goal(classroom, skill_id, due, today)
        return f"Goal set: {goal.skill.name} by {goal.due.isoformat()}."
    if action == "remove-goal":
        classrooms.remove_goal(classroom, _form_id(data.get("goal", ""), "Say which goal to remove."))
        return "Goal removed."
    raise classrooms.SettingsError("Unknown change; use the buttons on this page.")


def _form_id(value: str, message: str) -> int:
    if not value.strip().isdigit():
        raise classrooms.SettingsError(message)
    return int(value)


# --- classes and rosters (tutor.classrooms) --------------------------------------------------------


@require_POST
@role_required(User.Role.TEACHER)
def classroom_create(request):
    course_id = request.POST.get("course", "").strip()
    course = access.courses_to_teach(request.user).filter(pk=int(course_id)).first() if course_id.isdigit() else None
    try:
        classroom = classrooms.open_classroom(request.user, request.POST.get("name", ""), course)
    except classrooms.SettingsError as exc:
        messages.error(request, str(exc))
        return redirect("teach")
    messages.success(request, f"{classroom.name} is open: share the join code {classroom.join_code} or its link.")
    return redirect("classroom-roster", classroom_id=classroom.pk)


ROSTER_ACTIONS = ("move", "remove", "reset-password", "archive", "restore")


@role_required(User.Role.TEACHER)
def classroom_roster(request, classroom_id: int):
    """The class's learners, its join code and link, and the changes a teacher makes to them (move, remove, reset a
    password, archive), each recorded in the audit list below. A refused change re-renders with a 4xx."""
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course", "teacher"), classroom_id)
    error, status = None, 200
    if request.method == "POST":
        try:
            done = _change_roster(request, classroom)
        except classrooms.SettingsError as exc:
            error, status = str(exc), exc.status
        else:
            messages.success(request, done)
            return redirect("classroom-roster", classroom_id=classroom.pk)
    join_path = reverse("join") + "?" + urlencode({"code": classroom.join_code})
    context = {
        "classroom": classroom,
        "error": error,
        "learners": access.roster_for(request.user, classroom),
        "other_classrooms": access.classrooms_for(request.user).filter(archived=False).exclude(pk=classroom.pk),
        "audit_events": access.audit_events_for(request.user)
        .filter(classroom=classroom)
        .select_related("actor", "subject")[:30],
        "join_link": request.build_absolute_uri(join_path),
    }
    return render(request, "tutor/classroom_roster.html", context, status=status)


def _change_roster(request, classroom) -> str:
    """Apply one change from the roster page's forms; returns what was done, to confirm it."""
    data, actor = request.POST, request.user
    action = data.get("action", "")
    if action not in ROSTER_ACTIONS:
        raise classrooms.RosterError("Unknown change; use the buttons on this page.")
    if action == "archive":
        classrooms.archive_classroom(actor, classroom)
        return f"{classroom.name} is archived: its join code no longer works. Restore it here at any time."
    if action == "restore":
        classrooms.restore_classroom(actor, classroom)
        return f"{classroom.name} is open again; its join code {classroom.join_code} works."
    learner_id = _form_id(data.get("learner", ""), "Pick a learner.")
    learner = access.roster_for(actor, classroom).filter(pk=learner_id).first()
    if learner is None:
        raise classrooms.NotYours("That learner is not in this class; reload the page.")
    name = learner.get_full_name() or learner.username
    if action == "move":
        target_id = _form_id(data.get("target", ""), "Pick the class to move the learner to.")
        target = access.classrooms_for(actor).filter(pk=target_id).first()
        if target is None:
            raise classrooms.NotYours("That class is not one of yours; pick one from the list.")
        classrooms.move_learner(actor, learner, classroom, target)
        return f"{name} moved to {target.name}."
    if action == "remove":
        classrooms.remove_learner(actor, learner, classroom)
        return f"{name} was removed from {classroom.name}; their practice history is kept."
    password = classrooms.reset_learner_password(actor, learner, classroom, data.get("password", ""))
    return f"{name}'s password is now {password} — give it to them and ask them to change it after signing in."


# --- authoring: previews, course checks, package import and export (knowledge.services) ---------------


def _author_or_403(user) -> None:
    if not access.can_author(user):
        raise PermissionDenied("Only course authors (administrators and staff) can change course content.")


@role_required(User.Role.TEACHER)
def item_preview(request, item_id: int | None = None):
    """An item as a learner sees it: the saved item (GET), or the admin's change form as it stands (POST, sent by
    the live preview on the item's admin page). `step` / `preview_step`: which step, from 0."""
    if item_id is not None:
        item = _get_or_404(access.items_to_preview(request.user), item_id)
    elif not access.can_author(request.user):
        raise PermissionDenied("Only course authors can preview unsaved items.")
    if request.method == "POST":
        fields, steps, problems = authoring.posted_item(request.POST)
    else:
        fields, steps, problems = {"title": item.title, "body": item.body}, authoring.saved_item_steps(item), []
    position = _form_int(request.POST.get("preview_step") or request.GET.get("step"), 0)
    state = authoring.preview_state(fields, steps, position)
    context = {"state": state, "problems": problems, "steps": range(len(steps)), "focus_skills": []}
    if item_id is not None:
        context["item_id"] = item_id
    return render(request, "tutor/item_preview.html", context)


@role_required(User.Role.TEACHER)
def course_check(request, course_id: int):
    """Check a course as stored: cycles, ungradable steps, unreachable skills, steps without hints."""
    course = _get_or_404(access.courses_to_check(request.user), course_id)
    context = {"course": course, "can_author": access.can_author(request.user), **kcontent.course_problems(course)}
    return render(request, "tutor/course_check.html", context)


@role_required(User.Role.TEACHER)
def content_page(request):
    """Import a course package (checked, then loaded as a Celery task with a progress bar) or export a course."""
    _author_or_403(request.user)
    if request.method == "POST":
        try:
            job = _start_content_job(request)
        except kcontent.ContentError as exc:
            context = _content_context(request.user, error=str(exc))
            return render(request, "tutor/content.html", context, status=400)
        except Course.DoesNotExist:
            return render(request, "tutor/content.html", _content_context(request.user, error="No such course."),
                          status=404)
        return redirect("content-job", job_id=job.pk)
    return render(request, "tutor/content.html", _content_context(request.user))


def _content_context(user, error: str | None = None) -> dict:
    return {
        "courses": access.courses_to_check(user).order_by("title"),
        "jobs": access.content_jobs_for(user).select_related("course")[:15],
        "error": error,
        "max_mb": kcontent.MAX_UPLOAD_BYTES // 1_000_000,
    }


def _start_content_job(request):
    if request.POST.get("action") == "export":
        course_id = request.POST.get("course", "")
        course = access.courses_to_check(request.user).get(pk=int(course_id) if course_id.isdigit() else 0)
        job, task = kcontent.start_export(request.user, course), export_course_job
    else:
        upload = request.FILES.get("package")
        if upload is None:
            raise kcontent.ContentError("Choose a course package file to upload.")
        if upload.size > kcontent.MAX_UPLOAD_BYTES:
            size = f"{upload.size / 1e6:.0f} MB"
            raise kcontent.ContentError(f"The file is {size}; packages up to 50 MB can be uploaded here.")
        job, task = kcontent.start_import(request.user, upload.name, upload.read()), import_course_job
    job.task_id = str(uuid.uuid4())
    job.save(update_fields=["task_id"])
    transaction.on_commit(lambda: task.apply_async(args=[job.pk], task_id=job.task_id))
    return job


@role_required(User.Role.TEACHER)
def content_job(request, job_id: int):
    _author_or_403(request.user)
    job = _get_or_404(access.content_jobs_for(request.user).select_related("course"), job_id)
    return render(request, "tutor/content_job.html", {"job": job, "status": _job_status(job)})


@role_required(User.Role.TEACHER)
def content_job_status(request, job_id: int):
    """The job's progress for the page's poll: stage, fraction, and the report once it ends."""
    _author_or_403(request.user)
    job = _get_or_404(access.content_jobs_for(request.user).select_related("course"), job_id)
    return JsonResponse(_job_status(job))


def _job_status(job) -> dict:
    stage, progress = job.stage, job.progress
    if job.status == job.Status.RUNNING and job.task_id:
        # Loading runs in one transaction, so progress inside it is read from the task's state, not the row.
        info = AsyncResult(job.task_id).info
        if isinstance(info, dict) and "progress" in info:
            stage, progress = info.get("stage", stage), max(progress, float(info["progress"]))
    status = {"status": job.status, "stage": stage or job.get_status_display(), "progress": round(progress, 3),
              "report": job.report, "finished": job.status in (job.Status.DONE, job.Status.FAILED)}
    if job.status == job.Status.DONE and job.kind == job.Kind.EXPORT:
        status["download"] = reverse("content-job-download", args=[job.pk])
    if job.status == job.Status.DONE and job.course_id:
        status["check"] = reverse("course-check", args=[job.course_id])
    return status


@role_required(User.Role.TEACHER)
def content_job_download(request, job_id: int):
    _author_or_403(request.user)
    job = _get_or_404(access.content_jobs_for(request.user).filter(kind="export", status="done"), job_id)
    response = HttpResponse(job.content, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{job.file_name}"'
    return response


def _form_int(value, default: int) -> int:
    value = (value or "").strip()
    return int(value) if value.isdigit() else default


@role_required(User.Role.TEACHER)
def skill_model_page(request, course_id: int):
    """Each skill's tracing parameters and the model's versions; admins may start a refit here."""
    course = _get_or_404(access.courses_for(request.user), course_id)
    if request.method == "POST":
        if not request.user.is_admin_role:
            raise PermissionDenied("Only an administrator can refit a course's model.")
        model = request.POST.get("model", "bkt")
        if model not in fitting.FITTABLE:
            return HttpResponseBadRequest(f"Unknown model {model!r}.")
        record = fitting.queue_fit(course, model, requested_by=request.user)
        transaction.on_commit(lambda: refit_tracing_model.delay(record.pk))
        return redirect("skill-model", course_id=course.pk)
    context = {"course": course, "models": fitting.FITTABLE.items(), **reports.skill_model(course)}
    return render(request, "tutor/skill_model.html", context)


@role_required(User.Role.RESEARCHER, User.Role.TEACHER)
def research(request):
    """Research exports: the courses and classes shared with a researcher (a teacher: their own classes), filters,
    and the export jobs with their progress and download links. A refused request re-renders with a 4xx."""
    error, status = None, 200
    if request.method == "POST":
        try:
            job = research_exports.start_export(request.user, **_export_request(request.POST))
        except (ExportError, research_exports.ShareError) as exc:
            error, status = str(exc), getattr(exc, "status", 400)
        else:
            return redirect(f"{reverse('research')}?job={job.pk}")
    scope = research_exports.export_scope(request.user)
    context = {
        "error": error,
        "formats": [(name, found.label) for name, found in EXPORT_FORMATS.items()],
        "courses": research_exports.exportable_courses(request.user),
        "classrooms": research_exports.exportable_classrooms(request.user),
        "shares": access.research_shares_for(request.user).select_related("course", "classroom__course", "shared_by")
        if request.user.role == User.Role.RESEARCHER else [],
        "can_include_identities": research_exports.export_scope(request.user, identities_only=True).identities
        and (scope.everything or bool(scope.courses or scope.classrooms)),
        "jobs": access.export_jobs_for(request.user)[:20],
        "now": timezone.now(),
    }
    return render(request, "tutor/research.html", context, status=status)


def _export_request(data) -> dict:
    """The export form's fields as start_export's arguments; bad values raise ExportError (400)."""

    def ids(name: str) -> list[int]:
        values = [v for v in data.getlist(name) if v.strip()]
        if not all(v.strip().isdigit() for v in values):
            raise ExportError(f"Pick {name} from the lists.")
        return [int(v) for v in values]

    def day(name: str, end: bool = False):
        text = data.get(name, "").strip()
        if not text:
            return None
        try:
            moment = datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
        except ValueError:
            raise ExportError(f"Give dates as YYYY-MM-DD, for example 2026-05-31 (not {text!r}).") from None
        return moment + timedelta(days=1) if end else moment  # the end day is included

    return {
        "format_name": data.get("format", ""),
        "courses": ids("courses"),
        "classrooms": ids("classrooms"),
        "since": day("since"),
        "until": day("until", end=True),
        "study": data.get("study", ""),
        "include_identities": data.get("include_identities") == "on",
    }


@role_required(User.Role.RESEARCHER, User.Role.TEACHER)
def research_job(request, job_id: int):
    """An export job's progress, for the page's progress bar."""
    job = _get_or_404(access.export_jobs_for(request.user), job_id)
    expired = job.expires_at is not None and timezone.now() >= job.expires_at
    ready = job.status == job.Status.DONE and bool(job.file) and not expired
    return JsonResponse({
        "id": job.pk, "status": job.status, "progress": round(job.progress, 4), "rows": job.rows,
        "error": job.error, "expired": expired,
        "download": reverse("research-download", args=[job.pk]) if ready else None,
        "expires_at": job.expires_at.isoformat() if job.expires_at else None,
    })


@role_required(User.Role.RESEARCHER, User.Role.TEACHER)
def research_download(request, job_id: int):
    try:
        job, path = research_exports.downloadable_file(request.user, job_id)
    except research_exports.ShareError as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    found = EXPORT_FORMATS[job.format]
    return FileResponse(open(path, "rb"), as_attachment=True, content_type=found.content_type,
                        filename=f"tutor-{job.format}-{job.pk}.{found.extension}")


@role_required(User.Role.TEACHER)
def classroom_research(request, classroom_id: int):
    """Share a class's (pseudonymous) log with a researcher, or stop sharing it."""
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    error, status = None, 200
    if request.method == "POST":
        try:
            if request.POST.get("action") == "unshare":
                research_exports.unshare(request.user, _form_id(request.POST.get("share", ""), "Say which share."))
                messages.success(request, "Sharing stopped.")
            else:
                share = research_exports.share_classroom(request.user, classroom.pk, request.POST.get("researcher", ""))
                messages.success(request, f"{classroom.name} is shared with {share.researcher.username}.")
        except (research_exports.ShareError, classrooms.SettingsError) as exc:
            error, status = str(exc), getattr(exc, "status", 400)
        else:
            return redirect("classroom-research", classroom_id=classroom.pk)
    shares = access.research_shares_for(request.user).filter(classroom=classroom).select_related("researcher")
    return render(request, "tutor/research_share.html",
                  {"classroom": classroom, "shares": shares, "error": error}, status=status)


def _get_or_404(queryset, pk: int):
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404("Not found among yours.")
    return obj


# --- teacher dashboards (tutor.dashboards) -------------------------------------------------------


@role_required(User.Role.TEACHER)
def classroom_heatmap(request, classroom_id: int):
    """Learners × skills, coloured by mastery band; `?sort=learner|skill-<id>&desc=1&goals=1`."""
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    heatmap = _heatmap(request, classroom)
    return render(request, "tutor/dashboard_heatmap.html", {"classroom": classroom, "heatmap": heatmap, **heatmap})


@role_required(User.Role.TEACHER)
def classroom_heatmap_csv(request, classroom_id: int):
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="class-{classroom.pk}-mastery.csv"'
    csv.writer(response).writerows(dashboards.heatmap_csv_rows(_heatmap(request, classroom)))
    return response


def _heatmap(request, classroom) -> dict:
    return dashboards.class_heatmap(
        classroom,
        sort=request.GET.get("sort", "learner"),
        descending=request.GET.get("desc") == "1",
        goals_only=request.GET.get("goals") == "1",
    )


@role_required(User.Role.TEACHER)
def classroom_live(request, classroom_id: int):
    """Who is practising now and who needs help; the page's socket (LiveClassConsumer) keeps it current."""
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    context = {
        "classroom": classroom,
        "rows": dashboards.live_class(classroom, timezone.now()),
        "active_minutes": dashboards.ACTIVE_WINDOW.seconds // 60,
        "idle_minutes": dashboards.LONG_IDLE.seconds // 60,
        "repeated_errors": dashboards.REPEATED_ERRORS,
        "wheel_spinning": dashboards.WHEEL_SPINNING_ATTEMPTS,
    }
    return render(request, "tutor/dashboard_live.html", context)


@role_required(User.Role.TEACHER)
def learner_drilldown(request, classroom_id: int, learner_id: int):
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    learner = dashboards.class_learner(request.user, classroom, learner_id)
    if learner is None:
        raise Http404("No such learner in this class.")
    drilldown = dashboards.learner_drilldown(classroom, learner, access.selections_for(request.user))
    return render(request, "tutor/dashboard_learner.html", {"classroom": classroom, **drilldown})


@role_required(User.Role.TEACHER)
def item_analysis(request, classroom_id: int):
    """Item statistics for the class; `?skill=<id>` keeps the items of one skill."""
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    skill_id = request.GET.get("skill", "")
    skill = None
    if skill_id:
        skill = classroom.course.skills.filter(pk=int(skill_id) if skill_id.isdigit() else 0).first()
        if skill is None:
            return HttpResponseBadRequest("No such skill in this class's course; pick one on the skill graph.")
    analysis = dashboards.item_analysis(classroom, skill.pk if skill else None)
    return render(request, "tutor/dashboard_items.html", {"classroom": classroom, "skill": skill, **analysis})


@role_required(User.Role.TEACHER)
def skill_graph(request, classroom_id: int):
    """The course's prerequisite graph coloured by the class's mastery, or one learner's (`?learner=<id>`)."""
    classroom = _get_or_404(access.classrooms_for(request.user).select_related("course"), classroom_id)
    learner = None
    if request.GET.get("learner"):
        value = request.GET["learner"]
        learner = dashboards.class_learner(request.user, classroom, int(value)) if value.isdigit() else None
        if learner is None:
            raise Http404("No such learner in this class.")
    context = {
        "classroom": classroom,
        "learner": learner,
        "learners": classroom.learners.order_by("first_name", "last_name", "username"),
        "graph": dashboards.skill_graph(classroom, learner),
        "bands": dashboards.BANDS,
    }
    return render(request, "tutor/dashboard_graph.html", context)
