"""Interaction logs for knowledge tracing: loading, learner folds and question-level scoring.

Plain numpy, no Django: the benchmarks, the tests and the Celery refit all read logs through this module.
A log is one row per (attempt, skill). A problem tagged with several skills is expanded into one row per
skill, all with the same response; such rows form one *question attempt* and are scored once, as pyKT does
(Liu et al. 2022), or the shared label leaks between them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Interactions:
    """Rows sorted by (user, seq). Ids are re-indexed to 0..n-1; `n_*` count the whole data set, so a
    subset keeps the same id spaces as the data it came from."""

    user: np.ndarray
    seq: np.ndarray
    skill: np.ndarray
    correct: np.ndarray
    problem: np.ndarray | None = None
    attempt: np.ndarray | None = None
    n_users: int = 0
    n_skills: int = 0
    n_problems: int = 0

    def __post_init__(self):
        self.user = np.asarray(self.user, dtype=np.int64)
        self.seq = np.asarray(self.seq, dtype=np.int64)
        self.skill = np.asarray(self.skill, dtype=np.int64)
        self.correct = np.asarray(self.correct, dtype=np.int64)
        if self.problem is not None:
            self.problem = np.asarray(self.problem, dtype=np.int64)
        if self.attempt is not None:
            self.attempt = np.asarray(self.attempt, dtype=np.int64)
        n = len(self.user)
        for name in ("seq", "skill", "correct", "problem", "attempt"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise ValueError(f"column {name!r} has {len(column)} rows, expected {n}")
        if n and not np.isin(self.correct, (0, 1)).all():
            raise ValueError("correct must be 0 or 1")
        order = np.lexsort((self.seq, self.user))  # stable: rows of one expanded attempt keep their order
        if n and not (order == np.arange(n)).all():
            for name in ("user", "seq", "skill", "correct", "problem", "attempt"):
                column = getattr(self, name)
                if column is not None:
                    setattr(self, name, column[order])
        if self.attempt is None:
            self.attempt = question_attempts(self.user, self.skill, self.problem)
        self.n_users = max(self.n_users, int(self.user.max()) + 1 if n else 0)
        self.n_skills = max(self.n_skills, int(self.skill.max()) + 1 if n else 0)
        if self.problem is not None:
            self.n_problems = max(self.n_problems, int(self.problem.max()) + 1 if n else 0)

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, users) -> Interactions:
        """The rows of some learners: a boolean mask over all `n_users`, or an array of user ids."""
        users = np.asarray(users)
        if users.dtype == bool:
            if len(users) != self.n_users:
                raise ValueError(f"user mask has {len(users)} entries, expected n_users={self.n_users}")
            keep = users[self.user]
        else:
            keep = np.isin(self.user, users)
        return Interactions(
            user=self.user[keep], seq=self.seq[keep], skill=self.skill[keep], correct=self.correct[keep],
            problem=None if self.problem is None else self.problem[keep], attempt=self.attempt[keep],
            n_users=self.n_users, n_skills=self.n_skills, n_problems=self.n_problems,
        )


def question_attempts(user: np.ndarray, skill: np.ndarray, problem: np.ndarray | None) -> np.ndarray:
    """Attempt id per row (rows sorted by user, seq). Consecutive rows of one learner on one problem are
    one attempt, expanded per skill, until a skill repeats: then the learner tried the problem again.
    Without problem ids every row is its own attempt."""
    n = len(user)
    if problem is None or n == 0:
        return np.arange(n, dtype=np.int64)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (user[1:] != user[:-1]) | (problem[1:] != problem[:-1])
    new_attempt = new_group.copy()
    # Only rows that continue a (user, problem) run need a look at the skills seen so far in it.
    seen = set()
    for i in np.flatnonzero(~new_group | np.append(~new_group[1:], False)):
        if new_group[i]:
            seen = set()
        elif int(skill[i]) in seen:
            new_attempt[i], seen = True, set()
        seen.add(int(skill[i]))
    return np.cumsum(new_attempt) - 1


def _open_text(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def _reindex(values: list[str]) -> np.ndarray:
    """Map raw ids to 0..n-1, in numeric order when all ids are integers, else in string order."""
    try:
        raw = np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        raw = np.array(values)
    _, index = np.unique(raw, return_inverse=True)
    return index.astype(np.int64)


def read_qmatrix(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """A 0/1 matrix, one row per problem and one column per skill. A first line that is not all numbers is a
    header of skill names (the STATICS 2011 file has none)."""
    with _open_text(Path(path)) as fh:
        rows = [row for row in csv.reader(fh) if row]
    names = None
    if rows and not all(cell.strip().lstrip("-").replace(".", "", 1).isdigit() for cell in rows[0]):
        names, rows = rows[0], rows[1:]
    return np.array([[float(c) for c in row] for row in rows]) > 0, names


def load_csv(path, user_col="user_id", seq_col="seq_idx", correct_col="correct", skill_col="skill_id",
             problem_col="problem_id", fold_col=None, qmatrix=None):
    """Read a log (.csv or .csv.gz) into Interactions, plus the fold column per row (or None).

    `skill_col=None` with a `qmatrix` path maps each problem to its skills through the q-matrix (problem
    ids 1..n or 0..n-1 index its rows); a problem with several skills becomes several rows of one attempt.
    `skill_col=None` without a q-matrix uses the problem as the skill.
    """
    path = Path(path)
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = next(reader)
        wanted = {"user": user_col, "seq": seq_col, "correct": correct_col, "skill": skill_col,
                  "problem": problem_col, "fold": fold_col}
        missing = [c for c in wanted.values() if c is not None and c not in header]
        if missing:
            raise ValueError(f"{path.name}: no column(s) {missing}; the header is {header}")
        index = {key: header.index(col) for key, col in wanted.items() if col is not None}
        columns = {key: [] for key in index}
        for row in reader:
            for key, i in index.items():
                columns[key].append(row[i])
    if "problem" not in columns and skill_col is None:
        raise ValueError("give a skill column, or a problem column (with or without a q-matrix)")

    user = _reindex(columns["user"])
    seq = np.array(columns["seq"], dtype=np.int64)
    correct = np.array(columns["correct"], dtype=np.int64)
    fold = np.array(columns["fold"], dtype=np.int64) if "fold" in columns else None
    raw_problem = np.array(columns["problem"], dtype=np.int64) if "problem" in columns else None
    problem = _reindex(columns["problem"]) if "problem" in columns else None

    if skill_col is not None:
        skill = _reindex(columns["skill"])
        n_skills = int(skill.max()) + 1
    elif qmatrix is not None:
        q, _ = read_qmatrix(qmatrix)
        offset = 1 if raw_problem.min() >= 1 and raw_problem.max() == len(q) else 0
        if raw_problem.min() - offset < 0 or raw_problem.max() - offset >= len(q):
            raise ValueError(f"problem ids {raw_problem.min()}..{raw_problem.max()} do not index "
                             f"the {len(q)} q-matrix rows")
        rows, skill = np.nonzero(q[raw_problem - offset])  # expand: one row per (row, skill), in row order
        if len(np.unique(rows)) != len(raw_problem):
            raise ValueError("some problems have no skill in the q-matrix")
        user, seq, correct, problem = user[rows], seq[rows], correct[rows], problem[rows]
        fold = None if fold is None else fold[rows]
        n_skills = q.shape[1]
    else:
        skill, n_skills = problem.copy(), int(problem.max()) + 1

    data = Interactions(user=user, seq=seq, skill=skill, correct=correct, problem=problem, n_skills=n_skills)
    if fold is not None:
        fold = fold[np.lexsort((seq, user))]  # the same stable order Interactions sorted its rows into
    return data, fold


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fixed 64-bit integer mix (SplitMix64's finaliser): the same folds on every machine and run."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def learner_folds(users, k: int, seed: int = 0) -> np.ndarray:
    """Fold 0..k-1 for each learner, from a hash of (seed, learner id). A learner keeps its fold when other
    learners join or leave the data, unlike a shuffled split. Integer ids are mixed arithmetically, other
    ids through BLAKE2b of their text (never Python's per-process salted hash())."""
    users = np.asarray(users)
    if users.dtype.kind in "iu":
        mixed = _splitmix64(_splitmix64(users.astype(np.int64).view(np.uint64)) ^ np.uint64(seed))
    else:
        mixed = np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{u}".encode(), digest_size=8).digest(), "little")
                          for u in users], dtype=np.uint64)
    return (mixed % np.uint64(k)).astype(np.int64)


