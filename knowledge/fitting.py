"""Refitting a course's knowledge-tracing model from its practice log, off the hot path.

The log is what the online update saw: every first action on a step, an answer (correct or not) or a
hint request (counted as not correct), on each skill the update touched. `course_log` turns it into an
`Interactions` table for `knowledge.tracing`; `run_fit` fits a model on it, scores it on learners it never
saw, stores a `TracingModel` version and, when asked, activates it: the per-skill parameters are copied onto
the skills (where the online update reads them) and every learner's mastery is replayed with them.
`manage.py fit_tracing` and the Celery task `knowledge.tasks.refit_tracing_model` both call `run_fit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from knowledge.models import Course, MasteryState, Skill, TracingModel
from knowledge.tracing.bkt import BatchedBKT, pick_device
from knowledge.tracing.data import Interactions, merge_question_attempts
from knowledge.tracing.metrics import all_metrics
from tutor.models import Attempt, HintTurn
from tutor.scheduling import MASTERY_THRESHOLD

# Model families the app can fit and apply. Each must yield per-skill BKT parameters for the online update.
FITTABLE = {
    "bkt": {},
    "bkt-forget": {"forget": True},
}
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
    fields = ("learner_id", "created_at", "pk", "correct", "mastery_change", "step_id")
    attempts = Attempt.objects.filter(item__course=course, first_action=True, **window).values_list(*fields)
    hints = HintTurn.objects.filter(step__item__course=course, first_action=True, **window).values_list(
        "learner_id", "created_at", "pk", "first_action", "mastery_change", "step_id"
    )
    events = [(who, when, pk, bool(ok), change, step) for who, when, pk, ok, change, step in attempts]
    events += [(who, when, pk, False, change, step) for who, when, pk, _, change, step in hints]
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
    return CourseLog(log, np.array(list(learners), dtype=np.int64), skills, times,
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
        record.metrics = _held_out_metrics(record.model, log.interactions, chosen, reporter)
        reporter("Fitting on all learners", 0.45)
        fitted = _new_model(record.model, chosen).fit(
            log.interactions, progress=reporter.em("Fitting on all learners", 0.45, 0.8)
        )
        record.parameters = _skill_parameters(fitted, log)
        record.state = fitted.state_dict()
        record.train_rows, record.learners = len(log.interactions), log.interactions.n_users
        record.data_from, record.data_to = record.data_from or log.first, record.data_to or log.last
        record.device = str(chosen)
        if activate:
            reporter("Replaying every learner's mastery", 0.8, force=True)
            activate_model(record)
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


def activate_model(record: TracingModel) -> None:
    """Make this version the one the online update uses, and replay all mastery with it."""
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
        replay_mastery(record.course)


def replay_mastery(course: Course, learners=None) -> dict[int, dict[str, float]]:
    """Recompute mastery from the whole log with the skills' current parameters, exactly as the online
    update would have, for all learners of the course or the given ones; store and return it as
    {learner pk: {skill slug: P(known)}}."""
    learner_ids = None if learners is None else [getattr(who, "pk", who) for who in learners]
    with transaction.atomic():
        # Lock the stored states first, so that an answer arriving now waits for the replay, then applies.
        locked = MasteryState.objects.select_for_update().filter(skill__course=course)
        if learner_ids is not None:
            locked = locked.filter(learner_id__in=learner_ids)
        list(locked.values_list("pk", flat=True))
        log = course_log(course, learner_ids=learner_ids)
        data = log.interactions
        if len(data) == 0:
            return {}
        _, after = _skills_model(log.skills).trace(data)
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
        first_mastered = {}
        for row in mastered[::-1]:  # backwards, so the earliest row of each key wins
            first_mastered[int(key[row])] = row
        states, result = [], {}
        for end, n, n_correct in zip(last, counts, correct_counts, strict=True):
            k = int(key[end])
            u, s = divmod(k, data.n_skills)
            learner_id, skill = int(log.learner_ids[u]), log.skills[s]
            row = order[end]
            mastered_row = first_mastered.get(k)
            states.append(MasteryState(
                learner_id=learner_id, skill=skill, p_known=float(after_sorted[end]), observations=int(n),
                correct=int(n_correct), updated_at=log.event_times[data.attempt[row]],
                mastered_at=None if mastered_row is None else log.event_times[data.attempt[order[mastered_row]]],
            ))
            result.setdefault(learner_id, {})[skill.slug] = float(after_sorted[end])
        MasteryState.objects.bulk_create(
            states, batch_size=2000, update_conflicts=True, unique_fields=["learner", "skill"],
            update_fields=["p_known", "observations", "correct", "updated_at", "mastered_at"],
        )
    return result


# ---- helpers ----------------------------------------------------------------------------------------------------

def _new_model(name: str, device) -> BatchedBKT:
    return BatchedBKT(device=device, **FITTABLE[name])


def _held_out_metrics(name: str, data: Interactions, device, reporter: _Reporter) -> dict:
    """Fit on most learners, predict a held-out share of them from their own past, score per question."""
    present = np.flatnonzero(np.bincount(data.user, minlength=data.n_users) > 0)
    n_test = max(MIN_HOLDOUT_LEARNERS, round(HOLDOUT_SHARE * len(present)))
    if len(present) < 2 * n_test:
        return {"note": f"Too few learners to hold {n_test} out; not scored."}
    test_users = np.zeros(data.n_users, dtype=bool)
    test_users[np.random.default_rng(0).permutation(present)[:n_test]] = True
    train, test = data.subset(~test_users), data.subset(test_users)
    reporter("Fitting on the other learners", 0.05)
    model = _new_model(name, device).fit(train, progress=reporter.em("Fitting on the other learners",
                                                                      0.05, 0.4))
    reporter("Scoring the held-out learners", 0.4)
    labels, probs = merge_question_attempts(test, model.predict(test))
    return {**all_metrics(labels, probs), "held_out_learners": n_test,
            "held_out_attempts": len(labels), "train_rows": len(train)}


def _skill_parameters(model: BatchedBKT, log: CourseLog) -> dict:
    """{skill slug: parameters}: fitted where the skill has enough rows, otherwise its current values."""
    fitted = model.params()
    rows = np.bincount(log.interactions.skill, minlength=len(log.skills))
    out = {}
    for i, skill in enumerate(log.skills):
        enough = rows[i] >= MIN_SKILL_ROWS
        values = {field: (float(fitted[name][i]) if enough else getattr(skill, field))
                  for field, name in zip(PARAM_FIELDS, _TENSOR_NAMES, strict=True)}
        out[skill.slug] = {**values, "rows": int(rows[i]), "fitted": bool(enough)}
    return out


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

    def em(self, stage: str, start: float, end: float):
        """An EM progress callback mapping iterations onto [start, end] of the whole job."""
        def report(iteration, max_iter, loglik):
            self(f"{stage}: EM iteration {iteration}, log-likelihood per row {loglik:.4f}",
                 start + (end - start) * iteration / max_iter)
        return report
