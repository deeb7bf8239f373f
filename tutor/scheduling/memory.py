"""Memory per learner and skill with FSRS-6 (the `fsrs` package): how likely the learner still recalls a
skill they learned, and when a review is due.

A skill is not a flashcard, so the mapping is: a correct first attempt is a `Good` review, a wrong one
`Again`; only the first attempt of a calendar day counts as a long-term review (repeats within a day are
the short-term queue's business, see `state.py`); practising a skill that builds on a prerequisite
forgives part of the prerequisite's elapsed time (`credit`), since using a skill is a partial review.
"""

from dataclasses import dataclass, replace
from datetime import datetime

from fsrs import Card, Rating, Scheduler, State

TARGET_RETENTION = 0.9
DAY_SECONDS = 86400.0

# No learning steps: FSRS sees one review per day and the tutor's own queue handles same-day repeats.
_SCHEDULER = Scheduler(desired_retention=TARGET_RETENTION, learning_steps=(), relearning_steps=(), enable_fuzzing=False)
_DECAY = -_SCHEDULER.parameters[20]
_FACTOR = 0.9 ** (1 / _DECAY) - 1


@dataclass(frozen=True)
class Memory:
    stability: float  # days until predicted recall falls to 90 %
    difficulty: float  # FSRS difficulty, 1 (easy) to 10 (hard)
    last_review: datetime  # last long-term review, moved forward by partial credit
    introduced: datetime  # first practice of the skill
    reviews: int = 1
    lapses: int = 0
    passed: int = 0  # reviews in a row answered right while the skill counted as mastered; a wrong one resets it

    def to_json(self) -> dict:
        return {
            "stability": self.stability,
            "difficulty": self.difficulty,
            "last_review": self.last_review.isoformat(),
            "introduced": self.introduced.isoformat(),
            "reviews": self.reviews,
            "lapses": self.lapses,
            "passed": self.passed,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Memory":
        return cls(
            stability=data["stability"],
            difficulty=data["difficulty"],
            last_review=datetime.fromisoformat(data["last_review"]),
            introduced=datetime.fromisoformat(data["introduced"]),
            reviews=data["reviews"],
            lapses=data["lapses"],
            passed=data.get("passed", 0),  # memories stored before the field existed
        )


def retrievability(memory: Memory, now: datetime) -> float:
    """Predicted probability of recall now, from FSRS-6's power forgetting curve."""
    elapsed_days = max(0.0, (now - memory.last_review).total_seconds() / DAY_SECONDS)
    return (1 + _FACTOR * elapsed_days / memory.stability) ** _DECAY


def days_since(memory: Memory, now: datetime) -> int:
    return round((now - memory.last_review).total_seconds() / DAY_SECONDS)


def reviewed_today(memory: Memory, now: datetime) -> bool:
    return memory.last_review.date() == now.date()


def review(memory: Memory | None, correct: bool, now: datetime, mastered: bool = False) -> Memory:
    """The memory after a first attempt on the skill at `now`; a second review the same day changes nothing.
    `mastered`: the skill counted as mastered before the answer (a right answer then is a passed check)."""
    rating = Rating.Good if correct else Rating.Again
    if memory is None:
        card, _ = _SCHEDULER.review_card(Card(card_id=0), rating, now)
        return Memory(card.stability, card.difficulty, now, introduced=now, lapses=int(not correct))
    if reviewed_today(memory, now):
        return memory
    card = Card(
        card_id=0,
        state=State.Review,
        stability=memory.stability,
        difficulty=memory.difficulty,
        due=now,
        last_review=memory.last_review,
    )
    card, _ = _SCHEDULER.review_card(card, rating, now)
    return replace(
        memory,
        stability=card.stability,
        difficulty=card.difficulty,
        last_review=now,
        reviews=memory.reviews + 1,
        lapses=memory.lapses + int(not correct),
        passed=(memory.passed + int(mastered)) if correct else 0,
    )


def credit(memory: Memory, now: datetime, fraction: float) -> Memory:
    """A partial review: forgive `fraction` of the time since the last review (stability is unchanged)."""
    if now <= memory.last_review:
        return memory
    return replace(memory, last_review=memory.last_review + (now - memory.last_review) * fraction)
