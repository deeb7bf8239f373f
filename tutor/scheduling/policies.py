"""The next-item policies: the combined policy and four baselines, all with one signature
`policy(course, state, rng) -> Choice | None`. Pure: the same state and seed give the same choice.

The combined policy (docs/scheduling.md) puts together what the deployed tutors each do alone: mastery
gating on the prerequisite graph (ALEKS, Cognitive Tutor), memory and due reviews (FSRS), and a choice of
item by expected gain per minute inside a band of productive success (KARL, ZPDES).
"""

import math
import random
from collections import Counter

from tutor.scheduling import memory as mem
from tutor.scheduling.state import MASTERY_THRESHOLD, Choice, CourseMap, ItemInfo, LearnerState

RECENT_WINDOW = 10  # items served within this many past items are not repeated
NEW_SKILLS_PER_DAY = 4  # new skills started per learner per day
PRODUCTIVE_BAND = (0.45, 0.8)  # predicted success where practice teaches most
INTERLEAVE_PENALTY = 0.7  # weight of staying on the previous item's skill when others are open
MASSING_WINDOW, MASSING_LIMIT = 12, 2  # while others are open, at most 2 of the last 12 items per skill
GOAL_CHECK_MAX_DAYS = 8  # the longest wait between goal checks once the goals pass them in a row
TOP_CANDIDATES = 8
TEMPERATURE = 0.15


# --- the combined policy ----------------------------------------------------------------------


def combined(course: CourseMap, state: LearnerState, rng: random.Random) -> Choice | None:
    mastered = effectively_mastered(course, state.mastery)
    region = goal_region(course, state.goals, mastered)

    massed = _massed(course, state)
    # A repeat obeys the massing limit too: the slip is fixed in a later session rather than massed in this one.
    repeat = [
        s for s, wait in state.short_term.items() if wait <= 0 and s in course.practisable_set and s not in massed
    ]
    if repeat:
        skill_id = min(repeat, key=lambda s: state.mastery[s])
        name = course.skills[skill_id].name
        return _best_item(course, state, [skill_id], rng, "repeat", f"Again: another {name} problem, to fix the slip.")

    if state.goals and not region:
        # Goal check: the goals are needed together (a unit test asks for all of them at once), and one learned
        # weeks ago has faded; so once all are learned, a session starts by checking each goal once, at
        # intervals that grow as the goals keep passing.
        interval = goal_check_interval(state)
        unchecked = [
            g for g in state.goals if g in course.practisable_set and not _practised_within(state, g, interval)
        ]
        if unchecked:
            skill_id = min(unchecked, key=lambda s: _predicted_recall(state, s))
            return _best_item(course, state, [skill_id], rng, "review", _goal_check_reason(course, skill_id))

    frontier = [s for s in course.practisable if s not in mastered and course.skills[s].requires <= mastered]
    # Prerequisites of open skills need no review of their own: practising what builds on them reviews them.
    in_use = {p for s in frontier for p in course.skills[s].requires}
    due = []
    if not region:  # while the teacher's goals are open, reviews wait (the goal check makes up for them)
        towards_goals = set(state.goals) | course.ancestors(state.goals)
        reviewable = [
            s
            for s in state.memory
            if s in mastered and s in course.practisable_set and s not in in_use and not _practised_today(state, s)
        ]
        due = [(s not in towards_goals, _predicted_recall(state, s), s) for s in reviewable]
        due = [d for d in due if d[1] < mem.TARGET_RETENTION]
    if due:
        _, _, skill_id = min(due)
        return _best_item(course, state, [skill_id], rng, "review", _review_reason(course, state, skill_id))

    may_start = state.new_skills_today() < NEW_SKILLS_PER_DAY
    open_skills = [s for s in frontier if s in state.memory or may_start]
    in_region = [s for s in open_skills if s in region]
    if in_region or open_skills:
        return _learn(course, state, in_region or open_skills, rng)

    practised = [s for s in state.memory if s in course.practisable_set]
    if practised:
        # Spread over the skills not practised today (the goals were checked above): spaced retrieval of
        # every skill is what keeps it for weeks, the same skill twice in a session adds little.
        fresh_today = [s for s in practised if not _practised_today(state, s)]
        skill_id = _most_forgotten(state, fresh_today or practised)
        return _best_item(course, state, [skill_id], rng, "review", _keep_fresh_reason(course, skill_id))
    return _learn(course, state, course.practisable, rng) if course.practisable else None


