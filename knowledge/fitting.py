"""Refitting a course's knowledge-tracing model from its practice log, off the hot path.

The log is what the online update saw: every first action on a step, an answer (correct or not) or a
hint request (counted as not correct), on each skill the update touched. `course_log` turns it into an
`Interactions` table for `knowledge.tracing`; `run_fit` fits a model on it, scores it on learners it never
saw, stores a `TracingModel` version and, when asked, activates it: the per-skill parameters are copied onto
the skills (where the online update reads them) and every learner's mastery is replayed with them.
`manage.py fit_tracing` and the Celery task `knowledge.tasks.refit_tracing_model` both call `run_fit`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from knowledge.models import Course, MasteryState, Prerequisite, Skill, TracingModel
from knowledge.tracing.bkt import BatchedBKT, pick_device
from knowledge.tracing.data import Interactions, merge_question_attempts
from knowledge.tracing.hierarchical import TRAITS, HierarchicalKT, describe_learner
from knowledge.tracing.metrics import all_metrics
from tutor.models import Attempt, HintTurn
from tutor.scheduling import MASTERY_THRESHOLD

# Model families the app can fit and apply. Each yields per-skill BKT parameters for the online update; the
# hierarchical one gives those of a typical learner on a question of average difficulty, and adds each
# learner's traits and the prerequisite effect, with intervals, for teachers.
FITTABLE = {
    "bkt": "BKT per skill, fitted by EM",
    "bkt-forget": "BKT per skill with forgetting, fitted by EM",
    "hier": "Hierarchical Bayesian model (learner traits, prerequisite effect), fitted by SVI",
}
MAX_GUESS_SLIP = 0.499  # the online update's guess and slip stay below 1/2 (above it the states swap meaning)
MIN_SKILL_ROWS = 20  # a skill seen fewer times keeps its current (authored or earlier) parameters
HOLDOUT_SHARE = 0.2  # of the learners, held out (chosen by a seeded shuffle) to score the fit
MIN_HOLDOUT_LEARNERS = 3
PARAM_FIELDS = ("p_init", "p_learn", "p_guess", "p_slip", "p_forget")
_TENSOR_NAMES = ("prior", "learn", "guess", "slip", "forget")  # BatchedBKT's names for PARAM_FIELDS

Progress = Callable[[str, float], None]


class FitError(ValueError):
    """The fit cannot run (unknown model, no data); the message says why."""


@dataclass
class CourseLog:
    interactions: Interactions
    learner_ids: np.ndarray  # user pk per learner index
    skills: list[Skill]  # per skill index, in course order
    prerequisites: np.ndarray  # [edges, 2] (prerequisite, skill) skill indices
    event_times: list[datetime]  # per question attempt (the `attempt` column)
    first: datetime | None
    last: datetime | None


def course_log(course: Course, since: datetime | None = None, until: datetime | None = None,
               learner_ids=None) -> CourseLog:
    """The course's first actions in time order per learner, one row per (event, skill)."""
    skills = list(course.skills.order_by("position", "slug"))
    skill_index = {s.slug: i for i, s in enumerate(skills)}
    window = {}
    if since:
        window["created_at__gte"] = since
    if until:
        window["created_at__lt"] = until
    if learner_ids is not None:
        window["learner_id__in"] = list(learner_ids)
    attempts = Attempt.objects.filter(item__course=course, first_action=True, **window).values_list(
        "learner_id", "created_at", "pk", "correct", "mastery_change", "step_id"
    )
    hints = HintTurn.objects.filter(step__item__course=course, first_action=True, **window).values_list(
        "learner_id", "created_at", "pk", "mastery_change", "step_id"
    )
    events = [(who, _moment(when), pk, bool(ok), _json(change), step)
              for who, when, pk, ok, change, step in _fetch(attempts)]
    events += [(who, _moment(when), pk, False, _json(change), step) for who, when, pk, change, step in _fetch(hints)]
    events.sort(key=lambda e: (e[0], e[1], e[2]))  # the order the online update applied them in

    learners: dict[int, int] = {}
    steps: dict[int, int] = {}
    user, seq, skill, correct, problem, attempt, times = [], [], [], [], [], [], []
    for number, (who, when, _, ok, change, step) in enumerate(events):
        u = learners.setdefault(who, len(learners))
        p = steps.setdefault(step, len(steps))
        times.append(when)
        for slug in change:
            if slug in skill_index:
                user.append(u)
                seq.append(number)
                skill.append(skill_index[slug])
                correct.append(int(ok))
                problem.append(p)
                attempt.append(number)
    log = Interactions(user=user, seq=seq, skill=skill, correct=correct, problem=problem, attempt=attempt,
                       n_users=len(learners), n_skills=len(skills), n_problems=len(steps))
    edges = Prerequisite.objects.filter(skill__course=course).values_list("prerequisite__slug", "skill__slug")
    prerequisites = np.array([(skill_index[a], skill_index[b]) for a, b in edges], dtype=np.int64).reshape(-1, 2)
    return CourseLog(log, np.array(list(learners), dtype=np.int64), skills, prerequisites, times,
                     events[0][1] if events else None, max((e[1] for e in events), default=None))


