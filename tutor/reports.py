"""Read-only summaries for the teacher pages (selectors: they never change state)."""

from django.db.models import Count, Max, Q

from knowledge.models import MasteryState
from tutor.models import Attempt, Classroom
from tutor.scheduling import MASTERY_THRESHOLD


def class_overview(classroom: Classroom) -> dict:
    """Per learner: mean P(known) over the course's skills, skills mastered, attempts, accuracy, last
    active; per skill: the class's mean P(known). Unpractised skills count at their prior."""
    skills = list(classroom.course.skills.all())
    learners = list(classroom.learners.order_by("username"))
    states: dict[tuple[int, int], float] = {
        (learner_id, skill_id): p
        for learner_id, skill_id, p in MasteryState.objects.filter(
            learner__in=learners, skill__course=classroom.course
        ).values_list("learner_id", "skill_id", "p_known")
    }
    activity = {
        row["learner_id"]: row
        for row in Attempt.objects.filter(learner__in=learners, item__course=classroom.course)
        .values("learner_id")
        .annotate(attempts=Count("pk"), correct=Count("pk", filter=Q(correct=True)), last=Max("created_at"))
    }
    rows = []
    for learner in learners:
        p = [states.get((learner.pk, skill.pk), skill.p_init) for skill in skills]
        act = activity.get(learner.pk, {})
        rows.append(
            {
                "learner": learner,
                "mean_mastery": sum(p) / len(p) if p else 0.0,
                "mastered": sum(value >= MASTERY_THRESHOLD for value in p),
                "attempts": act.get("attempts", 0),
                "accuracy": act["correct"] / act["attempts"] if act.get("attempts") else None,
                "last_active": act.get("last"),
            }
        )
    skill_means = [
        {
            "skill": skill,
            "mean": sum(states.get((ln.pk, skill.pk), skill.p_init) for ln in learners) / len(learners)
            if learners
            else skill.p_init,
        }
        for skill in skills
    ]
    return {"learners": rows, "skills": skill_means, "skill_count": len(skills)}
