"""The OATutor importer, on a hand-written sample in OATutor's format (tests/data/oatutor_sample.jsonl) and,
when ../shared/data is present, on the real content pool."""

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from knowledge.content.oatutor import Unimportable, answer_spec, display_text, latex_to_plain, read_oatutor
from knowledge.content.package import DEFAULT_BKT, normalise_package, read_package, write_package
from tutor.grading import grade

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "oatutor_sample.jsonl"
SHARED_DATA = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data"))
REAL_FILE = SHARED_DATA / "content" / "oatutor" / "problems.jsonl.gz"


@pytest.fixture(scope="module")
def converted():
    return read_oatutor(SAMPLE)


def item(package, slug):
    return next(i for i in package["items"] if i["slug"] == slug)


def test_problem_becomes_item_with_steps_hints_and_attribution(converted):
    package, _ = converted
    linear = item(package, "samplelinear1")
    assert linear["title"] == "Solving a linear equation"
    assert linear["body"] == "Solve $3x+5=20$ for $x$."  # OATutor's inline $$..$$ as $..$
    assert linear["source"] == "oatutor:sampleLinear1"
    cc_by = "https://creativecommons.org/licenses/by/4.0/ <CC BY 4.0>"
    assert linear["license"] == (f"{cc_by}; from https://example.org/tutor-tests/algebra; "
                                 f"hints: https://example.org/tutor-tests <Test authors> ({cc_by})")
    assert (linear["difficulty"], linear["template"]) == (None, None)
    assert linear["skills"] == ["linear-equations", "fractions-basic"]  # union of the steps' skills

    first, second = linear["steps"]
    assert first["prompt"] == "What is $x$?"
    assert first["answer"] == {"type": "numeric", "value": 5}
    assert first["skills"] == ["linear-equations"]
    # File order kept, the duplicated scaffold dropped, the solution moved to the end as bottom_out.
    assert first["hints"] == [
        {"kind": "hint", "text": "**Plan**\n\nUndo the addition first."},
        {"kind": "scaffold", "text": "**Subtract**\n\nWhat is $20-5$?",
         "answer": {"type": "numeric", "value": 15}},
        {"kind": "hint", "text": "**Divide**\n\nDivide both sides by $3$."},
        {"kind": "bottom_out", "text": "Subtract 5, then divide by 3: $x=5$."},
    ]
    assert second["prompt"] == "Solve $4y=-3$.\n\nGive a fraction."  # stepTitle + stepBody
    assert second["answer"] == {"type": "numeric", "value": "-3/4"}  # \frac{-3}{4}
    assert grade(second["answer"], "-0.75").correct
    # OATutor typed the first rung a hint, but it states the answer: it is the worked answer, shown last.
    assert second["hints"] == [{"kind": "scaffold", "text": "Is the answer positive?",
                                "answer": {"type": "choice", "choices": ["Yes", "No"], "correct": 1}},
                               {"kind": "bottom_out", "text": "**Answer**\n\nDividing by $4$ gives $y=\\frac{-3}{4}$."}]


def test_answer_types(converted):
    package, _ = converted
    factor = item(package, "sampleexpr1")["steps"][0]
    assert factor["answer"] == {"type": "expression", "value": "2(x+3)"}
    assert grade(factor["answer"], "2x + 6").correct
    power = factor["hints"][0]
    assert power["kind"] == "scaffold" and grade(power["answer"], "x*x").correct  # $$x^{2}$$

    slope = item(package, "samplechoice1")
    # Money ($5) makes single dollars ambiguous, so $$ stays; the literal \n becomes a line break.
    assert slope["body"] == "Money: a ticket costs $5 plus $$2$$ per ride.\nWhich is the slope?"
    assert slope["steps"][0]["answer"] == {"type": "choice", "choices": ["$5$", "$2$", "$7$"], "correct": 1}
    assert len(slope["steps"]) == 1  # the step whose answer is not among the choices is skipped

    point = item(package, "sampletext1")["steps"][0]
    assert point["answer"] == {"type": "text", "value": ["(2,3)", "(2, 3)"]}
    assert point["prompt"] == "Answer the question above."  # OATutor left the step title empty

    decimals = item(package, "sample-decimal-1")
    assert [s["answer"] for s in decimals["steps"]] == [
        {"type": "numeric", "value": "0.25"},
        {"type": "numeric", "value": "25%", "percent": True},
        {"type": "expression", "value": "4+pi"},
    ]
    assert decimals["license"] == "license not stated; from https://example.org/tutor-tests/algebra"
    again = item(package, "sample-decimal-1-2")  # its id slugifies like "Sample.Decimal 1"
    assert again["steps"][0]["answer"] == {"type": "numeric", "value": 1001}  # "1,001"


def test_skills_are_slugified_named_and_have_no_prerequisites(converted):
    package, report = converted
    assert [s["slug"] for s in package["skills"]] == [
        "linear-equations", "fractions-basic", "factoring", "slope", "systems", "decimals"]  # only used ones
    assert package["skills"][1] == {"slug": "fractions-basic", "name": "Fractions basic", "description": "",
                                    "requires": [], "bkt": DEFAULT_BKT}
    assert any("no prerequisite" in note for note in report["notes"])