def queue_fit(course: Course, model: str = "bkt", since=None, until=None, requested_by=None) -> TracingModel:
    """A new queued version; `run_fit` (in a task or a command) does the work."""
    if model not in FITTABLE:
        raise FitError(f"Unknown model {model!r}; choose from {', '.join(FITTABLE)}.")
    for _ in range(5):  # two requests at once may pick the same version number: the constraint decides
        version = (course.tracing_models.order_by("-version").values_list("version", flat=True).first() or 0) + 1
        try:
            with transaction.atomic():
                return TracingModel.objects.create(course=course, version=version, model=model, data_from=since,
                                                   data_to=until, requested_by=requested_by)
        except IntegrityError:
            continue
    raise FitError("Could not allocate a version number; try again.")


def run_fit(record: TracingModel, *, device: str = "auto", activate: bool = True,
            progress: Progress | None = None) -> TracingModel:
    """Fit `record.model` on the course's log in the record's data window, then score, store and (optionally)
    activate it. Progress goes to the record (so pages can show it) and to `progress(stage, fraction)`."""
    reporter = _Reporter(record, progress)
    started = time.perf_counter()
    record.status, record.error = TracingModel.Status.RUNNING, ""
    reporter("Loading the practice log", 0.0, force=True)
    try:
        log = course_log(record.course, record.data_from, record.data_to)
        if len(log.interactions) == 0:
            raise FitError("There are no attempts to fit in this course and data window.")
        chosen = pick_device(device)
        record.metrics = _held_out_metrics(record.model, log, chosen, reporter)
        reporter("Fitting on all learners", 0.45)
        fitted = _new_model(record.model, chosen, log).fit(
            log.interactions, progress=reporter.steps("Fitting on all learners", 0.45, 0.8)
        )
        record.parameters = _skill_parameters(fitted, log)
        record.posterior = _posterior(fitted, log)
        record.state = fitted.state_dict()
        record.train_rows, record.learners = len(log.interactions), log.interactions.n_users
        whole_log = record.data_from is None and record.data_to is None
        record.data_from, record.data_to = record.data_from or log.first, record.data_to or log.last
        record.device = str(chosen)
        if activate:
            reporter("Replaying every learner's mastery", 0.8, force=True)
            activate_model(record, log=log if whole_log else None)
        record.status = TracingModel.Status.DONE
        record.duration_seconds = time.perf_counter() - started
        record.finished_at = timezone.now()
        reporter("Done", 1.0, force=True)
    except Exception as error:
        record.status, record.error = TracingModel.Status.FAILED, str(error) or type(error).__name__
        record.finished_at = timezone.now()
        record.duration_seconds = time.perf_counter() - started
        record.save()
        raise
    return record


def activate_model(record: TracingModel, log: CourseLog | None = None) -> None:
    """Make this version the one the online update uses, and replay all mastery with it (from `log` when it is
    the course's whole log, loaded just before)."""
    skills = {s.slug: s for s in record.course.skills.all()}
    with transaction.atomic():
        TracingModel.objects.filter(course=record.course, active=True).exclude(pk=record.pk).update(active=False)
        record.active = True
        record.save()
        for slug, values in record.parameters.items():
            if slug in skills:
                for field in PARAM_FIELDS:
                    setattr(skills[slug], field, values[field])
        Skill.objects.bulk_update(list(skills.values()), PARAM_FIELDS)
        Course.objects.filter(pk=record.course_id).update(updated_at=timezone.now())  # new priors for caches
        replay_mastery(record.course, log=log)


