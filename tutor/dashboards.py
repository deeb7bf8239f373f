"""What the teacher dashboards show (selectors: they read, never change state): the class mastery heatmap, the
live view of who is practising, a learner's drill-down, item analysis and the skill graph.

Each function takes a classroom the caller has already scoped through tutor.access (`watched_classroom` does it
for the live socket) and reads with a fixed number of queries, whatever the size of the class: one for all the
mastery of a heatmap, not one per cell.
"""

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Avg, Count, OuterRef, Q, QuerySet, Subquery

from knowledge.graph import topological_order
from knowledge.models import Item, ItemSkill, MasteryState, Prerequisite, Skill, Step
from tutor import access
from tutor.models import Attempt, Classroom, HintTurn, PracticeSession, Selection, User
from tutor.scheduling import MASTERY_THRESHOLD

NEAR = 0.70  # MATHia's bands: proficient from MASTERY_THRESHOLD (95 %), near from 70 %, needs help below
BANDS = [
    ("proficient", "Proficient (95 % or more)"),
    ("near", "Near (70–94 %)"),
    ("needs-help", "Needs help (under 70 %)"),
    ("not-started", "Not started"),
]
BAND_LABELS = dict(BANDS)

ACTIVE_WINDOW = timedelta(minutes=30)  # an open session with an action this recent is "practising now"
LONG_IDLE = timedelta(minutes=5)  # ... and one without an action for this long has gone quiet
REPEATED_ERRORS = 3  # wrong answers on the step a learner is on that call for a visit
WHEEL_SPINNING_ATTEMPTS = 10  # first actions on a skill without mastering it: practice is not working

MAX_ITEM_SECONDS = 15 * 60  # time on one item counts up to this: an abandoned tab is not an hour of work
DRILLDOWN_VISITS = 60  # problems listed on a learner's drill-down (the curves use every attempt)
FLAG_MIN_LEARNERS = 5  # item flags need at least this many learners' first attempts
LOW_FACILITY = 0.2  # "almost nobody gets it right": first-attempt correctness below this


def mastery_band(p_known: float | None) -> str:
    """The band of a P(known); None (no evidence yet) is "not started"."""
    if p_known is None:
        return "not-started"
    if p_known >= MASTERY_THRESHOLD:
        return "proficient"
    return "near" if p_known >= NEAR else "needs-help"


def display_name(user: User) -> str:
    return user.get_full_name() or user.username


def skills_in_prerequisite_order(course) -> list[Skill]:
    """The course's skills, every prerequisite before the skills that need it (ties in course order)."""
    skills = list(course.skills.all())
    edges = Prerequisite.objects.filter(skill__course=course).values_list("prerequisite_id", "skill_id")
    by_id = {skill.pk: skill for skill in skills}
    return [by_id[pk] for pk in topological_order(list(by_id), edges) if pk in by_id]


def class_learner(user: User, classroom: Classroom, learner_id: int) -> User | None:
    """A learner of this class whom `user` may see (None: not in the class, or not theirs to see)."""
    return access.learners_for(user).filter(pk=learner_id, enrollments__classroom=classroom).first()


def watched_classroom(user: User, classroom_id: int) -> Classroom | None:
    """The class whose live view `user` may watch: their own as its teacher, any as an admin; never a learner."""
    if user is None or not user.is_authenticated or not (user.is_teacher or user.is_admin_role):
        return None
    return access.classrooms_for(user).filter(pk=classroom_id).first()


# --- the heatmap --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    p_known: float | None  # None: not started
    observations: int
    band: str


