"""Import outside interaction logs as a course, its learners and their attempts, so the tracing engine can be
fitted on them (`manage.py import_logs`; see docs/exports.md).

Two formats: ASSISTments-style CSVs (the columns of the AKT-preprocessed `assist2009.csv.gz`: `user_id`,
`problem_id`, `skill_id`/`skill_name`, `correct`, optionally `seq_idx` or `order_id`, plain or gzipped) and
DataShop tab-delimited transaction files (`Anon Student Id`, `Time`, `Problem Name`, `Step Name`, `Outcome`, a
`KC (...)` column; `Session Id`, `Input`, `Problem View` when present).

The file is read twice, streaming: once to check every row and collect the content (problems, steps, skills,
learners), once to write the attempts in batches. A row that cannot be imported is reported with its line number
and why, and skipped; the rest is imported. Mapping choices worth knowing:
- ASSISTments expands a problem with several skills into consecutive rows, one per skill, with the same answer:
  such rows (same learner, problem and outcome, consecutive `seq_idx`, a skill not yet in the group) become one
  attempt on all those skills. Every ASSISTments row is a first attempt (its `correct` is first-attempt
  correctness). The files have no times: attempts get one second apart from 2000-01-01 UTC, in file order.
- In DataShop files, HINT transactions become hint requests, other outcomes answers; the first transaction on
  a step in a problem view is the first action. Times are read as UTC.
- Mastery before and after each first action is the BKT update with the new skills' default parameters, as the
  tutor's own online update records it; refit the course (`manage.py fit_tracing`) to learn parameters.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import transaction

from knowledge.models import Course, Item, ItemSkill, Skill, Step
from knowledge.tracing.bkt import BKTParams, mastery_after
from tutor.models import Attempt, HintTurn, PracticeSession, User

ASSISTMENTS_BASE_TIME = datetime(2000, 1, 1, tzinfo=UTC)
BATCH = 5000
MAX_REPORTED = 200  # bad rows listed one by one; beyond that only counted
SLUG_LENGTH = 100


class LogImportError(ValueError):
    """The file cannot be imported at all (unknown columns, course exists); the message says why."""


@dataclass
class Transaction:
    line: int
    learner: str
    session: str
    time: datetime
    problem: str
    step: str
    is_hint: bool
    correct: bool
    skills: list[tuple[str, str]]  # (key, name)
    answer: str = ""
    text: str = ""
    view: str = ""  # a problem view marker: a new value starts a new view
    timed: bool = True  # the file gave real times (ASSISTments files have none)


@dataclass
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    course: str
    format: str
    learners: int = 0
    attempts: int = 0
    hints: int = 0
    items: int = 0
    skills: int = 0
    rows_read: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    bad_row_count: int = 0

    def add_bad(self, bad: BadRow) -> None:
        self.bad_row_count += 1
        if len(self.bad_rows) < MAX_REPORTED:
            self.bad_rows.append(bad)

    def as_dict(self) -> dict:
        return {
            "course": self.course,
            "format": self.format,
            "rows_read": self.rows_read,
            "learners": self.learners,
            "items": self.items,
            "skills": self.skills,
            "attempts": self.attempts,
            "hints": self.hints,
            "bad_rows": self.bad_row_count,
            "bad_row_examples": [{"line": b.line, "reason": b.reason} for b in self.bad_rows],
        }


# ---------------------------------------------------------------- reading


def _open_text(path: Path):
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each data row; line 1 is the header."""
    with _open_text(path) as text:
        reader = csv.DictReader(text, delimiter=delimiter)
        if not reader.fieldnames:
            raise LogImportError(f"{path} is empty.")
        yield 0, {name.strip(): None for name in reader.fieldnames}  # the header, for the parser to check
        for row in reader:
            yield reader.line_num, row


