"""Next-item policies behind one interface. Pure and seeded: the web app and benchmarks/scheduling.py run
the same code.

A policy gets the course as a `CourseMap` and one learner as a `LearnerState` (mastery, FSRS memory per
skill, recent items, goals, time now) and returns a `Choice`: the item, a reason the learner can read, and
the candidates with their selection probabilities, which the app logs for off-policy evaluation.
"""

from tutor.scheduling.policies import DEFAULT_POLICY, POLICIES, choose, effectively_mastered
from tutor.scheduling.state import (
    MASTERY_THRESHOLD,
    Choice,
    CourseMap,
    ItemInfo,
    LearnerState,
    SkillInfo,
    after_answer,
    record_attempt,
    requeue,
)

__all__ = [
    "DEFAULT_POLICY",
    "MASTERY_THRESHOLD",
    "POLICIES",
    "Choice",
    "CourseMap",
    "ItemInfo",
    "LearnerState",
    "SkillInfo",
    "after_answer",
    "choose",
    "effectively_mastered",
    "record_attempt",
    "requeue",
]
