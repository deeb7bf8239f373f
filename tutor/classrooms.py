"""Classes and enrolment."""

import secrets

from django.db import transaction

from knowledge.models import Course
from tutor.models import Classroom, Enrollment, User

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