def class_heatmap(classroom: Classroom, sort: str = "learner", descending: bool = False, goals_only: bool = False):
    """Learners × skills in prerequisite order, each cell the learner's P(known) and its band.

    `sort` is "learner" (by name) or "skill-<id>" (by that skill's P(known), not started lowest); `goals_only`
    keeps the class's goal skills. Three queries: skills and edges, learners, and all the mastery at once."""
    goal_ids = set(classroom.goals.values_list("skill_id", flat=True))
    skills = skills_in_prerequisite_order(classroom.course)
    if goals_only:
        skills = [skill for skill in skills if skill.pk in goal_ids]
    learners = list(classroom.learners.order_by("first_name", "last_name", "username"))
    states = {
        (learner_id, skill_id): (p_known, observations)
        for learner_id, skill_id, p_known, observations in MasteryState.objects.filter(
            learner__enrollments__classroom=classroom, skill__in=[skill.pk for skill in skills]
        ).values_list("learner_id", "skill_id", "p_known", "observations")
    }
    rows = []
    for learner in learners:
        cells = []
        for skill in skills:
            p_known, observations = states.get((learner.pk, skill.pk), (None, 0))
            cells.append(Cell(p_known, observations, mastery_band(p_known)))
        started = [cell.p_known for cell in cells if cell.p_known is not None]
        rows.append(
            {
                "learner": learner,
                "name": display_name(learner),
                "cells": cells,
                "proficient": sum(cell.band == "proficient" for cell in cells),
                "mean": sum(started) / len(started) if started else None,
            }
        )
    sort_skill = None
    if sort.startswith("skill-") and sort[6:].isdigit():
        sort_skill = next((i for i, skill in enumerate(skills) if skill.pk == int(sort[6:])), None)
    if sort_skill is None:
        sort = "learner"
        rows.sort(key=lambda row: row["name"].casefold(), reverse=descending)
    else:
        # Not started sorts below 0 %; ties keep name order.
        rows.sort(key=lambda row: row["name"].casefold())
        rows.sort(key=lambda row: _sort_value(row["cells"][sort_skill]), reverse=descending)
    skill_columns = []
    for i, skill in enumerate(skills):
        counts = defaultdict(int)
        for row in rows:
            counts[row["cells"][i].band] += 1
        skill_columns.append(
            {
                "skill": skill,
                "key": f"skill-{skill.pk}",
                "goal": skill.pk in goal_ids,
                **{band.replace("-", "_"): counts[band] for band, _ in BANDS},
            }
        )
    return {
        "skills": skill_columns,
        "rows": rows,
        "sort": sort,
        "descending": descending,
        "goals_only": goals_only,
        "has_goals": bool(goal_ids),
        "bands": BANDS,
        "table_width": 192 + 28 * len(skill_columns),  # fixed layout: the browser need not measure 18,000 cells
    }


def _sort_value(cell: Cell) -> float:
    return -1.0 if cell.p_known is None else cell.p_known


def heatmap_csv_rows(heatmap: dict) -> list[list[str]]:
    """The heatmap as CSV rows: a header, then one row per learner with P(known) per skill (empty: not started)."""
    header = ["learner", "username", *(column["skill"].slug for column in heatmap["skills"])]
    rows = [header]
    for row in heatmap["rows"]:
        values = ["" if cell.p_known is None else f"{cell.p_known:.3f}" for cell in row["cells"]]
        rows.append([_csv_text(row["name"]), _csv_text(row["learner"].username), *values])
    return rows


