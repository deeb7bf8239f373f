"""Shared fixtures: a small course with a prerequisite chain, two teachers, their classes, learners."""

import pytest
from rest_framework.test import APIClient

from knowledge.services import load_course_package
from tutor.classrooms import create_classroom
from tutor.models import Enrollment, User


def numeric_step(prompt: str, value, skills=None) -> dict:
    step = {
        "prompt": prompt,
        "answer": {"type": "numeric", "value": value},
        "hints": [
            {"kind": "hint", "text": "Think about what the question asks."},
            {"kind": "scaffold", "text": "What is 1 + 1?", "answer": {"type": "numeric", "value": 2}},
            {"kind": "bottom_out", "text": f"The answer is {value}."},
        ],
    }
    if skills:
        step["skills"] = skills
    return step


def small_package() -> dict:
    """Three skills in a chain (add -> multiply -> equations), a few items each, one two-step item."""
    skills = [
        {"slug": "add", "name": "Adding", "description": "", "requires": [],
         "bkt": {"p_init": 0.3, "p_learn": 0.2, "p_guess": 0.2, "p_slip": 0.1, "p_forget": 0.0}},
        {"slug": "multiply", "name": "Multiplying", "description": "", "requires": ["add"],
         "bkt": {"p_init": 0.2, "p_learn": 0.2, "p_guess": 0.2, "p_slip": 0.1, "p_forget": 0.0}},
        {"slug": "equations", "name": "Equations", "description": "", "requires": ["multiply"],
         "bkt": {"p_init": 0.1, "p_learn": 0.2, "p_guess": 0.15, "p_slip": 0.1, "p_forget": 0.0}},
    ]
    items = []
    for i in range(1, 5):
        items.append({"slug": f"add-{i}", "title": f"Add {i}", "body": f"What is ${i} + {i}$?", "skills": ["add"],
                      "difficulty": 0.1 * i, "steps": [numeric_step("Your answer:", 2 * i)]})
        items.append({"slug": f"mul-{i}", "title": f"Multiply {i}", "body": f"What is ${i} \\times 3$?",
                      "skills": ["multiply"], "steps": [numeric_step("Your answer:", 3 * i)]})
    items.append({
        "slug": "two-step", "title": "Solve 2x + 1 = 7", "body": "Solve $2x + 1 = 7$.", "skills": ["equations"],
        "steps": [numeric_step("What is $2x$?", 6, ["add"]), numeric_step("What is $x$?", 3, ["equations"])],
    })
    items.append({
        "slug": "simplify", "title": "Simplify", "body": "Simplify $2x + 3x$.", "skills": ["equations"],
        "steps": [{"prompt": "Simplified:", "answer": {"type": "expression", "value": "5*x"},
                   "hints": [{"kind": "hint", "text": "Like terms."}, {"kind": "bottom_out", "text": "$5x$"}]}],
    })
    return {
        "format": "tutor-course/1",
        "course": {"slug": "small", "title": "Small course", "description": "", "language": "en"},
        "skills": skills,
        "items": [{"template": None, "source": "", "license": "", "difficulty": None, **item} for item in items],
    }


def make_user(username: str, role: str) -> User:
    user = User.objects.create(username=username, role=role)
    user.set_password("pw-for-tests")
    user.save()
    return user


@pytest.fixture
def course(db):
    return load_course_package(small_package())


@pytest.fixture
def people(course):
    """Teacher A with class A (learners alice, bob); teacher B with class B (learner carol)."""
    teacher_a, teacher_b = make_user("teacher_a", "teacher"), make_user("teacher_b", "teacher")
    class_a = create_classroom(teacher_a, "Class A", course)
    class_b = create_classroom(teacher_b, "Class B", course)
    alice, bob, carol = (make_user(name, "learner") for name in ("alice", "bob", "carol"))
    for learner, classroom in ((alice, class_a), (bob, class_a), (carol, class_b)):
        Enrollment.objects.create(classroom=classroom, learner=learner)
    return {"teacher_a": teacher_a, "teacher_b": teacher_b, "class_a": class_a, "class_b": class_b,
            "alice": alice, "bob": bob, "carol": carol}


@pytest.fixture
def api():
    def client_for(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2 is slow on purpose; tests only need passwords to work."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