def effectively_mastered(course: CourseMap, mastery: dict[int, float]) -> set[int]:
    """Skills mastered by their own estimate, or implied by a mastered skill that builds on them (the
    surmise relation of knowledge space theory: who has mastered two-step equations can do one-step ones)."""
    mastered = {s for s in course.order if mastery[s] >= MASTERY_THRESHOLD}
    return mastered | course.ancestors(mastered)


def goal_check_interval(state: LearnerState) -> int:
    """Days between goal checks: every session until every goal has passed two checks in a row, then
    doubling with each further check the weakest goal passes, up to `GOAL_CHECK_MAX_DAYS` (expanding
    retrieval practice, Landauer & Bjork 1978). One wrong answer brings the daily checks back."""
    passed = min(state.memory[g].passed if g in state.memory else 0 for g in state.goals)
    return min(GOAL_CHECK_MAX_DAYS, 2 ** max(0, passed - 1))


def goal_region(course: CourseMap, goals: frozenset, mastered: set[int]) -> set[int]:
    """The unmastered goal skills and their unmastered prerequisites: where practice counts most now."""
    open_goals = {g for g in goals if g in course.skills and g not in mastered}
    return {s for s in open_goals | course.ancestors(open_goals) if s not in mastered}


def predicted_success(p_known: float, difficulty: float | None) -> float:
    """Chance of a correct answer: a skill-level success rate shifted on the logit scale by the item's
    difficulty (0.5 = typical)."""
    p = 0.15 + 0.75 * p_known
    shift = 0.0 if difficulty is None else 2.5 * (0.5 - difficulty)
    return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + shift)))


def band_weight(p_success: float) -> float:
    low, high = PRODUCTIVE_BAND
    if p_success < low:
        return max(0.05, 1 - (low - p_success) / 0.3)
    if p_success > high:
        return max(0.05, 1 - (p_success - high) / 0.15)
    return 1.0


def _learn(course: CourseMap, state: LearnerState, skill_ids: list[int], rng: random.Random) -> Choice:
    """New learning: the (skill, item) pairs with the highest expected mastery gain per minute."""
    recent = set(state.recent_items[:RECENT_WINDOW])
    previous = _previous_skills(course, state)
    skill_ids = _not_massed(course, state, skill_ids)
    scored = []
    for skill_id in skill_ids:
        skill = course.skills[skill_id]
        p_known = state.mastery[skill_id]
        gain = (1 - p_known) * skill.p_learn
        if skill_id in previous and len(skill_ids) > 1:
            gain *= INTERLEAVE_PENALTY
        # Never easier than the skill's typical item: an easy item is answered right without the skill, so it
        # teaches little and its evidence would declare mastery too early (BKT does not weigh difficulty).
        typical = course.typical_difficulty[skill_id]
        fresh = _fresh_items(course, skill_id, recent)
        items = [i for i in fresh if _difficulty(i) >= typical] or fresh
        for item in items:
            score = gain * band_weight(predicted_success(p_known, item.difficulty)) / item.minutes
            scored.append((score, item.id, skill_id))
    scored.sort(reverse=True)
    candidates = scored[:TOP_CANDIDATES]
    best = candidates[0][0]
    weights = [math.exp((score / best - 1) / TEMPERATURE) if best > 0 else 1.0 for score, _, _ in candidates]
    total = sum(weights)
    probabilities = tuple(w / total for w in weights)
    index = rng.choices(range(len(candidates)), weights=probabilities)[0]
    _, item_id, skill_id = candidates[index]
    return Choice(
        item_id=item_id,
        skill_id=skill_id,
        kind="goal" if skill_id in state.goals else ("practice" if skill_id in state.memory else "new"),
        reason=_learn_reason(course, state, skill_id),
        candidates=tuple(c[1] for c in candidates),
        probabilities=probabilities,
    )


