"""The demo data: accounts, classes and a simulated history made by the real practice loop."""

import pytest

from knowledge import fitting
from knowledge.models import MasteryState
from tutor.demo import load_demo
from tutor.models import Attempt, Classroom, HintTurn, User


def test_load_demo_creates_accounts_classes_and_a_consistent_history(db):
    summary = load_demo(learners_per_class=3, seed=1)
    assert {u.role for u in User.objects.all()} == {"admin", "teacher", "researcher", "learner"}
    teacher = User.objects.get(username="teacher")
    assert Classroom.objects.filter(teacher=teacher).count() == 2
    assert summary.simulated_learners == 6 and User.objects.filter(role="learner").count() == 7
    simulated = User.objects.filter(role="learner").exclude(username="learner")
    assert all(Attempt.objects.filter(learner=u).count() >= 10 for u in simulated)
    assert HintTurn.objects.exists() and Attempt.objects.filter(correct=False).exists()
    days = {a.created_at.date() for a in Attempt.objects.all()}
    assert len(days) >= 3, "history should span several days"
    # Mastery in the database is exactly what replaying each simulated learner's log gives.
    stored = {}
    for m in MasteryState.objects.filter(learner__in=simulated).select_related("skill"):
        stored.setdefault(m.learner_id, {})[m.skill.slug] = m.p_known
    replayed = fitting.replay_mastery(summary.course)
    assert set(replayed) == set(stored)
    for learner_id, mastery in stored.items():
        assert replayed[learner_id] == pytest.approx(mastery)
    spread = [m.p_known for m in MasteryState.objects.all()]
    assert min(spread) < 0.5 < max(spread), "learners should differ"


def test_load_demo_twice_adds_nothing(db):
    load_demo(learners_per_class=2, seed=1)
    counts = (User.objects.count(), Attempt.objects.count(), Classroom.objects.count())
    again = load_demo(learners_per_class=2, seed=1)
    assert again.simulated_learners == 0
    assert (User.objects.count(), Attempt.objects.count(), Classroom.objects.count()) == counts
