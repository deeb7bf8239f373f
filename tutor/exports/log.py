"""The interaction log as exports read it: one query over attempts and hint turns, streamed in learner and time
order, plus the (small) course content the rows refer to.

Every export format is a view of the same stream, so they agree with one another. The query is read from a
database cursor in chunks (a server-side cursor on PostgreSQL), never loaded whole: memory stays flat however
long the log is. Rows go straight from the cursor, without Django's per-row model conversion (a log has
millions of rows); `LogEvent` finishes the conversion of the few values that need it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connections
from django.db.models import BooleanField, CharField, DateTimeField, F, IntegerField, OuterRef, Q, Subquery, Value

from knowledge.models import Course, Item, ItemSkill, Skill, Step
from tutor.models import Attempt, Classroom, HintTurn, Selection

CHUNK_ROWS = 5000


@dataclass
class LogFilter:
    """Which part of the log to read. `scope_*` is what the asker may see (None: everything, for admins and the
    command line); `courses`, `classrooms`, `since`, `until` narrow it further. Dates are aware datetimes;
    `until` is exclusive."""

    courses: list[int] | None = None
    classrooms: list[int] | None = None
    since: datetime | None = None
    until: datetime | None = None
    scope_courses: list[int] | None = None
    scope_classrooms: list[int] | None = None

    def q(self, prefix: str = "") -> Q:
        """The filter on Attempt (prefix '') or HintTurn (prefix 'step__', for the item's course)."""
        query = Q()
        if self.scope_courses is not None or self.scope_classrooms is not None:
            query &= Q(**{f"{prefix}item__course_id__in": self.scope_courses or []}) | Q(
                session__classroom_id__in=self.scope_classrooms or []
            )
        if self.courses:
            query &= Q(**{f"{prefix}item__course_id__in": self.courses})
        if self.classrooms:
            query &= Q(session__classroom_id__in=self.classrooms)
        if self.since:
            query &= Q(created_at__gte=self.since)
        if self.until:
            query &= Q(created_at__lt=self.until)
        return query


# The columns of the stream, in order (the union's two halves name them alike).
COLUMNS = (
    "kind",
    "id",
    "learner_id",
    "session_id",
    "classroom_id",
    "item_id",
    "step_id",
    "created_at",
    "started_at",
    "correct",
    "level",
    "first_action",
    "mastery_change",
    "answer",
    "text",
    "item_version",
    "source",
    "model",
    "action",
    "message",
    "policy",
    "session_started",
    "session_ended",
)


class LogEvent:
    """One attempt (kind 'attempt') or hint turn (kind 'hint'). `correct` is None for a hint; `level` is the hint
    rungs seen before answering (attempt) or the rung shown (hint)."""

    __slots__ = COLUMNS

    def __init__(self, row: tuple):
        (
            self.kind, self.id, self.learner_id, self.session_id, self.classroom_id, self.item_id, self.step_id,
            self.created_at, self.started_at, self.correct, self.level, self.first_action, self.mastery_change,
            self.answer, self.text, self.item_version, self.source, self.model, self.action, self.message,
            self.policy, self.session_started, self.session_ended,
        ) = row  # fmt: skip
        self.created_at = _moment(self.created_at)
        self.started_at = _moment(self.started_at)
        self.session_started = _moment(self.session_started)
        self.session_ended = _moment(self.session_ended)
        if self.correct is not None:
            self.correct = bool(self.correct)
        self.first_action = bool(self.first_action)
        change = self.mastery_change
        self.mastery_change = json.loads(change) if isinstance(change, str | bytes) else (change or {})

    @property
    def is_hint(self) -> bool:
        return self.kind == "hint"


def log_queryset(log_filter: LogFilter):
    """The union of attempts and hint turns, ordered by learner, time, kind and id: one query."""

    def policy(item_ref: str):
        # The scheduling policy that served this item in this session: the last selection before the event.
        return Subquery(
            Selection.objects.filter(
                learner_id=OuterRef("learner_id"),
                session_id=OuterRef("session_id"),
                item_id=OuterRef(item_ref),
                created_at__lte=OuterRef("created_at"),
            )
            .order_by("-created_at")
            .values("policy")[:1],
            output_field=CharField(),
        )

    attempts = (
        Attempt.objects.filter(log_filter.q())
        .annotate(
            x_kind=Value("attempt", CharField()),
            x_classroom=F("session__classroom_id"),
            x_level=F("hint_level"),
            x_text=F("feedback"),
            x_source=Value("", CharField()),
            x_model=Value("", CharField()),
            x_action=Value("answer", CharField()),
            x_message=Value("", CharField()),
            x_policy=policy("item_id"),
            x_session_started=F("session__started_at"),
            x_session_ended=F("session__ended_at"),
        )
        .values_list(
            "x_kind",
            "id",
            "learner_id",
            "session_id",
            "x_classroom",
            "item_id",
            "step_id",
            "created_at",
            "started_at",
            "correct",
            "x_level",
            "first_action",
            "mastery_change",
            "raw_answer",
            "x_text",
            "item_version",
            "x_source",
            "x_model",
            "x_action",
            "x_message",
            "x_policy",
            "x_session_started",
            "x_session_ended",
        )
    )
    hints = (
        HintTurn.objects.filter(log_filter.q("step__"))
        .annotate(
            x_kind=Value("hint", CharField()),
            x_classroom=F("session__classroom_id"),
            x_item=F("step__item_id"),
            x_started=Value(None, DateTimeField()),
            x_correct=Value(None, BooleanField()),
            x_answer=Value("", CharField()),
            x_version=Value(None, IntegerField()),
            x_policy=policy("step__item_id"),
            x_session_started=F("session__started_at"),
            x_session_ended=F("session__ended_at"),
        )
        .values_list(
            "x_kind",
            "id",
            "learner_id",
            "session_id",
            "x_classroom",
            "x_item",
            "step_id",
            "created_at",
            "x_started",
            "x_correct",
            "level",
            "first_action",
            "mastery_change",
            "x_answer",
            "text",
            "x_version",
            "source",
            "model",
            "action",
            "learner_message",
            "x_policy",
            "x_session_started",
            "x_session_ended",
        )
    )
    return attempts.union(hints, all=True).order_by("learner_id", "created_at", "x_kind", "id")


def count_log(log_filter: LogFilter) -> int:
    return Attempt.objects.filter(log_filter.q()).count() + HintTurn.objects.filter(log_filter.q("step__")).count()


def stream_log(log_filter: LogFilter, chunk: int = CHUNK_ROWS) -> Iterator[LogEvent]:
    queryset = log_queryset(log_filter)
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    connection = connections[queryset.db]
    with connection.chunked_cursor() as cursor:  # server-side on PostgreSQL: rows arrive chunk by chunk
        if connection.vendor == "postgresql":
            _fast_time_loader(cursor)
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            for row in rows:
                yield LogEvent(row)


def _fast_time_loader(cursor) -> None:
    """Django reads PostgreSQL's timestamptz with a loader of its own in pure Python; psycopg's (compiled, with
    psycopg[binary]) gives the same aware datetimes several times faster, which counts on a million rows."""
    from psycopg.types.datetime import TimestamptzLoader

    cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)


