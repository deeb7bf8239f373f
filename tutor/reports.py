"""Read-only summaries for the teacher pages (selectors: they never change state)."""

from datetime import date, datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet

from knowledge.models import MasteryState
from tutor.models import POLICY_CHOICES, Attempt, Classroom, Selection
from tutor.scheduling import MASTERY_THRESHOLD
from tutor.scheduling.policies import NEW_SKILLS_PER_DAY


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
    traits = learner_traits(classroom.course)
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
                "traits": traits.get(str(learner.pk), {}).get("words"),
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
    return {"learners": rows, "skills": skill_means, "skill_count": len(skills), "has_traits": bool(traits)}


def learner_traits(course) -> dict:
    """{learner pk: traits} from the course's newest fitted hierarchical model (empty if there is none)."""
    newest = course.tracing_models.filter(status="done").exclude(posterior={}).order_by("-version").first()
    return newest.posterior.get("learners", {}) if newest else {}


def skill_model(course) -> dict:
    """The course's tracing-model versions and, per skill, the parameters the online update uses now,
    with a plain reading of each for teachers."""
    versions = list(course.tracing_models.select_related("requested_by")[:20])
    active = next((v for v in versions if v.active), None)
    fitted = active.parameters if active else {}
    skills = []
    for skill in course.skills.all():
        row = fitted.get(skill.slug, {})
        skills.append(
            {
                "skill": skill,
                "rows": row.get("rows"),
                "fitted": row.get("fitted", False),
                "reading": skill_reading(skill),
            }
        )
    hierarchical = next((v for v in versions if v.status == "done" and v.posterior), None)
    return {
        "versions": versions,
        "active": active,
        "skills": skills,
        "hierarchical": hierarchical,
        "running": any(v.status in ("queued", "running") for v in versions),
    }


def skill_reading(skill) -> str:
    """A few words on what a skill's BKT parameters say, for someone who does not read BKT."""
    words = []
    if skill.p_init >= 0.6:
        words.append("most learners know it already")
    elif skill.p_init <= 0.15:
        words.append("new to most learners")
    if skill.p_learn >= 0.3:
        words.append("learned quickly")
    elif skill.p_learn <= 0.08:
        words.append("slow to learn")
    if skill.p_guess >= 0.3:
        words.append("easy to guess")
    if skill.p_slip >= 0.2:
        words.append("often slipped on")
    if skill.p_forget >= 0.05:
        words.append("forgotten without practice")
    return ", ".join(words).capitalize() or "Typical"


POLICY_DESCRIPTIONS = {
    "combined": "Unlocks a skill once its prerequisites are mastered, brings back mastered skills when they are "
    f"likely forgotten, starts at most {NEW_SKILLS_PER_DAY} new skills a day, and works towards the class goals first.",
    "random": "Any skill, any item: a baseline for comparison.",
    "oatutor": "Always the learner's least-mastered skill, whatever its prerequisites.",
    "mastery": "Skills in course order; each one until mastered.",
    "fsrs": "Reviews when due, then new skills in course order, like flashcards.",
}


def class_scheduling(classroom: Classroom, selections: QuerySet[Selection], now: datetime) -> dict:
    """The class's scheduling settings and what they did: the policies to choose from, each goal with how
    many learners have mastered it, and the items served lately (`selections`: already scoped to the
    asking user) with a count by kind over the last week."""
    learners = list(classroom.learners.values_list("pk", flat=True))
    goals = list(classroom.goals.select_related("skill"))
    mastered = dict(
        MasteryState.objects.filter(
            learner__in=learners, skill__in=[g.skill_id for g in goals], p_known__gte=MASTERY_THRESHOLD
        )
        .values("skill_id")
        .annotate(n=Count("pk"))
        .values_list("skill_id", "n")
    )
    today: date = now.date()
    goal_rows = [{"goal": g, "mastered": mastered.get(g.skill_id, 0), "past": g.due < today} for g in goals]
    class_log = selections.filter(classroom=classroom)
    by_kind = dict(
        class_log.filter(created_at__gte=now - timedelta(days=7))
        .values("kind")
        .annotate(n=Count("pk"))
        .values_list("kind", "n")
    )
    recent = list(class_log.select_related("learner", "item", "skill").order_by("-created_at", "-pk")[:20])
    return {
        "policies": [
            {"name": name, "label": label, "description": POLICY_DESCRIPTIONS.get(name, "")}
            for name, label in POLICY_CHOICES
        ],
        "goals": goal_rows,
        "learner_count": len(learners),
        "skills": list(classroom.course.skills.all()),
        "recent": recent,
        "by_kind": sorted(by_kind.items()),
        "today": today,
    }
