from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from tutor.models import (
    Attempt,
    AuditEvent,
    ClassGoal,
    Classroom,
    Enrollment,
    HintTurn,
    PracticeSession,
    ResearchShare,
    Selection,
    User,
)


@admin.register(User)
class TutorUserAdmin(UserAdmin):
    list_display = ["username", "first_name", "last_name", "role", "is_active"]
    list_filter = ["role", "is_active"]
    fieldsets = [*UserAdmin.fieldsets, ("Role", {"fields": ["role"]})]


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    raw_id_fields = ["learner"]


class ClassGoalInline(admin.TabularInline):
    model = ClassGoal
    extra = 0
    raw_id_fields = ["skill"]


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ["name", "course", "teacher", "join_code", "policy", "archived"]
    list_filter = ["archived", "policy", "course"]
    inlines = [EnrollmentInline, ClassGoalInline]


@admin.register(PracticeSession)
class PracticeSessionAdmin(admin.ModelAdmin):
    list_display = ["learner", "course", "started_at", "ended_at", "items_completed"]
    raw_id_fields = ["learner", "current_item", "classroom"]


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["learner", "item", "step", "raw_answer", "correct", "hint_level", "created_at"]
    list_filter = ["correct", "first_action"]
    raw_id_fields = ["learner", "session", "item", "step"]


@admin.register(HintTurn)
class HintTurnAdmin(admin.ModelAdmin):
    list_display = ["learner", "step", "level", "kind", "source", "created_at"]
    raw_id_fields = ["learner", "session", "step"]


@admin.register(Selection)
class SelectionAdmin(admin.ModelAdmin):
    """The scheduling log is evidence for off-policy evaluation: it can be read here, never edited."""

    list_display = ["created_at", "learner", "classroom", "item", "kind", "policy"]
    list_filter = ["policy", "kind"]
    raw_id_fields = ["session", "learner", "classroom", "item", "skill"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "subject", "classroom"]
    list_filter = ["action"]
    raw_id_fields = ["actor", "subject", "classroom"]

    def has_change_permission(self, request, obj=None):
        return False  # an audit trail is read-only


@admin.register(ResearchShare)
class ResearchShareAdmin(admin.ModelAdmin):
    """Where an admin shares a whole course (or any class) with a researcher, and may include identities."""

    list_display = ["researcher", "course", "classroom", "include_identities", "shared_by", "created_at"]
    list_filter = ["include_identities"]
    raw_id_fields = ["researcher", "classroom"]
    readonly_fields = ["shared_by"]

    def save_model(self, request, obj, form, change):
        obj.shared_by = request.user
        super().save_model(request, obj, form, change)
