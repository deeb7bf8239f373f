"""The demo: the demo course, accounts, two classes and learners with a simulated practice history.

The history is made by driving the real practice loop (tutor.practice) with simulated learners, so
every attempt, hint and mastery value in the demo came through the same code a browser uses.
Simulated learners follow a simple generative story (knowledge tracing's own): each skill is known
or not; a known skill is answered right unless the learner slips, an unknown one only by a guess;
each practice opportunity may teach it, faster for abler learners; weaker learners ask for hints more.
"""

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from knowledge.content.package import read_package
from knowledge.models import Course
from knowledge.services import load_course_package
from tutor import grading, practice
from tutor.classrooms import create_classroom
from tutor.models import Enrollment, User

DEMO_COURSE = Path(settings.BASE_DIR) / "fixtures" / "demo-course" / "course.yaml"
DEMO_PASSWORD = "tutor-demo"
CLASS_NAMES = ["Algebra 1 · Period 1", "Algebra 1 · Period 2"]
SIMULATED_NAMES = [
    "Ava Brooks", "Ben Carter", "Chloe Diaz", "Daniel Evans", "Ella Foster", "Finn Garcia", "Grace Hughes",
    "Hugo Ito", "Isla Jensen", "Jack Kim", "Kira Lopez", "Liam Moreau", "Maya Novak", "Noah Okafor",
    "Olivia Park", "Pablo Quinn", "Rosa Silva", "Sam Tanaka", "Tara Usman", "Umar Vega", "Vera Wong",
    "Will Xu", "Yara Young", "Zane Ziegler",
]


@dataclass
class DemoSummary:
    course: Course
    accounts: dict[str, str]  # username -> role
    simulated_learners: int
    attempts: int


def load_demo(learners_per_class: int = 12, seed: int = 2026, progress=None) -> DemoSummary:
    """Idempotent: a second run updates the course and leaves existing accounts and history alone."""
    course = load_course_package(read_package(DEMO_COURSE))
    admin = _account("admin", User.Role.ADMIN, "Ada Admin", superuser=True)
    teacher = _account("teacher", User.Role.TEACHER, "Tess Teacher")
    _account("researcher", User.Role.RESEARCHER, "Rey Researcher")
    learner = _account("learner", User.Role.LEARNER, "Lee Learner")
    classes = []
    for name in CLASS_NAMES:
        classroom = teacher.classrooms.filter(name=name).first() or create_classroom(teacher, name, course)
        classes.append(classroom)
    Enrollment.objects.get_or_create(classroom=classes[0], learner=learner)

    rng = random.Random(seed)
    simulated, attempts = 0, 0
    names = SIMULATED_NAMES[: learners_per_class * len(classes)]
    for index, full_name in enumerate(names):
        classroom = classes[index % len(classes)]
        username = full_name.split()[0].lower()
        learner_rng = random.Random(rng.random())
        if User.objects.filter(username=username).exists():
            continue
        simulated_learner = _account(username, User.Role.LEARNER, full_name)
        Enrollment.objects.create(classroom=classroom, learner=simulated_learner)
        attempts += simulate_history(simulated_learner, course, learner_rng)
        simulated += 1
        if progress:
            progress(index + 1, len(names))
    accounts = {u.username: u.role for u in [admin, teacher, learner]} | {"researcher": User.Role.RESEARCHER}
    return DemoSummary(course=course, accounts=accounts, simulated_learners=simulated, attempts=attempts)


def _account(username: str, role: str, full_name: str, superuser: bool = False) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        first, last = full_name.split(" ", 1)
        user = User(
            username=username, role=role, first_name=first, last_name=last,
            is_staff=superuser, is_superuser=superuser,
        )
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


