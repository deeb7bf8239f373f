"""Who may see what: every query a learner, teacher or researcher can trigger starts here.

Learners see their own records; teachers see their own classes and the learners enrolled in them;
admins see everything; the scheduling log (why each item was served) only the class's teacher and admins.
Researchers see no learner records here: they export what teachers and admins shared with them (their shares
and export jobs are scoped below; tutor/exports/research.py turns shares into what an export reads).
Views never filter by hand: they call these.
"""

from django.db.models import QuerySet

from knowledge.models import ContentJob, Course, Item, MasteryState
from tutor.models import (
    Attempt,
    AuditEvent,
    Classroom,
    ExportJob,
    HintTurn,
    PracticeSession,
    ResearchShare,
    Selection,
    User,
)


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


def roster_for(user: User, classroom: Classroom) -> QuerySet[User]:
    """The learners of one class, when the class is the user's to see (else none)."""
    if not classrooms_for(user).filter(pk=classroom.pk).exists() or not (user.is_teacher or user.is_admin_role):
        return User.objects.none()
    return User.objects.filter(enrollments__classroom=classroom).order_by("last_name", "first_name", "username")


def audit_events_for(user: User) -> QuerySet[AuditEvent]:
    """Changes made in classes: an admin sees all; a teacher those in their own classes (whoever made them)."""
    if user.is_admin_role:
        return AuditEvent.objects.all()
    if user.is_teacher:
        return AuditEvent.objects.filter(classroom__teacher=user)
    return AuditEvent.objects.none()


def courses_to_teach(user: User) -> QuerySet[Course]:
    """Courses a new class may practise: any course, for teachers and admins."""
    if user.is_teacher or user.is_admin_role:
        return Course.objects.all()
    return Course.objects.none()


# --- authoring: content is shared by every class, so changing it (the admin, import) is for authors only:
# admins and staff accounts. Teachers may check and preview the courses their classes practise.


def can_author(user: User) -> bool:
    return user.is_authenticated and (user.is_admin_role or user.is_staff)


def courses_to_check(user: User) -> QuerySet[Course]:
    return Course.objects.all() if can_author(user) else courses_for(user)


def items_to_preview(user: User) -> QuerySet[Item]:
    return Item.objects.all() if can_author(user) else Item.objects.filter(course__in=courses_for(user))


def content_jobs_for(user: User) -> QuerySet[ContentJob]:
    if user.is_admin_role:
        return ContentJob.objects.all()
    if can_author(user):
        return ContentJob.objects.filter(requested_by=user)
    return ContentJob.objects.none()


def research_shares_for(user: User) -> QuerySet[ResearchShare]:
    """Shares a researcher received; those a teacher made of their classes; all, for admins."""
    if user.is_admin_role:
        return ResearchShare.objects.all()
    if user.is_teacher:
        return ResearchShare.objects.filter(classroom__teacher=user)
    if user.role == User.Role.RESEARCHER:
        return ResearchShare.objects.filter(researcher=user)
    return ResearchShare.objects.none()


def export_jobs_for(user: User) -> QuerySet[ExportJob]:
    """Export jobs are their requester's own, admins' included: a download is never handed to someone else."""
    return ExportJob.objects.filter(researcher=user)
