"""The authoring admin: courses, skills and their prerequisites, items with their steps and hint ladders.

Answer specs and hint ladders are edited as YAML, the way a course package writes them, and checked the way
the package reader checks them. Every save tells the practice loop that the content changed
(`knowledge.services.content_changed`): edited items get a new version and learners see the edit on their
next page, without a restart. A prerequisite that would close a cycle is refused with the cycle named.
"""

import yaml
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from knowledge import services
from knowledge.content.package import dump_yaml_value, load_yaml_value, step_problems
from knowledge.models import ContentJob, Course, Item, ItemSkill, MasteryState, Prerequisite, Skill, Step

ANSWER_HELP = (
    "YAML, as in a course package, e.g. <code>type: numeric</code> + <code>value: 7/2</code>; "
    "<code>type: expression</code> + <code>value: 2*x + 3</code>; <code>type: choice</code> + "
    "<code>choices: [...]</code> + <code>correct: 0</code>; <code>type: text</code> + <code>value: ...</code> "
    "(docs/course-format.md)."
)
HINTS_HELP = (
    "The hint ladder in YAML, one rung per entry: <code>- kind: hint</code> / <code>text: ...</code>; a "
    "<code>scaffold</code> also has an <code>answer</code>; a <code>bottom_out</code> (the worked answer) comes last."
)


