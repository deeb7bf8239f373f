"""What a policy sees: the course as a `CourseMap`, one learner as a `LearnerState`; what it returns: a
`Choice`. `record_attempt` is how a learner's state moves on after an answer (the benchmark calls it; the
web app stores the same pieces in the database through `tutor.practice`)."""

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from knowledge.tracing.bkt import BKTParams, mastery_after
from tutor.scheduling import memory as mem

MASTERY_THRESHOLD = 0.95  # P(known) at which a skill counts as mastered (Cognitive Tutor, OATutor)
REPEAT_AFTER = 2  # a skill answered wrong comes back after this many other items (same session)


@dataclass(frozen=True)
class SkillInfo:
    id: int
    name: str
    position: int  # topological order in the course
    requires: frozenset = frozenset()
    p_learn: float = 0.15  # the tracing model's learning rate, for expected gain


@dataclass(frozen=True)
class ItemInfo:
    id: int
    skills: frozenset
    difficulty: float | None = None  # 0 easy … 1 hard; None when unknown
    minutes: float = 2.0  # typical time on the item


class CourseMap:
    """Skills (in topological order) and items, indexed for fast decisions on large courses."""

    def __init__(self, skills: Iterable[SkillInfo], items: Iterable[ItemInfo]):
        self.skills = {s.id: s for s in sorted(skills, key=lambda s: (s.position, s.id))}
        self.order = list(self.skills)
        self.items = {i.id: i for i in items}
        self.items_by_skill: dict[int, list[ItemInfo]] = {s: [] for s in self.skills}
        for item in self.items.values():
            for skill_id in item.skills:
                self.items_by_skill[skill_id].append(item)
        self.dependents: dict[int, list[int]] = {s: [] for s in self.skills}
        for skill in self.skills.values():
            for prerequisite in skill.requires:
                self.dependents[prerequisite].append(skill.id)

    @cached_property
    def practisable(self) -> list[int]:
        """Skills with items of their own (a skill tagged only on steps has none to serve)."""
        return [s for s in self.order if self.items_by_skill[s]]

    @cached_property
    def practisable_set(self) -> frozenset:
        return frozenset(self.practisable)

    @cached_property
    def typical_difficulty(self) -> dict[int, float]:
        """Each skill's median item difficulty (0.5 where unknown)."""
        medians = {}
        for skill_id, items in self.items_by_skill.items():
            values = sorted(0.5 if i.difficulty is None else i.difficulty for i in items) or [0.5]
            medians[skill_id] = values[len(values) // 2]
        return medians

    def ancestors(self, skill_ids: Iterable[int]) -> set[int]:
        seen: set[int] = set()
        stack = list(skill_ids)
        while stack:
            for prerequisite in self.skills[stack.pop()].requires:
                if prerequisite not in seen:
                    seen.add(prerequisite)
                    stack.append(prerequisite)
        return seen


@dataclass
class LearnerState:
    mastery: dict[int, float]  # P(known) for every skill of the course
    now: datetime
    memory: dict[int, mem.Memory] = field(default_factory=dict)  # skills practised at least once
    recent_items: list[int] = field(default_factory=list)  # most recent first
    goals: frozenset = frozenset()  # goal skills set by the teacher
    short_term: dict[int, int] = field(default_factory=dict)  # skill -> items still to wait before a repeat

    def new_skills_today(self) -> int:
        today = self.now.date()
        return sum(1 for m in self.memory.values() if m.introduced.date() == today)


@dataclass(frozen=True)
class Choice:
    item_id: int
    skill_id: int
    kind: str  # review, new, practice, repeat, goal
    reason: str  # one sentence the learner reads
    candidates: tuple = ()  # item ids the policy chose among …
    # … and each one's probability of being chosen (for off-policy evaluation); they sum to 1 unless the
    # policy's choice set is larger than the list (random lists only the drawn skill's items)
    probabilities: tuple = ()


def after_answer(
    memories: Mapping[int, mem.Memory],
    course: CourseMap,
    skill_ids: Iterable[int],
    correct: bool,
    now: datetime,
    mastered: Set[int] = frozenset(),
) -> dict[int, mem.Memory]:
    """The memories that change when a learner answers a step on `skill_ids`: a review of each skill, and
    on a correct answer half the elapsed time forgiven on each direct prerequisite already practised.
    `mastered`: the skills among them that counted as mastered before the answer."""
    changed = {s: mem.review(memories.get(s), correct, now, s in mastered) for s in skill_ids}
    if correct:
        for skill_id in skill_ids:
            for prerequisite in course.skills[skill_id].requires:
                if prerequisite in memories and prerequisite not in changed:
                    changed[prerequisite] = mem.credit(memories[prerequisite], now, 0.5)
    return changed


def requeue(short_term: Mapping[int, int], skill_ids: Iterable[int], correct: bool) -> dict[int, int]:
    """The short-term queue after an item: every wait shrinks by one; a wrong answer queues the skill to
    come back after `REPEAT_AFTER` other items, a correct one takes it off the queue."""
    queue = {s: wait - 1 for s, wait in short_term.items()}
    for skill_id in skill_ids:
        if correct:
            queue.pop(skill_id, None)
        else:
            queue[skill_id] = REPEAT_AFTER
    return queue


def record_attempt(
    state: LearnerState, course: CourseMap, item_id: int, correct: bool, params: Mapping[int, BKTParams]
) -> None:
    """Move a learner's state on after a first attempt at an item at `state.now`: BKT mastery, memory,
    short-term queue and recent items."""
    skill_ids = list(course.items[item_id].skills)
    mastered = {s for s in skill_ids if state.mastery[s] >= MASTERY_THRESHOLD}
    for skill_id in skill_ids:
        state.mastery[skill_id] = mastery_after(state.mastery[skill_id], correct, params[skill_id])
    state.memory.update(after_answer(state.memory, course, skill_ids, correct, state.now, mastered))
    state.short_term = requeue(state.short_term, skill_ids, correct)
    state.recent_items.insert(0, item_id)
    del state.recent_items[50:]
