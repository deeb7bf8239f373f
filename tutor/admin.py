from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from tutor.models import Attempt, Classroom, Enrollment, HintTurn, PracticeSession, User


@admin.register(User)
class TutorUserAdmin(UserAdmin):
    list_display = ["username", "first_name", "last_name", "role", "is_active"]
    list_filter = ["role", "is_active"]
    fieldsets = [*UserAdmin.fieldsets, ("Role", {"fields": ["role"]})]


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    raw_id_fields = ["learner"]


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ["name", "course", "teacher", "join_code", "archived"]
    list_filter = ["archived", "course"]
    inlines = [EnrollmentInline]


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
