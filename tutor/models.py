"""People, classes and the practice log."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

from tutor.scheduling import DEFAULT_POLICY, POLICIES

POLICY_LABELS = {
    "combined": "Combined: prerequisites, reviews and goals",
    "random": "Random",
    "oatutor": "Least-mastered skill first (OATutor)",
    "mastery": "Mastery in course order (Cognitive Tutor)",
    "fsrs": "Spaced repetition (FSRS)",
}
POLICY_CHOICES = [(name, POLICY_LABELS.get(name, name)) for name in POLICIES]

# Who writes a class's hints: the lesson's authored ladder alone, or the Socratic tutor model (behind the guard,
# with the ladder as its fallback), which may give the answer away at the end of the ladder or never.
HINT_POLICY_CHOICES = [
    ("authored", "The lesson's hints only"),
    ("model", "Tutor model, never the answer"),
    ("model-bottom-out", "Tutor model, the worked answer at the end of the ladder"),
]
DEFAULT_HINT_POLICY = "model"


class User(AbstractUser):
    class Role(models.TextChoices):
        LEARNER = "learner", "Learner"
        TEACHER = "teacher", "Teacher"
        RESEARCHER = "researcher", "Researcher"
        ADMIN = "admin", "Admin"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LEARNER)

    @property
    def is_teacher(self) -> bool:
        return self.role == self.Role.TEACHER

    @property
    def is_admin_role(self) -> bool:
        return self.role == self.Role.ADMIN or self.is_superuser


class Classroom(models.Model):
    name = models.CharField(max_length=200)
    course = models.ForeignKey("knowledge.Course", on_delete=models.PROTECT, related_name="classrooms")
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="classrooms")
    join_code = models.CharField(max_length=12, unique=True)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    learners = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Enrollment", related_name="classes")
    policy = models.CharField(
        max_length=16,
        choices=POLICY_CHOICES,
        default=DEFAULT_POLICY,
        help_text="How the tutor picks the next item for this class's learners (tutor.scheduling.POLICIES).",
    )
    hint_policy = models.CharField(
        max_length=20,
        choices=HINT_POLICY_CHOICES,
        default=DEFAULT_HINT_POLICY,
        help_text="Who writes the hints on the practice page, and whether the answer may be given at the end.",
    )
    condition = models.CharField(
        max_length=100,
        blank=True,
        help_text="The study condition this class is in, if any (written to research exports).",
    )

    def __str__(self):
        return self.name


class ClassGoal(models.Model):
    """A skill the teacher wants the class to master by a date. Until then (the due day included) the
    combined policy serves the skill and its unmastered prerequisites before unrelated skills."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="goals")
    skill = models.ForeignKey("knowledge.Skill", on_delete=models.CASCADE, related_name="class_goals")
    due = models.DateField(help_text="Last day of the goal (UTC).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due", "skill__position"]
        constraints = [models.UniqueConstraint(fields=["classroom", "skill"], name="class_goal_unique")]

    def __str__(self):
        return f"{self.classroom}: {self.skill} by {self.due}"


class Enrollment(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="enrollments")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["classroom", "learner"], name="enrollment_unique")]


class PracticeSession(models.Model):
    """A learner practising one course. It remembers where the learner is: the current item, the step
    within it, and how many hint rungs they have seen on that step."""

    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sessions")
    course = models.ForeignKey("knowledge.Course", on_delete=models.CASCADE, related_name="sessions")
    classroom = models.ForeignKey(Classroom, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    current_item = models.ForeignKey("knowledge.Item", null=True, blank=True, on_delete=models.SET_NULL)
    current_step = models.PositiveIntegerField(default=0)
    hint_level = models.PositiveIntegerField(default=0)
    selection_reason = models.CharField(max_length=300, blank=True)
    item_started_at = models.DateTimeField(null=True, blank=True)
    items_completed = models.PositiveIntegerField(default=0)
    short_term = models.JSONField(
        default=dict,
        blank=True,
        help_text="{skill id: items still to wait}: skills slipped on this session, to come back soon.",
    )

    class Meta:
        indexes = [models.Index(fields=["learner", "-started_at"])]


class Attempt(models.Model):
    """One answer to one step. `first_action` marks the attempt that counted for mastery."""

    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts")
    session = models.ForeignKey(PracticeSession, on_delete=models.CASCADE, related_name="attempts")
    item = models.ForeignKey("knowledge.Item", on_delete=models.CASCADE, related_name="attempts")
    step = models.ForeignKey("knowledge.Step", on_delete=models.CASCADE, related_name="attempts")
    item_version = models.PositiveIntegerField(default=1, help_text="The item's version when it was answered.")
    raw_answer = models.CharField(max_length=200)
    normalized_answer = models.CharField(max_length=400, blank=True)
    correct = models.BooleanField()
    feedback = models.CharField(max_length=300, blank=True)
    hint_level = models.PositiveIntegerField(help_text="Hint rungs seen on this step before answering.")
    first_action = models.BooleanField()
    mastery_change = models.JSONField(default=dict, blank=True, help_text="{skill slug: [before, after]}")
    client_key = models.CharField(max_length=64, help_text="Client idempotency key.")
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the item was shown (time on task starts here)."
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "client_key"], name="attempt_idempotency")]
        indexes = [models.Index(fields=["learner", "created_at"]), models.Index(fields=["session", "created_at"])]


