"""Bayesian Knowledge Tracing (Corbett & Anderson, 1995).

The two-state hidden Markov model: a skill is known or not; a known skill is answered correctly
unless the learner slips, an unknown one only by a guess; after each opportunity an unknown skill
becomes known with probability `p_learn`, and a known one may be forgotten with `p_forget`
(the forgetting variant of pyBKT). The scalar functions are the online update of the practice
loop's hot path: a handful of float operations per skill.

`BatchedBKT` fits the same model to a whole interaction log at once (torch, CPU or CUDA), for the
periodic refit and the benchmarks, with the variants of pyBKT (Badrinath, Wang & Pardos, 2021):
item-level guess and slip (KT-IDEM, Pardos & Heffernan, 2011) and an individualised prior
(Pardos & Heffernan, 2010). Its filter is exactly the scalar update repeated.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BKTParams:
    p_init: float = 0.2
    p_learn: float = 0.15
    p_guess: float = 0.2
    p_slip: float = 0.1
    p_forget: float = 0.0


def predict_correct(p_known: float, params: BKTParams) -> float:
    """Probability that the next answer on this skill is correct."""
    return p_known * (1.0 - params.p_slip) + (1.0 - p_known) * params.p_guess


def posterior_known(p_known: float, correct: bool, params: BKTParams) -> float:
    """P(known | this observation), before the learning transition."""
    if correct:
        known, unknown = p_known * (1.0 - params.p_slip), (1.0 - p_known) * params.p_guess
    else:
        known, unknown = p_known * params.p_slip, (1.0 - p_known) * (1.0 - params.p_guess)
    return known / (known + unknown)


def mastery_after(p_known: float, correct: bool, params: BKTParams) -> float:
    """P(known) at the next opportunity: condition on the observation, then learn (or forget)."""
    post = posterior_known(p_known, correct, params)
    return post * (1.0 - params.p_forget) + (1.0 - post) * params.p_learn


# --------------------------------------------------------------------------------------------------------------
# Batched BKT. Off the hot path: the web app imports this module for the scalar functions above, so torch is
# imported on first use only.
# --------------------------------------------------------------------------------------------------------------

def _torch():
    import torch

    return torch


def pick_device(device: str | None = "auto"):
    """CUDA when there is a GPU, else the CPU; "cpu" or "cuda[:n]" override."""
    torch = _torch()
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _runs(user, skill):
    """For rows sorted by learner, skill and time: the (learner, skill) sequence of each row, each sequence's
    first row and length, and each row's position within its sequence."""
    n = len(user)
    starts = np.ones(n, dtype=bool)
    starts[1:] = (user[1:] != user[:-1]) | (skill[1:] != skill[:-1])
    seq_of = np.cumsum(starts) - 1
    seq_first = np.flatnonzero(starts)
    seq_len = np.diff(np.append(seq_first, n))
    return seq_of, seq_first, seq_len, np.arange(n) - seq_first[seq_of]


def _time_major(lengths):
    """Lay out units of the given lengths time-major, longest first: (rank of each unit, counts[t] = number
    of units longer than t, offsets[t] = where block t starts). Block t holds step t of the first counts[t]
    units, so the units still active at a step are a prefix of those active at the step before."""
    order = np.argsort(-lengths, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(lengths))
    longest = int(lengths.max()) if len(lengths) else 0
    at_least = np.bincount(lengths, minlength=longest + 1)[::-1].cumsum()[::-1]
    counts = [int(c) for c in at_least[1:]]
    return rank, counts, [0] + np.cumsum(counts).tolist()


