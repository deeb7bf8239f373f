"""Course packages into and out of the database: the demo course, re-imports, commands, cycles."""

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from knowledge.content.package import read_package
from knowledge.models import Course, Item, Prerequisite, Skill, Step
from knowledge.services import ContentError, add_prerequisite, export_course_package, load_course_package
from tests.conftest import small_package
from tutor import practice

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo-course" / "course.yaml"


@pytest.fixture(scope="module")
def demo_package():
    return read_package(DEMO)


def test_the_demo_course_meets_the_content_bar(demo_package):
    skills, items = demo_package["skills"], demo_package["items"]
    assert len(skills) >= 25 and len(items) >= 200
    assert sum(bool(s["requires"]) for s in skills) >= 20, "most skills should have prerequisites"
    for item in items:
        for n, step in enumerate(item["steps"]):
            kinds = [h["kind"] for h in step["hints"]]
            where = f"{item['slug']} step {n + 1}"
            assert len([k for k in kinds if k != "bottom_out"]) >= 2, f"{where}: fewer than two hints"
            assert kinds[-1] == "bottom_out", f"{where}: no bottom-out"
    per_skill = {s["slug"]: 0 for s in skills}
    for item in items:
        for slug in item["skills"]:
            per_skill[slug] += 1
    assert min(per_skill.values()) >= 3, per_skill


def test_every_demo_answer_and_scaffold_accepts_its_own_canonical_answer(demo_package):
    from tutor.grading import canonical_answer, grade

    for item in demo_package["items"]:
        for step in item["steps"]:
            for spec in [step["answer"]] + [h["answer"] for h in step["hints"] if "answer" in h]:
                assert grade(spec, canonical_answer(spec)).correct, (item["slug"], spec)


def test_import_course_command_loads_the_demo_course(db, capsys):
    call_command("import_course", str(DEMO), verbosity=0)
    course = Course.objects.get(slug="algebra-foundations")
    assert course.skills.count() >= 25 and course.items.count() >= 200
    assert Prerequisite.objects.filter(skill__course=course).count() >= 25
    positions = {s.slug: s.position for s in course.skills.all()}
    for edge in Prerequisite.objects.filter(skill__course=course).select_related("skill", "prerequisite"):
        assert positions[edge.prerequisite.slug] < positions[edge.skill.slug]


def test_reimporting_updates_in_place_and_keeps_history(people, course):
    alice = people["alice"]
    session = practice.start_session(alice, course.pk)
    step = practice.current_step(session)
    practice.submit_attempt(alice, session.pk, step.pk, str(step.answer["value"]), "k1")
    counts = (Skill.objects.count(), Item.objects.count(), Step.objects.count())
    package = small_package()
    package["items"][0]["title"] = "Add, reworded"
    load_course_package(package)
    assert (Skill.objects.count(), Item.objects.count(), Step.objects.count()) == counts
    item = Item.objects.get(slug="add-1")
    assert item.title == "Add, reworded" and item.version == 2
    assert Item.objects.get(slug="add-2").version == 1
    assert step.attempts.count() == 1


def test_a_reimport_that_drops_answered_steps_is_refused(people, course):
    alice = people["alice"]
    session = practice.start_session(alice, course.pk)
    session.current_item = course.items.get(slug="two-step")
    session.save()
    step = practice.current_step(session)
    practice.submit_attempt(alice, session.pk, step.pk, "6", "k1")
    session.refresh_from_db()
    practice.submit_attempt(alice, session.pk, practice.current_step(session).pk, "3", "k2")
    package = small_package()
    two_step = next(i for i in package["items"] if i["slug"] == "two-step")
    two_step["steps"] = two_step["steps"][:1]
    with pytest.raises(ContentError, match="two-step"):
        load_course_package(package)
    assert Step.objects.filter(item__slug="two-step").count() == 2


def test_export_then_read_gives_the_same_course(course, tmp_path):
    path = tmp_path / "small.yaml"
    call_command("export_course", "small", str(path), verbosity=0)
    exported = read_package(path)
    assert exported == read_package(path)
    original = small_package()
    assert [s["slug"] for s in exported["skills"]] == [s["slug"] for s in original["skills"]]
    by_slug = {i["slug"]: i for i in exported["items"]}
    for item in original["items"]:
        assert by_slug[item["slug"]]["steps"][0]["answer"] == item["steps"][0]["answer"]
        assert by_slug[item["slug"]]["steps"][0]["hints"] == item["steps"][0]["hints"]
    assert export_course_package(Course.objects.get(slug="small"))["items"] == exported["items"]


def test_import_course_reports_errors_with_file_and_item(db, tmp_path):
    bad = tmp_path / "bad.yaml"
    package = small_package()
    package["items"][0]["steps"][0]["answer"] = {"type": "numeric"}
    bad.write_text(yaml.safe_dump(package))
    with pytest.raises(CommandError) as error:
        call_command("import_course", str(bad), verbosity=0)
    assert "bad.yaml" in str(error.value) and "add-1" in str(error.value)
    assert not Course.objects.exists()


def test_a_prerequisite_that_closes_a_cycle_is_refused_with_the_cycle_named(course):
    add, equations = Skill.objects.get(slug="add"), Skill.objects.get(slug="equations")
    with pytest.raises(ContentError) as error:
        add_prerequisite(equations, add)
    cycle = str(error.value).split(": ", 1)[1].split(" -> ")
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["add", "equations", "multiply"]
    assert not Prerequisite.objects.filter(prerequisite=equations).exists()


def test_the_admin_form_path_refuses_a_cycle_too(course):
    from django.core.exceptions import ValidationError

    add, equations = Skill.objects.get(slug="add"), Skill.objects.get(slug="equations")
    with pytest.raises(ValidationError, match="would create a cycle: .*equations"):
        Prerequisite(prerequisite=equations, skill=add).full_clean()
