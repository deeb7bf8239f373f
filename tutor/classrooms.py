"""Classes and enrolment, and each class's settings: the scheduling policy, the goals and the hint policy."""

import secrets
from datetime import date, datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from knowledge.models import Course, Skill
from tutor import scheduling
from tutor.models import HINT_POLICY_CHOICES, AuditEvent, ClassGoal, Classroom, Enrollment, PracticeSession, User

JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I/L to misread


def new_join_code(length: int = 6) -> str:
    while True:
        code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(length))
        if not Classroom.objects.filter(join_code=code).exists():
            return code


def create_classroom(teacher: User, name: str, course: Course) -> Classroom:
    return Classroom.objects.create(teacher=teacher, name=name, course=course, join_code=new_join_code())


def find_open_classroom(join_code: str) -> Classroom | None:
    """The class a join code opens; archived classes open to no code."""
    code = join_code.strip().upper()
    return Classroom.objects.select_related("course").filter(join_code=code, archived=False).first()


@transaction.atomic
def join_classroom(learner: User, join_code: str) -> Classroom | None:
    """Enrol a learner by join code; None when no open class has that code."""
    classroom = find_open_classroom(join_code)
    if classroom is None or learner.role != User.Role.LEARNER:
        return None
    Enrollment.objects.get_or_create(classroom=classroom, learner=learner)
    return classroom


class SettingsError(Exception):
    """A class setting refused; the message says what to fix. `status` is the HTTP status that fits."""

    status = 400


class GoalNotFound(SettingsError):
    status = 404


def set_policy(classroom: Classroom, policy: str) -> Classroom:
    """Choose how the tutor picks items for the class; it applies from each learner's next item on."""
    if policy not in scheduling.POLICIES:
        raise SettingsError(f"Unknown policy {policy[:40]!r}; choose one of: {', '.join(scheduling.POLICIES)}.")
    classroom.policy = policy
    classroom.save(update_fields=["policy"])
    return classroom


def set_hint_policy(classroom: Classroom, hint_policy: str) -> Classroom:
    """Choose who writes the class's hints (the lesson's ladder or the tutor model) and whether the worked answer
    may come at the end of the ladder; it applies from the next hint on."""
    names = [name for name, _ in HINT_POLICY_CHOICES]
    if hint_policy not in names:
        raise SettingsError(f"Unknown hint setting {hint_policy[:40]!r}; choose one of: {', '.join(names)}.")
    classroom.hint_policy = hint_policy
    classroom.save(update_fields=["hint_policy"])
    return classroom


def set_goal(classroom: Classroom, skill_id: int, due: date, today: date) -> ClassGoal:
    """Make a skill of the class's course a goal due on `due` (a goal already set gets the new date)."""
    skill = Skill.objects.filter(pk=skill_id, course_id=classroom.course_id).first()
    if skill is None:
        raise SettingsError(
            f"That skill is not in this class's course ({classroom.course.title}); pick one of the course's skills."
        )
    if due < today:
        raise SettingsError(f"The due date {due.isoformat()} is in the past; give today or a later day.")
    goal, _ = ClassGoal.objects.update_or_create(classroom=classroom, skill=skill, defaults={"due": due})
    return goal


def remove_goal(classroom: Classroom, goal_id: int) -> None:
    deleted, _ = ClassGoal.objects.filter(pk=goal_id, classroom=classroom).delete()
    if not deleted:
        raise GoalNotFound("This class has no such goal; reload the page.")


# --- classes and rosters: each change is one function, and each change to someone else's account or enrolment
# is recorded as an AuditEvent (who did what to whom). Callers pass objects already scoped by tutor.access.


class RosterError(SettingsError):
    """A roster change refused; the message says what to fix."""


class NotYours(RosterError):
    status = 404


MAX_CLASS_NAME = 200


def _audit(actor: User, action: str, classroom: Classroom | None, subject: User | None = None, now=None, **detail):
    return AuditEvent.objects.create(
        actor=actor, action=action, classroom=classroom, subject=subject, detail=detail,
        created_at=now or timezone.now(),
    )


def open_classroom(teacher: User, name: str, course: Course | None) -> Classroom:
    """Create a class from the teacher's page: a name and a course (one the caller may teach, or None)."""
    name = " ".join(name.split())
    if not name:
        raise RosterError("Give the class a name, for example “Year 8 maths, group 2”.")
    if len(name) > MAX_CLASS_NAME:
        raise RosterError(f"The name is {len(name)} characters long; keep it to {MAX_CLASS_NAME}.")
    if course is None:
        raise RosterError("Pick the course the class will practise.")
    return create_classroom(teacher, name, course)