def _not_massed(course: CourseMap, state: LearnerState, skill_ids: list[int]) -> list[int]:
    """The skills that did not take `MASSING_LIMIT` of the last `MASSING_WINDOW` items (all of them if none is
    left): the evidence BKT needs before it declares mastery is then gathered over several sessions, which
    spaces it, and spaced practice is remembered longer than the same practice massed (Cepeda et al. 2006)."""
    massed = _massed(course, state)
    return [s for s in skill_ids if s not in massed] or skill_ids


def _massed(course: CourseMap, state: LearnerState) -> set[int]:
    """The skills that took `MASSING_LIMIT` of the last `MASSING_WINDOW` items."""
    last_items = [course.items[i] for i in state.recent_items[:MASSING_WINDOW] if i in course.items]
    served = Counter(s for item in last_items for s in item.skills)
    return {s for s, count in served.items() if count >= MASSING_LIMIT}


def _best_item(
    course: CourseMap, state: LearnerState, skill_ids: list[int], rng: random.Random, kind: str, reason: str
) -> Choice:
    choice = _learn(course, state, skill_ids, rng)
    return Choice(choice.item_id, choice.skill_id, kind, reason, choice.candidates, choice.probabilities)


def _difficulty(item: ItemInfo) -> float:
    return 0.5 if item.difficulty is None else item.difficulty


def _practised_today(state: LearnerState, skill_id: int) -> bool:
    return _practised_within(state, skill_id, 1)


def _practised_within(state: LearnerState, skill_id: int, days: int) -> bool:
    """Practised on one of the last `days` calendar days (1: today)."""
    if skill_id not in state.memory:
        return False
    return (state.now.date() - state.memory[skill_id].last_review.date()).days < days


def _predicted_recall(state: LearnerState, skill_id: int) -> float:
    return mem.retrievability(state.memory[skill_id], state.now) if skill_id in state.memory else 0.0


def _previous_skills(course: CourseMap, state: LearnerState) -> frozenset:
    previous = course.items.get(state.recent_items[0]) if state.recent_items else None
    return previous.skills if previous else frozenset()


def _fresh_items(course: CourseMap, skill_id: int, recent: set[int]) -> list[ItemInfo]:
    items = course.items_by_skill[skill_id]
    return [i for i in items if i.id not in recent] or items


def _review_reason(course: CourseMap, state: LearnerState, skill_id: int) -> str:
    name = course.skills[skill_id].name
    days = mem.days_since(state.memory[skill_id], state.now)
    when = "yesterday" if days <= 1 else f"{days} days ago"
    return f"Review: you last practised {name} {when}."


def _most_forgotten(state: LearnerState, skill_ids: list[int]) -> int:
    return min(skill_ids, key=lambda s: _predicted_recall(state, s))


def _goal_check_reason(course: CourseMap, skill_id: int) -> str:
    name = course.skills[skill_id].name
    return f"Goal check: {name} is one of your teacher's goals; today's session checks each of them once."


def _keep_fresh_reason(course: CourseMap, skill_id: int) -> str:
    return f"Keep fresh: {course.skills[skill_id].name} is the skill you are most likely to forget next."


def _learn_reason(course: CourseMap, state: LearnerState, skill_id: int) -> str:
    skill = course.skills[skill_id]
    if skill_id in state.goals:
        return f"Goal: your teacher set {skill.name} as a goal."
    if skill_id in state.memory:
        return f"Practice: {skill.name} is at {round(100 * state.mastery[skill_id])}%; this one should be within reach."
    if skill.requires:
        return f"New: you have mastered all prerequisites of {skill.name}."
    return f"New: {skill.name} is a good place to start."


# --- baselines --------------------------------------------------------------------------------


def random_policy(course: CourseMap, state: LearnerState, rng: random.Random) -> Choice | None:
    """Uniform over skills, then over that skill's items not served recently."""
    if not course.practisable:
        return None
    skill_id = rng.choice(course.practisable)
    items = _fresh_items(course, skill_id, set(state.recent_items[:RECENT_WINDOW]))
    item = rng.choice(items)
    p = 1 / (len(course.practisable) * len(items))
    reason = f"Practice: a problem on {course.skills[skill_id].name}."
    return Choice(item.id, skill_id, "practice", reason, tuple(i.id for i in items), (p,) * len(items))