def _csv_text(text: str) -> str:
    """A name as a spreadsheet shows it, never as a formula (a name starting with = + - @ gets a leading ')."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


# --- the live view ------------------------------------------------------------------------------


def live_class(classroom: Classroom, now: datetime, learner_ids: list[int] | None = None) -> list[dict]:
    """Who in the class is practising now (an open session with an action within ACTIVE_WINDOW), on which item
    and step, for how long, and why they may need help. Rows are plain JSON for the live socket; `learner_ids`
    limits them to those learners (the socket recomputes one learner after each of their actions)."""
    cutoff = now - ACTIVE_WINDOW
    last_attempt = Attempt.objects.filter(session=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
    last_hint = HintTurn.objects.filter(session=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
    sessions = (
        PracticeSession.objects.filter(
            classroom=classroom, ended_at__isnull=True, learner__enrollments__classroom=classroom
        )
        .annotate(last_attempt=Subquery(last_attempt), last_hint=Subquery(last_hint))
        .filter(Q(item_started_at__gte=cutoff) | Q(last_attempt__gte=cutoff) | Q(last_hint__gte=cutoff))
        .select_related("learner", "current_item")
        .order_by("-started_at")
    )
    if learner_ids is not None:
        sessions = sessions.filter(learner_id__in=learner_ids)
    latest: dict[int, PracticeSession] = {}
    for session in sessions:
        session.last_action = max(t for t in (session.last_attempt, session.last_hint, session.item_started_at) if t)
        if session.last_action >= cutoff:
            latest.setdefault(session.learner_id, session)
    if not latest:
        return []
    session_ids = [s.pk for s in latest.values()]
    steps: dict[int, dict[int, int]] = defaultdict(dict)  # item -> {position: step id}
    for item_id, position, step_id in Step.objects.filter(
        item_id__in={s.current_item_id for s in latest.values()}
    ).values_list("item_id", "position", "pk"):
        steps[item_id][position] = step_id
    earliest = min(s.item_started_at or s.started_at for s in latest.values())
    wrong = defaultdict(list)  # session -> [(step, when)] of wrong answers since the oldest current item was shown
    for session_id, step_id, created_at in Attempt.objects.filter(
        session_id__in=session_ids, correct=False, created_at__gte=earliest
    ).values_list("session_id", "step_id", "created_at"):
        wrong[session_id].append((step_id, created_at))
    bottom_outs = defaultdict(list)
    for session_id, created_at, title in HintTurn.objects.filter(
        session_id__in=session_ids, kind="bottom_out", created_at__gte=cutoff
    ).values_list("session_id", "created_at", "step__item__title"):
        bottom_outs[session_id].append((created_at, title))
    spinning = defaultdict(list)
    for learner_id, name, observations, p_known in MasteryState.objects.filter(
        learner_id__in=list(latest),
        skill__course_id=classroom.course_id,
        observations__gte=WHEEL_SPINNING_ATTEMPTS,
        p_known__lt=MASTERY_THRESHOLD,
        updated_at__gte=cutoff,
    ).values_list("learner_id", "skill__name", "observations", "p_known"):
        spinning[learner_id].append((name, observations, p_known))

    rows = []
    for learner_id, session in latest.items():
        item_steps = steps.get(session.current_item_id, {})
        step_id = item_steps.get(session.current_step)
        shown = session.item_started_at or session.started_at
        errors = sum(1 for st, at in wrong[session.pk] if st == step_id and at >= shown)
        reasons = []
        if errors >= REPEATED_ERRORS:
            reasons.append({"kind": "errors", "text": f"{errors} wrong answers on the step they are on"})
        for at, title in sorted(bottom_outs[session.pk], reverse=True)[:1]:
            reasons.append({"kind": "bottom-out", "text": f"Was shown the worked answer on “{title}”", "at": at})
        idle = now - session.last_action
        if idle >= LONG_IDLE:
            reasons.append({"kind": "idle", "text": f"No action for {_minutes(idle)}"})
        for name, observations, p_known in spinning[learner_id]:
            reasons.append(
                {
                    "kind": "wheel-spinning",
                    "text": f"{observations} tries at {name} without mastering it ({math.floor(100 * p_known)} %)",
                }
            )
        rows.append(
            {
                "learner_id": learner_id,
                "name": display_name(session.learner),
                "session_id": session.pk,
                "item": session.current_item.title if session.current_item else "",
                "step": session.current_step + 1 if step_id else None,
                "step_count": len(item_steps),
                "hint_level": session.hint_level,
                "session_started": session.started_at.isoformat(),
                "item_started": shown.isoformat(),
                "last_action": session.last_action.isoformat(),
                "item_seconds": int((now - shown).total_seconds()),
                "session_seconds": int((now - session.started_at).total_seconds()),
                "idle_seconds": int(idle.total_seconds()),
                "needs_help": [{k: v for k, v in r.items() if k != "at"} for r in reasons],
            }
        )
    rows.sort(key=lambda row: (not row["needs_help"], row["name"].casefold()))
    return rows


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


# --- a learner's drill-down ---------------------------------------------------------------------


def sparkline_points(values: list[float], width: int = 240, height: int = 60) -> str:
    """SVG polyline points for P(known) values (0 at the bottom, 1 at the top), spread evenly across."""
    if not values:
        return ""
    if len(values) == 1:
        values = values * 2
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - p * height:.1f}" for i, p in enumerate(values))


def learner_drilldown(classroom: Classroom, learner: User, selections: QuerySet[Selection]) -> dict:
    """One learner in one class: a learning curve per skill (P(known) after each first action, from the log's
    mastery changes), every problem they worked with their answers, hints and the tutor's dialogue, time on task,
    and why the scheduler chose each problem (`selections`: already scoped to who asks)."""
    course = classroom.course
    attempts = list(
        Attempt.objects.filter(learner=learner, item__course=course)
        .select_related("item", "step")
        .order_by("created_at", "pk")
    )
    turns = list(
        HintTurn.objects.filter(learner=learner, step__item__course=course)
        .select_related("step__item")
        .order_by("created_at", "pk")
    )
    events = sorted(
        [("attempt", a.created_at, a.pk, a) for a in attempts] + [("hint", t.created_at, t.pk, t) for t in turns],
        key=lambda event: (event[1], event[0] == "attempt", event[2]),
    )
    # Learning curves: the value before the first change, then after each one.
    history: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for _, at, _, record in events:
        for slug, (before, after) in (record.mastery_change or {}).items():
            if not history[slug]:
                history[slug].append((at, before))
            history[slug].append((at, after))
    states = {m.skill_id: m for m in MasteryState.objects.filter(learner=learner, skill__course=course)}
    curves = []
    for skill in skills_in_prerequisite_order(course):
        points = history.get(skill.slug, [])
        state = states.get(skill.pk)
        p_now = state.p_known if state else None
        curves.append(
            {
                "skill": skill,
                "p_known": p_now,
                "band": mastery_band(p_now),
                "opportunities": max(len(points) - 1, 0),
                "points": sparkline_points([p for _, p in points]),
                "threshold_y": 60 - MASTERY_THRESHOLD * 60,
                "first": points[0][0] if points else None,
                "last": points[-1][0] if points else None,
            }
        )
    # Problems worked, in order: consecutive actions on the same item in the same session are one visit.
    visits: list[dict] = []
    for kind, at, _, record in events:
        item = record.item if kind == "attempt" else record.step.item
        if not visits or visits[-1]["session_id"] != record.session_id or visits[-1]["item"].pk != item.pk:
            start = record.started_at if kind == "attempt" and record.started_at else at
            visits.append({"session_id": record.session_id, "item": item, "start": start, "end": at, "events": []})
        visit = visits[-1]
        if kind == "attempt" and record.started_at and record.started_at < visit["start"]:
            visit["start"] = record.started_at
        visit["end"] = at
        visit["events"].append({"kind": kind, "at": at, "record": record})
    # A visit starts when the item was served (its Selection), which a visit of hints alone would not know.
    served: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for session_id, item_id, at in (
        selections.filter(learner=learner, item__course=course)
        .order_by("created_at")
        .values_list("session_id", "item_id", "created_at")
    ):
        served[(session_id, item_id)].append(at)
    by_day: dict = defaultdict(float)
    for visit in visits:
        earlier = [at for at in served[(visit["session_id"], visit["item"].pk)] if at <= visit["events"][0]["at"]]
        if earlier and earlier[-1] < visit["start"]:
            visit["start"] = earlier[-1]
        visit["seconds"] = min((visit["end"] - visit["start"]).total_seconds(), MAX_ITEM_SECONDS)
        by_day[visit["start"].date()] += visit["seconds"]
    reasons = list(
        selections.filter(learner=learner, classroom=classroom)
        .select_related("item", "skill")
        .order_by("-created_at", "-pk")[:DRILLDOWN_VISITS]
    )
    first_actions = [a for a in attempts if a.first_action]
    return {
        "learner": learner,
        "name": display_name(learner),
        "curves": curves,
        "visits": list(reversed(visits[-DRILLDOWN_VISITS:])),
        "visit_count": len(visits),
        "attempt_count": len(attempts),
        "hint_count": len(turns),
        "first_action_accuracy": (
            sum(a.correct for a in first_actions) / len(first_actions) if first_actions else None
        ),
        "seconds": sum(visit["seconds"] for visit in visits),
        "by_day": sorted(by_day.items(), reverse=True),
        "reasons": reasons,
        "max_item_minutes": MAX_ITEM_SECONDS // 60,
    }


# --- item analysis ------------------------------------------------------------------------------


def point_biserial(pairs: list[tuple[int, float]]) -> float | None:
    """Pearson's r between a 0/1 score and a number (the point-biserial correlation); None when either side
    does not vary or there are fewer than two pairs."""
    if len(pairs) < 2:
        return None
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in pairs)
    return sxy / math.sqrt(sxx * syy)


def item_analysis(classroom: Classroom, skill_id: int | None = None) -> dict:
    """Per item and per step, over the class's learners: attempts, first-attempt correctness (facility),
    discrimination, hint and bottom-out rates, median time to the first correct answer, and flags.

    A learner's first attempt on a step is their earliest answer to it; it is correct only if right with no
    hint seen before it (a hint first counts as an error, as for mastery). On an item, a learner is correct first
    time if all their first attempts on its steps were. Discrimination is the point-biserial correlation between
    that and the learner's proportion correct over the rest of their first attempts in the course (the item's or
    step's own left out), over learners with some of each. Hint and bottom-out rates are the share of the learners
    who reached the step (answered it or asked for a hint) who saw a hint, or the worked answer. Time is from the
    item being shown to the first correct answer on the step (or on the item's last step), on the learner's first
    visit. Flags need FLAG_MIN_LEARNERS learners' first attempts."""
    course = classroom.course
    items = list(Item.objects.filter(course=course).prefetch_related("steps", "skills").order_by("slug"))
    if skill_id is not None:
        items = [item for item in items if any(skill.pk == skill_id for skill in item.skills.all())]
    learner_ids = set(classroom.learners.values_list("pk", flat=True))
    rows = (
        Attempt.objects.filter(learner_id__in=learner_ids, item__course=course)
        .order_by("created_at", "pk")
        .values_list(
            "learner_id", "item_id", "step_id", "correct", "hint_level", "session_id", "started_at", "created_at"
        )
    )
    attempt_count: dict[int, int] = defaultdict(int)
    first: dict[int, dict[int, int]] = defaultdict(dict)  # step -> {learner: 1 if right first time, else 0}
    first_visit: dict[tuple[int, int], tuple] = {}  # (learner, item) -> (session, shown at) of their first visit
    solved_at: dict[int, dict[int, float]] = defaultdict(dict)  # step -> {learner: seconds to the first right
    # answer, on their first visit}
    for learner_id, item_id, step_id, correct, hint_level, session_id, started_at, created_at in rows:
        attempt_count[step_id] += 1
        first[step_id].setdefault(learner_id, int(correct and hint_level == 0))
        visit = first_visit.setdefault((learner_id, item_id), (session_id, started_at))
        if correct and visit == (session_id, started_at) and started_at and learner_id not in solved_at[step_id]:
            solved_at[step_id][learner_id] = (created_at - started_at).total_seconds()
    hinted: dict[int, set[int]] = defaultdict(set)
    bottomed: dict[int, set[int]] = defaultdict(set)
    for learner_id, step_id, kind in HintTurn.objects.filter(
        learner_id__in=learner_ids, step__item__course=course
    ).values_list("learner_id", "step_id", "kind"):
        hinted[step_id].add(learner_id)
        if kind == "bottom_out":
            bottomed[step_id].add(learner_id)

    # Each learner's first attempts over the whole course, for the "rest of their performance".
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # learner -> [right first time, steps]
    for learner_id, score in ((ln, s) for by_learner in first.values() for ln, s in by_learner.items()):
        totals[learner_id][0] += score
        totals[learner_id][1] += 1

    def discrimination(scores: dict[int, tuple[int, int, int]]) -> float | None:
        """scores: learner -> (0/1 on this unit, right first time within it, steps within it)."""
        pairs = []
        for learner_id, (score, right_here, steps_here) in scores.items():
            right, steps = totals[learner_id]
            if steps - steps_here > 0:
                pairs.append((score, (right - right_here) / (steps - steps_here)))
        return point_biserial(pairs)

    results = []
    for item in items:
        steps = list(item.steps.all())
        step_rows = []
        item_scores: dict[int, list[int]] = defaultdict(list)
        for step in steps:
            scores = first.get(step.pk, {})
            for learner_id, score in scores.items():
                item_scores[learner_id].append(score)
            reached = set(scores) | hinted[step.pk]
            times = list(solved_at.get(step.pk, {}).values())
            step_rows.append(
                _unit_stats(
                    label=f"Step {step.position + 1}",
                    step=step,
                    attempts=attempt_count[step.pk],
                    scores=scores,
                    discrimination=discrimination({ln: (s, s, 1) for ln, s in scores.items()}),
                    reached=reached,
                    hinted=hinted[step.pk] & reached,
                    bottomed=bottomed[step.pk] & reached,
                    times=times,
                )
            )
        item_score = {ln: int(all(s)) for ln, s in item_scores.items()}
        reached = set().union(*(set(r["reached"]) for r in step_rows)) if step_rows else set()
        last = steps[-1] if steps else None
        row = _unit_stats(
            label=item.title,
            step=None,
            attempts=sum(r["attempts"] for r in step_rows),
            scores=item_score,
            discrimination=discrimination(
                {ln: (item_score[ln], sum(item_scores[ln]), len(item_scores[ln])) for ln in item_score}
            ),
            reached=reached,
            hinted=set().union(*(hinted[s.pk] for s in steps)) & reached,
            bottomed=set().union(*(bottomed[s.pk] for s in steps)) & reached,
            times=list(solved_at.get(last.pk, {}).values()) if last else [],
        )
        row["item"] = item
        row["steps"] = step_rows
        results.append(row)
    # Flagged items first, then the most answered; items nobody has tried come last.
    results.sort(key=lambda row: (not row["flags"], -row["learners"], row["item"].slug))
    return {"items": results, "flag_min_learners": FLAG_MIN_LEARNERS, "low_facility": LOW_FACILITY}


def _unit_stats(label, step, attempts, scores, discrimination, reached, hinted, bottomed, times) -> dict:
    learners = len(scores)
    facility = sum(scores.values()) / learners if learners else None
    flags = []
    if learners >= FLAG_MIN_LEARNERS:
        if facility is not None and facility < LOW_FACILITY:
            flags.append("Almost nobody is right first time: check the answer key and the wording.")
        if discrimination is not None and discrimination < 0:
            flags.append("Negative discrimination: learners who do well elsewhere do worse here; check the key.")
    return {
        "label": label,
        "step": step,
        "attempts": attempts,
        "learners": learners,
        "facility": facility,
        "discrimination": discrimination,
        "reached": sorted(reached),
        "hint_rate": len(hinted) / len(reached) if reached else None,
        "bottom_out_rate": len(bottomed) / len(reached) if reached else None,
        "median_seconds": statistics.median(times) if times else None,
        "flags": flags,
    }


# --- the skill graph ----------------------------------------------------------------------------


def skill_graph(classroom: Classroom, learner: User | None = None) -> dict:
    """The course's prerequisite graph for drawing: nodes coloured by the class's mean P(known) (unstarted
    learners at the skill's prior) or by one learner's, edges prerequisite -> skill, and each skill's items."""
    course = classroom.course
    skills = skills_in_prerequisite_order(course)
    if learner is not None:
        values = {
            skill_id: (p, 1)
            for skill_id, p in MasteryState.objects.filter(learner=learner, skill__course=course).values_list(
                "skill_id", "p_known"
            )
        }
        enrolled = 1
    else:
        enrolled = classroom.learners.count()
        values = {
            row["skill_id"]: (row["mean"], row["n"])
            for row in MasteryState.objects.filter(learner__enrollments__classroom=classroom, skill__course=course)
            .values("skill_id")
            .annotate(mean=Avg("p_known"), n=Count("pk"))
        }
    items = defaultdict(list)
    for skill_id, item_id, title in (
        ItemSkill.objects.filter(skill__course=course)
        .order_by("item__slug")
        .values_list("skill_id", "item_id", "item__title")
    ):
        items[skill_id].append({"id": item_id, "title": title})
    nodes = []
    for skill in skills:
        mean, started = values.get(skill.pk, (None, 0))
        p = None
        if started:
            p = (mean * started + skill.p_init * (enrolled - started)) / enrolled if enrolled > started else mean
        nodes.append(
            {
                "id": f"s{skill.pk}",
                "skill_id": skill.pk,
                "label": skill.name,
                "p_known": None if p is None else round(p, 3),
                "percent": None if p is None else math.floor(100 * p + 1e-9),  # rounded down: 94.9 % is not 95
                "started": started,
                "band": mastery_band(p),
                "items": items[skill.pk],
            }
        )
    edges = [
        {"id": f"e{a}-{b}", "source": f"s{a}", "target": f"s{b}"}
        for a, b in Prerequisite.objects.filter(skill__course=course).values_list("prerequisite_id", "skill_id")
    ]
    return {"nodes": nodes, "edges": edges, "learner_count": enrolled}