def parse_assistments(path: Path) -> Iterator[Transaction | BadRow]:
    rows = _rows(path, ",")
    _, header = next(rows)
    missing = [c for c in ("user_id", "problem_id", "correct") if c not in header]
    if missing or not ({"skill_id", "skill_name"} & set(header)):
        raise LogImportError(
            f"{path.name} is not an ASSISTments-style CSV: it needs user_id, problem_id, correct and skill_id or "
            f"skill_name (missing: {', '.join(missing) or 'a skill column'})."
        )
    group: Transaction | None = None
    last_seq: int | None = None
    ordinal = 0
    for line, row in rows:
        user, problem = (row.get("user_id") or "").strip(), (row.get("problem_id") or "").strip()
        skill_id, skill_name = (row.get("skill_id") or "").strip(), row.get("skill_name") or ""
        correct, seq_text = (row.get("correct") or "").strip(), (row.get("seq_idx") or "").strip()
        reason = (
            "no user_id"
            if not user
            else "no problem_id"
            if not problem
            else "no skill (skill_id and skill_name are empty)"
            if not (skill_id or skill_name)
            else f"correct must be 0 or 1, not {correct!r}"
            if correct not in ("0", "1")
            else f"seq_idx is not a whole number: {seq_text!r}"
            if seq_text and not seq_text.isdigit()
            else None
        )
        if reason:
            yield BadRow(line, reason)
            continue
        seq = int(seq_text) if seq_text else None
        skill = (skill_id or skill_name.strip(), skill_name or skill_id)  # names as written: a round trip keeps them
        joins = (
            group is not None
            and group.learner == user
            and group.problem == problem
            and group.correct == (correct == "1")
            and skill[0] not in {k for k, _ in group.skills}
            and (seq is None or last_seq is None or seq == last_seq + 1)
        )
        last_seq = seq
        if joins:
            group.skills.append(skill)
            continue
        if group is not None:
            yield group
        ordinal += 1
        # Each ASSISTments row group is a first attempt at a problem: a view of its own.
        group = Transaction(
            line,
            user,
            user,
            ASSISTMENTS_BASE_TIME + timedelta(seconds=ordinal),
            problem,
            "step-1",
            False,
            correct == "1",
            [skill],
            view=str(ordinal),
            timed=False,
        )
    if group is not None:
        yield group


DATASHOP_REQUIRED = ("Anon Student Id", "Time", "Problem Name", "Step Name", "Outcome")
DATASHOP_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
CORRECT_OUTCOMES, INCORRECT_OUTCOMES = {"CORRECT", "OK"}, {"INCORRECT", "ERROR", "BUG"}


def _datashop_time(text: str) -> datetime | None:
    for pattern in DATASHOP_TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def parse_datashop(path: Path) -> Iterator[Transaction | BadRow]:
    rows = _rows(path, "\t")
    _, header = next(rows)
    missing = [c for c in DATASHOP_REQUIRED if c not in header]
    kc_column = "KC (Default)" if "KC (Default)" in header else next((c for c in header if c.startswith("KC (")), None)
    if missing or kc_column is None:
        raise LogImportError(
            f"{path.name} is not a DataShop transaction file: missing {', '.join(missing or ['a KC (...) column'])}."
        )
    for line, row in rows:
        learner, problem = (row.get("Anon Student Id") or "").strip(), (row.get("Problem Name") or "").strip()
        step, outcome = (row.get("Step Name") or "").strip(), (row.get("Outcome") or "").strip().upper()
        moment = _datashop_time((row.get("Time") or "").strip())
        names = [k.strip() for k in (row.get(kc_column) or "").split("~~") if k.strip()]
        reason = (
            "no Anon Student Id"
            if not learner
            else "no Problem Name"
            if not problem
            else "no Step Name"
            if not step
            else f"Time is not yyyy-MM-dd HH:mm:ss[.SSS]: {row.get('Time')!r}"
            if moment is None
            else f"Outcome must be CORRECT, INCORRECT or HINT, not {outcome!r}"
            if outcome not in CORRECT_OUTCOMES | INCORRECT_OUTCOMES | {"HINT"}
            else f"no skill in {kc_column}"
            if not names
            else None
        )
        if reason:
            yield BadRow(line, reason)
            continue
        yield Transaction(
            line,
            learner,
            (row.get("Session Id") or "").strip() or learner,
            moment,
            problem,
            step,
            outcome == "HINT",
            outcome in CORRECT_OUTCOMES,
            [(name, name) for name in names],
            answer=(row.get("Input") or "")[:200],
            text=(row.get("Feedback Text") or ""),
            view=(row.get("Problem View") or "").strip(),
        )