class _Sequences:
    """All (learner, skill) sequences of a log, packed for a scan over time that is parallel across sequences
    and, through chunks, across time.

    Each answer acts on the two-state chain by a non-negative 2x2 matrix: the forward filter takes
    (P(unknown), P(known)) before an answer to the same before the next answer (Bayes' rule, then the
    transition, up to normalisation), and the backward messages go the other way. Matrices compose, so each
    sequence is cut into chunks of `chunk` answers, and three short scans replace one scan as long as the
    longest sequence: multiply each chunk's matrices (all chunks in parallel, `chunk` steps), carry the
    state from chunk to chunk (all sequences in parallel, one step per chunk), then fill in every position
    from its chunk's starting state (all chunks in parallel again). Where a few learners answer one skill
    hundreds of times, that is most of the speed; the products have no negative terms, so nothing cancels.

    Both levels use `_time_major`: answer positions by (position in chunk, chunk), chunk slots by (chunk
    number, sequence). Buffers and their per-step views are made once, so EM iterations allocate (almost)
    nothing: fresh multi-megabyte tensors cost page faults that would dominate the many small operations.
    """

    def __init__(self, data, table_skill, param_row, prior_row, device, dtype, chunk="auto", with_forget=True):
        torch = _torch()
        n_rows = len(data)
        order = np.lexsort((np.arange(n_rows), data.skill, data.user))  # by learner, skill, then time
        seq_of, seq_first, seq_len, position = _runs(data.user[order], data.skill[order])
        longest = int(seq_len.max()) if n_rows else 1
        if chunk == "auto":
            # Chunks save steps (each ~30 us of small-operation overhead) and cost a few more operations per
            # answer; measured on 2 CPU cores, that pays once the longest sequence exceeds n_rows / 2000.
            chunk = 16 if 2000 * longest > n_rows else longest

        # Chunks: level 1 lays out answer positions, level 2 the chunks of each sequence.
        in_chunk = position % chunk
        chunk_of = np.cumsum(in_chunk == 0) - 1
        chunk_first = np.flatnonzero(in_chunk == 0)
        chunk_len = np.diff(np.append(chunk_first, n_rows))
        rank1, counts1, offsets1 = _time_major(chunk_len)
        flat = np.asarray(offsets1, dtype=np.int64)[in_chunk] + rank1[chunk_of]
        seq_chunks = (seq_len + chunk - 1) // chunk
        rank2, counts2, offsets2 = _time_major(seq_chunks)
        chunk_seq = seq_of[chunk_first]
        slot = np.asarray(offsets2, dtype=np.int64)[position[chunk_first] // chunk] + rank2[chunk_seq]
        chunk_at_slot = np.empty(len(slot), dtype=np.int64)  # level-1 rank of the chunk in each level-2 slot
        chunk_at_slot[slot] = rank1
        slot_of_chunk = np.empty(len(slot), dtype=np.int64)
        slot_of_chunk[rank1] = slot
        chunk_last = np.empty(len(slot), dtype=np.int64)  # flat position of each chunk's last answer
        chunk_last[rank1] = flat[chunk_first + chunk_len - 1]
        odd = np.empty(len(slot), dtype=bool)
        odd[rank1] = chunk_len % 2 == 1

        self.rows = np.empty(n_rows, dtype=np.int64)  # the original row at each flat position
        self.rows[flat] = order
        n_seqs, n_chunks = len(seq_len), len(chunk_len)
        self.n_rows, self.n_seqs = n_rows, n_seqs
        has_pred = position > 0

        def tensor(a):
            return torch.as_tensor(np.ascontiguousarray(a), device=device)

        correct = data.correct[self.rows]
        self.correct = tensor(correct).to(dtype)
        self.skill = tensor(data.skill[self.rows])
        self.table_skill = tensor(table_skill[self.rows])  # row of the per-skill tables (unseen: the mean)
        self.param = tensor(param_row[self.rows])  # row of the guess/slip tables
        self.emission = tensor(2 * param_row[self.rows] + correct)  # entry of the [table row, answer] tables
        seq_first_row = np.empty(n_seqs, dtype=np.int64)  # per sequence, in level-2 rank order
        seq_first_row[rank2] = order[seq_first]
        self.seq_skill = tensor(data.skill[seq_first_row])
        self.seq_prior = tensor(prior_row[seq_first_row])
        seq_first_pos = np.empty(n_seqs, dtype=np.int64)
        seq_first_pos[rank2] = flat[seq_first]
        self.seq_first = tensor(seq_first_pos)
        seq_last = np.empty(n_seqs, dtype=np.int64)
        seq_last[rank2] = flat[seq_first + seq_len - 1]
        self.seq_last = tensor(seq_last)
        self.succ = tensor(flat[has_pred])  # positions with a predecessor in their sequence...
        self.pred = tensor(flat[np.flatnonzero(has_pred) - 1])  # ...and that predecessor
        self.succ_skill = self.skill[self.succ]
        self.chunk_at_slot, self.slot_of_chunk = tensor(chunk_at_slot), tensor(slot_of_chunk)
        self.chunk_last, self.odd = tensor(chunk_last), tensor(odd)

        def buffers(k, n):
            return [torch.zeros(n, dtype=dtype, device=device) for _ in range(k)]

        (self.e_known, self.e_unknown, self.diff, self.before, self.learn, self.forget,
         self.w_known, self.w_unknown, self.beta_known, self.beta_unknown) = buffers(10, n_rows)
        self.x = buffers(4, n_rows)  # each position's 2x2 map, forward then backward
        self.mat = [buffers(4, n_chunks), buffers(4, n_chunks)]  # ping-pong 2x2 products per chunk
        self.slot_mat = buffers(4, n_chunks)  # the chunks' products, in slot order
        self.slot_p, self.slot_u, self.slot_k = buffers(3, n_chunks)  # per slot: start state, end messages
        ones, q, u, k = buffers(4, n_chunks)
        ones.fill_(1.0)

        def block1(x, k, n):
            return x[offsets1[k] : offsets1[k] + n]

        def block2(x, c, n):
            return x[offsets2[c] : offsets2[c] + n]

        # Per-step views of the three scans (compose, carry, fill), forward and backward.
        self.compose, self.fill, self.carry, self.unfill, self.uncarry = [], [], [], [], []
        for step, m in enumerate(counts1):
            src, dst = self.mat[step % 2], self.mat[1 - step % 2]
            x = [block1(y, step, m) for y in self.x]
            self.compose.append(([y[:m] for y in src], [y[:m] for y in dst], x))
            m_next = counts1[step + 1] if step + 1 < len(counts1) else 0
            if m_next:
                self.fill.append(([y[:m_next] for y in x], block1(self.before, step, m_next),
                                  block1(self.before, step + 1, m_next), ones[:m_next], q[:m_next], u[:m_next],
                                  k[:m_next]))
            if step:
                self.unfill.append((x, block1(self.beta_unknown, step, m), block1(self.beta_known, step, m),
                                    block1(self.beta_unknown, step - 1, m), block1(self.beta_known, step - 1, m)))
        self.unfill.reverse()
        for c in range(len(counts2) - 1):
            m = counts2[c + 1]  # sequences with a chunk after chunk c
            self.carry.append(([block2(y, c, m) for y in self.slot_mat], block2(self.slot_p, c, m),
                               block2(self.slot_p, c + 1, m), ones[:m], q[:m], u[:m], k[:m]))
            self.uncarry.append(([block2(y, c + 1, m) for y in self.slot_mat],
                                 block2(self.slot_u, c + 1, m), block2(self.slot_k, c + 1, m),
                                 block2(self.slot_u, c, m), block2(self.slot_k, c, m)))
        self.uncarry.reverse()
        self.chunked = len(counts2) > 1  # else every sequence is one chunk and no products are needed
        self.with_forget = with_forget  # without, forget stays 0

    def _products(self):
        """Each chunk's product X_first @ ... @ X_last of its positions' 2x2 maps `x`, into `slot_mat`."""
        torch = _torch()
        start = self.mat[0]
        start[0].fill_(1.0), start[1].zero_(), start[2].zero_(), start[3].fill_(1.0)
        for (a, b, c, d), dst, (x00, x01, x10, x11) in self.compose:  # dst = src @ x
            torch.mul(a, x00, out=dst[0]).addcmul_(b, x10)
            torch.mul(a, x01, out=dst[1]).addcmul_(b, x11)
            torch.mul(c, x00, out=dst[2]).addcmul_(d, x10)
            torch.mul(c, x01, out=dst[3]).addcmul_(d, x11)
        for even, odd, out in zip(self.mat[0], self.mat[1], self.slot_mat, strict=True):
            # A chunk of n answers finished its product in buffer n % 2; move it to its slot.
            torch.index_select(torch.where(self.odd, odd, even), 0, self.chunk_at_slot, out=out)

    @staticmethod
    def _step(mat, p, p_next, ones, q, u, k):
        """p_next = P(known) after the map `mat` from P(known) = p: (u, k) = (1 - p, p) @ mat, then normalise.
        Every term is non-negative, so nothing cancels and p_next stays within [0, 1]."""
        torch = _torch()
        m00, m01, m10, m11 = mat
        torch.sub(ones, p, out=q)
        torch.mul(q, m00, out=u).addcmul_(p, m10)
        torch.mul(q, m01, out=k).addcmul_(p, m11)
        torch.div(k, u.add_(k), out=p_next)

    def forward(self, prior):
        """The forward filter: fills `before`, P(known) before each answer, from the prior per sequence (in
        level-2 order), the emission likelihoods e_* = P(answer | state), and `learn`, `forget`. A position's
        map takes (P(unknown), P(known)) before its answer to the same after it and the transition:
        [[e_unknown (1 - learn), e_unknown learn], [e_known forget, e_known (1 - forget)]]."""
        torch = _torch()
        torch.sub(self.e_known, self.e_unknown, out=self.diff)
        x00, x01, x10, x11 = self.x
        torch.sub(self.e_unknown, torch.mul(self.e_unknown, self.learn, out=x01), out=x00)
        if self.with_forget:
            torch.mul(self.e_known, self.forget, out=x10)
            torch.sub(self.e_known, x10, out=x11)
        else:  # x10 stays 0
            x11.copy_(self.e_known)
        if self.chunked:
            self._products()
        self.slot_p[: self.n_seqs] = prior
        for step in self.carry:  # from chunk to chunk
            self._step(*step)
        torch.index_select(self.slot_p, 0, self.slot_of_chunk, out=self.before[: len(self.slot_of_chunk)])
        for step in self.fill:  # within chunks
            self._step(*step)

    def backward(self):
        """Scaled backward messages (Rabiner's scaling, w = e / P(answer | earlier answers)), such that
        P(state_t | all answers) = P(state_t | answers up to t) * beta_t(state); beta = 1 at the last answer.
        A position's map takes beta_t to beta_{t-1}: [[(1 - learn) w_unknown, learn w_known],
        [forget w_unknown, (1 - forget) w_known]]."""
        torch = _torch()
        x00, x01, x10, x11 = self.x
        torch.sub(self.w_unknown, torch.mul(self.w_unknown, self.learn, out=x00), out=x00)
        torch.mul(self.learn, self.w_known, out=x01)
        if self.with_forget:
            torch.mul(self.forget, self.w_unknown, out=x10)
            torch.sub(self.w_known, torch.mul(self.w_known, self.forget, out=x11), out=x11)
        else:
            x11.copy_(self.w_known)
        if self.chunked:
            self._products()
        self.slot_u.fill_(1.0)
        self.slot_k.fill_(1.0)
        for (a, b, c, d), u, k, u_prev, k_prev in self.uncarry:  # from chunk to chunk, last to first
            torch.mul(a, u, out=u_prev).addcmul_(b, k)
            torch.mul(c, u, out=k_prev).addcmul_(d, k)
        self.beta_unknown.index_copy_(0, self.chunk_last, self.slot_u.index_select(0, self.slot_of_chunk))
        self.beta_known.index_copy_(0, self.chunk_last, self.slot_k.index_select(0, self.slot_of_chunk))
        for (a, b, c, d), u, k, u_prev, k_prev in self.unfill:  # within chunks, last to first
            torch.mul(a, u, out=u_prev).addcmul_(b, k)
            torch.mul(c, u, out=k_prev).addcmul_(d, k)


def _shrink(num, den, target, strength):
    """(num + strength * target) / (den + strength): the M-step under a Beta prior centred on target."""
    return (num + strength * target) / (den + strength)


def _guess_and_slip(guessed, unknown, guess_target, slipped, known, slip_target, strength, cfg, eps=1e-6):
    """The M-step for guess and slip: maximise the expected complete-data log-likelihood plus Beta priors,
    a log g + b log(1 - g) + c log s + d log(1 - s), over guess <= max_guess, slip <= max_slip and
    guess + slip <= 1 - min_separation. Each term is concave in its own parameter, so without the joint bound
    the answer is each ratio clamped to its box; where that breaks the joint bound the optimum lies on the line
    guess + slip = 1 - min_separation, where the objective is concave in guess alone: bisect its derivative."""
    torch = _torch()
    a, b = guessed + strength * guess_target, unknown - guessed + strength * (1.0 - guess_target)
    c, d = slipped + strength * slip_target, known - slipped + strength * (1.0 - slip_target)
    max_guess, max_slip = cfg["max_guess"], cfg["max_slip"]
    guess, slip = (a / (a + b)).clamp(eps, max_guess), (c / (c + d)).clamp(eps, max_slip)
    total = 1.0 - cfg["min_separation"]
    over = guess + slip > total
    if bool(over.any()):
        a, b, c, d = a[over], b[over], c[over], d[over]
        low = torch.full_like(a, max(eps, total - max_slip))
        high = torch.full_like(a, min(max_guess, total - eps))
        for _ in range(50):  # to 2^-50 of the interval: float64 precision
            g = (low + high) / 2
            rising = a / g - b / (1 - g) - c / (total - g) + d / (1 - total + g) > 0
            low, high = torch.where(rising, g, low), torch.where(rising, high, g)
        guess, slip = guess.clone(), slip.clone()
        guess[over] = (low + high) / 2
        slip[over] = total - guess[over]
    return guess, slip


class BatchedBKT:
    """Per-skill BKT for a whole log, fitted by EM (Baum-Welch on expected counts), all skills at once.

    Options: `forget` (pyBKT's forgetting), `item_params` (guess and slip per (skill, problem): KT-IDEM,
    shrunk towards the skill's values by `item_strength` pseudo-answers), `learner_prior` (the prior of a
    learner's sequence on a skill depends on that learner's own earlier answers on all skills, in
    `ability_bands` quantile bands, shrunk towards the skill's prior by `prior_strength` pseudo-sequences:
    an individualised prior that needs no per-learner parameter, so it applies to new learners and uses
    their past only).

    Bounds keep the fit from degenerating. What makes the known state "known" is that it answers better:
    1 - slip > guess, here with a margin, guess + slip <= 1 - `min_separation`; past that the states swap
    meanings (pyBKT, unbounded, lands there on some skills: its "learning" then models answers that get worse).
    Also slip <= `max_slip` < 0.5, and guess <= `max_guess`, by default 0.499 as the app's skill parameters
    require; a guess above 1/2 is no swap, only a step that is easy to get right (raise `max_guess` to allow
    it, and the separation bound alone limits guess). See `_guess_and_slip` for the bounded M-step. EM stops
    when the mean log-likelihood per row improves by less than `tol`. `chunk` is the chunk length of the scan
    (see `_Sequences`; "auto" decides from the data; the results do not depend on it). `threads` sets torch's
    CPU threads during fit and predict (the scan is many small operations, for which one thread is fastest,
    the more so on a busy machine); None leaves torch's setting. float64 by default: on a GPU, float32 is
    faster but the log-likelihood sums that decide convergence lose digits.
    """

    PARAMS = ("prior", "learn", "guess", "slip", "forget")

    def __init__(self, forget=False, item_params=False, learner_prior=False, max_guess=0.499, max_slip=0.499,
                 min_separation=0.05, max_iter=200, tol=1e-5, item_strength=5.0, prior_strength=10.0,
                 ability_bands=5, chunk="auto", device="auto", dtype="float64", threads=1, init=None):
        if not (0 < max_guess < 1 and 0 < max_slip < 0.5 and 0 < min_separation < 1):
            raise ValueError("max_guess must lie in (0, 1), max_slip in (0, 0.5), min_separation in (0, 1)")
        self.config = dict(forget=forget, item_params=item_params, learner_prior=learner_prior,
                           max_guess=max_guess, max_slip=max_slip, min_separation=min_separation,
                           max_iter=max_iter, tol=tol,
                           item_strength=item_strength, prior_strength=prior_strength,
                           ability_bands=ability_bands, chunk=chunk, dtype=dtype)
        self.init = dict(prior=0.5, learn=0.1, guess=0.2, slip=0.1, forget=0.05 if forget else 0.0)
        self.init.update(init or {})
        self.device = pick_device(device)
        self.threads = threads
        self.tensors = None  # name -> tensor; set by fit or load_state_dict
        self.item_keys = np.zeros(0, dtype=np.int64)  # sorted (skill << 32 | problem) keys of the item table
        self.ability_edges = np.zeros(0)
        self.n_iter = 0
        self.loglik = float("nan")

    # ---- data preparation ----------------------------------------------------------------------------------
    def _dtype(self):
        return getattr(_torch(), self.config["dtype"])

    def _item_rows(self, data):
        """Each row's index in the item table, -1 where the table lacks its (skill, problem)."""
        if not self.config["item_params"] or data.problem is None or not len(self.item_keys):
            return np.full(len(data), -1)
        keys = (data.skill << 32) | data.problem
        index = np.searchsorted(self.item_keys, keys).clip(max=len(self.item_keys) - 1)
        return np.where(self.item_keys[index] == keys, index, -1)

    def _ability(self, data):
        """Per row: (earlier correct + 1) / (earlier attempts + 2) over the learner's earlier question attempts
        (attempts, not rows, so an expanded multi-skill attempt never sees its own answer), and that count."""
        _, first, attempt = np.unique(data.attempt, return_index=True, return_inverse=True)
        att_user, att_correct = data.user[first], data.correct[first]
        new_user = np.ones(len(first), dtype=bool)
        new_user[1:] = att_user[1:] != att_user[:-1]
        user_start = np.maximum.accumulate(np.where(new_user, np.arange(len(first)), 0))
        before = np.cumsum(att_correct) - att_correct
        correct_before = before - before[user_start]
        count_before = np.arange(len(first)) - user_start
        score = (correct_before + 1.0) / (count_before + 2.0)
        return score[attempt], count_before[attempt]

    def _fit_ability_edges(self, data):
        """Quantiles of the ability score at the start of the training sequences (with some history)."""
        score, count = self._ability(data)
        order = np.lexsort((np.arange(len(data)), data.skill, data.user))
        u, s = data.user[order], data.skill[order]
        starts = np.ones(len(data), dtype=bool)  # the first row of each (learner, skill) sequence
        starts[1:] = (u[1:] != u[:-1]) | (s[1:] != s[:-1])
        at_start = order[starts]
        scores = score[at_start][count[at_start] > 0]
        bands = self.config["ability_bands"]
        self.ability_edges = np.quantile(scores, np.arange(1, bands) / bands) if len(scores) else np.zeros(0)

    def _n_bands(self):
        return len(self.ability_edges) + 2 if self.config["learner_prior"] else 1

    def _sequences(self, data, n_skills):
        """Pack the log, with each row's entry in the guess/slip tables (skill s: s; a skill the fit never
        saw: n_skills, the mean; item i: n_skills + 1 + i) and in the prior table (skill, ability band)."""
        skill = np.minimum(data.skill, n_skills)
        item = self._item_rows(data)
        param_row = np.where(item >= 0, n_skills + 1 + item, skill)
        prior_row = skill * self._n_bands()
        if self.config["learner_prior"]:
            score, count = self._ability(data)
            prior_row = prior_row + np.where(count > 0, 1 + np.searchsorted(self.ability_edges, score, "right"), 0)
        return _Sequences(data, skill, param_row, prior_row, self.device, self._dtype(), self.config["chunk"],
                          self.config["forget"])

    # ---- parameter tables, per skill plus a mean entry for unseen skills --------------------------------------
    def _tables(self):
        torch = _torch()
        p = self.tensors

        def with_mean(x):
            return torch.cat([x, x.mean(0, keepdim=True)])

        guess, slip = with_mean(p["guess"]), with_mean(p["slip"])
        if "item_guess" in p:
            guess, slip = torch.cat([guess, p["item_guess"]]), torch.cat([slip, p["item_slip"]])
        prior = with_mean(p["prior_band"] if "prior_band" in p else p["prior"][:, None]).reshape(-1)
        return {"prior": prior, "learn": with_mean(p["learn"]), "forget": with_mean(p["forget"]),
                "guess": guess, "slip": slip}

    def _load(self, seqs, tables):
        """Write this iteration's parameters into the sequences' buffers."""
        torch = _torch()
        guess, slip = tables["guess"], tables["slip"]
        e_known = torch.stack([slip, 1.0 - slip], 1).reshape(-1)  # [table row, answer] -> P(answer | known)
        e_unknown = torch.stack([1.0 - guess, guess], 1).reshape(-1)
        torch.index_select(e_known, 0, seqs.emission, out=seqs.e_known)
        torch.index_select(e_unknown, 0, seqs.emission, out=seqs.e_unknown)
        torch.index_select(tables["learn"], 0, seqs.table_skill, out=seqs.learn)
        if self.config["forget"]:
            torch.index_select(tables["forget"], 0, seqs.table_skill, out=seqs.forget)
        return tables["prior"].index_select(0, seqs.seq_prior)

    # ---- EM --------------------------------------------------------------------------------------------------
    def fit(self, interactions, progress=None):
        """Fit by EM. `progress`, if given, is called as progress(iteration, max_iter, mean_loglik) after each
        E-step."""
        torch = _torch()
        with _threads(self.threads if self.device.type == "cpu" else None), torch.no_grad():
            return self._fit(interactions, progress)

    def _fit(self, data, progress):
        torch = _torch()
        cfg, dtype, device = self.config, self._dtype(), self.device
        n_skills = data.n_skills
        if len(data) == 0:
            raise ValueError("no interactions to fit")
        self.item_keys = np.zeros(0, dtype=np.int64)
        if cfg["item_params"] and data.problem is not None:
            self.item_keys = np.unique((data.skill << 32) | data.problem)
        if cfg["learner_prior"]:
            self._fit_ability_edges(data)
        self.tensors = {name: torch.full((n_skills,), float(self.init[name]), dtype=dtype, device=device)
                        for name in self.PARAMS}
        item_skill = None
        if len(self.item_keys):
            item_skill = torch.as_tensor(self.item_keys >> 32, device=device)
            self.tensors["item_guess"] = self.tensors["guess"][item_skill]
            self.tensors["item_slip"] = self.tensors["slip"][item_skill]
        n_bands = self._n_bands()
        if cfg["learner_prior"]:
            self.tensors["prior_band"] = self.tensors["prior"][:, None].repeat(1, n_bands)
        seqs = self._sequences(data, n_skills)

        # Counts that do not change between iterations.
        n_params = n_skills + 1 + len(self.item_keys)
        fixed = {
            "rows": torch.bincount(seqs.skill, minlength=n_skills).to(dtype),
            "correct": torch.bincount(seqs.skill, seqs.correct, minlength=n_skills),
            "seqs": torch.bincount(seqs.seq_skill, minlength=n_skills).to(dtype),
            "param_rows": torch.bincount(seqs.param, minlength=n_params).to(dtype)[n_skills + 1:],
            "param_correct": torch.bincount(seqs.param, seqs.correct, minlength=n_params)[n_skills + 1:],
            "band_seqs": torch.bincount(seqs.seq_prior, minlength=n_skills * n_bands).to(dtype),
        }
        previous = -float("inf")
        for iteration in range(1, cfg["max_iter"] + 1):
            stats, loglik = self._e_step(seqs, n_skills, n_params)
            mean_loglik = loglik / max(len(data), 1)
            if progress is not None:
                progress(iteration, cfg["max_iter"], mean_loglik)
            self.n_iter, self.loglik = iteration, loglik
            if mean_loglik - previous < cfg["tol"]:
                break
            previous = mean_loglik
            self._m_step(stats, fixed, item_skill)
        return self

    def _e_step(self, seqs, n_skills, n_params):
        """Expected counts per skill (and item, band) by forward-backward over every sequence at once."""
        torch = _torch()
        tables = self._tables()
        seqs.forward(self._load(seqs, tables))
        evidence = torch.addcmul(seqs.e_unknown, seqs.before, seqs.diff)  # P(answer_t | answers before t)
        loglik = float(torch.log(evidence).sum())
        torch.div(seqs.e_known, evidence, out=seqs.w_known)
        torch.div(seqs.e_unknown, evidence, out=seqs.w_unknown)
        seqs.backward()
        filtered = seqs.before * seqs.w_known  # P(known_t | answers up to t)
        known = filtered * seqs.beta_known  # P(known_t | all answers of the sequence)

        # Expected transitions t-1 -> t at the positions with a predecessor:
        # xi(i, j) = P(i at t-1 | answers up to t-1) A(i, j) w_t(j) beta_t(j).
        was_known = filtered.index_select(0, seqs.pred)
        learned = (seqs.w_known * seqs.beta_known).index_select(0, seqs.succ)  # times learn, per skill below
        learned.addcmul_(learned, was_known, value=-1.0)
        known_correct = known * seqs.correct
        known_first = known.index_select(0, seqs.seq_first)

        def total(index, weights, size=n_skills):
            return torch.bincount(index, weights, minlength=size)

        stats = {
            "known": total(seqs.skill, known),
            "known_correct": total(seqs.skill, known_correct),
            "known_last": total(seqs.seq_skill, known.index_select(0, seqs.seq_last)),
            "known_first": total(seqs.seq_skill, known_first),
            "learned": total(seqs.succ_skill, learned) * tables["learn"][:n_skills],
            "band_known": total(seqs.seq_prior, known_first, len(tables["prior"]) - self._n_bands()),
        }
        if self.config["forget"]:
            forgot = (seqs.w_unknown * seqs.beta_unknown).index_select(0, seqs.succ).mul_(was_known)
            stats["forgot"] = total(seqs.succ_skill, forgot) * tables["forget"][:n_skills]
        if len(self.item_keys):
            stats["param_known"] = total(seqs.param, known, n_params)[n_skills + 1:]
            stats["param_known_correct"] = total(seqs.param, known_correct, n_params)[n_skills + 1:]
        return stats, loglik

    def _m_step(self, s, fixed, item_skill):
        cfg, p, init = self.config, self.tensors, self.init
        eps = 1e-6
        unknown = fixed["rows"] - s["known"]
        unknown_moving = unknown - (fixed["seqs"] - s["known_last"])  # unknown at positions with a successor
        p["prior"] = _shrink(s["known_first"], fixed["seqs"], init["prior"], 1.0).clamp(eps, 1 - eps)
        p["learn"] = _shrink(s["learned"], unknown_moving, init["learn"], 1.0).clamp(eps, 1 - eps)
        if cfg["forget"]:
            known_moving = s["known"] - s["known_last"]
            p["forget"] = _shrink(s["forgot"], known_moving, init["forget"], 1.0).clamp(eps, 0.5)
        guessed = fixed["correct"] - s["known_correct"]
        p["guess"], p["slip"] = _guess_and_slip(guessed, unknown, init["guess"], s["known"] - s["known_correct"],
                                                s["known"], init["slip"], 1.0, cfg)
        if item_skill is not None:
            guessed = fixed["param_correct"] - s["param_known_correct"]
            p["item_guess"], p["item_slip"] = _guess_and_slip(
                guessed, fixed["param_rows"] - s["param_known"], p["guess"][item_skill],
                s["param_known"] - s["param_known_correct"], s["param_known"], p["slip"][item_skill],
                cfg["item_strength"], cfg)
        if "prior_band" in p:
            shape = p["prior_band"].shape
            p["prior_band"] = _shrink(s["band_known"].view(shape), fixed["band_seqs"].view(shape),
                                      p["prior"][:, None], cfg["prior_strength"]).clamp(eps, 1 - eps)

    # ---- prediction ------------------------------------------------------------------------------------------
    def trace(self, interactions):
        """(P(correct) before each row, P(known) after it), in the rows' order. A forward filter: each row's
        values use only that learner's earlier answers (on the row's skill; the individualised prior also
        uses the learner's earlier question attempts)."""
        if self.tensors is None:
            raise RuntimeError("fit the model or load a state first")
        torch = _torch()
        data = interactions
        if len(data) == 0:
            return np.zeros(0), np.zeros(0)
        with _threads(self.threads if self.device.type == "cpu" else None), torch.no_grad():
            seqs = self._sequences(data, len(self.tensors["learn"]))
            tables = self._tables()
            seqs.forward(self._load(seqs, tables))
            before = seqs.before
            guess, slip = tables["guess"][seqs.param], tables["slip"][seqs.param]
            p_correct = guess + before * (1.0 - slip - guess)
            joint_known = before * seqs.e_known
            known = joint_known / (joint_known + (1.0 - before) * seqs.e_unknown)  # at most 1, also in floats
            after = (seqs.learn + (1.0 - seqs.learn - seqs.forget) * known).clamp_(max=1.0)
            out_correct, out_after = np.empty(len(data)), np.empty(len(data))
            out_correct[seqs.rows] = p_correct.cpu().numpy()
            out_after[seqs.rows] = after.cpu().numpy()
        return out_correct, out_after

    def predict(self, interactions) -> np.ndarray:
        """P(correct) for every row, from that learner's own earlier answers only."""
        return self.trace(interactions)[0]

    # ---- parameters ------------------------------------------------------------------------------------------
    def params(self) -> dict:
        """The fitted parameters as numpy arrays: per skill, per item (KT-IDEM), per skill and ability band."""
        out = {name: t.detach().cpu().numpy().copy() for name, t in self.tensors.items()}
        if len(self.item_keys):
            out["item_skill"], out["item_problem"] = self.item_keys >> 32, self.item_keys & 0xFFFFFFFF
        if self.config["learner_prior"]:
            out["ability_edges"] = self.ability_edges.copy()
        return out

    def skill_params(self, skill: int, problem: int | None = None) -> BKTParams:
        """One skill's scalar parameters (with that problem's guess and slip, under KT-IDEM) for the online
        update of the hot path."""
        p = {name: float(self.tensors[name][skill]) for name in self.PARAMS}
        if problem is not None and len(self.item_keys):
            key = (skill << 32) | problem
            i = int(np.searchsorted(self.item_keys, key))
            if i < len(self.item_keys) and self.item_keys[i] == key:
                p["guess"], p["slip"] = float(self.tensors["item_guess"][i]), float(self.tensors["item_slip"][i])
        return BKTParams(p_init=p["prior"], p_learn=p["learn"], p_guess=p["guess"], p_slip=p["slip"],
                         p_forget=p["forget"])

    def state_dict(self) -> dict:
        """Plain lists and numbers, so that a fitted model can be stored as JSON."""
        return {
            "kind": "batched-bkt",
            "config": dict(self.config),
            "init": dict(self.init),
            "tensors": {name: t.detach().cpu().tolist() for name, t in self.tensors.items()},
            "item_keys": self.item_keys.tolist(),
            "ability_edges": self.ability_edges.tolist(),
            "n_iter": self.n_iter,
            "loglik": self.loglik,
        }

    def load_state_dict(self, state: dict) -> "BatchedBKT":
        torch = _torch()
        if state.get("kind") != "batched-bkt":
            raise ValueError("not a batched-bkt state")
        self.config.update(state["config"])
        self.init.update(state["init"])
        dtype = self._dtype()
        self.tensors = {name: torch.tensor(v, dtype=dtype, device=self.device) for name, v in state["tensors"].items()}
        self.item_keys = np.asarray(state["item_keys"], dtype=np.int64)
        self.ability_edges = np.asarray(state["ability_edges"], dtype=np.float64)
        self.n_iter, self.loglik = state.get("n_iter", 0), state.get("loglik", float("nan"))
        return self


class _threads:
    """Set torch's CPU thread count for a block, then restore it (None: leave it alone)."""

    def __init__(self, n):
        self.n, self.saved = n, None

    def __enter__(self):
        if self.n:
            torch = _torch()
            self.saved = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.saved:
            _torch().set_num_threads(self.saved)
