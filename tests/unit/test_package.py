"""Course packages: reading, checking, template expansion and writing (docs/course-format.md)."""

import json
import os
import re
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from knowledge.content.package import (
    DEFAULT_BKT,
    PackageError,
    PackageIssue,
    normalise_package,
    read_package,
    write_package,
)
from tutor.grading import canonical_answer, grade, validate_spec

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "packages"
VALID = DATA / "valid"
INVALID = DATA / "invalid"


def errors_of(path) -> list[str]:
    with pytest.raises(PackageError) as caught:
        read_package(path)
    lines = [str(issue) for issue in caught.value.errors]
    assert str(caught.value).splitlines() == lines  # str(PackageError) lists them all, one per line
    return lines


def assert_reported(lines, *fragments):
    """Some single reported line contains every fragment (file, place and problem together)."""
    assert any(all(f in line for f in fragments) for line in lines), \
        f"no line with {fragments}:\n" + "\n".join(lines)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def course_with(tmp_path, extra_yaml, name="course.yaml"):
    """A minimal valid course plus ``extra_yaml`` (skills, items or templates at top level)."""
    base = textwrap.dedent("""\
        format: tutor-course/1
        course: {slug: tiny, title: Tiny}
        skills:
          - {slug: counting, name: Counting}
        """)
    return write(tmp_path, name, base + textwrap.dedent(extra_yaml))


# ---------------------------------------------------------------- valid packages

def test_reads_yaml_course_with_nested_includes_and_fills_defaults():
    package = read_package(VALID / "course.yaml")
    assert package["format"] == "tutor-course/1"
    assert package["course"] == {
        "slug": "sample-algebra", "title": "Sample Algebra", "language": "en",
        "description": "One-step equations and fractions, for the package reader's tests."}
    skills = {s["slug"]: s for s in package["skills"]}
    assert list(skills) == ["integer-addition", "one-step-equations", "fraction-addition"]
    assert skills["integer-addition"] == {"slug": "integer-addition", "name": "Adding integers",
                                          "description": "", "requires": [], "bkt": DEFAULT_BKT}
    assert skills["one-step-equations"]["bkt"] == {"p_init": 0.3, "p_learn": 0.2, "p_guess": 0.25,
                                                   "p_slip": 0.05, "p_forget": 0.0}
    assert skills["fraction-addition"]["requires"] == ["integer-addition"]

    items = {i["slug"]: i for i in package["items"]}
    assert "sharing-pizza" in items  # from parts/word-problems.yaml, included by parts/fractions.yaml
    solve = items["solve-x-plus-4"]
    assert (solve["difficulty"], solve["template"], solve["source"], solve["license"]) == (0.3, None, "", "")
    step = solve["steps"][0]
    assert step["skills"] == ["one-step-equations"]  # default: the item's skills
    assert [h["kind"] for h in step["hints"]] == ["hint", "scaffold", "bottom_out"]
    assert step["hints"][1]["answer"] == {"type": "numeric", "value": 7}
    assert "answer" not in step["hints"][0]
    assert step["hints"][2]["text"] == "Subtract 4 from both sides:\n$x = 7$.\n"
    signs = items["sign-of-a-sum"]
    assert signs["difficulty"] is None and signs["steps"][0]["hints"] == []
    assert signs["steps"][1]["skills"] == ["integer-addition", "one-step-equations"]


def test_reads_json_package():
    package = read_package(VALID / "mini.json")
    assert package["course"] == {"slug": "mini", "title": "Mini course", "description": "", "language": "de"}
    assert package["skills"][1]["bkt"] == {**DEFAULT_BKT, "p_init": 0.1, "p_forget": 0.02}
    item = package["items"][0]
    assert (item["source"], item["license"]) == ("written for the tests", "CC0")
    assert item["steps"][1]["answer"] == {"type": "choice", "choices": ["8", "9", "10"], "correct": [1]}
    assert item["steps"][1]["skills"] == ["squares"]


def test_normalised_package_is_plain_json_data():
    for path in (VALID / "course.yaml", VALID / "mini.json"):
        package = read_package(path)
        assert json.loads(json.dumps(package)) == package


def test_normalise_package_accepts_its_own_output():
    package = read_package(VALID / "course.yaml")
    assert normalise_package(package) == package


def test_yaml_look_alikes_stay_text(tmp_path):
    path = course_with(tmp_path, """\
        items:
          - slug: look-alikes
            title: 2024-01-31
            skills: [counting]
            steps:
              - {prompt: Is it?, answer: {type: text, value: No}}
              - {prompt: Ratio?, answer: {type: text, value: 3:4}}
        """)
    item = read_package(path)["items"][0]
    assert item["title"] == "2024-01-31"
    assert [s["answer"]["value"] for s in item["steps"]] == ["No", "3:4"]


