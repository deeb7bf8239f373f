"""Next-item policies. Pure and deterministic: the web app and the benchmarks run the same code.

A policy takes a `LearnerView` of the course (built from the database by tutor.practice) and
returns a `Choice`: the item to serve and a reason the learner can read.
"""

from dataclasses import dataclass, field

MASTERY_THRESHOLD = 0.95  # P(known) at which a skill counts as mastered (Cognitive Tutor, OATutor)
RECENT_WINDOW = 10  # items served within this many past items are not repeated


@dataclass(frozen=True)
class SkillInfo:
    id: int
    name: str
    position: int
    requires: frozenset = frozenset()


@dataclass(frozen=True)
class ItemInfo:
    id: int
    skills: frozenset
    difficulty: float | None = None


@dataclass
class LearnerView:
    skills: list[SkillInfo]
    items: list[ItemInfo]
    mastery: dict[int, float]  # skill id -> P(known)
    recent_items: list[int] = field(default_factory=list)  # most recent first
    seen_items: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Choice:
    item_id: int
    skill_id: int
    reason: str


def least_mastered_on_frontier(view: LearnerView) -> Choice | None:
    """Among skills whose prerequisites are all mastered, practise the least-mastered one, with an item
    not served recently (unseen items first, then the one whose difficulty best fits the learner).
    Once everything is mastered, review the least-mastered skill."""
    mastered = {s.id for s in view.skills if view.mastery[s.id] >= MASTERY_THRESHOLD}
    items_by_skill: dict[int, list[ItemInfo]] = {}
    for item in view.items:
        for skill_id in item.skills:
            items_by_skill.setdefault(skill_id, []).append(item)
    practisable = [s for s in view.skills if items_by_skill.get(s.id)]
    frontier = [s for s in practisable if s.id not in mastered and s.requires <= mastered]
    candidates = frontier or practisable
    if not candidates:
        return None
    skill = min(candidates, key=lambda s: (view.mastery[s.id], s.position))
    recent = set(view.recent_items[:RECENT_WINDOW])
    p_known = view.mastery[skill.id]

    def preference(item: ItemInfo):
        difficulty = 0.5 if item.difficulty is None else item.difficulty
        return (item.id in recent, item.id in view.seen_items, abs(difficulty - p_known), item.id)

    item = min(items_by_skill[skill.id], key=preference)
    percent = round(100 * p_known)
    if not frontier:
        reason = f"Review: you have mastered every skill; {skill.name} is the one to keep fresh ({percent}%)."
    elif skill.requires:
        reason = f"Next: you have mastered every prerequisite of {skill.name}; it is at {percent}%."
    else:
        reason = f"Practice: {skill.name} is your least-mastered skill so far ({percent}%)."
    return Choice(item_id=item.id, skill_id=skill.id, reason=reason)