def merge_question_attempts(interactions: Interactions, predictions) -> tuple[np.ndarray, np.ndarray]:
    """One (label, probability) per question attempt, in attempt order: the label is the attempt's shared
    response, the probability the mean of its rows' predictions."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if len(predictions) != len(interactions):
        raise ValueError(f"{len(predictions)} predictions for {len(interactions)} rows")
    _, first, group = np.unique(interactions.attempt, return_index=True, return_inverse=True)
    sums = np.bincount(group, weights=predictions)
    counts = np.bincount(group)
    return interactions.correct[first].astype(np.int64), sums / counts


def read_skill_graph(path, skill_col, edges, names=None) -> np.ndarray:
    """Prerequisite edges as (prerequisite, skill) pairs of skill indices, numbered as `load_csv` numbers the
    log's `skill_col` (read from the log at `path`). `edges` is a CSV of (prerequisite, skill) ids: the columns
    whose names start with "from" and "to" (DBE-KT22's KC_Relationships.csv), else its first two columns.
    With `names`, a CSV of `id, name` (DBE-KT22's KCs.csv), the log's skill column holds names (matched without
    regard to case or surrounding spaces) and the edges hold ids. Edges to or from a skill the log never names
    are left out."""
    with _open_text(Path(path)) as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if skill_col not in header:
            raise ValueError(f"{Path(path).name}: no column {skill_col!r}; the header is {header}")
        i = header.index(skill_col)
        values = [row[i] for row in reader]
    index = _reindex(values)
    skill_of = {v.strip().lower(): int(k) for v, k in zip(values, index, strict=True)}
    if names is not None:
        with _open_text(Path(names)) as fh:
            rows = list(csv.DictReader(fh))
        skill_of = {r["id"].strip(): skill_of[r["name"].strip().lower()] for r in rows
                    if r["name"].strip().lower() in skill_of}
    with _open_text(Path(edges)) as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader)]
        start = [j for j, h in enumerate(header) if h.startswith("from")]
        end = [j for j, h in enumerate(header) if h.startswith("to")]
        a, b = (start[0], end[0]) if start and end else (0, 1)
        pairs = [(skill_of.get(r[a].strip().lower()), skill_of.get(r[b].strip().lower())) for r in reader if r]
    return np.array([p for p in pairs if None not in p], dtype=np.int64).reshape(-1, 2)