class YamlField(forms.Field):
    """JSON data edited as YAML text."""

    widget = forms.Textarea(attrs={"rows": 8, "cols": 90, "class": "vLargeTextField", "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, str):
            return value  # what the author typed, shown again with its error
        return "" if value in (None, [], {}) else dump_yaml_value(value)

    def to_python(self, value):
        if value is None or not str(value).strip():
            return None
        try:
            return load_yaml_value(str(value))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ValidationError(f"This is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None


class StepForm(forms.ModelForm):
    answer = YamlField(help_text=ANSWER_HELP)
    hints = YamlField(required=False, help_text=HINTS_HELP)

    class Meta:
        model = Step
        fields = ["position", "prompt", "answer", "hints", "skills"]
        help_texts = {"position": "0 for the first step, 1 for the second, …"}

    def clean(self):
        data = super().clean()
        if data.get("hints") is None:
            data["hints"] = []
        if "answer" in data and data["answer"] is not None and "hints" not in self.errors:
            problems = step_problems({"prompt": data.get("prompt") or "-", "answer": data["answer"],
                                      "hints": data["hints"]})
            if problems:
                raise ValidationError([ValidationError(p) for p in problems])
            self.instance.answer_type = data["answer"]["type"]  # the spec says its type; keep the column in step
        return data


class AtLeastOneFormSet(BaseInlineFormSet):
    """Refuses to save the parent with none of these rows, saying why (Django's own message names no reason)."""

    empty_message = "Keep at least one."

    def clean(self):
        super().clean()
        kept = [form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if not kept and not any(form.errors for form in self.forms):
            raise ValidationError(self.empty_message)


class StepFormSet(AtLeastOneFormSet):
    empty_message = "An item needs at least one step: the practice page has nothing to ask without one."


class ItemSkillFormSet(AtLeastOneFormSet):
    empty_message = "Name at least one skill: the scheduler only serves an item for the skills it practises."


class StepInline(admin.StackedInline):
    model = Step
    form = StepForm
    formset = StepFormSet
    extra = 0
    autocomplete_fields = ["skills"]


class ItemSkillInline(admin.TabularInline):
    model = ItemSkill
    formset = ItemSkillFormSet
    extra = 0
    autocomplete_fields = ["skill"]
    verbose_name = "skill practised"
    verbose_name_plural = "Skills practised (the scheduler serves the item for these)"


def _warn_about_hintless_steps(request, item: Item) -> None:
    bare = [str(step.position + 1) for step in item.steps.all() if not step.hints]
    if bare:
        messages.warning(request, f"“{item.title}”: step {', '.join(bare)} has no hints, so a stuck learner gets "
                                  "no help from the lesson. Add at least one rung.")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "course", "difficulty", "template", "version", "preview_link"]
    list_filter = ["course", "template", ("skills", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["title", "slug", "body", "steps__prompt"]
    readonly_fields = ["version", "preview_link"]
    inlines = [ItemSkillInline, StepInline]
    list_select_related = ["course"]

    @admin.display(description="Preview")
    def preview_link(self, item):
        if item.pk is None:
            return "Save the item first, or use the live preview below."
        url = reverse("item-preview", args=[item.pk])
        return format_html('<a href="{}" target="_blank">as a learner sees it</a>', url)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        item = form.instance
        services.number_steps(item)
        edited = change and (form.has_changed() or any(formset.has_changed() for formset in formsets))
        services.content_changed(item.course_id, [item.pk] if edited else ())
        _warn_about_hintless_steps(request, item)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.content_changed(obj.course_id)

    def delete_queryset(self, request, queryset):
        courses = set(queryset.values_list("course_id", flat=True))
        super().delete_queryset(request, queryset)
        for course_id in courses:
            services.content_changed(course_id)


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    form = StepForm
    list_display = ["__str__", "item", "answer_type", "hint_count"]
    list_filter = ["item__course", "answer_type"]
    search_fields = ["prompt", "item__slug", "item__title"]
    autocomplete_fields = ["skills"]
    raw_id_fields = ["item"]
    fields = ["item", "position", "prompt", "answer", "hints", "skills"]

    @admin.display(description="Hints")
    def hint_count(self, step):
        return len(step.hints or [])

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        step = form.instance
        services.number_steps(step.item)
        services.content_changed(step.item.course_id, [step.item_id] if change and form.has_changed() else ())
        _warn_about_hintless_steps(request, step.item)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.number_steps(obj.item)
        services.content_changed(obj.item.course_id, [obj.item_id])


class PrerequisiteInline(admin.TabularInline):
    model = Prerequisite  # each row is checked by Prerequisite.clean: a cycle is refused, named
    fk_name = "skill"
    extra = 0
    autocomplete_fields = ["prerequisite"]
    verbose_name = "prerequisite"
    verbose_name_plural = "Prerequisites (skills to master before this one)"


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "course", "position", "item_count", "p_init", "p_learn", "p_guess", "p_slip"]
    list_filter = ["course"]
    search_fields = ["name", "slug", "course__slug"]
    readonly_fields = ["position"]
    inlines = [PrerequisiteInline]

    @admin.display(description="Items", ordering="item_count")
    def item_count(self, skill):
        return skill.item_count

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("course").annotate(item_count=Count("items"))

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.skill_graph_changed(form.instance.course_id)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.skill_graph_changed(obj.course_id)


@admin.register(Prerequisite)
class PrerequisiteAdmin(admin.ModelAdmin):
    list_display = ["__str__", "prerequisite", "skill", "course"]
    list_filter = ["skill__course"]
    search_fields = ["skill__slug", "skill__name", "prerequisite__slug", "prerequisite__name"]
    autocomplete_fields = ["prerequisite", "skill"]

    @admin.display(description="Course")
    def course(self, edge):
        return edge.skill.course

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.skill_graph_changed(obj.skill.course_id)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.skill_graph_changed(obj.skill.course_id)


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "language", "updated_at", "authoring"]
    prepopulated_fields = {"slug": ["title"]}
    search_fields = ["title", "slug"]

    @admin.display(description="Authoring")
    def authoring(self, course):
        return format_html(
            '<a href="{}">check this course</a> · <a href="{}">import and export</a>',
            reverse("course-check", args=[course.pk]),
            reverse("content"),
        )


@admin.register(ContentJob)
class ContentJobAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "file_name", "course", "status", "progress", "requested_by"]
    list_filter = ["kind", "status"]
    exclude = ["content"]  # a package can be megabytes; download it from the job's page

    def has_add_permission(self, request):
        return False  # jobs start from the import and export page

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MasteryState)
class MasteryStateAdmin(admin.ModelAdmin):
    list_display = ["learner", "skill", "p_known", "observations", "mastered_at"]
    list_filter = ["skill__course"]
    raw_id_fields = ["learner", "skill"]
