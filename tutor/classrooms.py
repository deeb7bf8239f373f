"""Classes and enrolment, and each class's settings: the scheduling policy, the goals and the hint policy."""

import secrets
from datetime import date

from django.db import transaction

from knowledge.models import Course, Skill
from tutor import scheduling
from tutor.models import HINT_POLICY_CHOICES, ClassGoal, Classroom, Enrollment, User

JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I/L to misread


def new_join_code(length: int = 6) -> str:
    while True:
        code = "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(length))
        if not Classroom.objects.filter(join_code=code).exists():
            return code


def create_classroom(teacher: User, name: str, course: Course) -> Classroom:
    return Classroom.objects.create(teacher=teacher, name=name, course=course, join_code=new_join_code())


@transaction.atomic
def join_classroom(learner: User, join_code: str) -> Classroom | None:
    """Enrol a learner by join code; None when no open class has that code."""
    classroom = Classroom.objects.filter(join_code=join_code.strip().upper(), archived=False).first()
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
