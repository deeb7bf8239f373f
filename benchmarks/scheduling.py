"""Next-item policy benchmark: simulated learners on real prerequisite graphs, every policy of
tutor/scheduling run against the same learners.

    python benchmarks/scheduling.py --graph demo,junyi,dbe --learners 200 --days 60 \
        --json benchmarks/results/scheduling.json --plot benchmarks/results/scheduling.png
    python benchmarks/scheduling.py --latency --json benchmarks/results/scheduling-latency.json

The simulated learners are the ground truth. A policy sees only its own, misspecified model of them: BKT with
the defaults (p_init 0.2, p_learn 0.15, guess 0.2, slip 0.1, no forgetting) for every skill and FSRS-6 with
its default parameters, both moved on by `record_attempt` from the observed correctness alone.

Graphs (`--graph`, a comma list):
  demo   fixtures/demo-course/*.yaml, read with PyYAML. Skills and `requires` from course.yaml; every item of
         the unit files (a template counts `count` times) with its skills and difficulty; minutes =
         1 + 3 * difficulty + 0.5 per step after the first. The unit is the whole course; the goals are its
         sink skills (those no other skill requires).
  junyi  <data>/graphs/junyi_prerequisite_edges.csv (`prerequisite,exercise`). Self-loops are dropped and
         the remaining cycles broken by removing DFS back edges (DFS along prerequisite -> dependent, roots
         and children in name order); both are printed.
  dbe    <data>/kt/dbe_kt22/KC_Relationships.csv (from = prerequisite, to = dependent; names from KCs.csv).
         Its edges come in both directions; every such pair is oriented from the KC met earlier in the course
         to the later one: the median, over DBE-KT22 learners, of the relative position of a learner's first
         attempt at the KC in interactions.csv.gz (KCs never attempted there come after, in id order). Any
         cycle left is broken as for junyi.
  Graphs without items get 8 synthetic items per skill: difficulty 0.1 + 0.8 (k + u) / 8 for k = 0..7,
  u ~ U(0, 1), and minutes 1 + 3 (difficulty - 0.1) / 0.8 (1 to 4 minutes).
  Goals (junyi, dbe): one teacher unit per graph and seed. A first goal is drawn among the skills whose
  closure (skill + ancestors) has 4 to 20 skills; further goals are drawn among the skills (closure >= 3)
  whose closure overlaps the unit (any that fits when none overlaps) and keeps it at <= 40 skills, until the
  unit has >= 25 skills or 8 goals (a goal that becomes an ancestor of a later one stops being a goal). The
  unit is goals + ancestors; a unit of 20 to 40 skills with at least 2 goals is accepted (else the draw is
  repeated, up to 500 times, keeping the closest). Every policy sees that unit only (a
  CourseMap of its skills, with positions in a topological order, and of the items whose skills all lie in
  it) and `state.goals` = the goal skills.

Learners. The traits of learner i are the same under every policy and both simulators (seeded by seed, graph
and i): learning-rate multiplier `rate` and forgetting multiplier `forget` (lognormal, sigma 0.35), ability
z ~ N(0, 1), working speed (lognormal, sigma 0.25), session start hour (U(14, 19) UTC, +-N(0, 0.5) h a day)
and practice days (5 of every 7, drawn per week). Prior knowledge: in topological order, a skill is known at
the start with probability 0.6 (1 - depth)^2, where depth is its longest-path depth in the unit scaled to
[0, 1] (roots 0.6, the deepest skills 0), times 0.2 when a prerequisite is not known.

Simulator `bkt-fsrs` (binary knowledge with memory). Per learner and skill: learning probability
0.2 * lognormal(0, 0.3), guess U(0.05, 0.25), slip U(0.03, 0.12), first stability S0 = lognormal(0, 0.3) /
forget days.
  * Difficulty relative to the learner: delta = item difficulty - the skill's median item difficulty
    - 0.12 z. Guess and slip move on the logit scale by -2.5 delta and +2.5 delta (harder: fewer lucky
    guesses, more slips).
  * Unknown skill: P(correct) = guess. After the attempt (with feedback) the skill becomes known with
    probability min(0.9, p_learn * rate * band(delta) * prod over direct prerequisites of
    (0.3 + 0.7 recall_prerequisite)), band(delta) = 0.2 + 0.8 exp(-(delta - 0.1)^2 / (2 * 0.25^2)): most
    learning from items a little above the learner's level, little from trivial or hopeless ones; an
    unknown or forgotten prerequisite cuts learning to 0.3x.
  * Known skill: a memory with stability S (days until recall falls to 90 %) and the power forgetting curve
    recall = (1 + F t / S)^-0.3 with F = 0.9^(-1/0.3) - 1 (FSRS-6 uses decay 0.1542 and a first stability of
    2.3 days after a correct answer; here the decay is steeper and S0 about 1 day). The attempt recalls
    with probability recall; P(correct) = 1 - slip when recalled, guess when not. Multi-skill items:
    the product over their skills (conjunctive).
  * A successful retrieval at recall R multiplies S by 1 + 3 S^-0.2 (exp(3 (1 - R)) - 1) (spacing: a
    retrieval gains more when more was forgotten; massed repetition at R ~ 1 gains almost nothing); a failed
    one (a lapse) sets S = max(S0, 0.3 S). Both restart the forgetting clock (the feedback re-encodes it).
  * A correct answer on a skill is an implicit, partial retrieval of each known direct prerequisite: 0.3x
    the stability gain and 40 % of its elapsed time forgiven.
  * Prior knowledge: a skill known at the start has S = lognormal(log 20, 0.5) / forget days and was last
    retrieved U(1, 30) days before the first day (some of it is rusty: known but below 90 % recall).
  * Mastered: known and recall >= 0.9 (i.e. no more than S days since the last retrieval).
  * recall_30d: P(correct) on a median-difficulty item = recall (1 - slip) + (1 - recall) guess.

Simulator `irt-exp` (logistic IRT with decaying ability gains). Per learner and skill: starting ability
theta0 = -1.5 (unknown) or +2.6 (prior knowledge) + 0.5 z + N(0, 0.4); learning rate eta = 1.0 rate
lognormal(0, 0.3); first time constant tau0 = 5 lognormal(0, 0.3) / forget days.
  * Item difficulty b = 4 (item difficulty - the skill's median item difficulty); P(correct) =
    sigmoid(theta_eff - b), a product over the skills of a multi-skill item; theta_eff(t) = theta0 +
    G exp(-(t - t_last) / tau): the gain G over the starting level decays exponentially back to it.
  * Every attempt (with feedback) adds eta * 4 p (1 - p) * prod over direct prerequisites of
    (0.3 + 0.7 P_prerequisite) to G, where p is the item's success probability (most learning from items
    near 50-80 % success) and P_prerequisite a prerequisite's success probability on a median item.
    The practice also stretches tau by 1 + 1.5 (1 - exp(-elapsed / tau)) (spaced practice slows
    forgetting, massed practice does not; not at the first practice).
  * Each attempt is also a partial practice of every direct prerequisite: 0.3x the gain (at the
    prerequisite's own median-item p) and 0.3x the tau stretch.
  * Prior knowledge is the starting level itself, so it does not decay (only gains over it do).
  * Mastered: P(correct on a median item) = sigmoid(theta_eff) >= 0.9.
  * recall_30d: sigmoid(theta_eff) 30 days after the last day.

Schedule. On a practice day the caller clears `state.short_term`, the session starts at the learner's hour
and runs `--per-day` exercises (default 15): the policy chooses an item at `state.now`, the simulator draws
the first attempt, `record_attempt` updates the policy's state, and the clock moves on by the item's minutes
x the learner's speed (x 1.5 when wrong).

Metrics, per graph x simulator x policy, mean over learners with a 95 % normal-approximation CI:
  exercises_to_mastery / minutes_to_mastery  exercises (minutes) until every goal skill is mastered in ground
      truth at the same time (checked after each exercise); learners who never get there count with all
      they did; `reached` is the fraction who got there.
  skills_mastered      ground-truth mastered unit skills at the end of the last day; skills_mastered_avg the
      same at the end of every day, averaged over the days.
  recall_30d           mean over the unit's skills (the goals and all their ancestors) of P(correct on a
      median item) 30 days after the last day, with no practice in between.
  wheel_spinning       fraction of the practised learner x skill pairs that reached 10 attempts on the
      skill without having been mastered in ground truth at any attempt up to then.
Extras per row: choice kinds (share of choices per `Choice.kind`, with the combined and fsrs policies'
"Keep fresh" reviews (nothing due, nothing open to learn) apart from due reviews as `keep_fresh`, and the
combined policy's "Goal check" reviews (each goal once a session once all are learned) as `goal_check`; and the
mean count per learner of each kind before the goals were first mastered, `choices_to_mastery`), accuracy,
over_practice (attempts on a skill already mastered in ground truth, per exercise), blocked (attempts on a
skill with a direct prerequisite not mastered in ground truth, per exercise), capped (keep-fresh choices made
while a skill on the policy's frontier was still unstarted, i.e. the 4-new-skills-a-day cap was binding, per
exercise), relative_difficulty (mean item difficulty minus the skill's median item difficulty),
skills_per_session (distinct skills practised in a daily session: how interleaved the practice is),
policy_mastered (skills the policy's BKT counts as mastered at the end), the mean ground-truth skills
mastered per day; and paired-bootstrap CIs (over learners) of the exercises_to_mastery ratios
combined/oatutor and combined/mastery.

Latency (`--latency`): a seeded 1,000-skill DAG (each skill requires 0-3 of the 50 skills before it) with 10
items a skill and 5 goals among the last 100 skills, one learner on the bkt-fsrs simulator with a history of
`--history` (300) attempts under the combined policy, 15 a day; then each policy makes `--decisions` (600)
more decisions from a copy of that state (answers drawn and recorded in between, untimed), `choose()` timed
alone with time.perf_counter. The JSON also holds a cProfile of 200 combined decisions.

Everything is seeded (the same command gives the same numbers; the learner order of the worker pool does not
matter, results are sorted by learner before they are summarised).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import csv
import dataclasses
import datetime
import gzip
import io
import json
import math
import multiprocessing
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.tracing.bkt import BKTParams  # noqa: E402
from tutor.scheduling import (  # noqa: E402
    POLICIES,
    CourseMap,
    ItemInfo,
    LearnerState,
    SkillInfo,
    choose,
    effectively_mastered,
    record_attempt,
)

START = datetime.datetime(2025, 9, 1, tzinfo=datetime.UTC)  # a Monday; FSRS wants aware UTC datetimes
POLICY_PARAMS = BKTParams(p_init=0.2, p_learn=0.15, p_guess=0.2, p_slip=0.1)  # what every policy assumes
GRAPHS = ("demo", "junyi", "dbe")
METRICS = (
    "exercises_to_mastery",
    "minutes_to_mastery",
    "reached",
    "skills_mastered",
    "skills_mastered_avg",
    "recall_30d",
    "wheel_spinning",
)
EXTRAS = (
    "accuracy",
    "over_practice",
    "blocked",
    "capped",
    "relative_difficulty",
    "skills_per_session",
    "policy_mastered",
    "exercises",
)
KINDS = ("repeat", "review", "goal_check", "keep_fresh", "new", "practice", "goal")
WHEEL_SPIN_ATTEMPTS = 10
UNIT_SIZE = (20, 40)
UNIT_TARGET = 25
MAX_GOALS = 8


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# ---- graphs ---------------------------------------------------------------------------------------------------


@dataclass
class Graph:
    name: str
    names: dict[int, str]  # skill id -> name
    requires: dict[int, set[int]]  # a DAG
    items: list[tuple[frozenset, float, float]] | None = None  # (skills, difficulty, minutes); None: synthetic
    goals: list[int] | None = None  # fixed goals (the demo course: its sinks)
    notes: list[str] = field(default_factory=list)


def break_cycles(requires: dict[int, set[int]], names: dict[int, str]) -> list[str]:
    """Remove DFS back edges (along prerequisite -> dependent, in id order) until `requires` is a DAG; returns
    one line per removed edge, with the cycle it closed."""
    dependents: dict[int, list[int]] = {s: [] for s in requires}
    for skill, prerequisites in requires.items():
        for p in prerequisites:
            dependents[p].append(skill)
    colour: dict[int, int] = {}
    removed = []
    for root in sorted(requires):
        if root in colour:
            continue
        colour[root] = 1
        stack = [(root, iter(sorted(dependents[root])))]
        while stack:
            node, children = stack[-1]
            for child in children:
                state = colour.get(child)
                if state == 1:
                    path = [n for n, _ in stack]
                    cycle = path[path.index(child) :] + [child]
                    removed.append((node, child, cycle))
                elif state is None:
                    colour[child] = 1
                    stack.append((child, iter(sorted(dependents[child]))))
                    break
            else:
                colour[node] = 2
                stack.pop()
    lines = []
    for prerequisite, skill, cycle in removed:
        requires[skill].discard(prerequisite)
        lines.append(f"cycle {' -> '.join(names[n] for n in cycle)}: dropped {names[prerequisite]} -> {names[skill]}")
    return lines


def load_demo(folder: Path) -> Graph:
    course = yaml.safe_load((folder / "course.yaml").read_text())
    slugs = [s["slug"] for s in course["skills"]]
    ids = {slug: i for i, slug in enumerate(slugs)}
    names = {ids[s["slug"]]: s.get("name", s["slug"]) for s in course["skills"]}
    requires = {ids[s["slug"]]: {ids[r] for r in s.get("requires") or []} for s in course["skills"]}

    def item(raw: dict) -> tuple[frozenset, float, float]:
        difficulty = float(raw.get("difficulty", 0.5) if raw.get("difficulty") is not None else 0.5)
        steps = max(1, len(raw.get("steps") or []))
        return frozenset(ids[s] for s in raw["skills"]), difficulty, 1 + 3 * difficulty + 0.5 * (steps - 1)

    items = []
    for name in course.get("include") or []:
        unit = yaml.safe_load((folder / name).read_text()) or {}
        for template in unit.get("templates") or []:
            items += [item(template["item"])] * int(template.get("count", 1))
        items += [item(raw) for raw in unit.get("items") or []]
    sinks = sorted(s for s in requires if not any(s in r for r in requires.values()))
    graph = Graph("demo", names, requires, items, goals=sinks)
    graph.notes.append(f"demo course: {len(names)} skills, {len(items)} items (template variants counted)")
    return graph


def load_junyi(path: Path) -> Graph:
    with open(path, newline="") as fh:
        edges = [(r["prerequisite"].strip(), r["exercise"].strip()) for r in csv.DictReader(fh)]
    names = {i: n for i, n in enumerate(sorted({n for e in edges for n in e}))}
    ids = {n: i for i, n in names.items()}
    requires: dict[int, set[int]] = {i: set() for i in names}
    notes = [f"junyi: {len(edges)} edges between {len(names)} exercises"]
    for prerequisite, exercise in edges:
        if prerequisite == exercise:
            notes.append(f"self-loop {exercise}: dropped")
        else:
            requires[ids[exercise]].add(ids[prerequisite])
    notes += break_cycles(requires, names)
    return Graph("junyi", names, requires, None, notes=notes)


def dbe_course_order(folder: Path, names: dict[int, str]) -> tuple[dict[int, tuple], str]:
    """Sort key per KC: the median relative position of learners' first attempt at it in the log."""
    path = folder / "interactions.csv.gz"
    if not path.exists():
        return {k: (1, k) for k in names}, "no interactions.csv.gz: KC id order"
    by_name = {n.strip().lower(): k for k, n in names.items()}
    sequences: dict[str, list[tuple[int, str]]] = defaultdict(list)
    with gzip.open(path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            sequences[row["user_id_guess"]].append((int(row["seq_idx"]), row["primary_kc_name"].strip().lower()))
    positions: dict[int, list[float]] = defaultdict(list)
    for rows in sequences.values():
        rows.sort()
        first: dict[str, float] = {}
        for i, (_, kc) in enumerate(rows):
            first.setdefault(kc, i / len(rows))
        for kc, position in first.items():
            if kc in by_name:
                positions[by_name[kc]].append(position)
    key = {k: (0, statistics.median(positions[k]), k) if k in positions else (1, 0.0, k) for k in names}
    return key, f"course order from {len(sequences)} learners' logs ({len(positions)} of {len(names)} KCs attempted)"


def load_dbe(folder: Path) -> Graph:
    with open(folder / "KCs.csv", newline="") as fh:
        names = {int(r["id"]): r["name"].strip() for r in csv.DictReader(fh)}
    with open(folder / "KC_Relationships.csv", newline="") as fh:
        edges = [(int(r["from_knowledgecomponent_id"]), int(r["to_knowledgecomponent_id"])) for r in csv.DictReader(fh)]
    for k in {n for e in edges for n in e} - names.keys():
        names[k] = f"KC {k}"
    present = set(edges)
    mutual = {frozenset(e) for e in edges if e[0] != e[1] and e[::-1] in present}
    key, how = dbe_course_order(folder, names)
    requires: dict[int, set[int]] = {k: set() for k in names}
    notes = [
        f"dbe: {len(edges)} edges between {len(names)} KCs; {len(mutual)} KC pairs linked in both directions "
        f"({2 * len(mutual)} edges, {len(mutual)} two-cycles), oriented earlier -> later by {how}"
    ]
    for a, b in edges:
        if a == b:
            notes.append(f"self-loop {names[a]}: dropped")
        elif frozenset((a, b)) in mutual:
            first, second = sorted((a, b), key=key.get)
            requires[second].add(first)
        else:
            requires[b].add(a)
    notes += break_cycles(requires, names)
    edges_left = sum(len(r) for r in requires.values())
    notes.append(f"dbe: {edges_left} prerequisite edges after orientation")
    return Graph("dbe", names, requires, None, notes=notes)


def load_graph(name: str, data: Path) -> Graph:
    if name == "demo":
        return load_demo(ROOT / "fixtures" / "demo-course")
    paths = {
        "junyi": data / "graphs" / "junyi_prerequisite_edges.csv",
        "dbe": data / "kt" / "dbe_kt22" / "KC_Relationships.csv",
    }
    if name not in paths:
        raise SystemExit(f"unknown graph {name!r}; choose from {', '.join(GRAPHS)}")
    if not paths[name].exists():
        raise SystemExit(
            f"--graph {name} needs {paths[name]}, which is missing: point --data at the shared data folder "
            "(../shared/data from the project root) or leave this graph out"
        )
    return load_junyi(paths[name]) if name == "junyi" else load_dbe(paths[name].parent)


def ancestors(requires: dict[int, set[int]], skills) -> set[int]:
    seen: set[int] = set()
    stack = list(skills)
    while stack:
        for p in requires[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def pick_goals(graph: Graph, rng: random.Random) -> tuple[list[int], set[int]]:
    """Goal skills whose closure (goals + ancestors) is a unit of UNIT_SIZE skills (see the module docstring)."""
    if graph.goals is not None:
        return list(graph.goals), set(graph.requires)
    low, high = UNIT_SIZE
    closure = {s: ancestors(graph.requires, [s]) | {s} for s in graph.requires}
    candidates = sorted(s for s, c in closure.items() if 3 <= len(c) <= high)
    first = [s for s in candidates if 4 <= len(closure[s]) <= low]
    if not first:
        raise SystemExit(f"{graph.name}: no skill has 4 to {low} skills in its closure")
    best: tuple[tuple, list[int], set[int]] | None = None
    for _ in range(500):
        goals = [rng.choice(first)]
        unit = set(closure[goals[0]])
        while len(unit) < UNIT_TARGET and len(goals) < MAX_GOALS:
            fits = [s for s in candidates if s not in unit and len(unit | closure[s]) <= high]
            options = [s for s in fits if closure[s] & unit] or fits
            if not options:
                break
            new = rng.choice(options)
            goals = [g for g in goals if g not in closure[new]] + [new]
            unit |= closure[new]
        miss = (low - len(unit) if len(unit) < low else max(0, len(unit) - high), len(goals) < 2)
        if miss == (0, False):
            return sorted(goals), unit
        if best is None or miss < best[0]:
            best = (miss, sorted(goals), unit)
    assert best is not None
    return best[1], best[2]


def topological_order(requires: dict[int, set[int]], skills: set[int]) -> list[int]:
    indegree = {s: len(requires[s] & skills) for s in skills}
    dependents: dict[int, list[int]] = defaultdict(list)
    for s in skills:
        for p in requires[s] & skills:
            dependents[p].append(s)
    ready = sorted(s for s, d in indegree.items() if d == 0)
    order = []
    while ready:
        s = ready.pop(0)
        order.append(s)
        for d in dependents[s]:
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
        ready.sort()
    if len(order) != len(skills):
        raise SystemExit("the prerequisite graph still has a cycle")
    return order


def synthetic_items(skills: list[int], rng: random.Random, per_skill: int = 8) -> list[tuple[frozenset, float, float]]:
    items = []
    for s in skills:
        for k in range(per_skill):
            difficulty = 0.1 + 0.8 * (k + rng.random()) / per_skill
            items.append((frozenset([s]), round(difficulty, 3), round(1 + 3 * (difficulty - 0.1) / 0.8, 2)))
    return items


class Unit:
    """The teacher's unit of one graph as the policies see it (`course`, `goals`) and as the simulators index
    it (skills 0..n-1 in topological order)."""

    def __init__(self, graph: Graph, seed: int, items_per_skill: int = 8):
        self.graph = graph.name
        rng = random.Random(f"{seed}/{graph.name}/unit")
        self.goals, skills = pick_goals(graph, rng)
        order = topological_order(graph.requires, skills)
        self.skill_ids = order
        self.index = {s: k for k, s in enumerate(order)}
        self.names = [graph.names[s] for s in order]
        if graph.items is None:
            raw_items = synthetic_items(order, random.Random(f"{seed}/{graph.name}/items"), items_per_skill)
            self.synthetic_items = True
        else:
            raw_items = [i for i in graph.items if i[0] <= skills]
            self.synthetic_items = False
        infos = [
            SkillInfo(id=s, name=graph.names[s], position=k, requires=frozenset(graph.requires[s] & skills))
            for k, s in enumerate(order)
        ]
        items = [ItemInfo(id=n, skills=sk, difficulty=d, minutes=m) for n, (sk, d, m) in enumerate(raw_items)]
        self.course = CourseMap(infos, items)
        self.prereqs = [tuple(sorted(self.index[p] for p in graph.requires[s] & skills)) for s in order]
        self.items = {i.id: (tuple(sorted(self.index[s] for s in i.skills)), i.difficulty, i.minutes) for i in items}
        self.median = [statistics.median([i.difficulty for i in self.course.items_by_skill[s]] or [0.5]) for s in order]
        depth = [0] * len(order)
        for k in range(len(order)):
            depth[k] = max((depth[p] + 1 for p in self.prereqs[k]), default=0)
        top = max(depth) or 1
        self.depth = [d / top for d in depth]
        self.goal_index = [self.index[g] for g in self.goals]
        self.max_depth = max(depth)

    def describe(self) -> dict:
        return {
            "skills": len(self.skill_ids),
            "items": len(self.items),
            "synthetic_items": self.synthetic_items,
            "goals": [self.names[k] for k in self.goal_index],
            "depth": self.max_depth,
            "edges": sum(len(p) for p in self.prereqs),
            "skills_without_items": sum(1 for s in self.skill_ids if not self.course.items_by_skill[s]),
        }


# ---- simulated learners ---------------------------------------------------------------------------------------


class Traits:
    """What stays the same for learner i under every policy and simulator."""

    def __init__(self, unit: Unit, rng: random.Random, days: int):
        self.rate = rng.lognormvariate(0, 0.35)
        self.forget = rng.lognormvariate(0, 0.35)
        self.z = rng.gauss(0, 1)
        self.speed = rng.lognormvariate(0, 0.25)
        hour = rng.uniform(14, 19)
        self.days = []
        for week in range(math.ceil(days / 7)):
            for d in sorted(rng.sample(range(7), 5)):
                if 7 * week + d < days:
                    self.days.append((7 * week + d, min(21.0, max(12.0, hour + rng.gauss(0, 0.5)))))
        known = []
        for k in range(len(unit.skill_ids)):
            p = 0.6 * (1 - unit.depth[k]) ** 2
            if any(not known[q] for q in unit.prereqs[k]):
                p *= 0.2
            known.append(rng.random() < p)
        self.prior = known


class BKTFSRSLearner:
    """Binary knowledge with a memory per known skill (see the module docstring for every choice)."""

    DECAY = 0.3
    FACTOR = 0.9 ** (-1 / DECAY) - 1
    GROWTH, GROWTH_DAMP, GROWTH_RECALL = 3.0, 0.2, 3.0
    LAPSE = 0.3
    PREREQ_GAIN, PREREQ_CREDIT, PREREQ_BLOCK = 0.3, 0.4, 0.3
    SLOPE = 2.5
    BAND_CENTRE, BAND_WIDTH, BAND_FLOOR = 0.1, 0.25, 0.2

    def __init__(self, unit: Unit, rng: random.Random, traits: Traits):
        n = len(unit.skill_ids)
        self.prereqs, self.median = unit.prereqs, unit.median
        self.level = 0.12 * traits.z
        self.learn = [0.2 * rng.lognormvariate(0, 0.3) * traits.rate for _ in range(n)]
        self.guess_logit = [_logit(rng.uniform(0.05, 0.25)) for _ in range(n)]
        self.slip_logit = [_logit(rng.uniform(0.03, 0.12)) for _ in range(n)]
        self.s0 = [rng.lognormvariate(0, 0.3) / traits.forget for _ in range(n)]
        self.known = list(traits.prior)
        self.stability = [rng.lognormvariate(math.log(20), 0.5) / traits.forget if k else 0.0 for k in self.known]
        self.last = [-rng.uniform(1, 30) if k else 0.0 for k in self.known]

    def recall(self, k: int, t: float) -> float:
        if not self.known[k]:
            return 0.0
        return (1 + self.FACTOR * max(0.0, t - self.last[k]) / self.stability[k]) ** -self.DECAY

    def _growth(self, k: int, r: float) -> float:
        return self.GROWTH * self.stability[k] ** -self.GROWTH_DAMP * (math.exp(self.GROWTH_RECALL * (1 - r)) - 1)

    def attempt(self, skills: tuple, difficulty: float, t: float, rng: random.Random) -> bool:
        p = 1.0
        steps = []
        for k in skills:
            delta = difficulty - self.median[k] - self.level
            guess = _sigmoid(self.guess_logit[k] - self.SLOPE * delta)
            if self.known[k]:
                r = self.recall(k, t)
                recalled = rng.random() < r
                p *= 1 - _sigmoid(self.slip_logit[k] + self.SLOPE * delta) if recalled else guess
            else:
                r, recalled = 0.0, False
                p *= guess
            steps.append((k, delta, r, recalled))
        correct = rng.random() < p
        for k, delta, r, recalled in steps:
            if self.known[k]:
                if recalled:
                    self.stability[k] *= 1 + self._growth(k, r)
                else:
                    self.stability[k] = max(self.s0[k], self.LAPSE * self.stability[k])
                self.last[k] = t
            else:
                band = self.BAND_FLOOR + (1 - self.BAND_FLOOR) * math.exp(
                    -((delta - self.BAND_CENTRE) ** 2) / (2 * self.BAND_WIDTH**2)
                )
                gate = 1.0
                for q in self.prereqs[k]:
                    gate *= self.PREREQ_BLOCK + (1 - self.PREREQ_BLOCK) * self.recall(q, t)
                if rng.random() < min(0.9, self.learn[k] * band * gate):
                    self.known[k], self.stability[k], self.last[k] = True, self.s0[k], t
        if correct:
            for k in skills:
                for q in self.prereqs[k]:
                    if self.known[q] and t > self.last[q]:
                        r = self.recall(q, t)
                        self.stability[q] *= 1 + self.PREREQ_GAIN * self._growth(q, r)
                        self.last[q] += self.PREREQ_CREDIT * (t - self.last[q])
        return correct

    def mastered(self, k: int, t: float) -> bool:
        return self.known[k] and t - self.last[k] <= self.stability[k]

    def median_correct(self, k: int, t: float) -> float:
        guess = _sigmoid(self.guess_logit[k] + self.SLOPE * self.level)
        r = self.recall(k, t)
        return r * (1 - _sigmoid(self.slip_logit[k] - self.SLOPE * self.level)) + (1 - r) * guess


class IRTLearner:
    """Logistic IRT ability per skill whose gains decay exponentially (see the module docstring)."""

    SCALE = 4.0
    ETA = 1.0
    TAU0 = 5.0
    SPACING = 1.5
    PREREQ_GAIN, PREREQ_BLOCK = 0.3, 0.3
    MASTERED = _logit(0.9)

    def __init__(self, unit: Unit, rng: random.Random, traits: Traits):
        n = len(unit.skill_ids)
        self.prereqs, self.median = unit.prereqs, unit.median
        self.theta0 = [(2.6 if traits.prior[k] else -1.5) + 0.5 * traits.z + rng.gauss(0, 0.4) for k in range(n)]
        self.eta = [self.ETA * traits.rate * rng.lognormvariate(0, 0.3) for _ in range(n)]
        self.tau = [self.TAU0 * rng.lognormvariate(0, 0.3) / traits.forget for _ in range(n)]
        self.gain = [0.0] * n
        self.last: list[float | None] = [None] * n

    def theta(self, k: int, t: float) -> float:
        if self.last[k] is None:
            return self.theta0[k]
        return self.theta0[k] + self.gain[k] * math.exp(-max(0.0, t - self.last[k]) / self.tau[k])

    def _practise(self, k: int, t: float, increment: float, weight: float) -> None:
        if self.last[k] is not None:
            keep = math.exp(-max(0.0, t - self.last[k]) / self.tau[k])
            self.gain[k] *= keep
            self.tau[k] *= 1 + weight * self.SPACING * (1 - keep)
        self.gain[k] += increment
        self.last[k] = t

    def attempt(self, skills: tuple, difficulty: float, t: float, rng: random.Random) -> bool:
        ps = []
        p = 1.0
        for k in skills:
            pk = _sigmoid(self.theta(k, t) - self.SCALE * (difficulty - self.median[k]))
            ps.append((k, pk))
            p *= pk
        correct = rng.random() < p
        for k, pk in ps:
            gate = 1.0
            for q in self.prereqs[k]:
                gate *= self.PREREQ_BLOCK + (1 - self.PREREQ_BLOCK) * _sigmoid(self.theta(q, t))
            self._practise(k, t, self.eta[k] * 4 * pk * (1 - pk) * gate, 1.0)
            for q in self.prereqs[k]:
                pq = _sigmoid(self.theta(q, t))
                self._practise(q, t, self.PREREQ_GAIN * self.eta[q] * 4 * pq * (1 - pq), self.PREREQ_GAIN)
        return correct

    def mastered(self, k: int, t: float) -> bool:
        return self.theta(k, t) >= self.MASTERED

    def median_correct(self, k: int, t: float) -> float:
        return _sigmoid(self.theta(k, t))


SIMULATORS = {"bkt-fsrs": BKTFSRSLearner, "irt-exp": IRTLearner}


# ---- one learner under one policy -----------------------------------------------------------------------------


def run_learner(
    unit: Unit,
    simulator: str,
    policy_name: str,
    index: int,
    days: int,
    per_day: int,
    seed: int,
    policy=None,
    informed: bool = False,
) -> dict:
    """One learner's `days` under one policy (`policy`: a function not in POLICIES, run under `policy_name`).
    `informed`: the policy sees ground-truth mastery in place of its own BKT estimate (an upper bound on what
    better tracing could give; benchmarks/scheduling_bound.py)."""
    base = f"{seed}/{unit.graph}/{index}"
    traits = Traits(unit, random.Random(f"{base}/traits"), days)
    learner = SIMULATORS[simulator](unit, random.Random(f"{base}/{simulator}/skills"), traits)
    outcomes = random.Random(f"{base}/{simulator}/outcomes")
    policy_rng = random.Random(f"{base}/{simulator}/{policy_name}/policy")
    policy = policy or POLICIES[policy_name]
    course = unit.course
    state = LearnerState(
        mastery={s: POLICY_PARAMS.p_init for s in course.skills}, now=START, goals=frozenset(unit.goals)
    )
    params = {s: POLICY_PARAMS for s in course.skills}
    n = len(unit.skill_ids)
    goals = unit.goal_index
    attempts = [0] * n
    ever_mastered = [False] * n
    spun = [False] * n
    kinds: Counter = Counter()
    kinds_to_mastery: Counter = Counter()
    capped = 0
    exercises = correct_count = over_practice = blocked = 0
    relative_difficulty = 0.0
    session_skills: list[int] = []
    minutes_total = 0.0
    reached = None
    daily = []
    practice_days = dict(traits.days)
    for day in range(days):
        if day in practice_days:
            state.short_term = {}
            t = day + practice_days[day] / 24
            today: set[int] = set()
            for _ in range(per_day):
                state.now = START + datetime.timedelta(days=t)
                view = state
                if informed:
                    truth = {
                        sid: 0.99 if learner.mastered(k, t) else min(state.mastery[sid], 0.9)
                        for k, sid in enumerate(unit.skill_ids)
                    }
                    view = dataclasses.replace(state, mastery=truth)
                choice = policy(course, view, policy_rng)
                if choice is None:
                    break
                kind = choice.kind
                if kind == "review" and choice.reason.startswith("Goal check"):
                    kind = "goal_check"
                if kind == "review" and choice.reason.startswith("Keep fresh"):
                    kind = "keep_fresh"
                    mastered_view = effectively_mastered(course, state.mastery)
                    if any(
                        s not in mastered_view and s not in state.memory and course.skills[s].requires <= mastered_view
                        for s in course.practisable
                    ):
                        capped += 1
                skills, difficulty, minutes = unit.items[choice.item_id]
                relative_difficulty += difficulty - statistics.fmean(unit.median[k] for k in skills)
                today.update(skills)
                for k in skills:
                    if learner.mastered(k, t):
                        ever_mastered[k] = True
                        over_practice += 1
                    if any(not learner.mastered(q, t) for q in unit.prereqs[k]):
                        blocked += 1
                correct = learner.attempt(skills, difficulty, t, outcomes)
                record_attempt(state, course, choice.item_id, correct, params)
                kinds[kind] += 1
                if reached is None:
                    kinds_to_mastery[kind] += 1
                exercises += 1
                correct_count += correct
                spent = minutes * traits.speed * (1.0 if correct else 1.5)
                minutes_total += spent
                t += spent / 1440
                for k in skills:
                    attempts[k] += 1
                    if not ever_mastered[k] and learner.mastered(k, t):
                        ever_mastered[k] = True
                    if attempts[k] == WHEEL_SPIN_ATTEMPTS and not ever_mastered[k]:
                        spun[k] = True
                if reached is None and all(learner.mastered(g, t) for g in goals):
                    reached = (exercises, minutes_total)
            session_skills.append(len(today))
        daily.append(sum(learner.mastered(k, day + 1) for k in range(n)))
    end = float(days)
    practised = sum(1 for a in attempts if a)
    return {
        "graph": unit.graph,
        "simulator": simulator,
        "policy": policy_name,
        "learner": index,
        "exercises_to_mastery": reached[0] if reached else exercises,
        "minutes_to_mastery": reached[1] if reached else minutes_total,
        "reached": float(reached is not None),
        "skills_mastered": float(daily[-1]) if daily else 0.0,
        "skills_mastered_avg": statistics.fmean(daily) if daily else 0.0,
        "recall_30d": statistics.fmean(learner.median_correct(k, end + 30) for k in range(n)),
        "wheel_spinning": sum(spun) / practised if practised else 0.0,
        "accuracy": correct_count / exercises if exercises else 0.0,
        "over_practice": over_practice / exercises if exercises else 0.0,
        "blocked": blocked / exercises if exercises else 0.0,
        "policy_mastered": float(len(effectively_mastered(course, state.mastery))),
        "exercises": float(exercises),
        "capped": capped / exercises if exercises else 0.0,
        "relative_difficulty": relative_difficulty / exercises if exercises else 0.0,
        "skills_per_session": statistics.fmean(session_skills) if session_skills else 0.0,
        "kinds": dict(kinds),
        "kinds_to_mastery": dict(kinds_to_mastery),
        "daily": daily,
    }


_WORKER: dict = {}


def _init_worker(units: dict, options: dict) -> None:
    _WORKER["units"], _WORKER["options"] = units, options


def _run_chunk(job: tuple) -> list[dict]:
    graph, simulator, policy, learners = job
    unit, o = _WORKER["units"][graph], _WORKER["options"]
    return [run_learner(unit, simulator, policy, i, o["days"], o["per_day"], o["seed"]) for i in learners]


# ---- summaries ------------------------------------------------------------------------------------------------


def mean_ci(values) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, mean - half, mean + half


def paired_ratio(numerator, denominator, rng: np.random.Generator, resamples: int = 2000) -> tuple:
    """Ratio of means and its 95 % bootstrap CI, resampling learners (the same ones under both policies)."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    return float(a.mean() / b.mean()), float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def summarise(records: list[dict], units: dict, graphs, simulators, policies, seed: int) -> tuple[list, list]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["graph"], r["simulator"], r["policy"])].append(r)
    rows = []
    for graph in graphs:
        for simulator in simulators:
            for policy in policies:
                rs = sorted(groups[(graph, simulator, policy)], key=lambda r: r["learner"])
                row = {"graph": graph, "simulator": simulator, "policy": policy, "learners": len(rs)}
                ci = {}
                for metric in METRICS + EXTRAS:
                    row[metric], low, high = mean_ci([r[metric] for r in rs])
                    ci[metric] = [low, high]
                row["ci95"] = ci
                total = sum(sum(r["kinds"].values()) for r in rs) or 1
                row["choice_kinds"] = {k: sum(r["kinds"].get(k, 0) for r in rs) / total for k in KINDS}
                row["choices_to_mastery"] = {
                    k: statistics.fmean(r["kinds_to_mastery"].get(k, 0) for r in rs) for k in KINDS
                }
                row["unit_skills"] = len(units[graph].skill_ids)
                row["goals"] = len(units[graph].goals)
                row["daily_skills_mastered"] = np.mean([r["daily"] for r in rs], axis=0).round(3).tolist()
                rows.append(row)
    rng = np.random.default_rng(seed)
    ratios = []
    for graph in graphs:
        for simulator in simulators:
            by_policy = {
                p: [r["exercises_to_mastery"] for r in sorted(groups[key], key=lambda r: r["learner"])]
                for p in policies
                if (key := (graph, simulator, p))
            }
            if "combined" not in by_policy:
                continue
            for peer in ("oatutor", "mastery"):
                if peer in by_policy:
                    ratio, low, high = paired_ratio(by_policy["combined"], by_policy[peer], rng)
                    ratios.append(
                        {
                            "graph": graph,
                            "simulator": simulator,
                            "ratio": f"combined/{peer}",
                            "value": ratio,
                            "ci95": [low, high],
                        }
                    )
    return rows, ratios


def criteria(rows: list[dict]) -> list[dict]:
    """Does combined need >= 20 % fewer exercises than oatutor and mastery, with CIs apart, and have the
    highest recall_30d with its CI apart from every other policy's?"""
    out = []
    index = {(r["graph"], r["simulator"], r["policy"]): r for r in rows}
    for graph, simulator in dict.fromkeys((r["graph"], r["simulator"]) for r in rows):
        c = index.get((graph, simulator, "combined"))
        if c is None:
            continue
        check = {"graph": graph, "simulator": simulator}
        for peer in ("oatutor", "mastery"):
            p = index.get((graph, simulator, peer))
            if p is not None:
                e = "exercises_to_mastery"
                check[f"fewer_than_{peer}"] = bool(c[e] <= 0.8 * p[e] and c["ci95"][e][1] < p["ci95"][e][0])
        others = [r for (g, s, pol), r in index.items() if g == graph and s == simulator and pol != "combined"]
        if others:
            best_other = max(others, key=lambda r: r["recall_30d"])
            check["highest_recall"] = bool(all(c["ci95"]["recall_30d"][0] > r["ci95"]["recall_30d"][1] for r in others))
            check["best_other_recall"] = best_other["policy"]
        out.append(check)
    return out


def _cell(row: dict, metric: str, digits: int) -> str:
    low, high = row["ci95"][metric]
    return f"{row[metric]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def tables(rows: list[dict], ratios: list[dict], checks: list[dict], units: dict) -> str:
    lines = [
        "| graph (unit skills / goals) | simulator | policy | exercises to mastery | minutes to mastery | reached "
        "| skills mastered (end) | skills mastered (avg/day) | recall 30 d | wheel spinning |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        lines.append(
            f"| {r['graph']} ({r['unit_skills']}/{r['goals']}) | {r['simulator']} | {r['policy']} "
            f"| {_cell(r, 'exercises_to_mastery', 0)} | {_cell(r, 'minutes_to_mastery', 0)} "
            f"| {_cell(r, 'reached', 2)} | {_cell(r, 'skills_mastered', 1)} | {_cell(r, 'skills_mastered_avg', 1)} "
            f"| {_cell(r, 'recall_30d', 3)} | {_cell(r, 'wheel_spinning', 3)} |"
        )
    lines += [
        "",
        "| graph | simulator | policy | repeat | review (due) | goal check | keep fresh | new | practice | goal "
        "| accuracy | over-practice | blocked | new-skill cap binding | item difficulty - skill median "
        "| skills per session | policy-mastered / true (end) |",
        "|" + "---|" * 17,
    ]
    for r in rows:
        k = r["choice_kinds"]
        lines.append(
            f"| {r['graph']} | {r['simulator']} | {r['policy']} | "
            + " | ".join(f"{k[name]:.2f}" for name in KINDS)
            + f" | {r['accuracy']:.2f} | {r['over_practice']:.2f} | {r['blocked']:.2f} | {r['capped']:.2f} "
            f"| {r['relative_difficulty']:+.3f} | {r['skills_per_session']:.1f} "
            f"| {r['policy_mastered']:.1f} / {r['skills_mastered']:.1f} |"
        )
    if ratios:
        lines += [
            "",
            "| graph | simulator | exercises_to_mastery ratio | value [95 % paired bootstrap CI] |",
            "|---|---|---|---|",
        ]
        for q in ratios:
            lines.append(
                f"| {q['graph']} | {q['simulator']} | {q['ratio']} | {q['value']:.3f} "
                f"[{q['ci95'][0]:.3f}, {q['ci95'][1]:.3f}] |"
            )
    if checks:
        lines += [
            "",
            "| graph | simulator | >= 20 % fewer than oatutor | >= 20 % fewer than mastery "
            "| highest recall_30d (best other) |",
            "|---|---|---|---|---|",
        ]
        for c in checks:

            def yes(key, c=c):
                return "—" if key not in c else ("yes" if c[key] else "**no**")

            lines.append(
                f"| {c['graph']} | {c['simulator']} | {yes('fewer_than_oatutor')} | {yes('fewer_than_mastery')} "
                f"| {yes('highest_recall')} ({c.get('best_other_recall', '—')}) |"
            )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, graphs, simulators) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(graphs), len(simulators), figsize=(5.5 * len(simulators), 3.6 * len(graphs)), squeeze=False
    )
    for i, graph in enumerate(graphs):
        for j, simulator in enumerate(simulators):
            ax = axes[i][j]
            for r in rows:
                if r["graph"] == graph and r["simulator"] == simulator:
                    daily = r["daily_skills_mastered"]
                    ax.plot(range(1, len(daily) + 1), daily, label=r["policy"], lw=1.6)
                    unit = r["unit_skills"]
            ax.set_title(f"{graph} ({unit} skills), {simulator}", fontsize=10)
            ax.set_xlabel("day")
            ax.set_ylabel("skills mastered (ground truth)")
            ax.set_ylim(0, unit)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def environment() -> dict:
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }


