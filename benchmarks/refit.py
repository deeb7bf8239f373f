"""The app's whole refit path on a large practice log: load the attempts from the database, fit BKT on most
learners and score the rest, fit on all, store the version, copy the parameters onto the skills and replay
every learner's mastery. pyBKT 1.4.3 fitting the same rows (its fit alone) is the peer, when installed.

    python benchmarks/refit.py --attempts 1000000 --json benchmarks/results/refit-1m.json
    python benchmarks/refit.py --attempts 1000000 --database-url postgres://postgres@127.0.0.1:5432/refit_bench

The log is simulated from known BKT parameters (one or two skills per step), so the table also says how
close the fitted parameters came to the truth. It is written to its own database (SQLite under /tmp unless
--database-url is given; that database is emptied first), never to the app's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def simulate(n_learners: int, per_learner: int, n_skills: int, n_items: int, seed: int):
    """Per attempt: learner, item, correct; per item its skills; the true parameters."""
    rng = np.random.default_rng(seed)
    truth = {"p_init": rng.uniform(0.05, 0.5, n_skills), "p_learn": rng.uniform(0.05, 0.3, n_skills),
             "p_guess": rng.uniform(0.05, 0.3, n_skills), "p_slip": rng.uniform(0.03, 0.2, n_skills)}
    item_skills = [sorted({i % n_skills} | ({int(rng.integers(n_skills))} if rng.random() < 0.3 else set()))
                   for i in range(n_items)]
    learner = np.repeat(np.arange(n_learners), per_learner)
    item = rng.integers(n_items, size=n_learners * per_learner)
    correct = np.zeros(len(item), dtype=bool)
    known = rng.random((n_learners, n_skills)) < truth["p_init"]
    draws = rng.random((len(item), 3))
    for row, (who, what) in enumerate(zip(learner, item, strict=True)):
        skills = item_skills[what]
        # Right when every skill is answered right (known and no slip, or a guess).
        ok = all(draws[row, 0] >= truth["p_slip"][s] if known[who, s] else draws[row, 1] < truth["p_guess"][s]
                 for s in skills)
        correct[row] = ok
        for s in skills:
            if not known[who, s] and draws[row, 2] < truth["p_learn"][s]:
                known[who, s] = True
    return learner, item, correct, item_skills, truth


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--per-learner", type=int, default=200)
    parser.add_argument("--skills", type=int, default=60)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--model", default="bkt")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--database-url", default="sqlite:////tmp/tutor-refit-bench.sqlite3")
    parser.add_argument("--no-peer", action="store_true", help="skip pyBKT")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database's log from an earlier run with the same arguments")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    if args.database_url.startswith("sqlite:///") and not args.reuse:
        Path(args.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from knowledge import fitting
    from knowledge.models import Course
    from tutor.models import Attempt

    if connection.vendor == "postgresql" and not args.reuse:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", "--noinput", verbosity=0)

    n_learners = args.attempts // args.per_learner
    print(f"simulating {n_learners:,} learners x {args.per_learner} attempts", file=sys.stderr)
    learner, item, correct, item_skills, truth = simulate(n_learners, args.per_learner, args.skills, args.items,
                                                          args.seed)

    started = time.perf_counter()
    course = Course.objects.filter(slug="refit-bench").first()
    if course is not None and Attempt.objects.filter(item__course=course).count() == len(item):
        write_log = False
    else:
        if course is not None:
            raise SystemExit("the database holds a different log: run without --reuse")
        course, write_log = Course.objects.create(slug="refit-bench", title="Refit benchmark"), True
    if write_log:
        write_simulated_log(course, learner, item, correct, item_skills, args.skills)
    write_seconds = time.perf_counter() - started

    stages: list[list] = []

    def progress(stage, fraction):
        name = stage.split(":")[0]
        if not stages or stages[-1][0] != name:
            stages.append([name, time.perf_counter()])

    record = fitting.queue_fit(course, args.model)
    began = time.perf_counter()
    fitting.run_fit(record, device=args.device, progress=progress)
    total = time.perf_counter() - began
    stages.append(["end", time.perf_counter()])
    phases = {name: round(stages[i + 1][1] - at, 2) for i, (name, at) in enumerate(stages[:-1])}

    fitted = {f: np.array([record.parameters[f"s{k}"][f] for k in range(args.skills)]) for f in truth}
    error = {f: float(np.mean(np.abs(fitted[f] - truth[f]))) for f in truth}
    result = {"attempts": len(item), "rows": record.train_rows, "learners": n_learners, "skills": args.skills,
              "database": connection.vendor, "device": record.device, "model": args.model,
              "refit_seconds": round(total, 2), "phases": phases, "held_out": record.metrics,
              "mean_abs_error_vs_truth": error, "write_log_seconds": round(write_seconds, 1) if write_log else None}

    if not args.no_peer:
        result["pybkt"] = pybkt_fit_seconds(fitting.course_log(course).interactions, args.seed)

    print(f"\nRefit of {len(item):,} attempts ({record.train_rows:,} skill rows, {n_learners:,} learners, "
          f"{args.skills} skills) on {connection.vendor}, {record.device}:\n")
    print("| phase | seconds |\n|---|---|")
    for name, seconds in phases.items():
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **whole refit** | **{total:.2f}** |")
    if result.get("pybkt"):
        peer = result["pybkt"]["fit_seconds"]
        ours = phases.get("Fitting on all learners", float("nan"))
        print(f"\npyBKT 1.4.3 (C++) fitting the same rows: {peer:.1f} s; our fit on all learners: {ours:.2f} s "
              f"({peer / ours:.1f}x faster); the app's whole refit: {total:.1f} s ({total / peer:.2f}x pyBKT's fit).")
    print("\nMean absolute error of the fitted parameters against the simulation's truth: "
          + ", ".join(f"{f} {e:.3f}" for f, e in error.items()))
    print(f"Held-out AUC {record.metrics.get('auc', float('nan')):.4f}")
    if args.json:
        result["environment"] = {"python": platform.python_version(), "platform": platform.platform(),
                                 "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
                                 "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                                 "command": " ".join(sys.argv)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


def write_simulated_log(course, learner, item, correct, item_skills, n_skills) -> None:
    from tqdm import tqdm

    from knowledge.models import Item, ItemSkill, Skill, Step
    from tutor.models import Attempt, PracticeSession, User

    n_learners = int(learner.max()) + 1
    skills = Skill.objects.bulk_create([Skill(course=course, slug=f"s{k}", name=f"Skill {k}", position=k)
                                        for k in range(n_skills)])
    items = Item.objects.bulk_create([Item(course=course, slug=f"i{i}", title=f"Item {i}")
                                      for i in range(len(item_skills))])
    ItemSkill.objects.bulk_create([ItemSkill(item=items[i], skill=skills[s])
                                   for i, ks in enumerate(item_skills) for s in ks])
    steps = Step.objects.bulk_create([Step(item=it, position=0, prompt="?", answer_type="numeric",
                                           answer={"type": "numeric", "value": 1}) for it in items])
    users = User.objects.bulk_create([User(username=f"l{u}", role="learner") for u in range(n_learners)])
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    sessions = PracticeSession.objects.bulk_create([PracticeSession(learner=u, course=course, started_at=t0)
                                                    for u in users])
    changes = [{f"s{s}": [0.0, 0.0] for s in ks} for ks in item_skills]
    batch = 20_000
    with tqdm(total=len(item), unit="attempt", desc="writing the log", file=sys.stderr) as bar:
        for start in range(0, len(item), batch):
            rows = []
            for row in range(start, min(start + batch, len(item))):
                who, what = int(learner[row]), int(item[row])
                rows.append(Attempt(
                    learner=users[who], session=sessions[who], item=items[what], step=steps[what], raw_answer="1",
                    correct=bool(correct[row]), hint_level=0, first_action=True, mastery_change=changes[what],
                    client_key=str(row), created_at=t0 + datetime.timedelta(seconds=row)))
            Attempt.objects.bulk_create(rows)
            bar.update(len(rows))


def pybkt_fit_seconds(log, seed: int) -> dict | None:
    """pyBKT's fit of the same rows, through the kt benchmark's adapter (None when pyBKT is not installed)."""
    from benchmarks.kt import PYBKT_PYTHON, PyBKTAdapter

    if not PYBKT_PYTHON.exists():
        print("pyBKT is not installed (bash benchmarks/setup_pybkt.sh): no peer timing", file=sys.stderr)
        return None
    adapter = PyBKTAdapter(argparse.Namespace(seed=seed))
    adapter.fit(log)
    adapter.predict(log.subset(np.arange(min(10, log.n_users))))
    return {"fit_seconds": adapter.fit_seconds, "peak_mb": adapter.peak_mb}


if __name__ == "__main__":
    main()
