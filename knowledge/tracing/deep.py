"""Deep knowledge tracing: DKT and an attention model with Rasch item difficulty (pure torch + numpy).

Both models read an attempt log (`Interactions`, see `data.py`) and give, for every row, the probability
that the learner answers it correctly, computed from that learner's strictly earlier question attempts only.

- `DKT`: Piech et al., "Deep Knowledge Tracing", NeurIPS 2015. An LSTM over (skill, correct) inputs whose
  output layer holds one logit per skill for the next attempt.
- `AttentionKT`: the AKT / simpleKT family. Ghosh, Heffernan & Lan, "Context-Aware Attentive Knowledge
  Tracing", KDD 2020; Liu et al., "simpleKT: A Simple But Tough-to-Beat Baseline for Knowledge Tracing",
  ICLR 2023. Rasch-style question embeddings (skill embedding + difficulty(problem) x variation(skill)),
  a knowledge encoder over past interactions, and a retriever whose queries attend to strictly earlier
  attempts with a learned exponential decay in distance (a simplification of AKT's monotonic attention),
  plus count features of the learner's whole past (earlier attempts, right and wrong answers on the skills,
  on the same problem and on anything, and the attempts since the skills were last practised: Nagatani et
  al., "Augmenting Knowledge Tracing by Considering Forgetting Behavior", WWW 2019; PFA). An
  optional matrix of item vectors (e.g. sentence embeddings of item text, as in KARL: Shu et al., "KARL:
  Knowledge-Aware Retrieval and Representations aid Retention and Learning in Students", EMNLP 2024) is
  projected and added to the question embedding.

Protocol choices, shared by both models:

- One step per question attempt. Rows that share an `attempt` id (a multi-skill problem expanded into one
  row per skill) form one step: its inputs average the skills' embeddings and its prediction averages the
  skills' logits. This is pyKT's question-level evaluation (every skill row of a question predicted from the
  history before the question, then fused) without the skill rows ever seeing each other's response.
- Windows. Training cuts each learner's attempts into chunks of `window`; prediction slides a window so
  that every attempt is predicted with at least `window - stride` earlier attempts as context (all of
  them when the learner has fewer), and never with any later one.
- Early stopping on validation AUC (question level) over learners held out of the training log (10 % of
  them unless `valid` is given); the step is halved on a plateau and the best weights are kept. Fixed seeds
  for torch and numpy, CUDA when present.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import auc

if TYPE_CHECKING:
    from .data import Interactions


# --- the log as sequences of question attempts ---------------------------------------------------------


@dataclass
class _Sequences:
    """Attempt-level view of a log: one step per question attempt, each learner's steps contiguous."""

    skills: np.ndarray  # [A, K] skill ids of each attempt, padded with n_skills
    problem: np.ndarray  # [A] problem ids, n_problems where unknown
    correct: np.ndarray  # [A] 0/1
    starts: np.ndarray  # [L + 1] learner i owns attempts starts[i]:starts[i + 1]
    row_attempt: np.ndarray  # [R] the attempt each row of the log belongs to
    history: np.ndarray  # [A, len(HISTORY_COLUMNS)] what the learner's whole past shows before each attempt

    @property
    def n_learners(self) -> int:
        return len(self.starts) - 1

    def learners(self, chosen: np.ndarray) -> _Sequences:
        """The sub-log of the chosen learners (indices into this view), without a row mapping."""
        pieces = [np.arange(self.starts[i], self.starts[i + 1]) for i in chosen]
        take = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        lengths = np.array([self.starts[i + 1] - self.starts[i] for i in chosen], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        return _Sequences(self.skills[take], self.problem[take], self.correct[take], starts, np.zeros(0, np.int64),
                          self.history[take])


def _to_sequences(log: Interactions, n_skills: int, n_problems: int) -> _Sequences:
    user = np.asarray(log.user)
    skill = np.asarray(log.skill, dtype=np.int64)
    n = len(user)
    if n and (skill.min() < 0 or skill.max() >= n_skills):
        raise ValueError(f"skill ids must lie in [0, {n_skills}); got {skill.min()}..{skill.max()}")
    attempt = getattr(log, "attempt", None)
    attempt = np.arange(n) if attempt is None else np.asarray(attempt)
    first = np.ones(n, dtype=bool)
    first[1:] = (attempt[1:] != attempt[:-1]) | (user[1:] != user[:-1])
    row_attempt = np.cumsum(first) - 1
    heads = np.flatnonzero(first)
    slot = np.arange(n) - heads[row_attempt]
    skills = np.full((len(heads), int(slot.max()) + 1 if n else 1), n_skills, dtype=np.int64)
    skills[row_attempt, slot] = skill
    problem = getattr(log, "problem", None)
    if problem is None:
        problem = np.full(len(heads), n_problems, dtype=np.int64)
    else:
        problem = np.asarray(problem, dtype=np.int64)[heads]
        problem = np.where((problem >= 0) & (problem < n_problems), problem, n_problems)  # unseen: no difficulty
    learner = user[heads]
    new_learner = np.flatnonzero(np.r_[True, learner[1:] != learner[:-1]]) if len(heads) else np.zeros(0, int)
    starts = np.concatenate([new_learner, [len(heads)]]).astype(np.int64)
    correct = np.asarray(log.correct, dtype=np.int64)[heads]
    history = _history_features(skills, problem, correct, starts, n_skills, n_problems)
    return _Sequences(skills, problem, correct, starts, row_attempt, history)


# Count features of the learner's whole past (not only the window the network sees), strictly before each
# attempt, log(1 + n) scaled: the "past trial counts" and "repeated gap" of Nagatani et al. (WWW 2019),
# which are also the features of Performance Factors Analysis (Pavlik, Cen & Koedinger 2009). Attention, a
# weighted average over the window, can neither count nor see past the window.
HISTORY_COLUMNS = (
    "skill_tried", "skill_right", "skill_wrong",  # on the attempt's skills (mean over them)
    "problem_tried", "problem_right", "problem_wrong",  # on the very same problem (retries); 0 when unknown
    "learner_tried", "learner_right", "learner_wrong",  # on anything
    "skill_gap",  # attempts since the last one on the attempt's skills (mean); 0 when never practised
)


def _earlier_in_group(group: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items in time order: the sum of `values` over earlier items of the same group, and the position of
    the group's previous item (-1 for its first)."""
    order = np.argsort(group, kind="stable")  # groups contiguous, time order kept within each
    ordered = values[order]
    running = np.cumsum(ordered) - ordered  # exclusive running total
    first = np.r_[True, group[order][1:] != group[order][:-1]] if len(group) else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    earlier, previous = np.empty_like(running), np.full(len(order), -1)
    earlier[order] = running - running[group_start]
    previous[order[~first]] = order[np.flatnonzero(~first) - 1]
    return earlier, previous


def _history_features(skills: np.ndarray, problem: np.ndarray, correct: np.ndarray, starts: np.ndarray,
                      n_skills: int, n_problems: int) -> np.ndarray:
    """[A, len(HISTORY_COLUMNS)] float32, from each learner's strictly earlier attempts only."""
    n = len(correct)
    learner = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    right = correct.astype(np.float64)
    # (attempt, skill) pairs, each once: a skill listed twice in one attempt must not count its own response
    pair = np.unique(np.arange(n)[:, None] * (n_skills + 1) + skills)
    attempt, skill = pair // (n_skills + 1), pair % (n_skills + 1)
    attempt, skill = attempt[skill < n_skills], skill[skill < n_skills]
    group = learner[attempt] * n_skills + skill
    tried, previous = _earlier_in_group(group, np.ones(len(attempt)))
    won, _ = _earlier_in_group(group, right[attempt])
    gap = np.where(previous >= 0, attempt - attempt[np.maximum(previous, 0)], 0)
    per_skill = np.stack([tried, won, tried - won, gap], axis=1)
    n_skills_of = np.maximum(np.bincount(attempt, minlength=n), 1)[:, None]
    skill_means = np.stack([np.bincount(attempt, per_skill[:, c], n) for c in range(4)], axis=1) / n_skills_of
    known = problem < n_problems
    problem_counts = np.zeros((n, 2))
    if known.any():
        group = learner[known] * (n_problems + 1) + problem[known]
        problem_counts[known] = np.stack([_earlier_in_group(group, np.ones(known.sum()))[0],
                                          _earlier_in_group(group, right[known])[0]], axis=1)
    learner_tried = np.arange(n) - starts[learner]
    learner_right = np.cumsum(right) - right - (np.cumsum(right) - right)[starts[learner]]
    problem_tried, problem_right = problem_counts.T
    columns = np.column_stack([skill_means[:, :3], problem_tried, problem_right, problem_tried - problem_right,
                               learner_tried, learner_right, learner_tried - learner_right, skill_means[:, 3]])
    return np.log1p(columns).astype(np.float32)


def _windows(seqs: _Sequences, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first_scored): attempts begin:end go in, those from first_scored on are scored."""
    spans = []
    for lo, hi in zip(seqs.starts[:-1].tolist(), seqs.starts[1:].tolist(), strict=True):
        for b in range(lo, hi, stride):
            end = min(b + stride, hi)
            spans.append((max(lo, end - window), end, b))
    return spans


def _length_batches(spans: list, batch_size: int, rng: np.random.Generator | None) -> Iterator[list]:
    """Batches of similar length (little padding); shuffled within and across batches when rng is given."""
    lengths = np.array([end - begin for begin, end, _ in spans])
    order = rng.permutation(len(spans)) if rng is not None else np.arange(len(spans))
    order = order[np.argsort(lengths[order], kind="stable")]  # equal lengths stay in shuffled order
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    for chosen in batches:
        yield [spans[i] for i in chosen]


# --- networks ------------------------------------------------------------------------------------------


def _mean_over_skills(embedded: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """[B, T, K, d] embeddings of an attempt's skills (padding rows are zero) -> their mean [B, T, d]."""
    return embedded.sum(-2) / count


class _DKTNet(nn.Module):
    def __init__(self, n_skills: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.n_skills = n_skills
        self.inputs = nn.Embedding(2 * n_skills + 1, hidden, padding_idx=2 * n_skills)  # one row per (skill, correct)
        self.lstm = nn.LSTM(hidden, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_skills)

    def forward(self, skills: torch.Tensor, problem: torch.Tensor, correct: torch.Tensor,
                history: torch.Tensor) -> torch.Tensor:
        pad = skills == self.n_skills
        count = (~pad).sum(-1, keepdim=True).clamp(min=1)
        pair = torch.where(pad, 2 * self.n_skills, 2 * skills + correct.unsqueeze(-1))
        state, _ = self.lstm(self.dropout(_mean_over_skills(self.inputs(pair), count)))
        # the state before attempt t summarises attempts < t; before the first one it is zero
        before = torch.cat([state.new_zeros(state[:, :1].shape), state[:, :-1]], dim=1)
        logits = self.out(self.dropout(before))  # [B, T, n_skills]
        mine = logits.gather(-1, skills.clamp(max=self.n_skills - 1)).masked_fill(pad, 0.0)
        return mine.sum(-1) / count.squeeze(-1)


class _DecayAttention(nn.Module):
    """Multi-head attention whose weights decay exponentially with the distance between attempts.

    Each head learns a rate theta >= 0 and adds -theta * (t - j) to the score of attempt j seen from t, so
    its weights are multiplied by exp(-theta * (t - j)): AKT's monotonic attention with the plain distance
    in place of AKT's context-aware one. A learned "nothing yet" slot is always visible, so a first
    attempt (with no past) still has something to attend to. The weights themselves get no dropout (on
    [batch, heads, T, T] it costs more CPU time than the rest of the layer); the block drops out its output.
    """

    def __init__(self, dim: int, heads: int, shared_key: bool = True):
        super().__init__()
        self.heads = heads
        # queries and keys share one projection (AKT's kq_same): an attempt attends to attempts like itself
        self.query, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.key = self.query if shared_key else nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        rates = torch.logspace(math.log10(0.5), math.log10(0.005), heads)  # fast to slow forgetting
        self.decay = nn.Parameter(torch.log(torch.expm1(rates)))  # softplus(decay) = rate
        self.empty_key = nn.Parameter(torch.zeros(dim))
        self.empty_value = nn.Parameter(torch.zeros(dim))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, strict: bool) -> torch.Tensor:
        batch, steps, dim = query.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, x.shape[1], self.heads, dim // self.heads).transpose(1, 2)

        q = split(self.query(query)) / math.sqrt(dim // self.heads)
        k = split(torch.cat([self.empty_key.expand(batch, 1, dim), self.key(key)], dim=1))
        v = split(torch.cat([self.empty_value.expand(batch, 1, dim), self.value(value)], dim=1))
        position = torch.arange(steps, device=query.device)
        distance = (position[:, None] - position[None, :]).to(query.dtype)  # t - j
        visible = distance > 0 if strict else distance >= 0
        bias = -F.softplus(self.decay)[:, None, None] * distance.clamp(min=0)
        bias = bias.masked_fill(~visible, float("-inf"))
        bias = torch.cat([bias.new_zeros(self.heads, steps, 1), bias], dim=-1)  # the "nothing yet" slot
        # written out rather than F.scaled_dot_product_attention, whose CPU path checks the mask on every call
        weights = torch.softmax(q @ k.transpose(-1, -2) + bias, dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(batch, steps, dim))


class _Block(nn.Module):
    """Attention then a feed-forward layer, each with a residual connection and layer norm (as in AKT)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attention = _DecayAttention(dim, heads)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, strict: bool) -> torch.Tensor:
        x = self.norm1(query + self.dropout(self.attention(query, key, value, strict)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class _AttentionNet(nn.Module):
    def __init__(self, n_skills: int, n_problems: int, *, dim: int, heads: int, encoder_layers: int,
                 retriever_layers: int, dropout: float, item_dim: int, history_columns: list[int]):
        super().__init__()
        self.n_skills, self.n_problems = n_skills, n_problems
        self.history_columns = history_columns
        self.history_projection = nn.Linear(len(history_columns), dim) if history_columns else None
        self.concept = nn.Embedding(n_skills + 1, dim, padding_idx=n_skills)
        self.variation = nn.Embedding(n_skills + 1, dim, padding_idx=n_skills)
        self.response = nn.Embedding(2, dim)
        self.response_variation = nn.Embedding(2 * n_skills + 1, dim, padding_idx=2 * n_skills)
        self.difficulty = nn.Embedding(n_problems + 1, 1, padding_idx=n_problems)  # Rasch scalar; unknown -> 0
        nn.init.zeros_(self.difficulty.weight)
        self.text = nn.Linear(item_dim, dim, bias=False) if item_dim else None
        self.register_buffer("item_vectors", torch.zeros(n_problems + 1, item_dim) if item_dim else None)
        self.encoder = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(encoder_layers))
        self.retriever = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(retriever_layers))
        self.out = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, 1))

    def forward(self, skills: torch.Tensor, problem: torch.Tensor, correct: torch.Tensor,
                history: torch.Tensor) -> torch.Tensor:
        pad = skills == self.n_skills
        count = (~pad).sum(-1, keepdim=True).clamp(min=1)
        difficulty = self.difficulty(problem)  # [B, T, 1]
        question = _mean_over_skills(self.concept(skills), count)
        question = question + difficulty * _mean_over_skills(self.variation(skills), count)
        if self.text is not None:
            question = question + self.text(self.item_vectors[problem])
        if self.history_projection is not None:
            question = question + self.history_projection(history[..., self.history_columns])
        pair = torch.where(pad, 2 * self.n_skills, 2 * skills + correct.unsqueeze(-1))
        interaction = question + self.response(correct)
        interaction = interaction + difficulty * _mean_over_skills(self.response_variation(pair), count)
        knowledge = interaction  # what attempts <= j showed, for queries after j
        for block in self.encoder:
            knowledge = block(knowledge, knowledge, knowledge, strict=False)
        state = question
        for block in self.retriever:  # attempt t reads attempts j < t only
            state = block(state, state, knowledge, strict=True)
        return self.out(torch.cat([state, question], dim=-1)).squeeze(-1)


# --- the shared trainer --------------------------------------------------------------------------------


def _auto_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class _SequenceModel:
    """fit / predict / save / load around a network that maps attempt windows to next-attempt logits."""

    defaults: dict = {}

    def __init__(self, n_skills: int, n_problems: int = 0, *, seed: int = 0, device: str = "auto", **hyper):
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no hyperparameter(s) {sorted(unknown)}; "
                            f"choose from {sorted(self.defaults)}")
        self.n_skills, self.n_problems, self.seed = int(n_skills), int(n_problems or 0), seed
        self.hyper = {**self.defaults, **hyper}
        self.device = _auto_device(device)
        torch.manual_seed(seed)
        self.net = self._build().to(self.device)
        self.history: list[dict] = []
        self.fit_seconds = 0.0
        self.soup_size, self.valid_auc = 1, math.nan  # set by fit

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _config(self) -> dict:
        return {"n_skills": self.n_skills, "n_problems": self.n_problems, "seed": self.seed, **self.hyper}

    # training

    def fit(self, train: Interactions, valid: Interactions | None = None,
            progress: Callable[[dict], None] | None = None, checkpoint: str | None = None) -> _SequenceModel:
        """Train with Adam on next-attempt log loss; stop when validation AUC has not improved for
        `patience` epochs and keep the best weights. Without `valid`, 10 % of the training learners
        (chosen with the seed) are held out. `progress` is called after each epoch with a dict; with
        `checkpoint`, the best weights so far are saved there."""
        started = time.perf_counter()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        h = self.hyper
        train_seqs = _to_sequences(train, self.n_skills, self.n_problems)
        if valid is None:
            order = rng.permutation(train_seqs.n_learners)
            n_valid = max(1, round(0.1 * len(order))) if len(order) > 1 else 0
            valid_seqs = train_seqs.learners(np.sort(order[:n_valid]))
            train_seqs = train_seqs.learners(np.sort(order[n_valid:]))
        else:
            valid_seqs = _to_sequences(valid, self.n_skills, self.n_problems)
        spans = _windows(train_seqs, h["window"], h["window"])
        # Batches group windows of similar length, so a batch of short windows holds few attempts. Dividing each
        # batch's summed loss by the average attempts per batch weighs every attempt alike, as random batches would.
        per_batch = max(1.0, len(train_seqs.correct) / math.ceil(max(len(spans), 1) / h["batch_size"]))
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=h["lr"], weight_decay=h["weight_decay"])
        best_score, best_state, waited = -math.inf, copy.deepcopy(self.net.state_dict()), 0
        self.history, epoch_states = [], []
        for epoch in range(1, h["epochs"] + 1):
            self.net.train()
            total, count = 0.0, 0
            for batch in _length_batches(spans, h["batch_size"], rng):
                tensors, scored = self._tensors(train_seqs, batch)
                logits = self.net(*tensors)
                target = tensors[2][scored].float()
                loss = F.binary_cross_entropy_with_logits(logits[scored], target, reduction="sum") / per_batch
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), h["clip"])
                optimizer.step()
                total += loss.item() * per_batch
                count += int(scored.sum())
            score = self._score(valid_seqs)
            if h["soup"] > 1:
                epoch_states.append((score, copy.deepcopy(self.net.state_dict())))
            improved = score > best_score
            if improved:
                best_score, best_state, waited = score, copy.deepcopy(self.net.state_dict()), 0
                if checkpoint:
                    self.save(checkpoint)
            else:  # a plateau: smaller steps from here on
                waited += 1
                for group in optimizer.param_groups:
                    group["lr"] *= h["lr_decay"]
            record = {"epoch": epoch, "epochs": h["epochs"], "train_loss": total / max(count, 1),
                      "valid_auc": score, "best_auc": best_score, "seconds": time.perf_counter() - started}
            self.history.append(record)
            if progress is not None:
                progress(record)
            if waited >= h["patience"]:
                break
        self.net.load_state_dict(best_state)
        self.soup_size, self.valid_auc = 1, best_score
        if h["soup"] > 1:
            self._greedy_soup(epoch_states, valid_seqs, h["soup"])
            if checkpoint and self.soup_size > 1:
                self.save(checkpoint)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _greedy_soup(self, epoch_states: list, valid_seqs: _Sequences, size: int) -> None:
        """Average the weights of the best epochs, adding each (best first, up to `size`) only if the average
        scores higher on the validation learners: the greedy soup of Wortsman et al., "Model soups", ICML 2022,
        over the epochs of one run (late epochs, after the step has been halved, lie in one basin, as in stochastic
        weight averaging, Izmailov et al. 2018). Never worse on validation than the best epoch alone."""
        ranked = sorted(epoch_states, key=lambda pair: -pair[0])[:size]
        soup = [ranked[0][1]]
        for _, state in ranked[1:]:
            candidate = [*soup, state]
            self.net.load_state_dict({key: sum(s[key] for s in candidate) / len(candidate) for key in state})
            score = self._score(valid_seqs)
            if score > self.valid_auc:
                soup, self.valid_auc = candidate, score
        self.net.load_state_dict({key: sum(s[key] for s in soup) / len(soup) for key in soup[0]})
        self.soup_size = len(soup)

    def _score(self, seqs: _Sequences) -> float:
        """Validation AUC per question attempt (the negative log loss when only one class is present)."""
        if len(seqs.correct) == 0:
            return 0.0
        probs = self._predict_attempts(seqs)
        if seqs.correct.min() == seqs.correct.max():
            p = np.clip(probs, 1e-7, 1 - 1e-7)
            return float(np.mean(seqs.correct * np.log(p) + (1 - seqs.correct) * np.log(1 - p)))
        return float(auc(seqs.correct, probs))

    def _tensors(self, seqs: _Sequences, spans: list) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        steps = max(end - begin for begin, end, _ in spans)
        skills = np.full((len(spans), steps, seqs.skills.shape[1]), self.n_skills, dtype=np.int64)
        problem = np.full((len(spans), steps), self.n_problems, dtype=np.int64)
        correct = np.zeros((len(spans), steps), dtype=np.int64)
        history = np.zeros((len(spans), steps, seqs.history.shape[1]), dtype=np.float32)
        scored = np.zeros((len(spans), steps), dtype=bool)
        for i, (begin, end, first) in enumerate(spans):
            skills[i, : end - begin] = seqs.skills[begin:end]
            problem[i, : end - begin] = seqs.problem[begin:end]
            correct[i, : end - begin] = seqs.correct[begin:end]
            history[i, : end - begin] = seqs.history[begin:end]
            scored[i, first - begin : end - begin] = True
        tensors = tuple(torch.from_numpy(x).to(self.device) for x in (skills, problem, correct, history))
        return tensors, torch.from_numpy(scored).to(self.device)

    # prediction

    @torch.no_grad()
    def _predict_attempts(self, seqs: _Sequences) -> np.ndarray:
        self.net.eval()
        h = self.hyper
        probs = np.zeros(len(seqs.correct))
        spans = _windows(seqs, h["window"], h["stride"])
        for batch in _length_batches(spans, h["predict_batch_size"], None):
            tensors, scored = self._tensors(seqs, batch)
            p = torch.sigmoid(self.net(*tensors)).cpu().numpy()
            for i, (begin, end, first) in enumerate(batch):
                probs[first:end] = p[i, first - begin : end - begin]
        return probs

    def predict(self, test: Interactions) -> np.ndarray:
        """P(correct) for every row of `test`, each from that learner's earlier attempts in `test` only.
        Rows of one question attempt get the same value."""
        seqs = _to_sequences(test, self.n_skills, self.n_problems)
        return self._predict_attempts(seqs)[seqs.row_attempt]

    # checkpoints

    def save(self, path: str) -> None:
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        torch.save({"model": type(self).__name__, "config": self._config(), "state": state}, path)

    @classmethod
    def load(cls, path: str, device: str = "auto") -> _SequenceModel:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint["model"] != cls.__name__:
            raise ValueError(f"{path} holds a {checkpoint['model']}, not a {cls.__name__}")
        model = cls(**checkpoint["config"], device=device)
        model.net.load_state_dict(checkpoint["state"])
        return model


# Chosen on fold 0 of ASSIST2009 (benchmarks/kt.py) within a 2-core CPU budget: windows of 100 attempts and
# small batches (many steps per epoch) converge in a few epochs; the step is halved on every plateau.
_TRAINING = {"window": 100, "stride": 50, "batch_size": 32, "predict_batch_size": 128, "lr": 2e-3,
             "weight_decay": 0.0, "clip": 1.0, "epochs": 30, "patience": 2, "lr_decay": 0.5, "soup": 1}


class DKT(_SequenceModel):
    """Deep Knowledge Tracing (Piech et al., NeurIPS 2015): an LSTM over (skill, correct) inputs.

    Hyperparameters: `hidden` (LSTM width), `layers`, `dropout`, and the training ones (`window`, `stride`,
    `batch_size`, `predict_batch_size`, `lr`, `lr_decay` (step factor on each epoch without improvement),
    `weight_decay`, `clip`, `epochs`, `patience`, `soup` (average up to that many best epochs' weights while
    validation improves; 1, DKT's default, is off)). `n_problems` is accepted for a common interface and
    ignored: DKT knows skills only.
    """

    defaults = {"hidden": 128, "layers": 1, "dropout": 0.2, **_TRAINING}

    def _build(self) -> nn.Module:
        h = self.hyper
        return _DKTNet(self.n_skills, h["hidden"], h["layers"], h["dropout"])


class AttentionKT(_SequenceModel):
    """Attention-based knowledge tracing with Rasch item difficulty (AKT, Ghosh et al. 2020; simpleKT,
    Liu et al. 2023).

    The question embedding of attempt t is c(skill) + mu(problem) * d(skill); its interaction embedding adds a
    response embedding and mu(problem) * f(skill, response). A knowledge encoder (causal self-attention over
    interactions) and a retriever (question t attends to questions j < t, reading their encoded
    interactions) use attention weights that decay exponentially with distance. The prediction is an MLP of
    the retrieved state and the question embedding.

    Count features of the learner's whole past (`HISTORY_COLUMNS`), projected and added to the question
    embedding (attention, a weighted average over the window, cannot count): with `practice_counts`,
    log(1 + earlier attempts / right / wrong answers) on the attempt's skills (PFA's features); with
    `item_history`, the same on the very same problem (retries); with `learner_counts`, the same on anything;
    with `skill_gap`, log(1 + attempts since the skills were last practised).

    `item_vectors` (optional, [n_problems, item_dim]): fixed vectors per problem, e.g. text embeddings,
    projected into the question embedding. Hyperparameters: `dim`, `heads`, `encoder_layers`,
    `retriever_layers`, `dropout`, `practice_counts`, `item_history`, `learner_counts`, `skill_gap`, and the
    training ones as for `DKT`.
    """

    # The step, dropout and soup chosen on the validation learners of ASSIST2015's fold 0 (docs/tracing.md)
    defaults = {"dim": 64, "heads": 4, "encoder_layers": 1, "retriever_layers": 1, "dropout": 0.2,
                "item_dim": 0, "practice_counts": True, "item_history": True, "learner_counts": True,
                "skill_gap": True, **_TRAINING, "lr": 1e-3, "soup": 4}

    def __init__(self, n_skills: int, n_problems: int = 0, *, item_vectors: np.ndarray | None = None,
                 seed: int = 0, device: str = "auto", **hyper):
        if item_vectors is not None:
            item_vectors = np.asarray(item_vectors, dtype=np.float32)
            if item_vectors.ndim != 2 or item_vectors.shape[0] != n_problems:
                raise ValueError(f"item_vectors must have shape [n_problems={n_problems}, d]; "
                                 f"got {item_vectors.shape}")
            hyper["item_dim"] = item_vectors.shape[1]
        super().__init__(n_skills, n_problems, seed=seed, device=device, **hyper)
        if item_vectors is not None:
            self.net.item_vectors[:n_problems] = torch.from_numpy(item_vectors).to(self.device)

    def _build(self) -> nn.Module:
        h = self.hyper
        return _AttentionNet(self.n_skills, self.n_problems, dim=h["dim"], heads=h["heads"],
                             encoder_layers=h["encoder_layers"], retriever_layers=h["retriever_layers"],
                             dropout=h["dropout"], item_dim=h["item_dim"], history_columns=self._history_columns())

    def _history_columns(self) -> list[int]:
        groups = {"practice_counts": ("skill_tried", "skill_right", "skill_wrong"),
                  "item_history": ("problem_tried", "problem_right", "problem_wrong"),
                  "learner_counts": ("learner_tried", "learner_right", "learner_wrong"),
                  "skill_gap": ("skill_gap",)}
        return [HISTORY_COLUMNS.index(name) for flag, names in groups.items() if self.hyper[flag] for name in names]