# ---------------------------------------------------------------- templates

def template_items(package, slug):
    return [i for i in package["items"] if i["template"] == slug]


def test_template_makes_count_distinct_items_with_answers_substituted():
    items = template_items(read_package(VALID / "course.yaml"), "solve-x-plus-a")
    assert [i["slug"] for i in items] == [f"solve-x-plus-a-{n}" for n in range(1, 7)]
    assert len({i["body"] for i in items}) == 6  # distinct draws
    for item in items:
        a, c = map(int, re.fullmatch(r"Solve \$x \+ (-?\d+) = (-?\d+)\$\.", item["body"]).groups())
        assert 2 <= a <= 15 and c > 0 and c != a  # int range, where: c > 0, exclude: b = 0
        step = item["steps"][0]
        assert step["answer"] == {"type": "numeric", "value": str(c - a)}
        assert grade(step["answer"], str(c - a)).correct
        scaffold, bottom_out = step["hints"]
        assert scaffold["text"] == f"What is ${c} - {a}$?" and scaffold["answer"] == step["answer"]
        assert bottom_out["text"] == f"Subtract {a} from both sides: $x = {c - a}$."
        assert "[[" not in json.dumps(item)


def test_template_arithmetic_is_exact_and_latex_form_displays_fractions():
    items = template_items(read_package(VALID / "course.yaml"), "add-fractions")
    assert len(items) == 5
    for item in items:
        fraction = r"\\frac\{(\d+)\}\{(\d+)\}"
        who, p, q, r, s = re.fullmatch(rf"(\w+) adds \${fraction} \+ {fraction}\$\.", item["body"]).groups()
        assert who in ("Ada", "Grace", "Emmy") and item["steps"][0]["prompt"] == f"What does {who} get?"
        assert int(p) < int(q) and int(r) < int(s)  # where: a list of conditions
        total = Fraction(int(p), int(q)) + Fraction(int(r), int(s))
        value = item["steps"][0]["answer"]["value"]
        assert "." not in value and Fraction(value) == total  # exact: "7/6", never 1.1666
        expression = item["steps"][1]["answer"]
        assert expression == {"type": "expression", "value": f"{value}*x"}
        assert validate_spec(expression) == [] and canonical_answer(expression) == f"{value}*x"
        assert item["difficulty"] == 0.5


def expansion_in_subprocess(path, hash_seed):
    code = ("import json, sys; from knowledge.content.package import read_package; "
            "print(json.dumps(read_package(sys.argv[1])['items']))")
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            env=env, cwd=REPO, check=True)
    return json.loads(result.stdout)


def test_template_expansion_is_the_same_in_every_process():
    # The default seed comes from the slug, not from hash(), which changes with PYTHONHASHSEED.
    in_process = read_package(VALID / "course.yaml")["items"]
    assert expansion_in_subprocess(VALID / "course.yaml", 1) == in_process
    assert expansion_in_subprocess(VALID / "course.yaml", 2) == in_process


def test_seed_and_slug_choose_the_variants(tmp_path):
    def bodies(slug, seed_line=""):
        path = course_with(tmp_path, f"""\
            templates:
              - slug: {slug}
                count: 4
                {seed_line}
                vars:
                  a: {{int: [1, 1000000]}}
                item:
                  title: Count
                  body: "Count to [[a]]."
                  skills: [counting]
                  steps:
                    - {{prompt: How far?, answer: {{type: numeric, value: "[[a]]"}}}}
            """, name=f"{slug}-{len(seed_line)}.yaml")
        return [i["body"] for i in read_package(path)["items"]]

    assert bodies("count-up") == bodies("count-up")
    assert bodies("count-up") != bodies("count-higher")
    assert bodies("count-up", "seed: 1") != bodies("count-up", "seed: 2")


def test_template_text_variables_and_functions(tmp_path):
    path = course_with(tmp_path, """\
        templates:
          - slug: shares
            count: 3
            vars:
              name: {choice: [Ada, Grace]}
              n: {choice: [4, 6, 8]}
              half: {expr: "n/2"}
              root: {expr: "sqrt(n^2)"}
            item:
              title: "[[name]] shares"
              body: "[[name]] has [[n]] apples, gives away [[max(half,1)]]; [[latex(1/n)]] each, [[0.1*n]] kg"
              skills: [counting]
              steps:
                - {prompt: Left?, answer: {type: numeric, value: "[[n - half]]"}}
                - {prompt: Root?, answer: {type: numeric, value: "[[root]]"}}
        """)
    for item in read_package(path)["items"]:
        name, n, half, fraction, weight = re.fullmatch(
            r"(\w+) has (\d+) apples, gives away (\d+); (.+) each, (.+) kg", item["body"]).groups()
        assert item["title"] == f"{name} shares"
        assert int(half) == int(n) // 2 and fraction == rf"\frac{{1}}{{{n}}}"
        assert weight == str(Fraction(int(n), 10))  # decimals in expressions are exact: 0.1*4 is 2/5
        assert [s["answer"]["value"] for s in item["steps"]] == [half, n]