def _moment(value) -> datetime | None:
    """A stored datetime as an aware UTC datetime (SQLite gives naive UTC, as text or parsed)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC) if value.utcoffset() or value.tzinfo is not UTC else value


@dataclass
class StepInfo:
    item_id: int
    position: int
    name: str  # "step-1", unique within its item
    ladder_length: int  # authored hint rungs
    skills: list[int]  # the step's skills, or its item's


@dataclass
class Content:
    """The course content the log refers to: small next to the log (it grows with courses, not with learners)."""

    courses: dict[int, str] = field(default_factory=dict)  # id -> slug
    items: dict[int, tuple] = field(default_factory=dict)  # id -> (course id, slug, title, template, steps)
    steps: dict[int, StepInfo] = field(default_factory=dict)
    skills: dict[int, tuple] = field(default_factory=dict)  # id -> (slug, name)
    skill_by_slug: dict[tuple[int, str], int] = field(default_factory=dict)  # (course id, slug) -> id
    skill_order: dict[int, int] = field(default_factory=dict)  # id -> rank in (course, position, slug) order
    conditions: dict[int, str] = field(default_factory=dict)  # classroom id -> study condition

    def skill_names(self, step_id: int) -> list[str]:
        return [self.skills[s][1] for s in self.steps[step_id].skills]

    def changed_skills(self, course_id: int, change: dict) -> list[tuple[int, float, float]]:
        """(skill id, before, after) for each skill in a mastery change, in the step's skill order."""
        out = []
        for slug, values in change.items():
            skill = self.skill_by_slug.get((course_id, slug))
            if skill is not None and isinstance(values, list | tuple) and len(values) == 2:
                out.append((skill, float(values[0]), float(values[1])))
        out.sort(key=lambda change: self.skill_order.get(change[0], 0))  # jsonb does not keep key order
        return out


