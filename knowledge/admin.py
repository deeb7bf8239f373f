from django.contrib import admin

from knowledge.models import Course, Item, ItemSkill, MasteryState, Prerequisite, Skill, Step


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "language", "updated_at"]
    prepopulated_fields = {"slug": ["title"]}


class PrerequisiteInline(admin.TabularInline):
    model = Prerequisite
    fk_name = "skill"
    extra = 0
    autocomplete_fields = ["prerequisite"]


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "course", "position", "p_init", "p_learn", "p_guess", "p_slip"]
    list_filter = ["course"]
    search_fields = ["name", "slug"]
    inlines = [PrerequisiteInline]


class StepInline(admin.StackedInline):
    model = Step
    extra = 0
    filter_horizontal = ["skills"]


class ItemSkillInline(admin.TabularInline):
    model = ItemSkill
    extra = 0
    autocomplete_fields = ["skill"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "course", "difficulty", "template", "version"]
    list_filter = ["course", "template"]
    search_fields = ["title", "slug", "body"]
    inlines = [ItemSkillInline, StepInline]


@admin.register(MasteryState)
class MasteryStateAdmin(admin.ModelAdmin):
    list_display = ["learner", "skill", "p_known", "observations", "mastered_at"]
    list_filter = ["skill__course"]
    raw_id_fields = ["learner", "skill"]