def oatutor(course: CourseMap, state: LearnerState, rng: random.Random) -> Choice | None:
    """OATutor's heuristic: the least-mastered skill, any of its items at random (no prerequisite gate)."""
    if not course.practisable:
        return None
    skill_id = min(course.practisable, key=lambda s: (state.mastery[s], course.skills[s].position))
    items = _fresh_items(course, skill_id, set(state.recent_items[:RECENT_WINDOW]))
    item = rng.choice(items)
    name = course.skills[skill_id].name
    reason = f"Practice: {name} is your least-mastered skill ({round(100 * state.mastery[skill_id])}%)."
    return Choice(item.id, skill_id, "practice", reason, tuple(i.id for i in items), (1 / len(items),) * len(items))


def mastery_order(course: CourseMap, state: LearnerState, rng: random.Random) -> Choice | None:
    """Mastery learning in a fixed curriculum order (Cognitive Tutor): stay on a skill until P(known) ≥ 0.95,
    items in course order; once all are mastered, the least-mastered skill."""
    if not course.practisable:
        return None
    open_skills = [s for s in course.practisable if state.mastery[s] < MASTERY_THRESHOLD]
    skill_id = open_skills[0] if open_skills else min(course.practisable, key=lambda s: state.mastery[s])
    return _in_order(course, state, skill_id, "practice", _next_in_course_reason(course, state, skill_id))


def fsrs_due(course: CourseMap, state: LearnerState, rng: random.Random) -> Choice | None:
    """Flashcard scheduling: due reviews first (lowest predicted recall), then in-session repeats, then new
    skills in graph order up to the daily cap, then the skill most likely to be forgotten."""
    if not course.practisable:
        return None
    practised = [s for s in state.memory if s in course.practisable_set]
    due = [
        (mem.retrievability(state.memory[s], state.now), s)
        for s in practised
        if not mem.reviewed_today(state.memory[s], state.now)
    ]
    due = [d for d in due if d[0] < mem.TARGET_RETENTION]
    if due:
        skill_id = min(due)[1]
        return _in_order(course, state, skill_id, "review", _review_reason(course, state, skill_id))
    repeat = [s for s, wait in state.short_term.items() if wait <= 0 and s in course.practisable_set]
    if repeat:
        name = course.skills[repeat[0]].name
        return _in_order(course, state, repeat[0], "repeat", f"Again: another {name} problem, to fix the slip.")
    new = [s for s in course.practisable if s not in state.memory]
    if new and state.new_skills_today() < NEW_SKILLS_PER_DAY:
        return _in_order(course, state, new[0], "new", _learn_reason(course, state, new[0]))
    if practised:
        skill_id = _most_forgotten(state, practised)
        return _in_order(course, state, skill_id, "review", _keep_fresh_reason(course, skill_id))
    return _in_order(course, state, new[0], "new", _learn_reason(course, state, new[0]))


def _in_order(course: CourseMap, state: LearnerState, skill_id: int, kind: str, reason: str) -> Choice:
    item = _fresh_items(course, skill_id, set(state.recent_items[:RECENT_WINDOW]))[0]
    return Choice(item.id, skill_id, kind, reason, (item.id,), (1.0,))


def _next_in_course_reason(course: CourseMap, state: LearnerState, skill_id: int) -> str:
    name = course.skills[skill_id].name
    return f"Next in the course: {name} ({round(100 * state.mastery[skill_id])}%; mastered at 95%)."


POLICIES = {
    "combined": combined,
    "random": random_policy,
    "oatutor": oatutor,
    "mastery": mastery_order,
    "fsrs": fsrs_due,
}
DEFAULT_POLICY = "combined"


def choose(policy: str, course: CourseMap, state: LearnerState, seed: int) -> Choice | None:
    """The next item under the named policy; `seed` makes a stochastic policy reproducible."""
    return POLICIES[policy](course, state, random.Random(seed))