def replay_mastery(course: Course, learners=None, log: CourseLog | None = None) -> dict[int, dict[str, float]]:
    """Recompute mastery from the whole log with the skills' current parameters, exactly as the online
    update would have, for all learners of the course or the given ones; store and return it as
    {learner pk: {skill slug: P(known)}}. `log`: the course's whole log if already loaded (for all learners);
    it is used only if the log still has as many events as when it was read."""
    learner_ids = None if learners is None else [getattr(who, "pk", who) for who in learners]
    with transaction.atomic():
        # Lock the stored states first, so that an answer arriving now waits for the replay, then applies.
        locked = MasteryState.objects.select_for_update().filter(skill__course=course)
        if learner_ids is not None:
            locked = locked.filter(learner_id__in=learner_ids)
        list(locked.values_list("pk", flat=True))
        if log is None or learner_ids is not None or _event_count(course) != len(log.event_times):
            log = course_log(course, learner_ids=learner_ids)
        data = log.interactions
        if len(data) == 0:
            return {}
        current = {s.pk: s for s in course.skills.all()}  # the log's copies may predate an activation
        _, after = _skills_model([current[s.pk] for s in log.skills]).trace(data)
        # The last row of each (learner, skill) holds its mastery now; the first row at or over the threshold
        # says when it was mastered.
        key = data.user * data.n_skills + data.skill
        order = np.lexsort((data.seq, key))
        key, after_sorted = key[order], after[order]
        last = np.flatnonzero(np.append(key[1:] != key[:-1], True))
        first = np.concatenate([[0], last[:-1] + 1])
        counts = last - first + 1
        correct_counts = np.add.reduceat(data.correct[order], first)
        mastered = np.flatnonzero(after_sorted >= MASTERY_THRESHOLD)
        mastered_keys, earliest = np.unique(key[mastered], return_index=True)  # rows are in time order per key
        first_mastered = dict(zip(mastered_keys.tolist(), mastered[earliest].tolist(), strict=True))
        time_of = [log.event_times[a] for a in data.attempt[order].tolist()]
        adapt = connection.ops.adapt_datetimefield_value
        states, result = [], {}
        for end, n, n_correct in zip(last.tolist(), counts.tolist(), correct_counts.tolist(), strict=True):
            k = int(key[end])
            u, s = divmod(k, data.n_skills)
            learner_id, skill = int(log.learner_ids[u]), log.skills[s]
            mastered_row = first_mastered.get(k)
            p_known = float(after_sorted[end])
            states.append((learner_id, skill.pk, p_known, n, n_correct, adapt(time_of[end]),
                           None if mastered_row is None else adapt(time_of[mastered_row])))
            result.setdefault(learner_id, {})[skill.slug] = p_known
        _upsert_mastery(states)
    return result


def _event_count(course: Course) -> int:
    """First actions in the course's log (a changed count means the log changed since it was read)."""
    return (Attempt.objects.filter(item__course=course, first_action=True).count()
            + HintTurn.objects.filter(step__item__course=course, first_action=True).count())


def _upsert_mastery(states: list[tuple], batch: int = 1000) -> None:
    """Insert or update (learner, skill) mastery rows in bulk. PostgreSQL takes them by COPY into a temporary
    table and one INSERT … SELECT (binding hundreds of thousands of parameters costs more than the write);
    SQLite by multi-row INSERTs. Either way far cheaper than model instances or a statement per row."""
    columns = "learner_id, skill_id, p_known, observations, correct, updated_at, mastered_at"
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns.split(", ")[2:])
    table = MasteryState._meta.db_table
    upsert = f"ON CONFLICT (learner_id, skill_id) DO UPDATE SET {updates}"
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"CREATE TEMPORARY TABLE incoming_mastery ON COMMIT DROP AS SELECT {columns} FROM {table} "
                           "WITH NO DATA")
            with cursor.cursor.copy(f"COPY incoming_mastery ({columns}) FROM STDIN") as copy:
                for row in states:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_mastery {upsert}")
            cursor.execute("DROP TABLE incoming_mastery")
            return
        for start in range(0, len(states), batch):
            rows = states[start:start + batch]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values} {upsert}",
                           [value for row in rows for value in row])


# ---- helpers ----------------------------------------------------------------------------------------------------

