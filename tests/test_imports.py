"""Importing outside logs (`manage.py import_logs`): an ASSISTments slice comes back row for row from the pyBKT
export, DataShop files from our own export import again, bad rows are reported by line and skipped, and the
tracing engine fits the imported course."""

import csv
import gzip
import io
import json
import os
from itertools import groupby
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from knowledge import fitting
from knowledge.models import Course
from tutor.demo import load_demo
from tutor.exports import LogFilter, write_export
from tutor.exports.importing import import_log
from tutor.exports.pseudonyms import Pseudonyms
from tutor.models import Attempt, HintTurn, User

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TUTOR_SHARED_DATA", REPO.parent / "shared" / "data"))
ASSIST2009 = SHARED_DATA / "kt" / "assist2009.csv.gz"
needs_assist2009 = pytest.mark.skipif(
    not ASSIST2009.exists(),
    reason=f"../shared/data not present: {ASSIST2009} is missing (set TUTOR_SHARED_DATA to the data folder)",
)
SLICE_LEARNERS = 40


def assist_slice(path: Path, learners: int = SLICE_LEARNERS) -> list[dict]:
    """The first `learners` learners' rows of the real file."""
    rows, seen = [], set()
    with gzip.open(ASSIST2009, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            seen.add(row["user_id"])
            if len(seen) > learners:
                break
            rows.append(row)
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def normalised(rows: list[tuple]) -> list[tuple]:
    """(problem, skill, correct) rows with the skill rows of one attempt in a fixed order: ASSISTments repeats an
    attempt once per skill on consecutive rows, and the order of those rows carries no meaning."""
    out = []
    for _, run in groupby(rows, key=lambda r: (r[0], r[2])):
        out += sorted(run)
    return out


def pybkt_export(tmp_path, course: Course) -> list[dict]:
    path = tmp_path / "pybkt.csv"
    write_export("pybkt", LogFilter(courses=[course.pk]), path, study="round-trip")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@needs_assist2009
def test_an_assist2009_slice_comes_back_row_for_row_from_the_pybkt_export(db, tmp_path):
    source = tmp_path / "assist.csv"
    original = assist_slice(source)
    out = io.StringIO()
    call_command("import_logs", str(source), "--course", "assist-slice", stdout=out, verbosity=0)
    summary = json.loads(out.getvalue())
    assert summary["bad_rows"] == 0 and summary["learners"] == SLICE_LEARNERS
    course = Course.objects.get(slug="assist-slice")
    exported = pybkt_export(tmp_path, course)
    assert len(exported) == len(original)

    pseudonyms = Pseudonyms("round-trip")
    learner_of = {
        pseudonyms.learner(u.pk): u.username.removeprefix("assist-slice-")
        for u in User.objects.filter(username__startswith="assist-slice-")
    }
    ours: dict[str, list] = {}
    for row in exported:
        ours.setdefault(learner_of[row["user_id"]], []).append((row["template_id"], row["skill_name"], row["correct"]))
    theirs: dict[str, list] = {}
    for row in original:
        theirs.setdefault(row["user_id"], []).append((row["problem_id"], row["skill_name"], row["correct"]))
    assert set(ours) == set(theirs)
    for user, rows in theirs.items():
        assert normalised(ours[user]) == normalised(rows), f"learner {user}"
    # A sample compared as it is: the first learner's first rows, in file order.
    first = original[0]["user_id"]
    assert ours[first][:5] == theirs[first][:5]


@needs_assist2009
def test_the_tracing_engine_fits_an_imported_slice(db, tmp_path):
    source = tmp_path / "assist.csv"
    assist_slice(source, learners=60)
    import_log(source, "assist-fit")
    course = Course.objects.get(slug="assist-fit")
    record = fitting.queue_fit(course, "bkt")
    fitting.run_fit(record, device="cpu")
    record.refresh_from_db()
    assert record.status == "done" and record.train_rows > 1000
    assert 0.5 < record.metrics["auc"] < 1.0


def test_bad_rows_are_reported_by_line_and_skipped(db, tmp_path):
    source = tmp_path / "log.csv"
    source.write_text(
        "user_id,seq_idx,problem_id,skill_id,skill_name,correct\n"
        "u1,0,p1,7,Adding,1\n"
        "u1,1,p2,,,1\n"  # line 3: no skill
        "u1,2,p2,7,Adding,yes\n"  # line 4: not 0/1
        ",3,p3,7,Adding,0\n"  # line 5: no learner
        "u2,0,p1,7,Adding,0\n"
        "u2,1,p4,7,Adding,1\n"
        "u2,2,p4,8,Counting,1\n"  # the same attempt on a second skill
    )
    err, out = io.StringIO(), io.StringIO()
    call_command("import_logs", str(source), "--course", "bad", stdout=out, stderr=err, verbosity=0)
    summary = json.loads(out.getvalue())
    assert [(b["line"], b["reason"].split()[0]) for b in summary["bad_row_examples"]] == [
        (3, "no"),
        (4, "correct"),
        (5, "no"),
    ]
    assert "line 4: correct must be 0 or 1, not 'yes' (skipped)" in err.getvalue()
    assert summary["attempts"] == 3 and summary["learners"] == 2
    two_skills = Attempt.objects.get(item__slug="p4")
    assert set(two_skills.mastery_change) == {"7", "8"}
    with pytest.raises(CommandError, match="exists already"):
        call_command("import_logs", str(source), "--course", "bad", verbosity=0)
    assert Attempt.objects.count() == 3  # nothing doubled
    bad_header = tmp_path / "nope.csv"
    bad_header.write_text("student,item,score\n1,2,3\n")
    with pytest.raises(CommandError, match="needs user_id"):
        call_command("import_logs", str(bad_header), "--course", "nope", verbosity=0)


def test_a_datashop_export_imports_back_with_the_same_transactions(db, tmp_path):
    summary = load_demo(learners_per_class=2, seed=3)
    exported = tmp_path / "datashop.txt"
    write_export("datashop", LogFilter(courses=[summary.course.pk]), exported)
    with open(exported, "a") as fh:  # and one broken row at the end
        fh.write("999\tstu_x\tses_x\tnot a time\tUTC\t\tATTEMPT\tRESULT\tc\tp\t1\tstep-1\t1\tCORRECT\n")
    report = import_log(exported, "reimported")
    assert [b.line for b in report.bad_rows] == [len(exported.read_text().splitlines())]
    course = Course.objects.get(slug="reimported")
    assert (
        Attempt.objects.filter(item__course=course).count()
        == Attempt.objects.filter(item__course=summary.course).count()
    )
    assert (
        HintTurn.objects.filter(step__item__course=course).count()
        == HintTurn.objects.filter(step__item__course=summary.course).count()
    )
    for flag in (True, False):
        assert (
            Attempt.objects.filter(item__course=course, first_action=flag).count()
            == Attempt.objects.filter(item__course=summary.course, first_action=flag).count()
        )

    def attempts(rows):  # each first action's skills (their order within it follows each course's skill order)
        return [
            (sorted(r["skill_name"] for r in run), run[0]["correct"])
            for run in (list(g) for _, g in groupby(rows, key=lambda r: r["order_id"]))
        ]

    assert attempts(pybkt_export(tmp_path, course)) == attempts(pybkt_export(tmp_path, summary.course))
