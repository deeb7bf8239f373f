"""Research exports: every format read back by the tools it is for (pyBKT in its own venv, pyarrow, our own xAPI
rules) and pseudonymity (a grep for every learner's name, email and username in every format). Who may export
what is in test_export_access.py."""

import csv
import json
import os
import re
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from tutor.demo import load_demo
from tutor.exports import FORMATS, LogFilter, write_export
from tutor.exports.pseudonyms import MAX_ID_LENGTH, Pseudonyms
from tutor.models import Attempt, HintTurn, User

REPO = Path(__file__).resolve().parents[1]
PYBKT_PYTHONS = [
    Path(os.environ["TUTOR_PYBKT_PYTHON"]) if os.environ.get("TUTOR_PYBKT_PYTHON") else None,
    REPO / ".venv" / "pybkt" / "bin" / "python",  # `make test` builds it (requirements-pybkt.txt)
    REPO / "benchmarks" / ".venv-pybkt" / "bin" / "python",  # the benchmarks' C++ build, if there is one
]
PYBKT_PYTHON = next((p for p in PYBKT_PYTHONS if p is not None and p.exists()), None)
DATASHOP_REQUIRED = [
    "Anon Student Id",
    "Session Id",
    "Time",
    "Problem Name",
    "Step Name",
    "Outcome",
    "Help Level",
    "Total Num Hints",
    "Condition Name",
    "Condition Type",
    "KC (Default)",
    "CF (Skill Previous p-Known)",
    "CF (Skill New p-Known)",
]
KDD_READ_BY_TOOLS = [
    "Row",
    "Anon Student Id",
    "Problem Name",
    "Step Name",
    "First Transaction Time",
    "Correct First Attempt",
    "KC(Default)",
]


def export(tmp_path, format_name, log_filter=None, **options) -> Path:
    path = tmp_path / f"export.{FORMATS[format_name].extension}"
    write_export(format_name, log_filter or LogFilter(), path, **options)
    return path


def read_tsv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def as_text(path: Path) -> str:
    """What a researcher would see in the file (Parquet is compressed: read it back to compare values)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    return path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def export_folder(tmp_path, settings, monkeypatch):
    """Export files go to a temporary folder, here and in the Celery worker the services run starts."""
    folder = tmp_path / "exports"
    settings.TUTOR_EXPORT_DIR = str(folder)
    monkeypatch.setenv("TUTOR_EXPORT_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def demo_data(django_db_setup, django_db_blocker):
    """The demo with its simulated history, loaded once for the module (it takes seconds): every test only
    reads it, and what a test changes rolls back with the test's transaction. Emptied after the module."""
    with django_db_blocker.unblock():
        summary = load_demo(learners_per_class=2, seed=1)
        classes = list(summary.course.classrooms.order_by("name"))
        classes[0].condition = "socratic-hints"
        classes[0].save()
    yield summary
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def demo(db, demo_data):
    return demo_data


# ---------------------------------------------------------------- formats


def test_datashop_export_has_every_required_column_and_the_documented_time_format(demo, tmp_path):
    rows = read_tsv(export(tmp_path, "datashop"))
    assert len(rows) == Attempt.objects.count() + HintTurn.objects.count()
    header = list(rows[0])
    assert set(DATASHOP_REQUIRED) <= set(header)
    assert any(re.fullmatch(r"Level \(.+\)", name) for name in header)
    for row in rows:
        datetime.strptime(row["Time"], "%Y-%m-%d %H:%M:%S.%f")  # yyyy-MM-dd HH:mm:ss.SSS
        assert len(row["Time"]) == 23 and row["Time Zone"] == "UTC"
        assert row["Outcome"] in {"CORRECT", "INCORRECT", "HINT"}
        assert len(row["Anon Student Id"]) <= MAX_ID_LENGTH and row["Anon Student Id"].startswith("stu_")
        kcs = row["KC (Default)"].split("~~")
        if row["CF (Skill Previous p-Known)"]:  # a first action: one mastery value per skill, in KC order
            assert len(row["CF (Skill Previous p-Known)"].split("~~")) == len(kcs)
            assert len(row["CF (Skill New p-Known)"].split("~~")) == len(kcs)
    assert any("~~" in row["KC (Default)"] for row in rows), "the demo has steps with two skills"
    hints = [row for row in rows if row["Outcome"] == "HINT"]
    assert hints and all(row["Help Level"].isdigit() and int(row["Total Num Hints"]) >= 1 for row in hints)
    assert {row["Condition Name"] for row in rows} == {"socratic-hints", ""}
    assert {row["CF (Policy)"] for row in rows} - {""}, "the scheduling policy that served each item"
    # Time order within each learner.
    by_learner: dict[str, list] = {}
    for row in rows:
        by_learner.setdefault(row["Anon Student Id"], []).append(row["Time"])
    assert all(times == sorted(times) for times in by_learner.values())


