"""Hierarchical Bayesian knowledge tracing: learner traits, skill parameters and a prerequisite graph (pyro).

In the spirit of PSI-KT (Zhou, Bamler, Wu & Tejero-Cantero, "Predictive, scalable and interpretable knowledge
tracing on structured domains", ICLR 2024): learners differ in traits that a teacher can read, the traits come
from a population distribution whose parameters are learned too, and the prerequisite graph shapes learning.
The code is our own and the model simpler: a two-state (known / unknown) chain per learner and skill, as in BKT,
whose parameters depend on the learner, the question and the learner's standing on the skill's prerequisites.

Generative model (logit scale unless said otherwise), learner u, skill k, question q:

    population  sd_ability, sd_learn, sd_forget ~ LogNormal            (hyperpriors over the trait scales)
    learner     ability_u ~ N(0, sd_ability), learn_u ~ N(0, sd_learn), forget_u ~ N(0, sd_forget)
    skill       init_k, learn_k, base_k, gap_k ~ N(mean, sd) per kind, with hyperpriors over mean and sd
    question    difficulty_q ~ N(0, sd_difficulty)
    graph       beta ~ N(0, 1): the prerequisite effect; forgetting base rate log phi ~ N(-2, 1.5)

    P(known at the first opportunity) = sigmoid(init_k)
    P(correct | unknown) = sigmoid(base_k + ability_u - difficulty_q)           ("guess")
    P(correct | known)   = sigmoid(base_k + softplus(gap_k) + ability_u - difficulty_q)
    after each answer:   P(learn) = sigmoid(learn_k + learn_u + beta * x),  x = the learner's standing on k's
                         prerequisites before this attempt: 2 * (mean over prerequisites j of (c_j + 1) / (n_j + 2))
                         - 1, with c_j of n_j earlier answers on j correct, so x lies in [-1, 1] and is 0 without
                         evidence (or without prerequisites)
    between two opportunities on k, g question attempts on other things apart: P(forget) = 1 - (1 + g)^-phi_u,
                         phi_u = phi * exp(forget_u) (power-law forgetting on a clock of attempts: the logs
                         we fit on have no timestamps)

The chain is filtered exactly (Bayes' rule, learn, forget), so P(correct) for a row depends only on earlier rows.

Fitting: stochastic variational inference (pyro, Trace_ELBO) on mini-batches of learners: the learners' plate is
subsampled, so one step costs the same however many learners there are, and the likelihood of a batch is scaled
up to the whole population. The guide is mean-field normal: one (mean, sd) per global latent, and one per
learner trait (local latents, indexed by the subsample).

Prediction for any learner, new or not, filters the learner's traits online from that learner's own earlier
answers: a fixed, quasi-random set of trait particles drawn from the population prior, each weighted by the
likelihood of the learner's answers before the row (importance sampling of a three-dimensional static parameter).
The same particles give a learner's trait posterior and a mastery estimate with its interval.

Pure torch, pyro and numpy; deterministic given a seed; CPU or CUDA (`device="auto"` picks CUDA when present).
"""

from __future__ import annotations

import math

import numpy as np

from knowledge.tracing.bkt import _runs, _threads, _time_major, _torch, pick_device  # shared torch helpers

TRAITS = ("ability", "learn", "forget")


# ---- features of a log, computed once (numpy) -------------------------------------------------------------------

def prerequisite_weights(edges, n_skills: int) -> np.ndarray:
    """[n_skills, n_skills] matrix whose row k averages over k's prerequisites: W[k, j] = 1 / |pre(k)| for each
    edge (j, k), j a prerequisite of k. Self-loops and edges outside 0..n_skills-1 are ignored."""
    w = np.zeros((n_skills, n_skills))
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    ok = (edges >= 0).all(1) & (edges < n_skills).all(1) & (edges[:, 0] != edges[:, 1])
    for pre, post in edges[ok]:
        w[post, pre] = 1.0
    counts = w.sum(1, keepdims=True)
    return np.divide(w, counts, out=np.zeros_like(w), where=counts > 0)