class HintTurn(models.Model):
    """One hint shown to a learner: a rung of the authored ladder (the Hint button, without the tutor), or a turn
    of the Socratic tutor on the practice page: the next level (Help) or its answer to the learner's message.

    A tutor turn is stored before the model is asked (`finished_at` empty: still being written) and completed
    with what the learner was shown and how it was made, so that a crash mid-reply leaves a trace, not a gap."""

    class Source(models.TextChoices):
        AUTHORED = "authored", "Authored ladder"
        MODEL = "model", "Tutor model"
        SCAFFOLD = "scaffold", "Generic scaffolding move"
        MIXED = "mixed", "Tutor model, finished with an authored hint"

    class Action(models.TextChoices):
        HINT = "hint", "Next rung of the authored ladder"
        HELP = "help", "Next level from the tutor"
        REPLY = "reply", "The tutor's answer to the learner's message"

    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hint_turns")
    session = models.ForeignKey(PracticeSession, on_delete=models.CASCADE, related_name="hint_turns")
    step = models.ForeignKey("knowledge.Step", on_delete=models.CASCADE, related_name="hint_turns")
    level = models.PositiveIntegerField(help_text="1 for the first rung.")
    kind = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.AUTHORED)
    text = models.TextField()
    first_action = models.BooleanField(default=False)
    mastery_change = models.JSONField(default=dict, blank=True)
    client_key = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.HINT)
    learner_message = models.TextField(blank=True, help_text="What the learner wrote to the tutor, if anything.")
    model = models.CharField(max_length=100, blank=True, help_text="The model asked for this turn ('' if none).")
    first_sentence_s = models.FloatField(
        null=True, blank=True, help_text="Seconds until the model's first sentence passed the guard."
    )
    seconds = models.FloatField(null=True, blank=True, help_text="Seconds the whole reply took.")
    candidates = models.JSONField(
        default=list, blank=True, help_text="The model's replies tried: [{text, reasons}], reasons from the guard."
    )
    fallback_reason = models.CharField(max_length=300, blank=True, help_text="Why the model did not answer.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the tutor is writing.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "client_key"], name="hint_idempotency")]
        indexes = [
            models.Index(fields=["learner", "created_at"]),
            models.Index(fields=["session", "step", "created_at"]),
        ]


class Selection(models.Model):
    """One item served, and why: the policy's choice with the candidates it chose among and the probability
    it gave each, so that another policy can be evaluated off-policy on the log. Written in the same
    transaction that puts the item in front of the learner."""

    session = models.ForeignKey(PracticeSession, on_delete=models.CASCADE, related_name="selections")
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="selections")
    classroom = models.ForeignKey(
        Classroom, null=True, blank=True, on_delete=models.SET_NULL, related_name="selections"
    )
    item = models.ForeignKey("knowledge.Item", on_delete=models.CASCADE, related_name="selections")
    skill = models.ForeignKey("knowledge.Skill", on_delete=models.CASCADE, related_name="selections")
    policy = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, help_text="review, new, practice, repeat or goal.")
    reason = models.CharField(max_length=300)
    candidates = models.JSONField(default=list, help_text="Item ids the policy chose among.")
    probabilities = models.JSONField(default=list, help_text="The probability it gave each candidate.")
    seed = models.PositiveBigIntegerField(help_text="The policy's random seed: the choice can be replayed.")
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["classroom", "created_at"]),
            models.Index(fields=["learner", "created_at"]),
        ]

    def __str__(self):
        return f"{self.learner} {self.kind} item {self.item_id} ({self.policy})"


class AuditEvent(models.Model):
    """A change a teacher or admin made to someone else's account or enrolment (a password reset, a learner
    moved or removed, a class archived): who did what to whom, and when. Kept when the people are deleted."""

    class Action(models.TextChoices):
        RESET_PASSWORD = "reset-password", "Reset a learner's password"
        MOVE_LEARNER = "move-learner", "Moved a learner to another class"
        REMOVE_LEARNER = "remove-learner", "Removed a learner from a class"
        ARCHIVE_CLASS = "archive-class", "Archived a class"
        RESTORE_CLASS = "restore-class", "Restored an archived class"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="audit_actions"
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    classroom = models.ForeignKey(Classroom, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_subjects"
    )
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["classroom", "-created_at"], name="audit_classroom_recent")]

    def __str__(self):
        return f"{self.actor} {self.action} {self.subject or self.classroom} at {self.created_at:%Y-%m-%d %H:%M}"


class ResearchShare(models.Model):
    """A teacher's class, or (by an admin) a whole course, shared with a researcher: what their exports may read.
    Exports are pseudonymous; only an admin's share may include the learners' identities."""

    researcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="research_shares"
    )
    classroom = models.ForeignKey(
        Classroom, null=True, blank=True, on_delete=models.CASCADE, related_name="research_shares"
    )
    course = models.ForeignKey(
        "knowledge.Course", null=True, blank=True, on_delete=models.CASCADE, related_name="research_shares"
    )
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    include_identities = models.BooleanField(
        default=False, help_text="Usernames and learners' own messages in exports (an admin's decision only)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(classroom__isnull=False, course__isnull=True)
                | models.Q(classroom__isnull=True, course__isnull=False),
                name="share_class_or_course",
            ),
            models.UniqueConstraint(fields=["researcher", "classroom"], name="share_class_once"),
            models.UniqueConstraint(fields=["researcher", "course"], name="share_course_once"),
        ]

    def __str__(self):
        return f"{self.classroom or self.course} shared with {self.researcher}"


class ExportJob(models.Model):
    """One export of the practice log a researcher asked for: its filters, progress, and the file, which can be
    downloaded by that researcher until it expires."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    researcher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=16)
    filters = models.JSONField(default=dict, blank=True, help_text="{courses, classrooms, since, until, study}")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    rows = models.PositiveBigIntegerField(default=0)
    file = models.CharField(max_length=300, blank=True, help_text="Path of the file under the exports folder.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["researcher", "-created_at"], name="export_job_recent")]

    def __str__(self):
        return f"{self.format} export #{self.pk} for {self.researcher}"
