"""What the unlock rule costs in 30-day recall: the combined policy next to variants that show how far any
policy obeying "a skill unlocks when its prerequisites are mastered" can go, on the learners and simulators of
benchmarks/scheduling.py.

    python benchmarks/scheduling_bound.py --graph demo,junyi,dbe --learners 200 \
        --json benchmarks/results/scheduling-bound.json

Conditions, each run on the same learners (traits, simulators and answer draws as in scheduling.py):
  random                  the random baseline: every skill from the first day, locked or not.
  gated-random            random among the skills whose prerequisites are mastered in ground truth.
  combined                the combined policy as shipped.
  combined+truth          the combined policy seeing ground-truth mastery in place of its BKT estimate: the
                          fastest unlocking any tracing model could give it, and no practice of what is
                          already mastered.
  combined+truth+spacedD  as combined+truth, and before anything else a review of the started skill practised
                          longest ago once that is D days or more (`--spacing`, a comma list: spaced practice of
                          every started skill during learning, at a cost in exercises).
  oatutor                 OATutor's heuristic, for the exercise ratio.
Per graph and simulator the table gives recall_30d (mean [95 % CI]) and exercises to master the goals as a
ratio to OATutor's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scheduling as bench  # noqa: E402
from scheduling import POLICIES, SIMULATORS, Unit, load_graph, mean_ci, run_learner  # noqa: E402

from tutor.scheduling.policies import _best_item, _massed, _practised_today, combined  # noqa: E402
from tutor.scheduling.state import MASTERY_THRESHOLD, Choice  # noqa: E402


def gated_random(course, state, rng):
    """Random among the skills whose prerequisites count as mastered."""
    mastered = {s for s in course.order if state.mastery[s] >= MASTERY_THRESHOLD}
    open_skills = [s for s in course.practisable if course.skills[s].requires <= mastered]
    skill_id = rng.choice(open_skills)
    item = rng.choice(course.items_by_skill[skill_id])
    return Choice(item.id, skill_id, "practice", "Practice: an unlocked skill at random.", (item.id,), (1.0,))


def spaced(days: float):
    """The combined policy, with a review first of the started skill practised longest ago once that is `days`
    old (not one practised today, not one that took its share of the last items)."""

    def policy(course, state, rng):
        if not any(wait <= 0 for wait in state.short_term.values()):
            massed = _massed(course, state)
            started = [
                s
                for s in state.memory
                if s in course.practisable_set and not _practised_today(state, s) and s not in massed
            ]
            if started:
                oldest = min(started, key=lambda s: state.memory[s].last_review)
                if (state.now - state.memory[oldest].last_review).total_seconds() / 86400 >= days:
                    return _best_item(course, state, [oldest], rng, "review", "Review: spaced practice.")
        return combined(course, state, rng)

    return policy


def conditions(spacings: list[float]) -> dict:
    """label -> (policy function, informed)"""
    return {
        "random": (POLICIES["random"], False),
        "gated-random": (gated_random, True),
        "combined": (POLICIES["combined"], False),
        "combined+truth": (POLICIES["combined"], True),
        **{f"combined+truth+spaced{d:g}": (spaced(d), True) for d in spacings},
        "oatutor": (POLICIES["oatutor"], False),
    }


_WORKER: dict = {}


def _run(job: tuple) -> dict:
    graph, simulator, label, index = job
    unit, o = _WORKER["units"][graph], _WORKER["options"]
    policy, informed = _WORKER["conditions"][label]
    r = run_learner(unit, simulator, label, index, o["days"], o["per_day"], o["seed"], policy, informed)
    return {k: r[k] for k in ("graph", "simulator", "policy", "learner", "recall_30d", "exercises_to_mastery")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--graph", default="demo", help="comma-separated, from demo, junyi, dbe")
    parser.add_argument("--simulators", default=",".join(SIMULATORS))
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=15)
    parser.add_argument(
        "--spacing", default="1,2,4", help="comma list: days before a started skill is reviewed, one condition each"
    )
    parser.add_argument("--data", type=Path, default=bench.ROOT.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    graphs = bench._names(args.graph, bench.GRAPHS, "graph", parser)
    simulators = bench._names(args.simulators, SIMULATORS, "simulator", parser)

    _WORKER["units"] = {g: Unit(load_graph(g, args.data), args.seed) for g in graphs}
    _WORKER["options"] = {"days": args.days, "per_day": args.per_day, "seed": args.seed}
    _WORKER["conditions"] = conditions([float(d) for d in args.spacing.split(",")])
    labels = list(_WORKER["conditions"])
    jobs = [(g, s, c, i) for g in graphs for s in simulators for c in labels for i in range(args.learners)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        records = list(tqdm(pool.imap_unordered(_run, jobs, chunksize=10), total=len(jobs), file=sys.stderr))
    seconds = time.perf_counter() - started

    rows = []
    for g in graphs:
        for s in simulators:
            cell = {c: [r for r in records if (r["graph"], r["simulator"], r["policy"]) == (g, s, c)] for c in labels}
            oatutor = sum(r["exercises_to_mastery"] for r in cell["oatutor"])
            for c in labels:
                recall, low, high = mean_ci([r["recall_30d"] for r in cell[c]])
                ratio = sum(r["exercises_to_mastery"] for r in cell[c]) / oatutor
                rows.append(
                    {
                        "graph": g,
                        "simulator": s,
                        "condition": c,
                        "recall_30d": recall,
                        "ci95": [low, high],
                        "exercises_vs_oatutor": ratio,
                    }
                )
    lines = ["| graph | simulator | condition | recall_30d [95 % CI] | exercises / OATutor |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['graph']} | {r['simulator']} | {r['condition']} | {r['recall_30d']:.3f} "
            f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] | {r['exercises_vs_oatutor']:.3f} |"
        )
    table = "\n".join(lines)
    print(table)
    print(f"\n{len(records)} learner runs in {seconds:.0f} s")
    if args.json:
        config = {**vars(args), "data": str(args.data), "json": str(args.json), "seconds": seconds}
        config["environment"] = bench.environment()
        args.json.write_text(json.dumps({"results": rows, "config": config, "table": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