class _Features:
    """Per row of a log: the attempt index within the whole log, the learner's standing x on the row's
    prerequisites before the attempt, and log1p of the gap (in the learner's question attempts) since the
    learner's previous row on the same skill."""

    def __init__(self, data, weights: np.ndarray, n_skills: int):
        n = len(data)
        self.n = n
        new_attempt = np.ones(n, dtype=bool)
        new_attempt[1:] = (data.attempt[1:] != data.attempt[:-1]) | (data.user[1:] != data.user[:-1])
        self.attempt = np.cumsum(new_attempt) - 1  # 0..A-1, in row order
        self.attempt_first = np.flatnonzero(new_attempt)
        new_user = np.ones(n, dtype=bool)
        new_user[1:] = data.user[1:] != data.user[:-1]
        self.user_first = np.flatnonzero(new_user)  # first row of each learner present
        self.user_of_row = np.cumsum(new_user) - 1  # 0..L-1
        skill = np.minimum(data.skill, n_skills)  # a skill the fit never saw: the extra "mean" entry

        # Gap since the previous row of the same learner and skill, in question attempts between the two.
        order = np.lexsort((np.arange(n), skill, data.user))
        same = np.zeros(n, dtype=bool)
        same[1:] = (data.user[order][1:] == data.user[order][:-1]) & (skill[order][1:] == skill[order][:-1])
        gap = np.zeros(n)
        att = self.attempt[order]
        gap[order[1:][same[1:]]] = np.maximum(att[1:] - att[:-1] - 1, 0)[same[1:]]
        self.log_gap = np.log1p(gap)

        # Standing on prerequisites, from counts before the row's attempt (so an expanded multi-skill attempt
        # never sees its own answer), in chunks of learners to bound the [rows, skills] work arrays.
        self.x = np.zeros(n)
        k = weights.shape[0]
        has_pre = weights.sum(1) > 0
        if has_pre.any() and n:
            limit = max(1, 4_000_000 // max(k, 1))
            starts = list(self.user_first) + [n]
            lo = 0
            while lo < n:
                # the last learner boundary within `limit` rows (at least one learner)
                i = int(np.searchsorted(starts, lo, "right"))
                hi = starts[i]
                while i + 1 < len(starts) and starts[i + 1] - lo <= limit:
                    i += 1
                    hi = starts[i]
                self._prerequisite_chunk(data, weights, has_pre, lo, hi)
                lo = hi

    def _prerequisite_chunk(self, data, weights, has_pre, lo, hi):
        k = weights.shape[0]
        rows = np.arange(lo, hi)
        skill = data.skill[rows]
        seen = skill < k
        onehot = np.zeros((len(rows), k))
        onehot[np.flatnonzero(seen), skill[seen]] = 1.0
        right = onehot * data.correct[rows, None]
        n_before = np.cumsum(onehot, 0) - onehot  # exclusive, within the chunk
        c_before = np.cumsum(right, 0) - right
        first_of_attempt = self.attempt_first[self.attempt[rows]] - lo
        first_of_user = self.user_first[self.user_of_row[rows]] - lo
        n_seen = n_before[first_of_attempt] - n_before[first_of_user]
        c_seen = c_before[first_of_attempt] - c_before[first_of_user]
        standing = 2.0 * (c_seen + 1.0) / (n_seen + 2.0) - 1.0
        use = seen & has_pre[np.minimum(skill, k - 1)]
        x = np.zeros(len(rows))
        x[use] = (standing[use] * weights[skill[use]]).sum(1)
        self.x[rows] = x


class _Pack:
    """Rows of some learners laid out for a scan along each (learner, skill) sequence, all sequences at once:
    block p holds the p-th answer of every sequence longer than p, longest sequences first, so the sequences
    still active at a step are a prefix of those active at the step before."""

    def __init__(self, data, feats: _Features, rows: np.ndarray, n_skills: int, n_problems: int, device, dtype):
        torch = _torch()
        rows = np.asarray(rows, dtype=np.int64)
        user, skill = data.user[rows], np.minimum(data.skill[rows], n_skills)
        order = np.lexsort((rows, skill, user))
        rows = rows[order]
        user, skill = user[order], skill[order]
        n = len(rows)
        seq_of, seq_first, seq_len, position = _runs(user, skill)
        rank, self.counts, self.offsets = _time_major(seq_len)
        flat = np.asarray(self.offsets, dtype=np.int64)[position] + rank[seq_of]
        self.rows = np.empty(n, dtype=np.int64)  # the log's row at each flat position
        self.rows[flat] = rows
        self.n = n
        self.n_seqs = len(seq_len)
        last = np.empty(len(seq_len), dtype=np.int64)  # flat position of each sequence's last row, by rank
        last[rank] = flat[seq_first + seq_len - 1]
        self.seq_last = last
        r = self.rows
        # learners present, in order of first appearance in `rows`: local ids 0..B-1
        self.users, local = np.unique(data.user[r], return_inverse=True)

        def tensor(a, dt=None):
            return torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dt)

        self.local_user = tensor(local)
        self.skill = tensor(np.minimum(data.skill[r], n_skills))
        problem = data.problem[r] if (data.problem is not None and n_problems) else np.zeros(n, dtype=np.int64)
        self.problem = tensor(np.where(problem < n_problems, problem, n_problems))  # unseen: the zero entry
        self.correct = tensor(data.correct[r], dtype)
        self.x = tensor(feats.x[r], dtype)
        self.log_gap = tensor(feats.log_gap[r], dtype)
        self.first_skill = self.skill[: self.counts[0]] if n else self.skill