# ---- latency --------------------------------------------------------------------------------------------------


def latency_graph(seed: int, n_skills: int = 1000) -> Graph:
    rng = random.Random(f"{seed}/latency/graph")
    requires: dict[int, set[int]] = {}
    for s in range(n_skills):
        k = min(s, rng.choice((0, 1, 1, 2, 2, 3)))
        requires[s] = set(rng.sample(range(max(0, s - 50), s), k))
    return Graph("latency", {s: f"skill {s}" for s in range(n_skills)}, requires, None, goals=None)


def run_latency(args) -> None:
    graph = latency_graph(args.seed)
    rng = random.Random(f"{args.seed}/latency")
    graph.goals = sorted(rng.sample(sorted(graph.requires)[-100:], 5))  # the whole DAG is the unit
    unit = Unit(graph, args.seed, items_per_skill=10)
    course = unit.course
    traits = Traits(unit, random.Random(f"{args.seed}/latency/traits"), 60)
    learner = BKTFSRSLearner(unit, random.Random(f"{args.seed}/latency/skills"), traits)
    outcomes = random.Random(f"{args.seed}/latency/outcomes")
    state = LearnerState(
        mastery={s: POLICY_PARAMS.p_init for s in course.skills}, now=START, goals=frozenset(unit.goals)
    )
    params = {s: POLICY_PARAMS for s in course.skills}

    def step(policy: str, state, learner, clock: list, decision: int, timed: list | None):
        if decision % args.per_day == 0:
            clock[0] = math.floor(clock[0]) + 1 + 15 / 24
            state.short_term = {}
        state.now = START + datetime.timedelta(days=clock[0])
        started = time.perf_counter()
        choice = choose(policy, course, state, decision)
        if timed is not None:
            timed.append((time.perf_counter() - started) * 1000)
        skills, difficulty, minutes = unit.items[choice.item_id]
        correct = learner.attempt(skills, difficulty, clock[0], outcomes)
        record_attempt(state, course, choice.item_id, correct, params)
        clock[0] += minutes * (1.0 if correct else 1.5) / 1440

    clock = [0.0]
    for decision in tqdm(range(args.history), desc="history (combined)", file=sys.stderr):
        step("combined", state, learner, clock, decision, None)
    print(
        f"latency course: {len(course.skills)} skills, {len(course.items)} items; after {args.history} attempts "
        f"{len(state.memory)} skills in memory, {len(effectively_mastered(course, state.mastery))} mastered "
        "(policy's view)",
        file=sys.stderr,
    )
    rows = []
    profile_text = None
    for policy in args.policies:
        s, lrn, c = copy.deepcopy(state), copy.deepcopy(learner), list(clock)
        timed: list[float] = []
        for decision in tqdm(range(args.history, args.history + args.decisions), desc=policy, file=sys.stderr):
            step(policy, s, lrn, c, decision, timed)
        values = np.array(timed)
        rows.append(
            {
                "policy": policy,
                "p50_ms": float(np.percentile(values, 50)),
                "p95_ms": float(np.percentile(values, 95)),
                "max_ms": float(values.max()),
                "mean_ms": float(values.mean()),
                "decisions": len(values),
                "skills": len(course.skills),
                "items": len(course.items),
                "history_attempts": args.history,
            }
        )
        if policy == "combined":
            s, lrn, c = copy.deepcopy(state), copy.deepcopy(learner), list(clock)
            profiler = cProfile.Profile()
            profiler.enable()
            for decision in range(args.history, args.history + 200):
                step(policy, s, lrn, c, decision, None)
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(15)
            profile_text = buffer.getvalue()
    lines = ["| policy | p50 ms | p95 ms | max ms | mean ms | decisions | skills | items |", "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['max_ms']:.2f} | "
            f"{r['mean_ms']:.2f} | {r['decisions']} | {r['skills']} | {r['items']} |"
        )
    table = "\n".join(lines)
    print(table)
    if profile_text:
        print("\ncombined, 200 decisions + their record_attempt, by own time:\n" + profile_text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "results": rows,
                    "config": {
                        "seed": args.seed,
                        "history": args.history,
                        "decisions": args.decisions,
                        "per_day": args.per_day,
                        "unit": unit.describe(),
                        "environment": environment(),
                    },
                    "table": table,
                    "combined_profile": profile_text,
                },
                indent=1,
            )
            + "\n"
        )


