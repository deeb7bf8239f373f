"""Who may see what: every query a learner, teacher or researcher can trigger starts here.

Learners see their own records; teachers see their own classes and the learners enrolled in them;
admins see everything; the scheduling log (why each item was served) only the class's teacher and admins.
Researchers get shared data through the export issue's sharing rules, so for now they see no learner
records. Views never filter by hand: they call these.
"""

from django.db.models import QuerySet

from knowledge.models import Course, MasteryState
from tutor.models import Attempt, Classroom, HintTurn, PracticeSession, Selection, User


def classrooms_for(user: User) -> QuerySet[Classroom]:
    if user.is_admin_role:
        return Classroom.objects.all()
    if user.is_teacher:
        return Classroom.objects.filter(teacher=user)
    return Classroom.objects.filter(enrollments__learner=user, archived=False)


def courses_for(user: User) -> QuerySet[Course]:
    if user.is_admin_role:
        return Course.objects.all()
    return Course.objects.filter(classrooms__in=classrooms_for(user)).distinct()


def learners_for(user: User) -> QuerySet[User]:
    if user.is_admin_role:
        return User.objects.filter(role=User.Role.LEARNER)
    if user.is_teacher:
        return User.objects.filter(enrollments__classroom__teacher=user).distinct()
    if user.role == User.Role.LEARNER:
        return User.objects.filter(pk=user.pk)
    return User.objects.none()


def sessions_for(user: User) -> QuerySet[PracticeSession]:
    return PracticeSession.objects.filter(learner__in=learners_for(user))


def attempts_for(user: User) -> QuerySet[Attempt]:
    return Attempt.objects.filter(learner__in=learners_for(user))


def hint_turns_for(user: User) -> QuerySet[HintTurn]:
    return HintTurn.objects.filter(learner__in=learners_for(user))


def mastery_for(user: User) -> QuerySet[MasteryState]:
    return MasteryState.objects.filter(learner__in=learners_for(user))


def selections_for(user: User) -> QuerySet[Selection]:
    if user.is_admin_role:
        return Selection.objects.all()
    if user.is_teacher:
        return Selection.objects.filter(classroom__teacher=user)
    return Selection.objects.none()