def _scan(m0, lik1, lik0, learn, keep, counts, offsets):
    """P(known) before every row, in flat order: Bayes' rule on each answer (lik1 = P(answer | known), lik0 =
    P(answer | unknown)), then learning with P(learn), then forgetting over the gap to the next row (keep =
    1 - P(forget) of the next row). Works on [rows] or [rows, particles] tensors alike."""
    torch = _torch()
    out, m = [], m0
    for p in range(len(counts)):
        out.append(m)
        if p + 1 == len(counts):
            break
        n2, s, s2 = counts[p + 1], offsets[p], offsets[p + 1]
        m = m[:n2]
        known = m * lik1[s : s + n2]
        post = known / (known + (1.0 - m) * lik0[s : s + n2])
        m = (post + (1.0 - post) * learn[s : s + n2]) * keep[s2 : s2 + n2]
    return torch.cat(out) if out else m0


class HierarchicalKT:
    """Hierarchical Bayesian knowledge tracing (see the module docstring), fitted by SVI on mini-batches of
    learners.

    `prerequisites`: (prerequisite, skill) pairs of skill indices (None: no graph; the effect is then not
    identified and stays at its prior). `batch_learners` learners per SVI step; `epochs` passes over the
    learners (steps = epochs * number of batches, at least `min_steps`); `lr` Adam's step size, decayed to a
    tenth by the end. `particles`: trait particles for online filtering in `predict`, `mastery` and `traits`;
    `adapt_rounds`: rounds of adaptive importance sampling for the posterior after a whole history (`traits`,
    `mastery`).
    `threads`: torch CPU threads during fit and predict (None: leave torch's setting).
    """

    def __init__(self, prerequisites=None, batch_learners=64, epochs=60, min_steps=300, lr=0.04, particles=512,
                 adapt_rounds=3, seed=0, device="auto", threads=1, dtype="float32"):
        self.config = dict(batch_learners=batch_learners, epochs=epochs, min_steps=min_steps, lr=lr,
                           particles=particles, adapt_rounds=adapt_rounds, seed=seed, dtype=dtype)
        self.prerequisites = (np.zeros((0, 2), dtype=np.int64) if prerequisites is None
                              else np.asarray(prerequisites, dtype=np.int64).reshape(-1, 2))
        self.device = pick_device(device)
        self.threads = threads
        self.n_skills = self.n_problems = 0
        self.globals = None  # name -> (loc, raw scale) tensors; set by fit or load_state_dict
        self.learner_loc = self.learner_scale = None  # [training learners, 3]
        self.learner_ids = np.zeros(0, dtype=np.int64)  # the user id of each row of the learner tables
        self.history = []  # loss per row, per step

    # ---- latent sites ------------------------------------------------------------------------------------------
    def _global_shapes(self):
        shapes = {"skill_mean": (4,), "skill_log_sd": (4,), "skill": (4, self.n_skills), "prerequisite": (),
                  "log_forget": (), "trait_log_sd": (3,)}
        if self.n_problems:
            shapes.update(difficulty_log_sd=(), difficulty=(self.n_problems,))
        return shapes

    def _global_init(self, name, shape):
        torch = _torch()
        means = torch.tensor([0.0, -1.5, -0.5, 2.0])  # init, learn, base, gap (logit scale)
        value = {"skill_mean": means, "skill": means[:, None].expand(4, self.n_skills),
                 "skill_log_sd": torch.full((4,), -0.5), "log_forget": torch.tensor(-2.0),
                 "trait_log_sd": torch.full((3,), -1.0), "difficulty_log_sd": torch.tensor(-0.5)}.get(name)
        return torch.zeros(shape) if value is None else value.clone().reshape(shape)

    def _sample_globals(self, dist, pyro):
        """The global latents under their priors (inside the model)."""
        torch = _torch()
        dev, dt = self.device, self._dtype()

        def normal(loc, scale, shape):
            loc = torch.as_tensor(loc, device=dev, dtype=dt).expand(shape) if not torch.is_tensor(loc) else loc
            scale = torch.as_tensor(scale, device=dev, dtype=dt).expand(shape) if not torch.is_tensor(scale) else scale
            return dist.Normal(loc, scale).to_event(len(shape))

        g = {}
        g["skill_mean"] = pyro.sample("skill_mean", normal(torch.tensor([0.0, -1.5, 0.0, 2.0], device=dev, dtype=dt),
                                                           2.0, (4,)))
        g["skill_log_sd"] = pyro.sample("skill_log_sd", normal(-0.5, 1.0, (4,)))
        sd = g["skill_log_sd"].exp()[:, None].expand(4, self.n_skills)
        g["skill"] = pyro.sample("skill", dist.Normal(g["skill_mean"][:, None].expand(4, self.n_skills), sd)
                                 .to_event(2))
        g["prerequisite"] = pyro.sample("prerequisite", normal(0.0, 1.0, ()))
        g["log_forget"] = pyro.sample("log_forget", normal(-2.0, 1.5, ()))
        g["trait_log_sd"] = pyro.sample("trait_log_sd", normal(-0.5, 1.0, (3,)))
        if self.n_problems:
            g["difficulty_log_sd"] = pyro.sample("difficulty_log_sd", normal(-0.5, 1.0, ()))
            scale = g["difficulty_log_sd"].exp().expand(self.n_problems)
            g["difficulty"] = pyro.sample("difficulty", dist.Normal(torch.zeros_like(scale), scale).to_event(1))
        return g

    def _tables(self, g):
        """Per-row lookup tables from global values: skills with a mean column appended (a skill the fit never
        saw), difficulties with a zero appended (a question it never saw)."""
        torch = _torch()
        skill = torch.cat([g["skill"], g["skill"].mean(1, keepdim=True)], 1)
        if self.n_problems:
            difficulty = torch.cat([g["difficulty"], g["difficulty"].new_zeros(1)])
        else:
            difficulty = skill.new_zeros(1)
        return skill, difficulty

    def _row_terms(self, g, pack, ability, learn_offset, forget_offset):
        """(lik1, lik0, learn, keep, e1, e0, m0) per row; trait tensors are [rows] or [rows, particles]."""
        torch = _torch()
        skill, difficulty = self._tables(g)
        init, learn, base, gap = skill[0], skill[1], skill[2], skill[3]
        k, q = pack.skill, pack.problem
        extra = ability.dim() - 1  # 1 with particles
        expand = (lambda t: t[:, None]) if extra else (lambda t: t)
        logit0 = expand(base[k] - difficulty[q]) + ability
        logit1 = logit0 + expand(torch.nn.functional.softplus(gap[k]))
        y = expand(pack.correct)
        e0, e1 = torch.sigmoid(logit0), torch.sigmoid(logit1)
        lik1 = y * e1 + (1.0 - y) * (1.0 - e1)
        lik0 = y * e0 + (1.0 - y) * (1.0 - e0)
        p_learn = torch.sigmoid(expand(learn[k] + g["prerequisite"] * pack.x) + learn_offset)
        phi = torch.exp(g["log_forget"] + forget_offset)
        keep = torch.exp(-phi * expand(pack.log_gap))  # (1 + gap)^-phi
        m0 = torch.sigmoid(init[pack.first_skill])
        if extra:
            m0 = m0[:, None].expand(-1, ability.shape[-1])
        return lik1, lik0, p_learn, keep, e1, e0, m0

    def _model(self, pack, n_learners, subsample):
        import pyro
        import pyro.distributions as dist

        torch = _torch()
        g = self._sample_globals(dist, pyro)
        sd = g["trait_log_sd"].exp()
        with pyro.plate("learners", n_learners, subsample=subsample) as idx:
            traits = pyro.sample("traits", dist.Normal(sd.new_zeros(len(idx), 3), sd.expand(len(idx), 3)).to_event(1))
            t = traits[pack.local_user]
            lik1, lik0, learn, keep, _, _, m0 = self._row_terms(g, pack, t[:, 0], t[:, 1], t[:, 2])
            m = _scan(m0, lik1, lik0, learn, keep, pack.counts, pack.offsets)
            loglik = torch.log((m * lik1 + (1.0 - m) * lik0).clamp_min(1e-7))
            pyro.factor("answers", loglik.new_zeros(len(idx)).index_add(0, pack.local_user, loglik))

    def _guide(self, pack, n_learners, subsample):
        import pyro
        import pyro.distributions as dist

        torch = _torch()
        for name, (loc, raw) in self.globals.items():
            pyro.sample(name, dist.Normal(loc, torch.nn.functional.softplus(raw)).to_event(loc.dim()))
        with pyro.plate("learners", n_learners, subsample=subsample):
            loc = self.learner_loc[subsample]
            scale = torch.nn.functional.softplus(self.learner_scale[subsample])
            pyro.sample("traits", dist.Normal(loc, scale).to_event(1))

    def _dtype(self):
        return getattr(_torch(), self.config["dtype"])

    # ---- fitting -----------------------------------------------------------------------------------------------
    def fit(self, interactions, progress=None):
        """Fit by SVI. `progress`, if given, is called as progress(step, steps, loss_per_row) after each step."""
        torch = _torch()
        with _threads(self.threads if self.device.type == "cpu" else None):
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.config["seed"])
                return self._fit(interactions, progress)

    def _fit(self, data, progress):
        import pyro
        from pyro.infer import Trace_ELBO

        torch = _torch()
        if len(data) == 0:
            raise ValueError("no interactions to fit")
        cfg, dev, dt = self.config, self.device, self._dtype()
        self.n_skills = data.n_skills
        self.n_problems = data.n_problems if data.problem is not None else 0
        weights = prerequisite_weights(self.prerequisites, self.n_skills)
        feats = _Features(data, weights, self.n_skills)
        users = np.unique(data.user)
        self.learner_ids = users
        n_learners = len(users)
        rng = np.random.default_rng(cfg["seed"])
        perm = rng.permutation(n_learners)
        n_batches = max(1, math.ceil(n_learners / cfg["batch_learners"]))
        batches = []
        row_learner = np.searchsorted(users, data.user)
        for b in range(n_batches):
            members = np.sort(perm[b::n_batches])
            mask = np.zeros(n_learners, dtype=bool)
            mask[members] = True
            pack = _Pack(data, feats, np.flatnonzero(mask[row_learner]), self.n_skills, self.n_problems, dev, dt)
            # pack.users are user ids in sorted order, as are `members` (indices into the sorted `users`)
            batches.append((pack, torch.as_tensor(members, device=dev)))

        self.globals = {}
        for name, shape in self._global_shapes().items():
            loc = self._global_init(name, shape).to(device=dev, dtype=dt).requires_grad_()
            raw = torch.full(shape, _inv_softplus(0.02), device=dev, dtype=dt).requires_grad_()
            self.globals[name] = (loc, raw)
        self.learner_loc = torch.zeros((n_learners, 3), device=dev, dtype=dt, requires_grad=True)
        self.learner_scale = torch.full((n_learners, 3), _inv_softplus(0.3), device=dev, dtype=dt,
                                        requires_grad=True)
        params = [p for pair in self.globals.values() for p in pair] + [self.learner_loc, self.learner_scale]
        steps = max(cfg["min_steps"], cfg["epochs"] * n_batches)
        optimizer = torch.optim.Adam(params, lr=cfg["lr"])
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.1 ** (s / steps))
        elbo = Trace_ELBO()
        self.history = []
        order = []
        with pyro.validation_enabled(False):
            for step in range(1, steps + 1):
                if not order:
                    order = list(rng.permutation(n_batches))
                pack, members = batches[order.pop()]
                optimizer.zero_grad()
                loss = elbo.differentiable_loss(self._model, self._guide, pack, n_learners, members)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 100.0)
                optimizer.step()
                schedule.step()
                per_row = float(loss.detach()) / len(data)
                self.history.append(per_row)
                if progress is not None:
                    progress(step, steps, per_row)
        for loc, raw in self.globals.values():
            loc.requires_grad_(False), raw.requires_grad_(False)
        self.learner_loc.requires_grad_(False)
        self.learner_scale.requires_grad_(False)
        return self

    # ---- posterior summaries -----------------------------------------------------------------------------------
    def _check_fitted(self):
        if self.globals is None:
            raise RuntimeError("fit the model or load a state first")

    def _point(self):
        """Posterior means (of the normal guide) of the global latents."""
        return {name: loc for name, (loc, _) in self.globals.items()}

    def _draws(self, n, seed=None):
        """n joint draws of the global latents from the guide, [n, *shape] each."""
        torch = _torch()
        gen = torch.Generator(device="cpu").manual_seed(self.config["seed"] if seed is None else seed)
        out = {}
        for name, (loc, raw) in self.globals.items():
            z = torch.randn((n, *loc.shape), generator=gen, dtype=loc.dtype).to(loc.device)
            out[name] = loc + torch.nn.functional.softplus(raw) * z
        return out

    def prerequisite_effect(self, interval=0.9) -> dict:
        """beta, the change in the logit of P(learn) from no evidence on a skill's prerequisites (x = 0) to all
        of them answered correctly (x -> 1): posterior mean, sd and central interval."""
        self._check_fitted()
        loc, raw = self.globals["prerequisite"]
        sd = float(_torch().nn.functional.softplus(raw))
        z = _normal_quantile(0.5 + interval / 2)
        return {"mean": float(loc), "sd": sd, "lo": float(loc) - z * sd, "hi": float(loc) + z * sd,
                "interval": interval}

    def skill_params(self, interval=0.9, draws=2000) -> dict:
        """Per skill, for a learner with average traits on a question of average difficulty and no evidence on
        prerequisites: init = P(known at first), learn = P(learn) per opportunity, guess = P(correct | unknown),
        slip = P(wrong | known). Each a dict of arrays mean / lo / hi (central interval over the posterior)."""
        self._check_fitted()
        torch = _torch()
        d = self._draws(draws)
        s = d["skill"]  # [draws, 4, K]
        values = {"init": torch.sigmoid(s[:, 0]), "learn": torch.sigmoid(s[:, 1]), "guess": torch.sigmoid(s[:, 2]),
                  "slip": 1.0 - torch.sigmoid(s[:, 2] + torch.nn.functional.softplus(s[:, 3]))}
        q = torch.tensor([0.5 - interval / 2, 0.5 + interval / 2], dtype=s.dtype, device=s.device)
        out = {}
        for name, v in values.items():
            lo, hi = torch.quantile(v, q, dim=0)
            out[name] = {"mean": v.mean(0).cpu().numpy(), "lo": lo.cpu().numpy(), "hi": hi.cpu().numpy()}
        return out

    def population(self) -> dict:
        """Posterior means of the population's trait sds (logit scale: ability, learn; log scale: forget), the
        base forgetting rate phi, and the question difficulties' sd."""
        self._check_fitted()
        p = self._point()
        sd = p["trait_log_sd"].exp().cpu().numpy()
        out = {f"sd_{name}": float(v) for name, v in zip(TRAITS, sd, strict=True)}
        out["forget_rate"] = float(p["log_forget"].exp())
        if "difficulty_log_sd" in p:
            out["sd_difficulty"] = float(p["difficulty_log_sd"].exp())
        return out

    def traits(self, interactions=None, interval=0.9) -> dict:
        """Learner traits relative to the population (0 = the population's centre): `ability` and `learn` on the
        logit scale, `forget` on the log scale of the forgetting rate. Without `interactions`: the fitted
        learners' posteriors (the variational normals). With them: the online posterior of the learners in that
        log, from their answers there (the particle filter of `predict`). Returns {"users": ids, name: {"mean",
        "sd", "lo", "hi"} of arrays}."""
        self._check_fitted()
        torch = _torch()
        if interactions is None:
            loc = self.learner_loc.cpu().numpy().astype(np.float64)
            sd = torch.nn.functional.softplus(self.learner_scale).cpu().numpy().astype(np.float64)
            z = _normal_quantile(0.5 + interval / 2)
            out = {"users": self.learner_ids.copy()}
            for i, name in enumerate(TRAITS):
                out[name] = {"mean": loc[:, i], "sd": sd[:, i], "lo": loc[:, i] - z * sd[:, i],
                             "hi": loc[:, i] + z * sd[:, i]}
            return out
        return self._filter(interactions, want="traits", interval=interval)

    def mastery(self, interactions, interval=0.9) -> dict:
        """P(known) of every learner in `interactions` on every skill after their last row there (forgetting
        included up to their last attempt), under the online posterior of their traits: {"users": ids,
        "mean", "lo", "hi": [learners, skills] arrays}. The interval reflects what the answers leave uncertain
        about the learner's traits."""
        return self._filter(interactions, want="mastery", interval=interval)

    def predict(self, interactions) -> np.ndarray:
        """P(correct) for every row, from that learner's own earlier answers only (traits filtered online)."""
        return self._filter(interactions, want="predict")

    # ---- the particle filter -----------------------------------------------------------------------------------
    def _particles(self):
        torch = _torch()
        n = self.config["particles"]
        engine = torch.quasirandom.SobolEngine(3, scramble=True, seed=self.config["seed"])
        u = engine.draw(n).double().clamp(1e-6, 1 - 1e-6)
        z = math.sqrt(2.0) * torch.special.erfinv(2.0 * u - 1.0)
        sd = self._point()["trait_log_sd"].exp().cpu().double()
        return (z * sd).to(device=self.device, dtype=self._dtype())  # [particles, 3]

    def _filter(self, data, want, interval=0.9):
        self._check_fitted()
        torch = _torch()
        if len(data) == 0:
            return np.zeros(0)
        with _threads(self.threads if self.device.type == "cpu" else None), torch.no_grad():
            weights = prerequisite_weights(self.prerequisites, self.n_skills)
            feats = _Features(data, weights, self.n_skills)
            g = self._point()
            traits = self._particles()
            n_part = traits.shape[0]
            users = data.user[feats.user_first]
            if want == "predict":
                out = np.empty(len(data))
            elif want == "traits":
                out = {"users": users, "effective_particles": np.empty(len(users)),
                       **{name: {k: np.empty(len(users)) for k in ("mean", "sd", "lo", "hi")} for name in TRAITS}}
            else:
                shape = (len(users), self.n_skills)
                out = {"users": users, "mean": np.empty(shape), "lo": np.empty(shape), "hi": np.empty(shape)}
            # chunks of whole learners, so that [rows, particles] tensors stay around 4M entries
            limit = max(1, 4_000_000 // n_part)
            bounds = list(feats.user_first) + [len(data)]
            a = 0
            while a < len(users):
                b = a + 1
                while b < len(users) and bounds[b + 1] - bounds[a] <= limit:
                    b += 1
                rows = np.arange(bounds[a], bounds[b])
                self._filter_chunk(data, feats, rows, g, traits, want, out, slice(a, b), interval)
                a = b
        return out

    def _run(self, g, pack, ability, learn, forget):
        """The filter under trait particles ([rows, particles] each): P(known) before each row, the row terms,
        and each row's log-likelihood per particle."""
        torch = _torch()
        lik1, lik0, p_learn, keep, e1, e0, m0 = self._row_terms(g, pack, ability, learn, forget)
        m = _scan(m0, lik1, lik0, p_learn, keep, pack.counts, pack.offsets)  # [rows, particles], flat order
        loglik = torch.log((m * lik1 + (1.0 - m) * lik0).clamp_min(1e-30))
        return m, lik1, lik0, p_learn, e1, e0, loglik

    def _filter_chunk(self, data, feats, rows, g, traits, want, out, learners, interval):
        torch = _torch()
        dev, dt = self.device, self._dtype()
        pack = _Pack(data, feats, rows, self.n_skills, self.n_problems, dev, dt)
        ones = torch.ones(pack.n, 1, device=dev, dtype=dt)
        m, lik1, lik0, learn, e1, e0, loglik = self._run(
            g, pack, ones * traits[:, 0], ones * traits[:, 1], ones * traits[:, 2])
        n_l = learners.stop - learners.start
        if want == "predict":
            # Log-weight of each particle before each row: the learner's log-likelihood over earlier attempts.
            attempt = torch.as_tensor(feats.attempt[pack.rows], device=dev)
            a0 = int(feats.attempt[rows[0]])
            n_att = int(feats.attempt[rows[-1]]) - a0 + 1
            per_attempt = loglik.new_zeros(n_att, loglik.shape[1]).index_add_(0, attempt - a0, loglik)
            running = per_attempt.cumsum(0) - per_attempt  # exclusive, over the chunk
            att_first_row = feats.attempt_first[a0 : a0 + n_att]
            learner_start_att = feats.attempt[feats.user_first[feats.user_of_row[att_first_row]]] - a0
            running = running - running[torch.as_tensor(learner_start_att, device=dev)]
            w = torch.softmax(running[attempt - a0], dim=1)
            p = ((m * e1 + (1.0 - m) * e0) * w).sum(1)
            out[pack.rows] = p.double().cpu().numpy()
            return

        # The posterior after all of a learner's answers. The prior particles' weights locate it; then, for each
        # learner, particles are drawn around it (a normal twice as wide as the weighted particles, no wider
        # than 1.5 times the prior) and weighted by likelihood * prior / proposal, a few rounds (adaptive
        # importance sampling), so that a long history, which makes the posterior narrow, does not leave the
        # estimate resting on a handful of prior particles.
        total = loglik.new_zeros(n_l, loglik.shape[1]).index_add_(0, pack.local_user, loglik)
        w = torch.softmax(total, dim=1)  # [learners, particles]
        local = traits[None].expand(n_l, -1, -1)  # [learners, particles, 3]
        prior_sd = self._point()["trait_log_sd"].exp().to(dt)
        z = traits / prior_sd  # the quasi-random standard normals behind the prior particles
        for _ in range(self.config["adapt_rounds"]):
            mean = (w[..., None] * local).sum(1)  # [learners, 3]
            spread = (w[..., None] * (local - mean[:, None]) ** 2).sum(1).clamp_min(0).sqrt()
            q_sd = torch.minimum((2.0 * spread).clamp_min(0.02), 1.5 * prior_sd)
            local = mean[:, None, :] + q_sd[:, None, :] * z[None]
            t = local[pack.local_user]
            m, lik1, lik0, learn, e1, e0, loglik = self._run(g, pack, t[..., 0], t[..., 1], t[..., 2])
            total = loglik.new_zeros(n_l, loglik.shape[1]).index_add_(0, pack.local_user, loglik)
            log_prior = (-0.5 * (local / prior_sd) ** 2).sum(-1)
            log_proposal = (-0.5 * z**2).sum(-1)[None] - torch.log(q_sd / prior_sd).sum(-1, keepdim=True)
            w = torch.softmax(total + log_prior - log_proposal, dim=1)
        lo_q, hi_q = 0.5 - interval / 2, 0.5 + interval / 2
        if want == "traits":
            for i, name in enumerate(TRAITS):
                v = local[..., i]
                mean = (w * v).sum(1)
                sd = ((w * (v - mean[:, None]) ** 2).sum(1)).clamp_min(0).sqrt()
                lo, hi = _weighted_quantiles(v, w, (lo_q, hi_q))
                for key, val in (("mean", mean), ("sd", sd), ("lo", lo), ("hi", hi)):
                    out[name][key][learners] = val.double().cpu().numpy()
            out["effective_particles"][learners] = (1.0 / (w**2).sum(1)).double().cpu().numpy()
            return
        # Mastery now: after the last answer on each skill (Bayes, learn), then forgetting up to the learner's
        # last attempt.
        last = torch.as_tensor(pack.seq_last, device=dev)
        ml, l1, l0 = m[last], lik1[last], lik0[last]
        post = ml * l1 / (ml * l1 + (1.0 - ml) * l0)
        after = post + (1.0 - post) * learn[last]
        last_rows = pack.rows[pack.seq_last]
        final_att = feats.attempt[np.append(feats.user_first[1:], len(feats.attempt))[feats.user_of_row[last_rows]]
                                  - 1]
        since = torch.as_tensor(np.log1p(np.maximum(final_att - feats.attempt[last_rows], 0)), device=dev, dtype=dt)
        owner = pack.local_user[last]
        phi = torch.exp(g["log_forget"] + local[owner, :, 2])
        after = after * torch.exp(-phi * since[:, None])
        skill_table, _ = self._tables(g)
        state = torch.sigmoid(skill_table[0, : self.n_skills]).to(dt)[None, :, None].expand(n_l, -1, w.shape[1])
        state = state.clone()
        seen = pack.skill[last] < self.n_skills
        state[owner[seen], pack.skill[last][seen]] = after[seen]
        wk = w[:, None, :].expand_as(state)
        lo, hi = _weighted_quantiles(state, wk, (lo_q, hi_q))
        out["mean"][learners] = (wk * state).sum(2).double().cpu().numpy()
        out["lo"][learners] = lo.double().cpu().numpy()
        out["hi"][learners] = hi.double().cpu().numpy()

    # ---- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain lists and numbers, so that a fitted model can be stored as JSON."""
        self._check_fitted()
        torch = _torch()
        return {
            "kind": "hierarchical-kt",
            "config": dict(self.config),
            "prerequisites": self.prerequisites.tolist(),
            "n_skills": self.n_skills, "n_problems": self.n_problems,
            "globals": {name: {"loc": loc.cpu().tolist(), "scale": torch.nn.functional.softplus(raw).cpu().tolist()}
                        for name, (loc, raw) in self.globals.items()},
            "learners": {"ids": self.learner_ids.tolist(), "loc": self.learner_loc.cpu().tolist(),
                         "scale": torch.nn.functional.softplus(self.learner_scale).cpu().tolist()},
        }

    def load_state_dict(self, state: dict) -> HierarchicalKT:
        torch = _torch()
        if state.get("kind") != "hierarchical-kt":
            raise ValueError("not a hierarchical-kt state")
        self.config.update(state["config"])
        self.prerequisites = np.asarray(state["prerequisites"], dtype=np.int64).reshape(-1, 2)
        self.n_skills, self.n_problems = int(state["n_skills"]), int(state["n_problems"])
        dev, dt = self.device, self._dtype()

        def tensor(v):
            return torch.tensor(v, device=dev, dtype=dt)

        self.globals = {name: (tensor(v["loc"]), _inv_softplus_t(tensor(v["scale"])))
                        for name, v in state["globals"].items()}
        learners = state["learners"]
        self.learner_ids = np.asarray(learners["ids"], dtype=np.int64)
        self.learner_loc = tensor(learners["loc"]).reshape(-1, 3)
        self.learner_scale = _inv_softplus_t(tensor(learners["scale"]).reshape(-1, 3))
        return self


# ---- words for teachers ------------------------------------------------------------------------------------------

def describe_traits(learn, forget, ability=None, confidence=0.8) -> str:
    """Words for a learner's traits relative to the population, each trait given as (posterior mean, posterior sd)
    on the scale of `HierarchicalKT.traits` (0 = the population's centre): "learns fast, forgets fast". A trait is
    called fast (slow) only when the posterior probability that it lies above (below) the population's centre is
    at least `confidence` (normal approximation); otherwise it is "typical": the answers so far do not tell."""

    def word(trait, high, low, typical):
        mean, sd = float(trait[0]), max(float(trait[1]), 1e-12)
        above = 0.5 * (1.0 + math.erf(mean / sd / math.sqrt(2.0)))
        if above >= confidence:
            return high
        if 1.0 - above >= confidence:
            return low
        return typical

    words = [word(learn, "learns fast", "learns slowly", "learns at a typical pace"),
             word(forget, "forgets fast", "forgets slowly", "forgets at a typical rate")]
    if ability is not None:
        words.append(word(ability, "answers above the typical level", "answers below the typical level",
                          "answers at a typical level"))
    return ", ".join(words)


def describe_learner(traits: dict, i: int, confidence=0.8) -> str:
    """`describe_traits` for learner row i of a `HierarchicalKT.traits()` result."""

    def pair(name):
        return float(traits[name]["mean"][i]), float(traits[name]["sd"][i])

    return describe_traits(pair("learn"), pair("forget"), pair("ability"), confidence)


# ---- small helpers -----------------------------------------------------------------------------------------------

def _weighted_quantiles(values, weights, qs):
    """Quantiles along the last axis of `values` under normalised `weights` (same shape)."""
    torch = _torch()
    v, order = torch.sort(values, dim=-1)
    w = torch.gather(weights, -1, order)
    cdf = w.cumsum(-1)
    out = []
    for q in qs:
        i = torch.searchsorted(cdf.contiguous(), torch.full((*cdf.shape[:-1], 1), q, device=cdf.device,
                                                             dtype=cdf.dtype)).clamp_max(v.shape[-1] - 1)
        out.append(torch.gather(v, -1, i).squeeze(-1))
    return out


def _normal_quantile(p: float) -> float:
    return math.sqrt(2.0) * _erfinv(2.0 * p - 1.0)


def _erfinv(y: float) -> float:
    torch = _torch()
    return float(torch.special.erfinv(torch.tensor(y, dtype=torch.float64)))


def _inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


def _inv_softplus_t(y):
    torch = _torch()
    return y + torch.log(-torch.expm1(-y))
