"""What is to be learned (courses, skills, items) and what each learner knows (mastery)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

probability = [MinValueValidator(0.0), MaxValueValidator(1.0)]
below_half = [MinValueValidator(0.0), MaxValueValidator(0.4999)]


class Course(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    language = models.CharField(max_length=16, default="en")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.title


class Skill(models.Model):
    """A knowledge component, with the BKT parameters the online mastery update uses."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="skills")
    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Topological order within the course.")
    p_init = models.FloatField(default=0.2, validators=probability)
    p_learn = models.FloatField(default=0.15, validators=probability)
    p_guess = models.FloatField(default=0.2, validators=below_half)
    p_slip = models.FloatField(default=0.1, validators=below_half)
    p_forget = models.FloatField(default=0.0, validators=probability)

    class Meta:
        ordering = ["course", "position", "slug"]
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="skill_slug_unique_in_course")]

    def __str__(self):
        return self.name


class Prerequisite(models.Model):
    """`prerequisite` must be mastered before `skill` is worth learning. Edges form a DAG
    (checked by knowledge.services.add_prerequisite and by the course-package reader)."""

    prerequisite = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="unlocks")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="requires")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prerequisite", "skill"], name="prerequisite_edge_unique"),
            models.CheckConstraint(condition=~models.Q(prerequisite=models.F("skill")), name="no_self_loop"),
        ]

    def __str__(self):
        return f"{self.prerequisite.slug} -> {self.skill.slug}"

    def clean(self):
        from knowledge.services import cycle_if_added  # services import this module

        if self.prerequisite_id is None or getattr(self, "skill", None) is None:
            return  # a missing field is reported by its own check
        if self.prerequisite.course_id != self.skill.course_id:
            raise ValidationError("A prerequisite must belong to the same course as the skill.")
        if cycle := cycle_if_added(self.prerequisite, self.skill):
            raise ValidationError("This prerequisite would create a cycle: " + " -> ".join(cycle))


class Item(models.Model):
    """A problem: a body and ordered steps."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="items")
    slug = models.SlugField(max_length=120)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True, help_text="Markdown with $LaTeX$.")
    difficulty = models.FloatField(null=True, blank=True, validators=probability)
    template = models.CharField(max_length=120, blank=True, help_text="Template the item was expanded from.")
    source = models.CharField(max_length=200, blank=True)
    license = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Raised whenever the content changes.")
    skills = models.ManyToManyField(Skill, through="ItemSkill", related_name="items")

    class Meta:
        ordering = ["course", "slug"]
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="item_slug_unique_in_course")]

    def __str__(self):
        return self.title


class ItemSkill(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE)
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "skill"], name="item_skill_unique")]

    def __str__(self):
        return str(self.skill)


class Step(models.Model):
    """One answer the learner gives within an item, with its answer spec and authored hint ladder.

    `answer` is an answer spec (see docs/course-format.md, checked by tutor.grading.validate_spec);
    `hints` is the ladder: a list of {"kind": "hint"|"scaffold"|"bottom_out", "text", "answer"?}.
    """

    ANSWER_TYPES = [("numeric", "Number"), ("expression", "Expression"), ("choice", "Choice"), ("text", "Text")]

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    prompt = models.TextField()
    answer_type = models.CharField(max_length=16, choices=ANSWER_TYPES)
    answer = models.JSONField()
    hints = models.JSONField(default=list, blank=True)
    skills = models.ManyToManyField(Skill, blank=True, related_name="steps")

    class Meta:
        ordering = ["item", "position"]
        constraints = [models.UniqueConstraint(fields=["item", "position"], name="step_position_unique")]

    def __str__(self):
        return f"{self.item.slug} step {self.position + 1}"


class MasteryState(models.Model):
    """A learner's current estimate of P(known) for one skill, updated on every first action on a step, and
    their memory of it (when to review), which the scheduling policy reads."""

    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mastery")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="mastery_states")
    p_known = models.FloatField(validators=probability)
    observations = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    mastered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()
    memory = models.JSONField(
        null=True,
        blank=True,
        help_text="FSRS memory of the skill (tutor.scheduling.memory.Memory.to_json): stability, difficulty, "
        "last review, first practice, reviews, lapses, checks passed in a row. Empty until the learner first "
        "practises the skill.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "skill"], name="mastery_unique")]

    def __str__(self):
        return f"{self.learner} {self.skill.slug} {self.p_known:.2f}"


class TracingModel(models.Model):
    """One fitted version of a course's knowledge-tracing model: what was fitted, on which data, how well
    it predicts learners it never saw, and where and how fast it ran. The active version's per-skill
    parameters are copied onto the course's skills, where the online update reads them."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="tracing_models")
    version = models.PositiveIntegerField(help_text="1, 2, … within the course.")
    model = models.CharField(max_length=32, help_text="Model family, e.g. bkt or bkt-forget.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=200, blank=True, help_text="What the fit is doing now.")
    progress = models.FloatField(default=0.0, validators=probability)
    active = models.BooleanField(default=False, help_text="Its parameters drive the online update.")
    parameters = models.JSONField(default=dict, blank=True, help_text="{skill slug: {p_init, p_learn, …}}")
    state = models.JSONField(default=dict, blank=True, help_text="The fitted model's full state.")
    metrics = models.JSONField(default=dict, blank=True, help_text="AUC, RMSE, … on held-out learners.")
    posterior = models.JSONField(
        default=dict,
        blank=True,
        help_text="Hierarchical model: prerequisite effect, population, each learner's traits with intervals.",
    )
    data_from = models.DateTimeField(null=True, blank=True)
    data_to = models.DateTimeField(null=True, blank=True)
    train_rows = models.PositiveIntegerField(default=0)
    learners = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=64, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["course", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["course", "version"], name="tracing_version_unique"),
            models.UniqueConstraint(
                fields=["course"], condition=models.Q(active=True), name="one_active_tracing_model"
            ),
        ]

    def __str__(self):
        return f"{self.course.slug} v{self.version} ({self.model})"


class ContentJob(models.Model):
    """An import or export of a course package started from the authoring page, run as a Celery task. The
    uploaded package (import) or the written one (export) is kept as text, so a worker on another machine can
    read it and the page can offer it for download; `report` holds what the page shows when it ends."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=200, blank=True, help_text="What the job is doing now.")
    progress = models.FloatField(default=0.0, validators=probability)
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    file_name = models.CharField(max_length=200, blank=True)
    content = models.TextField(blank=True, help_text="The package text: uploaded (import) or written (export).")
    report = models.JSONField(
        default=dict, blank=True, help_text="{summary, errors: [...], warnings: [...]} for the page."
    )
    task_id = models.CharField(max_length=64, blank=True, help_text="The Celery task, whose state has the progress.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.kind} {self.file_name or self.course} ({self.status})"