@transaction.atomic
def simulate_history(learner: User, course: Course, rng: random.Random, days: int = 21) -> int:
    """Practise the course as a simulated learner over the past `days` days; returns attempts made."""
    ability = rng.gauss(0.0, 1.0)
    known: dict[int, bool] = {}
    skill_params = {s.pk: s for s in course.skills.all()}
    made = 0
    now = timezone.now()
    practice_days = sorted(rng.sample(range(1, days + 1), k=rng.randint(3, 8)), reverse=True)
    for days_ago in practice_days:
        clock = now - timedelta(days=days_ago, hours=rng.uniform(0, 6))
        session = practice.start_session(learner, course.pk, now=clock)
        for _ in range(rng.randint(6, 18)):
            step = practice.current_step(session)
            if step is None:
                break
            clock, n = _work_step(learner, session, step, ability, known, skill_params, rng, clock)
            made += n
            session.refresh_from_db()
        practice.end_session(learner, session.pk, now=clock + timedelta(seconds=30))
    return made


def _work_step(learner, session, step, ability, known, skill_params, rng, clock: datetime):
    """One simulated learner works one step to completion: maybe hints, wrong tries, then right."""
    skills = [s.pk for s in practice.step_skills(step)]
    for skill_id in skills:
        if skill_id not in known:
            prior = skill_params[skill_id].p_init
            known[skill_id] = rng.random() < _shift(prior, ability)
    knows = all(known[s] for s in skills)
    guess = min(skill_params[s].p_guess for s in skills)
    slip = max(skill_params[s].p_slip for s in skills)
    asks_for_hints = rng.random() < (0.05 if knows else _shift(0.3, -ability))
    tries = 0
    hints_seen = 0
    rungs = len(practice.hint_rungs(step, practice.hint_policy(session)))
    while True:
        clock += timedelta(seconds=rng.uniform(12, 90))
        out_of_hints = hints_seen >= rungs
        if asks_for_hints and not out_of_hints and (tries == 0 or tries >= 2):
            practice.request_hint(learner, session.pk, step.pk, _key(rng), now=clock)
            hints_seen += 1
            continue
        correct = out_of_hints or rng.random() < ((1 - slip) if knows else guess)
        answer = grading.canonical_answer(step.answer) if correct else wrong_answer(step.answer, rng)
        result = practice.submit_attempt(learner, session.pk, step.pk, answer, _key(rng), now=clock)
        tries += 1
        if result.correct:
            break
        asks_for_hints = asks_for_hints or tries >= 2
    for skill_id in skills:  # the opportunity may teach the skill
        if not known[skill_id] and rng.random() < _shift(skill_params[skill_id].p_learn, ability):
            known[skill_id] = True
    return clock, tries


def _shift(p: float, ability: float) -> float:
    """Move a probability on the logit scale by half the ability."""
    p = min(max(p, 1e-3), 1 - 1e-3)
    return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + 0.5 * ability)))


def _key(rng: random.Random) -> str:
    return f"demo-{rng.getrandbits(64):016x}"


def wrong_answer(spec: dict, rng: random.Random) -> str:
    """A plausible wrong answer of the right form (an off-by-one, another choice, a wrong word)."""
    kind = spec["type"]
    if kind == "choice":
        correct = spec["correct"] if isinstance(spec["correct"], list) else [spec["correct"]]
        wrong = [i for i in range(len(spec["choices"])) if i not in correct]
        return str(rng.choice(wrong)) if wrong else "0"
    if kind == "numeric":
        value = Fraction(str(spec["value"]))
        tolerance = Fraction(str(spec.get("tolerance", 0) or 0)) + abs(value) * Fraction(
            str(spec.get("relative_tolerance", 0) or 0)
        )
        wrong = value + rng.choice([-1, 1]) * (rng.choice([1, 2]) + 2 * tolerance)
        return str(wrong.numerator) if wrong.denominator == 1 else f"{wrong.numerator}/{wrong.denominator}"
    if kind == "expression":
        answer = grading.canonical_answer(spec)
        if "=" in answer:
            left, right = answer.split("=", 1)
            return f"{left}= {right} + 1"
        return f"{answer} + 1"
    return "I am not sure"