def _fetch(queryset) -> list[tuple]:
    """A values_list query's rows straight from the database cursor: a log has millions of rows, and Django's
    per-row converters cost more than the fit itself. `_moment` and `_json` finish the conversion."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _moment(value) -> datetime:
    """A stored datetime as an aware datetime (SQLite gives Django's naive UTC, as text or parsed)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _new_model(name: str, device, log: CourseLog):
    if name == "hier":
        return HierarchicalKT(prerequisites=log.prerequisites, device=device)
    return BatchedBKT(device=device, forget=name == "bkt-forget")


def _held_out_metrics(name: str, log: CourseLog, device, reporter: _Reporter) -> dict:
    """Fit on most learners, predict a held-out share of them from their own past, score per question."""
    data = log.interactions
    present = np.flatnonzero(np.bincount(data.user, minlength=data.n_users) > 0)
    n_test = max(MIN_HOLDOUT_LEARNERS, round(HOLDOUT_SHARE * len(present)))
    if len(present) < 2 * n_test:
        return {"note": f"Too few learners to hold {n_test} out; not scored."}
    test_users = np.zeros(data.n_users, dtype=bool)
    test_users[np.random.default_rng(0).permutation(present)[:n_test]] = True
    train, test = data.subset(~test_users), data.subset(test_users)
    reporter("Fitting on the other learners", 0.05)
    model = _new_model(name, device, log).fit(train, progress=reporter.steps("Fitting on the other learners",
                                                                             0.05, 0.4))
    reporter("Scoring the held-out learners", 0.4)
    labels, probs = merge_question_attempts(test, model.predict(test))
    return {**all_metrics(labels, probs), "held_out_learners": n_test,
            "held_out_attempts": len(labels), "train_rows": len(train)}


def _skill_parameters(model, log: CourseLog) -> dict:
    """{skill slug: parameters}: fitted where the skill has enough rows, otherwise its current values."""
    if isinstance(model, BatchedBKT):
        fitted = model.params()
    else:  # the hierarchical model's skills, for a typical learner and question, as BKT parameters
        means = {name: values["mean"] for name, values in model.skill_params().items()}
        fitted = {"prior": means["init"], "learn": means["learn"], "guess": np.minimum(means["guess"], MAX_GUESS_SLIP),
                  "slip": np.minimum(means["slip"], MAX_GUESS_SLIP), "forget": np.zeros(len(log.skills))}
    rows = np.bincount(log.interactions.skill, minlength=len(log.skills))
    out = {}
    for i, skill in enumerate(log.skills):
        enough = rows[i] >= MIN_SKILL_ROWS
        values = {field: (float(fitted[name][i]) if enough else getattr(skill, field))
                  for field, name in zip(PARAM_FIELDS, _TENSOR_NAMES, strict=True)}
        out[skill.slug] = {**values, "rows": int(rows[i]), "fitted": bool(enough)}
    return out


def _posterior(model, log: CourseLog) -> dict:
    """The hierarchical model's readable posterior: the prerequisite effect, the population's spread, and per
    learner (by user pk) their traits as [mean, low, high] with words such as "learns fast, forgets slowly"."""
    if not isinstance(model, HierarchicalKT):
        return {}
    traits = model.traits()
    learners = {}
    for i, user in enumerate(traits["users"]):
        learners[str(int(log.learner_ids[user]))] = {
            "words": describe_learner(traits, i),
            **{name: [float(traits[name][k][i]) for k in ("mean", "lo", "hi")] for name in TRAITS},
        }
    return {"prerequisite_effect": model.prerequisite_effect(), "population": model.population(),
            "learners": learners}


def _skills_model(skills: list[Skill]) -> BatchedBKT:
    """A BatchedBKT holding the skills' current parameters, to run the exact online filter in bulk."""
    model = BatchedBKT(device="cpu", forget=True)
    tensors = {name: [float(getattr(s, field)) for s in skills] for field, name in
               zip(PARAM_FIELDS, _TENSOR_NAMES, strict=True)}
    state = {"kind": "batched-bkt", "config": dict(model.config), "init": dict(model.init), "tensors": tensors,
             "item_keys": [], "ability_edges": []}
    return model.load_state_dict(state)


class _Reporter:
    """Progress to the record (throttled database writes) and to an optional callback."""

    def __init__(self, record: TracingModel, callback: Progress | None):
        self.record, self.callback, self.saved_at = record, callback, 0.0

    def __call__(self, stage: str, fraction: float, force: bool = False) -> None:
        self.record.stage, self.record.progress = stage, min(max(fraction, 0.0), 1.0)
        if self.callback:
            self.callback(stage, self.record.progress)
        if force or time.monotonic() - self.saved_at > 0.5:
            self.record.save()
            self.saved_at = time.monotonic()

    def steps(self, stage: str, start: float, end: float):
        """A fit's progress callback (EM iteration or SVI step, of at most `total`) mapped onto [start, end]."""
        def report(step, total, value):
            self(f"{stage}: step {step} of at most {total}", start + (end - start) * step / total)
        return report