def load_content(log_filter: LogFilter) -> Content:
    """Content of every course the filter can reach (all courses when it is unscoped)."""
    course_ids = _reachable_courses(log_filter)
    content = Content()
    content.courses = dict(Course.objects.filter(pk__in=course_ids).values_list("id", "slug"))
    step_counts: dict[int, int] = {}
    for item_id in Step.objects.filter(item__course_id__in=course_ids).values_list("item_id", flat=True):
        step_counts[item_id] = step_counts.get(item_id, 0) + 1
    for pk, course_id, slug, title, template in Item.objects.filter(course_id__in=course_ids).values_list(
        "id", "course_id", "slug", "title", "template"
    ):
        content.items[pk] = (course_id, slug, title, template, step_counts.get(pk, 0))
    skills = Skill.objects.filter(course_id__in=course_ids).order_by("course_id", "position", "slug")
    for rank, (pk, course_id, slug, name) in enumerate(skills.values_list("id", "course_id", "slug", "name")):
        content.skills[pk] = (slug, name)
        content.skill_by_slug[(course_id, slug)] = pk
        content.skill_order[pk] = rank
    item_skills: dict[int, list[int]] = {}
    for item_id, skill_id in (
        ItemSkill.objects.filter(item__course_id__in=course_ids)
        .order_by("skill__position", "skill__slug")
        .values_list("item_id", "skill_id")
    ):
        item_skills.setdefault(item_id, []).append(skill_id)
    step_skills: dict[int, list[int]] = {}
    for step_id, skill_id in (
        Step.skills.through.objects.filter(step__item__course_id__in=course_ids)
        .order_by("skill__position", "skill__slug")
        .values_list("step_id", "skill_id")
    ):
        step_skills.setdefault(step_id, []).append(skill_id)
    for pk, item_id, position, hints in Step.objects.filter(item__course_id__in=course_ids).values_list(
        "id", "item_id", "position", "hints"
    ):
        hints = json.loads(hints) if isinstance(hints, str) else hints
        content.steps[pk] = StepInfo(
            item_id,
            position,
            f"step-{position + 1}",
            len(hints or []),
            step_skills.get(pk) or item_skills.get(item_id, []),
        )
    content.conditions = dict(Classroom.objects.filter(course_id__in=course_ids).values_list("id", "condition"))
    return content


def _reachable_courses(log_filter: LogFilter) -> list[int]:
    courses = Course.objects.all()
    if log_filter.scope_courses is not None or log_filter.scope_classrooms is not None:
        via_classes = Classroom.objects.filter(pk__in=log_filter.scope_classrooms or []).values("course_id")
        courses = courses.filter(Q(pk__in=log_filter.scope_courses or []) | Q(pk__in=via_classes))
    if log_filter.courses:
        courses = courses.filter(pk__in=log_filter.courses)
    if log_filter.classrooms:
        courses = courses.filter(pk__in=Classroom.objects.filter(pk__in=log_filter.classrooms).values("course_id"))
    # Sessions of a class may practise the class's course only, but a session without a class may reach any course.
    return list(courses.values_list("id", flat=True))


__all__ = ["COLUMNS", "Content", "LogEvent", "LogFilter", "count_log", "load_content", "stream_log"]