def test_kdd_rollup_has_one_row_per_step_view_with_the_columns_the_tools_read(demo, tmp_path):
    rows = read_tsv(export(tmp_path, "kdd"))
    assert set(KDD_READ_BY_TOOLS) <= set(rows[0])
    firsts = Attempt.objects.filter(first_action=True).count() + HintTurn.objects.filter(first_action=True).count()
    assert len(rows) == firsts  # every step view starts with exactly one first action
    first_right = Attempt.objects.filter(first_action=True, correct=True).count()
    assert sum(int(row["Correct First Attempt"]) for row in rows) == first_right
    assert [int(row["Row"]) for row in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        datetime.strptime(row["First Transaction Time"], "%Y-%m-%d %H:%M:%S.%f")
        assert int(row["Corrects"]) >= 1  # the loop moves on only after a right answer
        assert len(row["Opportunity(Default)"].split("~~")) == len(row["KC(Default)"].split("~~"))


def test_pybkt_long_csv_has_one_row_per_skill_of_each_first_action(demo, tmp_path):
    with open(export(tmp_path, "pybkt"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["order_id", "user_id", "skill_name", "correct", "template_id"]
    expected = sum(max(len(a.mastery_change), 1) for a in Attempt.objects.filter(first_action=True))
    expected += sum(max(len(h.mastery_change), 1) for h in HintTurn.objects.filter(first_action=True))
    assert len(rows) == expected
    orders = [int(row["order_id"]) for row in rows]
    assert orders == sorted(orders) and {row["correct"] for row in rows} == {"0", "1"}


def test_pykt_sequences_are_six_aligned_lines_per_learner(demo, tmp_path):
    lines = export(tmp_path, "pykt").read_text().splitlines()
    assert len(lines) == 6 * Attempt.objects.values("learner").distinct().count()
    total = 0
    for start in range(0, len(lines), 6):
        uid, length = lines[start].split(",")
        assert uid.startswith("stu_")
        fields = [line.split(",") for line in lines[start + 1 : start + 6]]
        assert all(len(values) == int(length) for values in fields)
        assert set(fields[2]) <= {"0", "1"}
        assert all(t.isdigit() for t in fields[3])
        total += int(length)
    firsts = Attempt.objects.filter(first_action=True).count() + HintTurn.objects.filter(first_action=True).count()
    assert total == firsts


def test_parquet_holds_the_raw_log_in_row_groups(demo, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from tutor.exports import parquet

    monkeypatch.setattr(parquet, "ROW_GROUP", 100)
    path = export(tmp_path, "parquet")
    meta = pq.ParquetFile(path).metadata
    total = Attempt.objects.count() + HintTurn.objects.count()
    assert meta.num_rows == total and meta.num_row_groups == -(-total // 100)
    table = pq.read_table(path).to_pylist()
    attempt = Attempt.objects.filter(first_action=True).order_by("pk").first()
    row = next(r for r in table if r["event"] == "attempt" and r["event_id"] == attempt.pk)
    assert row["correct"] == attempt.correct and row["answer"] == attempt.raw_answer
    assert row["item_version"] == attempt.item_version and row["policy"]
    assert len(row["skills"]) == len(row["mastery_before"]) == len(row["mastery_after"]) == len(attempt.mastery_change)
    hint = next(r for r in table if r["event"] == "hint")
    assert hint["hint_source"] and hint["help_level"] >= 1 and hint["correct"] is None


XAPI_STATEMENT_KEYS = {
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "stored",
    "authority",
    "version",
    "attachments",
}
XAPI_INTERACTION_TYPES = {
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
}
ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def is_iri(value) -> bool:
    return isinstance(value, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$", value) is not None


def check_language_map(value):
    assert isinstance(value, dict) and value and all(LANGUAGE_TAG.match(k) for k in value)


def check_activity(activity):
    assert activity.get("objectType", "Activity") == "Activity" and is_iri(activity["id"])
    definition = activity.get("definition", {})
    if "name" in definition:
        check_language_map(definition["name"])
    if "type" in definition:
        assert is_iri(definition["type"])
    if "interactionType" in definition:
        assert definition["interactionType"] in XAPI_INTERACTION_TYPES


def check_statement(statement):
    """The xAPI 1.0.3 statement requirements (Data, section 2.4) that apply to what we write."""
    assert set(statement) <= XAPI_STATEMENT_KEYS and {"actor", "verb", "object"} <= set(statement)
    assert str(uuid.UUID(statement["id"])) == statement["id"]
    actor = statement["actor"]
    assert actor.get("objectType", "Agent") == "Agent"
    identifiers = {"mbox", "mbox_sha1sum", "openid", "account"} & set(actor)
    assert identifiers == {"account"}, "exactly one identifier, and never an email"
    assert is_iri(actor["account"]["homePage"]) and isinstance(actor["account"]["name"], str)
    assert is_iri(statement["verb"]["id"]) and statement["verb"]["id"].startswith("http://adlnet.gov/expapi/verbs/")
    check_language_map(statement["verb"]["display"])
    check_activity(statement["object"])
    moment = datetime.fromisoformat(statement["timestamp"].replace("Z", "+00:00"))
    assert moment.tzinfo is not None
    result = statement.get("result", {})
    assert set(result) <= {"score", "success", "completion", "response", "duration", "extensions"}
    if "duration" in result:
        assert ISO_DURATION.match(result["duration"])
    if "success" in result:
        assert isinstance(result["success"], bool)
    if "score" in result:
        assert -1 <= result["score"]["scaled"] <= 1
    context = statement.get("context", {})
    if "registration" in context:
        uuid.UUID(context["registration"])
    for activities in context.get("contextActivities", {}).values():
        assert isinstance(activities, list)
        for activity in activities:
            check_activity(activity)
    assert all(is_iri(key) for key in context.get("extensions", {}))
    assert statement.get("version", "1.0.0").startswith("1.0.")


def test_xapi_statements_follow_the_statement_rules(demo, tmp_path):
    statements = [json.loads(line) for line in export(tmp_path, "xapi").read_text().splitlines()]
    for statement in statements:
        check_statement(statement)
    verbs = {s["verb"]["id"].rsplit("/", 1)[1] for s in statements}
    assert verbs == {"answered", "asked", "mastered", "initialized", "terminated", "completed"}
    assert len({s["id"] for s in statements}) == len(statements)
    answered = [s for s in statements if s["verb"]["display"]["en-US"] == "answered"]
    assert len(answered) == Attempt.objects.count()
    assert sum(s["result"]["success"] for s in answered) == Attempt.objects.filter(correct=True).count()
    # The same study exported again gives the same statement ids; another study, other ids and actors.
    again = [json.loads(line) for line in export(tmp_path, "xapi").read_text().splitlines()]
    assert [s["id"] for s in again] == [s["id"] for s in statements]
    other = [json.loads(line) for line in export(tmp_path, "xapi", study="another").read_text().splitlines()]
    assert not {s["id"] for s in other} & {s["id"] for s in statements}
    assert not {s["actor"]["account"]["name"] for s in other} & {s["actor"]["account"]["name"] for s in statements}


def test_no_export_contains_a_learners_name_email_or_username(demo, tmp_path):
    identities = []
    for n, learner in enumerate(User.objects.filter(role=User.Role.LEARNER)):
        learner.username = f"qz-user-{n}-{learner.username}"
        learner.first_name, learner.last_name = f"Firstname{n}x", f"Lastname{n}y"
        learner.email = f"learner{n}@school.example.org"
        learner.save()
        identities += [learner.username, learner.first_name, learner.last_name, learner.email]
    for format_name in FORMATS:
        text = as_text(export(tmp_path, format_name)).lower()
        leaked = [i for i in identities if i.lower() in text]
        assert not leaked, f"{format_name} export contains {leaked[:3]}"
    # An admin's share may include them: then the usernames are there (and only then).
    text = as_text(export(tmp_path, "datashop", include_identities=True))
    assert any(name in text for name in identities[::4])  # the usernames


def test_pseudonyms_are_stable_keyed_and_short():
    one, same, other = Pseudonyms("study-a"), Pseudonyms("study-a"), Pseudonyms("study-b")
    assert one.learner(42) == same.learner(42) != other.learner(42)
    assert one.learner(42) != one.learner(43) and one.learner(42) != one.session(42)
    assert len(one.learner(42)) <= MAX_ID_LENGTH
    keyed = Pseudonyms("study-a", secret=b"another deployment")
    assert keyed.learner(42) != one.learner(42)


@pytest.mark.skipif(
    PYBKT_PYTHON is None,
    reason="pyBKT's test venv is missing: `make test` builds .venv/pybkt "
    "from requirements-pybkt.txt (or set TUTOR_PYBKT_PYTHON)",
)
def test_pybkt_fits_the_kdd_and_long_csv_exports_of_the_demo_data(demo, tmp_path):
    long_csv = export(tmp_path, "pybkt")
    kdd = tmp_path / "rollup.txt"
    write_export("kdd", LogFilter(), kdd)
    script = """
import json, sys
import pandas as pd
from pyBKT.models import Model
out = {}
for name, path, sep in (("long", sys.argv[1], ","), ("kdd", sys.argv[2], "\\t")):
    data = pd.read_csv(path, sep=sep)
    model = Model(seed=0, num_fits=1)
    model.fit(data=data)  # no column renaming: pyBKT's ASSISTments and Cognitive Tutor defaults
    params = model.params().reset_index()
    out[name] = {"skills": sorted(params["skill"].unique().tolist()), "values": params["value"].tolist(),
                 "auc": float(model.evaluate(data=data, metric="auc"))}
print(json.dumps(out))
"""
    done = subprocess.run(
        [str(PYBKT_PYTHON), "-c", script, str(long_csv), str(kdd)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fitted = json.loads(done.stdout.strip().splitlines()[-1])
    with open(long_csv, newline="") as fh:
        skills = {row["skill_name"] for row in csv.DictReader(fh)}
    assert fitted["long"]["skills"] == sorted(skills)
    kcs = {row["KC(Default)"] for row in read_tsv(kdd)}
    assert fitted["kdd"]["skills"] == sorted(kcs)
    for result in fitted.values():
        assert all(0.0 <= v <= 1.0 for v in result["values"])
        assert result["auc"] > 0.6, "fitted on the demo's simulated learners, BKT ranks their answers"