@pytest.mark.parametrize("expression, problem", [
    ("__import__('os').system('echo hacked')", "unknown name '__import__'"),
    ("a.__class__", "'.' is not allowed"),
    ("(lambda: 1)()", "unknown name 'lambda'"),
    ("[a for a in (1, 2)]", "'[' is not allowed"),
    ("'text'", "''text'' is not allowed"),
    ("open('/etc/passwd')", "unknown name 'open'"),
    ("2a", "write products with '*'"),
])
def test_template_expressions_cannot_run_python(tmp_path, expression, problem):
    path = course_with(tmp_path, f"""\
        templates:
          - slug: sneaky
            count: 1
            vars:
              a: {{int: [1, 9]}}
              b: {{expr: {json.dumps(expression)}}}
            item:
              title: Sneaky
              skills: [counting]
              steps:
                - {{prompt: How many?, answer: {{type: numeric, value: "[[a]]"}}}}
        """)
    assert_reported(errors_of(path), "course.yaml", "template 'sneaky' var 'b'", problem)


# ---------------------------------------------------------------- invalid packages

@pytest.mark.parametrize("name, expected", [
    ("format-version.yaml", [("format-version.yaml", "format", "unsupported version '2' of tutor-course")]),
    ("missing-fields.yaml", [
        ("missing-fields.yaml", "course", "missing 'title'"),
        ("skill 'counting'", "missing 'name'"),
        ("item 'no-steps'", "missing 'steps'"),
        ("item 'no-answer' step 1", "missing 'answer'"),
        ("item 'no-skills'", "missing 'skills'"),
    ]),
    ("slugs.yaml", [
        ("slugs.yaml", "course", "bad slug 'Bad Course'"),
        ("slugs.yaml", "skill 'Fractions_1'", "bad slug 'Fractions_1'"),
        ("slugs-part.yaml", "skill 'counting'", "duplicate skill slug (first defined in", "slugs.yaml)"),
        ("slugs-part.yaml", "item 'count-to-three'", "duplicate item slug 'count-to-three'"),
    ]),
    ("unknown-keys.yaml", [
        ("unknown-keys.yaml", "skill 'counting'", "unknown key 'requirs' (did you mean 'requires'?)"),
        ("item 'count'", "unknown key 'titel' (did you mean 'title'?)"),
        ("item 'count' step 1", "unknown key 'hint' (did you mean 'hints'?)"),
    ]),
    ("unknown-skills.yaml", [
        ("unknown-skills.yaml", "skill 'counting'", "requires unknown skill 'ghost-skill'"),
        ("item 'count'", "unknown skill 'missing-skill'"),
        ("item 'count' step 1", "unknown skill 'step-skill-nowhere'"),
    ]),
    ("cycle.yaml", [("cycle.yaml", "skill 'a'", "prerequisite cycle: a -> b -> c -> a")]),
    ("numbers.yaml", [
        ("numbers.yaml", "skill 'counting' bkt", "p_init must be between 0 and 1"),
        ("skill 'counting' bkt", "p_learn must be between 0 and 1"),
        ("skill 'counting' bkt", "p_guess must be below 0.5"),
        ("skill 'counting' bkt", "p_slip must be below 0.5"),
        ("skill 'counting' bkt", "unknown key 'p_lern'"),
        ("item 'too-hard'", "difficulty must be a number from 0 to 1, not 1.5"),
    ]),
    ("steps.yaml", [
        ("steps.yaml", "item 'empty-steps'", "'steps' must be a non-empty list"),
        ("item 'add-fractions-3' step 1 answer", "numeric value 'three' is not a number"),
        ("steps.yaml: item 'add-fractions-3' step 2 hint 1: scaffold needs an 'answer'",),
        ("item 'add-fractions-3' step 2 hint 2 answer", "index 5 out of range"),
        ("item 'add-fractions-3' step 2 hint 3", "unknown kind 'tip'"),
        ("item 'add-fractions-3' step 2 hint 4", "only a scaffold has an 'answer'"),
        ("item 'add-fractions-3' step 2", "more than one bottom_out (hints 5, 6)"),
        ("item 'add-fractions-3' step 3", "'prompt' is empty"),
        ("item 'add-fractions-3' step 3 hint 1", "bottom_out must be the last rung"),
    ]),
    ("syntax.yaml", [("syntax.yaml", "line 6, column 14", "YAML syntax error", "mapping values")]),
    ("syntax.json", [("syntax.json", "line 5", "JSON syntax error")]),
    ("duplicate-key.yaml", [("duplicate-key.yaml", "line 6", "duplicate key 'name'")]),
    ("missing-include.yaml", [("missing-include.yaml", "include 'nowhere.yaml'", "file not found")]),
    ("templates.yaml", [
        ("templates.yaml", "template 'too-few-values'", "made only 3 distinct variants of 20"),
        ("template 'unknown-name'", "unknown name 'q' in 'a + q'"),
        ("template 'sneaky' var 'b'", "'__import__'"),
        ("template 'never-true'", "made only 0 distinct variants of 2"),
        ("template 'bad-answer' item 'bad-answer-1' step 1 answer", "apples' is not a number",
         "same place in 2 more variants"),
    ]),
])
def test_invalid_package_reports_file_place_and_problem(name, expected):
    lines = errors_of(INVALID / name)
    for fragments in expected:
        assert_reported(lines, *fragments)
    assert len(lines) == len(expected)  # each problem once, nothing else


