"""Server-rendered pages. Thin: they read through tutor.access and act through tutor.practice."""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from knowledge import fitting
from knowledge.models import Course
from knowledge.tasks import refit_tracing_model
from tutor import access, classrooms, practice, reports
from tutor.classrooms import join_classroom
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


@require_POST
@role_required(User.Role.LEARNER)
def join(request):
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
    classrooms = access.classrooms_for(request.user).select_related("course").order_by("name")
    return render(request, "tutor/teach.html", {"classrooms": classrooms})


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


@role_required(User.Role.RESEARCHER)
def research(request):
    return render(request, "tutor/research.html", {"courses": Course.objects.none()})


def _get_or_404(queryset, pk: int):
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404("Not found among yours.")
    return obj