# ---- main -----------------------------------------------------------------------------------------------------


def _names(text: str, known, what: str, parser) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {list(known)}")
    return names


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--graph", default="demo", help="comma-separated, from demo, junyi, dbe")
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=15, help="exercises in a daily session")
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder (junyi, dbe)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--simulators", default=",".join(SIMULATORS))
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="write a PNG of ground-truth skills mastered per day")
    parser.add_argument("--latency", action="store_true", help="time choose() on a 1,000-skill course instead")
    parser.add_argument("--history", type=int, default=300, help="latency: attempts before the timing")
    parser.add_argument("--decisions", type=int, default=600, help="latency: timed decisions per policy")
    args = parser.parse_args(argv)
    args.policies = _names(args.policies, POLICIES, "policy", parser)
    if args.latency:
        run_latency(args)
        return
    graphs = _names(args.graph, GRAPHS, "graph", parser)
    simulators = _names(args.simulators, SIMULATORS, "simulator", parser)

    units, notes = {}, {}
    for name in graphs:
        graph = load_graph(name, args.data)
        notes[name] = graph.notes
        for note in graph.notes:
            print(note)
        units[name] = Unit(graph, args.seed)
        d = units[name].describe()
        print(
            f"{name} unit: {d['skills']} skills, {d['items']} items, depth {d['depth']}, goals: "
            + ", ".join(d["goals"])
        )

    chunk = 10
    jobs = [
        (g, s, p, list(range(start, min(start + chunk, args.learners))))
        for g in graphs
        for s in simulators
        for start in range(0, args.learners, chunk)
        for p in args.policies
    ]
    options = {"days": args.days, "per_day": args.per_day, "seed": args.seed}
    records: list[dict] = []
    started = time.perf_counter()
    bar = tqdm(
        total=len(graphs) * len(simulators) * len(args.policies) * args.learners,
        desc="learners",
        file=sys.stderr,
        smoothing=0.05,
    )
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers, _init_worker, (units, options)) as pool:
            for out in pool.imap_unordered(_run_chunk, jobs):
                records += out
                bar.update(len(out))
    else:
        _init_worker(units, options)
        for job in jobs:
            out = _run_chunk(job)
            records += out
            bar.update(len(out))
    bar.close()
    seconds = time.perf_counter() - started

    rows, ratios = summarise(records, units, graphs, simulators, args.policies, args.seed)
    checks = criteria(rows)
    table = tables(rows, ratios, checks, units)
    print(table)
    print(f"\n{len(records)} learner runs in {seconds:.0f} s with {args.workers} worker(s)")
    if args.plot:
        plot(rows, args.plot, graphs, simulators)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "graphs": graphs,
            "simulators": simulators,
            "policies": args.policies,
            "learners": args.learners,
            "days": args.days,
            "per_day": args.per_day,
            "seed": args.seed,
            "workers": args.workers,
            "policy_bkt": dataclasses.asdict(POLICY_PARAMS),
            "units": {g: units[g].describe() for g in graphs},
            "graph_notes": notes,
            "seconds": seconds,
            "environment": environment(),
        }
        args.json.write_text(
            json.dumps(
                {"results": rows, "ratios": ratios, "criteria": checks, "config": config, "table": table}, indent=1
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