def test_include_loop_names_the_loop():
    main = INVALID / "loop-a.yaml"
    lines = errors_of(main)
    part = INVALID / "loop-b.yaml"
    assert_reported(lines, f"{part}: include 'loop-a.yaml': include loop: {main} -> {part} -> {main}")


def test_unreadable_files(tmp_path):
    assert_reported(errors_of(tmp_path / "absent.yaml"), "absent.yaml", "file not found")
    assert_reported(errors_of(write(tmp_path, "course.txt", "format: tutor-course/1")), "course.txt",
                    "unknown file type")
    assert_reported(errors_of(write(tmp_path, "list.yaml", "- 1\n- 2\n")), "list.yaml", "must hold a mapping")


def test_format_must_be_named(tmp_path):
    assert_reported(errors_of(write(tmp_path, "a.yaml", "course: {slug: a, title: A}\n")),
                    "a.yaml", "format", "missing 'format' (expected tutor-course/1)")
    other = write(tmp_path, "b.yaml", "format: moodle-xml/1\ncourse: {slug: a, title: A}\n")
    assert_reported(errors_of(other), "b.yaml", "unknown format 'moodle-xml/1'")


def test_included_file_may_not_redefine_the_course(tmp_path):
    write(tmp_path, "part.yaml", "course: {slug: other, title: Other}\n")
    path = course_with(tmp_path, "include: [part.yaml]\n")
    assert_reported(errors_of(path), "part.yaml", "top level", "'course' belongs in the main file only")


def test_issue_format():
    issue = PackageIssue("fixtures/demo-course/fractions.yaml", "item 'add-fractions-3' step 2 hint 1",
                         "scaffold needs an 'answer'")
    assert str(issue) == ("fixtures/demo-course/fractions.yaml: item 'add-fractions-3' step 2 hint 1: "
                          "scaffold needs an 'answer'")
    assert str(PackageError([issue, PackageIssue("a.yaml", "", "file not found")])) == (
        f"{issue}\na.yaml: file not found")


# ---------------------------------------------------------------- writing

@pytest.mark.parametrize("source", ["course.yaml", "mini.json"])
def test_round_trip_read_write_read(tmp_path, source):
    package = read_package(VALID / source)
    written = write_package(package, tmp_path / "out.yaml")
    assert written == tmp_path / "out.yaml"
    assert read_package(written) == package


def test_written_file_is_one_readable_yaml_file(tmp_path):
    text = write_package(read_package(VALID / "course.yaml"), tmp_path / "out.yaml").read_text("utf-8")
    assert text.startswith("format: tutor-course/1\ncourse:\n  slug: sample-algebra\n")
    assert "include" not in text and "templates:" not in text  # includes merged, templates expanded
    assert "template: solve-x-plus-a\n" in text  # the variants can be traced back
    assert "skills: [one-step-equations]" in text  # short slug lists on one line
    assert "      text: |\n        Subtract 4 from both sides:\n        $x = 7$.\n" in text  # literal block
    long_line = "A " + "very " * 40 + "long title"
    package = read_package(VALID / "mini.json")
    package["items"][0]["title"] = long_line + " – ünïcode"
    text = write_package(package, tmp_path / "long.yaml").read_text("utf-8")
    assert f"title: {long_line} – ünïcode\n" in text  # not folded, not escaped