def test_skip_report(converted):
    package, report = converted
    assert (report["problems_read"], report["items_written"], report["steps_written"]) == (9, 6, 9)
    assert len(package["items"]) == 6
    assert report["skipped"] == {
        "problem: no steps": 1,
        "problem: uses OATutor variabilization": 1,
        "problem: no importable step": 1,
        "step: LaTeX the importer cannot convert": 1,
        "step: multiple-choice answer not among the choices": 1,
    }
    assert report["rungs_dropped"] == {
        "duplicate hint id": 1,
        "scaffold: LaTeX the importer cannot convert": 1,
        "sub-hints of a scaffold (nesting not supported)": 2,
    }
    assert report["adjusted"]["hint states the step's answer: moved into the worked answer"] == 1
    assert report["examples"]["hint states the step's answer: moved into the worked answer"] == ["sampleLinear1b"]
    assert report["examples"]["problem: no steps"] == ["sampleEmpty1"]
    assert report["examples"]["problem: no importable step"] == ["sampleMatrix1"]
    assert report["examples"]["step: multiple-choice answer not among the choices"] == ["sampleChoice1b"]
    assert report["examples"]["scaffold: LaTeX the importer cannot convert"] == ["sampleExpr1a-h1"]
    json.dumps(report)  # plain data, for logs


def test_output_is_a_valid_package_that_round_trips(converted, tmp_path):
    package, _ = converted
    assert normalise_package(package, "oatutor") == package
    assert read_package(write_package(package, tmp_path / "oatutor.yaml")) == package


def test_reads_gzip_and_reports_progress(tmp_path, converted):
    packed = tmp_path / "problems.jsonl.gz"
    with open(SAMPLE, "rb") as plain, gzip.open(packed, "wb") as zipped:
        shutil.copyfileobj(plain, zipped)
    calls = []
    package, report = read_oatutor(packed, course_slug="oa-sample", title="Sample",
                                   progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (9, 9)
    assert package["course"]["slug"] == "oa-sample" and package["course"]["title"] == "Sample"
    assert package["items"] == converted[0]["items"] and report["skipped"] == converted[1]["skipped"]


@pytest.mark.parametrize("latex, plain", [
    ("$$\\frac{1}{2}$$", "((1)/(2))"),
    ("\\frac{x+1}{\\sqrt{x}}", "((x+1)/(sqrt(x)))"),
    ("$$\\left(x+1\\right) \\cdot 3$$", "(x+1) * 3"),
    ("$$\\sqrt[3]{8}$$", "((8)^(1/(3)))"),
    ("$$2^{10}$$", "2^(10)"),
    ("3\\times 4\\div 2", "3* 4/ 2"),
])
def test_latex_to_plain(latex, plain):
    assert latex_to_plain(latex) == plain


@pytest.mark.parametrize("answers, kind, reason", [
    (["$$\\begin{bmatrix} 1 \\end{bmatrix}$$"], "arithmetic", "LaTeX the importer cannot convert"),
    (["$$\\frac{1}{2$$"], "arithmetic", "LaTeX the importer cannot convert"),
    (["(1, 2)"], "arithmetic", "list, point or interval answer (not one expression)"),
    (["x_1=3"], "arithmetic", "answer is neither a number nor an expression"),
    ([""], "arithmetic", "no answer"),
    (["1", "2"], "arithmetic", "several answers for an arithmetic step"),
])
def test_unimportable_answers_say_why(answers, kind, reason):
    with pytest.raises(Unimportable) as caught:
        answer_spec(answers, "TextBox", kind, None)
    assert str(caught.value) == reason


def test_cheap_answers_and_function_powers():
    def arithmetic(answer):
        return answer_spec([answer], "TextBox", "arithmetic", None)

    assert arithmetic("$$-\\frac{3}{4}$$") == {"type": "numeric", "value": "-3/4"}
    assert arithmetic("$$|x|$$") == {"type": "expression", "value": "abs(x)"}
    cos_squared = arithmetic("$$\\cos^2\\left(x\\right)$$")
    assert cos_squared == {"type": "expression", "value": "(cos(x))^2"}
    assert grade(cos_squared, "cos(x)*cos(x)").correct


def test_display_text():
    assert display_text("Let $$x=1$$.\\nThen $$y=2$$.") == "Let $x=1$.\nThen $y=2$."
    assert display_text("It costs $3 and $$x$$") == "It costs $3 and $$x$$"  # ambiguous: left alone
    assert display_text("$$a \\neq b$$") == "$a \\neq b$"  # \n inside maths is LaTeX, not a line break


def test_converts_the_real_oatutor_pool():
    if not REAL_FILE.exists():
        pytest.skip(f"../shared/data not present: {REAL_FILE} is missing "
                    "(set TUTOR_SHARED_DATA to the data folder)")
    started = time.perf_counter()
    package, report = read_oatutor(REAL_FILE)
    seconds = time.perf_counter() - started
    print(f"\nconverted {REAL_FILE} in {seconds:.1f} s")
    print(json.dumps({k: v for k, v in report.items() if k != "examples"}, indent=1))
    assert report["problems_read"] == 12_814
    assert report["items_written"] == len(package["items"]) >= 0.95 * 12_814
    assert report["steps_written"] >= 0.95 * 16_362
    moved = report["adjusted"]["hint states the step's answer: moved into the worked answer"]
    assert moved > 1000  # OATutor types many worked steps ("The answer is ...") as plain hints
    normalise_package(package, str(REAL_FILE))  # every item passes the package checks