PARSERS: dict[str, Callable[[Path], Iterator[Transaction | BadRow]]] = {
    "assistments": parse_assistments,
    "datashop": parse_datashop,
}


def guess_format(path: Path) -> str:
    with _open_text(path) as text:
        first = text.readline()
    return "datashop" if "\t" in first and "Anon Student Id" in first else "assistments"


# ---------------------------------------------------------------- storing


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:SLUG_LENGTH] or "x"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base[: SLUG_LENGTH - len(str(n)) - 1]}-{n}"
    taken.add(slug)
    return slug


def import_log(
    path: str | Path,
    course_slug: str,
    title: str = "",
    file_format: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import one log file as a new course; raises LogImportError when the file or the course slug will not do."""
    path = Path(path)
    if not path.exists():
        raise LogImportError(f"No such file: {path}")
    file_format = guess_format(path) if file_format == "auto" else file_format
    if file_format not in PARSERS:
        raise LogImportError(f"Unknown format {file_format!r}; choose assistments or datashop.")
    if Course.objects.filter(slug=course_slug).exists():
        raise LogImportError(f"A course {course_slug!r} exists already: import into a new --course slug.")
    parse = PARSERS[file_format]
    report = ImportReport(course=course_slug, format=file_format)

    # Pass 1: check the rows and collect the content they refer to.
    skill_names: dict[str, str] = {}
    problems: dict[str, dict[str, list[str]]] = {}  # problem -> step name -> skill keys, in order of appearance
    learners: dict[str, None] = {}
    for record in parse(path):
        if isinstance(record, BadRow):
            report.add_bad(record)
            continue
        learners.setdefault(record.learner)
        step_skills = problems.setdefault(record.problem, {}).setdefault(record.step, [])
        for key, name in record.skills:
            skill_names.setdefault(key, name)
            if key not in step_skills:
                step_skills.append(key)
    if not learners:
        raise LogImportError(f"Nothing importable in {path.name}: {report.bad_row_count} bad rows.")

    with transaction.atomic():
        course = Course.objects.create(
            slug=course_slug,
            title=title or f"Imported log: {path.name}",
            description=f"Imported from {path.name} ({file_format}).",
        )
        taken: set[str] = set()
        skills = {
            key: Skill(course=course, slug=_slug(key, taken), name=name[:200], position=i)
            for i, (key, name) in enumerate(skill_names.items())  # in order of first appearance
        }
        Skill.objects.bulk_create(skills.values())
        taken = set()
        items = {
            problem: Item(
                course=course,
                slug=_slug(problem, taken),
                title=f"Problem {problem}"[:300],
                source=f"import:{path.name}"[:200],
            )
            for problem in problems
        }
        Item.objects.bulk_create(items.values(), batch_size=BATCH)
        steps: dict[tuple[str, str], Step] = {}
        for problem, named in problems.items():
            for position, name in enumerate(named):
                steps[(problem, name)] = Step(
                    item=items[problem],
                    position=position,
                    prompt=name[:1000],
                    answer_type="text",
                    answer={"type": "text", "value": ""},
                )
        Step.objects.bulk_create(steps.values(), batch_size=BATCH)
        ItemSkill.objects.bulk_create(
            [
                ItemSkill(item=items[p], skill=skills[k])
                for p, named in problems.items()
                for k in dict.fromkeys(k for keys in named.values() for k in keys)
            ],
            batch_size=BATCH,
        )
        step_links = Step.skills.through
        step_links.objects.bulk_create(
            [
                step_links(step=steps[(p, name)], skill=skills[k])
                for p, named in problems.items()
                for name, keys in named.items()
                for k in keys
            ],
            batch_size=BATCH,
        )
        users = _learners(course_slug, learners)
        report.learners, report.items, report.skills = len(users), len(items), len(skills)
        _write_events(parse(path), course, users, items, steps, skills, report, progress)
    return report


def _learners(prefix: str, keys: dict[str, None]) -> dict[str, User]:
    """One learner account per id in the file (usernames `prefix-id`, no usable password)."""
    usernames = {key: f"{prefix}-{key}"[:150] for key in keys}
    existing = {u.username: u for u in User.objects.filter(username__in=usernames.values())}
    new = [User(username=name, role=User.Role.LEARNER) for name in usernames.values() if name not in existing]
    for user in new:
        user.set_unusable_password()
    User.objects.bulk_create(new, batch_size=BATCH)
    found = {u.username: u for u in User.objects.filter(username__in=usernames.values())}
    return {key: found[name] for key, name in usernames.items()}


def _write_events(records, course, users, items, steps, skills, report, progress) -> None:
    params = {key: BKTParams(s.p_init, s.p_learn, s.p_guess, s.p_slip, s.p_forget) for key, s in skills.items()}
    sessions: dict[tuple[str, str], PracticeSession] = {}
    attempts: list[Attempt] = []
    hints: list[HintTurn] = []
    learner = None
    mastery_of: dict[str, dict[str, float]] = {}  # learner -> skill -> P(known): small, kept if rows interleave
    seen_steps: set = set()  # steps with a first action already, per problem view
    last_view: tuple | None = None  # (session, problem, marker, started)
    hint_levels: dict[tuple, int] = {}

    def flush():
        Attempt.objects.bulk_create(attempts, batch_size=BATCH)
        HintTurn.objects.bulk_create(hints, batch_size=BATCH)
        report.attempts += len(attempts)
        report.hints += len(hints)
        attempts.clear()
        hints.clear()
        if progress:
            progress(report.attempts + report.hints)

    for record in records:
        if isinstance(record, BadRow):
            continue
        report.rows_read += 1
        if record.learner != learner:
            learner, seen_steps, last_view, hint_levels = record.learner, set(), None, {}
            mastery = mastery_of.setdefault(learner, {})
        user = users[record.learner]
        session = sessions.get((record.learner, record.session))
        if session is None:
            session = sessions[(record.learner, record.session)] = PracticeSession.objects.create(
                learner=user, course=course, started_at=record.time, ended_at=record.time
            )
        session.ended_at = max(session.ended_at, record.time)
        # A new problem view: the file says so, or the learner moved to another problem (or session).
        if last_view is None or last_view[:3] != (record.session, record.problem, record.view):
            last_view = (record.session, record.problem, record.view, record.time)
        step_key = (*last_view, record.step)
        first = step_key not in seen_steps
        seen_steps.add(step_key)
        change = {}
        if first:
            for key, _ in record.skills:
                before = mastery.get(key, params[key].p_init)
                mastery[key] = mastery_after(before, record.correct and not record.is_hint, params[key])
                change[skills[key].slug] = [round(before, 6), round(mastery[key], 6)]
        step = steps[(record.problem, record.step)]
        if record.is_hint:
            hint_levels[step_key] = hint_levels.get(step_key, 0) + 1
            hints.append(
                HintTurn(
                    learner=user,
                    session=session,
                    step=step,
                    level=hint_levels[step_key],
                    kind="hint",
                    text=record.text,
                    first_action=first,
                    mastery_change=change,
                    client_key=f"import-{record.line}",
                    created_at=record.time,
                    finished_at=record.time,
                )
            )
        else:
            attempts.append(
                Attempt(
                    learner=user,
                    session=session,
                    item=items[record.problem],
                    step=step,
                    raw_answer=record.answer,
                    correct=record.correct,
                    hint_level=hint_levels.get(step_key, 0),
                    first_action=first,
                    mastery_change=change,
                    client_key=f"import-{record.line}",
                    started_at=last_view[3] if record.timed else None,
                    created_at=record.time,
                )
            )
        if len(attempts) + len(hints) >= BATCH:
            flush()
    flush()
    for session in sessions.values():
        PracticeSession.objects.filter(pk=session.pk).update(ended_at=session.ended_at)
