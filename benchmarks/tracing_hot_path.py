"""The online mastery update of the practice loop, against recomputing mastery from the learner's history.

    python benchmarks/tracing_hot_path.py --history 200 --json benchmarks/results/tracing-hot-path.json

Each answer updates P(known) of the step's skills with `knowledge.tracing.bkt.mastery_after`: O(1) per skill.
The peers, timed in the same run, are what a tutor without an online update would do per answer: replay the
learner's whole history on the skill (a Python loop of the same update, and the batched torch filter
`BatchedBKT.trace`, which the refit uses). All three give the same number; the table says so.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.tracing.bkt import BatchedBKT, BKTParams, mastery_after  # noqa: E402
from knowledge.tracing.data import Interactions  # noqa: E402

PARAMS = BKTParams(p_init=0.3, p_learn=0.12, p_guess=0.2, p_slip=0.1, p_forget=0.01)


def per_call_seconds(function, repeat: int, calls: int) -> float:
    """Median over `repeat` timings of `calls` calls, per call."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(calls)
        timings.append((time.perf_counter() - started) / calls)
    return statistics.median(timings)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=200, help="answers already on the skill")
    parser.add_argument("--skills-per-step", type=int, default=2, help="skills one answer updates")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    answers = (rng.random(args.history) < 0.7).tolist()
    skills = args.skills_per_step

    def online(calls):  # one answer: each of the step's skills moves once
        p = [PARAMS.p_init] * skills
        for i in range(calls):
            correct = answers[i % len(answers)]
            for k in range(skills):
                p[k] = mastery_after(p[k], correct, PARAMS)

    def replay_python(calls):
        for _ in range(calls):
            for _k in range(skills):
                p = PARAMS.p_init
                for correct in answers:
                    p = mastery_after(p, correct, PARAMS)

    model = BatchedBKT(device="cpu", forget=True).load_state_dict({
        "kind": "batched-bkt", "config": {"forget": True}, "init": {},
        "tensors": {"prior": [PARAMS.p_init] * skills, "learn": [PARAMS.p_learn] * skills,
                    "guess": [PARAMS.p_guess] * skills, "slip": [PARAMS.p_slip] * skills,
                    "forget": [PARAMS.p_forget] * skills},
        "item_keys": [], "ability_edges": [],
    })
    log = Interactions(user=np.zeros(args.history * skills, dtype=np.int64),
                       seq=np.repeat(np.arange(args.history), skills), skill=np.tile(np.arange(skills), args.history),
                       correct=np.repeat(np.array(answers, dtype=np.int64), skills))

    def replay_batched(calls):
        for _ in range(calls):
            model.trace(log)

    # Same answer from all three.
    p = PARAMS.p_init
    for correct in answers:
        p = mastery_after(p, correct, PARAMS)
    batched_last = float(model.trace(log)[1][-1])
    assert abs(batched_last - p) < 1e-12, (batched_last, p)

    rows = [
        ("online update (mastery_after per skill)", per_call_seconds(online, args.repeat, 100_000)),
        ("replay the history in Python", per_call_seconds(replay_python, args.repeat, max(1, 20_000 // args.history))),
        ("replay the history with BatchedBKT.trace", per_call_seconds(replay_batched, args.repeat, 50)),
    ]
    base = rows[0][1]
    print(f"One answer updating {skills} skills, {args.history} earlier answers on each; median of {args.repeat}.\n")
    print("| method | µs per answer | × the online update |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e6:.2f} | {seconds / base:.0f}× |")
    print(f"\nAll three give P(known) = {p:.12f} after the history.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "results": [{"method": name, "us_per_answer": seconds * 1e6, "ratio_to_online": seconds / base}
                        for name, seconds in rows],
            "history": args.history, "skills_per_step": skills, "repeat": args.repeat,
            "python": platform.python_version(), "platform": platform.platform(),
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