def _enrolled(classroom: Classroom, learner: User) -> Enrollment:
    enrollment = Enrollment.objects.filter(classroom=classroom, learner=learner).first()
    if enrollment is None:
        raise NotYours(f"{learner.username} is not in {classroom.name}.")
    return enrollment


def _end_open_sessions(learner: User, classroom: Classroom, now: datetime) -> int:
    """Close the learner's open sessions in a class they leave, so that its policy and goals stop applying."""
    return PracticeSession.objects.filter(learner=learner, classroom=classroom, ended_at__isnull=True).update(
        ended_at=now
    )


@transaction.atomic
def move_learner(actor: User, learner: User, source: Classroom, target: Classroom, now=None) -> Enrollment:
    """Move a learner from one of the actor's classes to another (open) one. Their practice history stays; an
    open session in the old class continues in the new one when both practise the same course."""
    now = now or timezone.now()
    enrollment = _enrolled(source, learner)
    if target.pk == source.pk:
        raise RosterError(f"{learner.username} is already in {source.name}; pick another class.")
    if target.archived:
        raise RosterError(f"{target.name} is archived; restore it first or pick an open class.")
    enrollment.delete()
    moved, _ = Enrollment.objects.get_or_create(classroom=target, learner=learner)
    open_sessions = PracticeSession.objects.filter(learner=learner, classroom=source, ended_at__isnull=True)
    if target.course_id == source.course_id:
        open_sessions.update(classroom=target)
    else:
        open_sessions.update(ended_at=now)
    _audit(actor, AuditEvent.Action.MOVE_LEARNER, source, learner, now, to_classroom=target.pk,
           to_name=target.name)
    return moved


@transaction.atomic
def remove_learner(actor: User, learner: User, classroom: Classroom, now=None) -> None:
    """Take a learner out of a class. Their attempts and mastery stay (they belong to the learner, and come
    back if they join again); their open session in the class is closed."""
    now = now or timezone.now()
    _enrolled(classroom, learner).delete()
    _end_open_sessions(learner, classroom, now)
    _audit(actor, AuditEvent.Action.REMOVE_LEARNER, classroom, learner, now)


@transaction.atomic
def reset_learner_password(actor: User, learner: User, classroom: Classroom, new_password: str = "", now=None) -> str:
    """Give a learner of the class a new temporary password (for one who forgot theirs); a blank one is made up
    (returned, to hand to the learner). Recorded without the password: who reset whose, when."""
    _enrolled(classroom, learner)
    new_password = new_password.strip() or temporary_password()
    if learner.role != User.Role.LEARNER:
        raise RosterError("Only a learner's password can be reset here.")
    try:
        validate_password(new_password, learner)
    except ValidationError as exc:
        raise RosterError("Choose another temporary password: " + " ".join(exc.messages)) from None
    learner.set_password(new_password)
    learner.save(update_fields=["password"])
    _audit(actor, AuditEvent.Action.RESET_PASSWORD, classroom, learner, now)
    return new_password


def temporary_password() -> str:
    """Three groups of easy-to-read letters and digits, e.g. K7PM-R2XQ-9HTA."""
    return "-".join("".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(4)) for _ in range(3))


@transaction.atomic
def archive_classroom(actor: User, classroom: Classroom, now=None) -> Classroom:
    """Archive a class: it leaves the teacher's main list, its learners no longer practise through it (their open
    sessions in it are closed) and its join code stops working. Nothing is deleted; restore brings it back."""
    now = now or timezone.now()
    if classroom.archived:
        raise RosterError(f"{classroom.name} is already archived.")
    classroom.archived = True
    classroom.save(update_fields=["archived"])
    PracticeSession.objects.filter(classroom=classroom, ended_at__isnull=True).update(ended_at=now)
    _audit(actor, AuditEvent.Action.ARCHIVE_CLASS, classroom, None, now)
    return classroom


def restore_classroom(actor: User, classroom: Classroom, now=None) -> Classroom:
    if not classroom.archived:
        raise RosterError(f"{classroom.name} is not archived.")
    classroom.archived = False
    classroom.save(update_fields=["archived"])
    _audit(actor, AuditEvent.Action.RESTORE_CLASS, classroom, None, now)
    return classroom
