"""Batched BKT (knowledge/tracing/bkt.py): parameter recovery on data simulated from known parameters, the
filter against the scalar hot-path update, the bounds, the variants, and the stored state."""

import json

import numpy as np
import pytest

from knowledge.tracing.bkt import BatchedBKT, BKTParams, mastery_after, pick_device, predict_correct
from knowledge.tracing.data import Interactions


def simulate(n_users, n_skills, length, prior, learn, guess, slip, forget=None, seed=0, item_guess=None,
             n_items=1, user_offset=None):
    """A log drawn from BKT: every learner practises every skill `length` times, skills one after another.
    With `item_guess` [n_skills, n_items], each opportunity draws an item whose guess replaces the skill's.
    With `user_offset` [n_users], a learner's prior on every skill is shifted by it (in probability)."""
    rng = np.random.default_rng(seed)
    forget = np.zeros(n_skills) if forget is None else forget
    n_seq = n_users * n_skills
    user = np.repeat(np.arange(n_users), n_skills)
    skill = np.tile(np.arange(n_skills), n_users)
    p0 = prior[skill] if user_offset is None else np.clip(prior[skill] + user_offset[user], 0.01, 0.99)
    known = rng.random(n_seq) < p0
    correct = np.empty((n_seq, length), dtype=np.int64)
    problem = rng.integers(0, n_items, size=(n_seq, length))
    for t in range(length):
        g = guess[skill] if item_guess is None else item_guess[skill, problem[:, t]]
        p_correct = np.where(known, 1 - slip[skill], g)
        correct[:, t] = rng.random(n_seq) < p_correct
        u = rng.random(n_seq)
        known = np.where(known, u >= forget[skill], u < learn[skill])
    rows = n_seq * length
    return Interactions(
        user=np.repeat(user, length), seq=np.repeat(skill * length, length) + np.tile(np.arange(length), n_seq),
        skill=np.repeat(skill, length), correct=correct.reshape(rows),
        problem=(skill[:, None] * n_items + problem).reshape(rows), n_skills=n_skills,
    ), rows


def scalar_filter(data, model, use_items=False):
    """P(correct) before and P(known) after each row by repeated `mastery_after`, one row at a time."""
    before, after = np.empty(len(data)), np.empty(len(data))
    state = {}
    for i in range(len(data)):  # rows are in (user, seq) order
        user, skill = int(data.user[i]), int(data.skill[i])
        params = model.skill_params(skill, int(data.problem[i]) if use_items else None)
        p = state.get((user, skill), params.p_init)
        before[i] = predict_correct(p, params)
        state[(user, skill)] = after[i] = mastery_after(p, bool(data.correct[i]), params)
    return before, after


@pytest.fixture(scope="module")
def truth():
    rng = np.random.default_rng(42)
    n_skills = 20
    return {
        "prior": rng.uniform(0.1, 0.6, n_skills), "learn": rng.uniform(0.05, 0.3, n_skills),
        "guess": rng.uniform(0.1, 0.3, n_skills), "slip": rng.uniform(0.05, 0.2, n_skills),
    }


@pytest.fixture(scope="module")
def fitted(truth):
    data, _ = simulate(2000, 20, 15, **truth, seed=1)
    return BatchedBKT(device="cpu", tol=1e-7).fit(data), data


def test_em_recovers_the_parameters_it_was_simulated_from(truth, fitted):
    model, _ = fitted
    p = model.params()
    for name, tolerance in [("prior", 0.06), ("learn", 0.04), ("guess", 0.04), ("slip", 0.04)]:
        error = np.abs(p[name] - truth[name])
        assert error.max() < tolerance, (name, error.max())
    assert np.all(p["forget"] == 0.0)


def test_the_fit_is_at_least_as_likely_as_the_true_parameters(truth, fitted):
    model, data = fitted
    state = model.state_dict()
    state["tensors"].update({name: value.tolist() for name, value in truth.items()})
    true_model = BatchedBKT(device="cpu").load_state_dict(state)

    def loglik(m):
        p = m.predict(data)
        return np.sum(data.correct * np.log(p) + (1 - data.correct) * np.log(1 - p))

    assert loglik(model) >= loglik(true_model)
    assert model.loglik == pytest.approx(loglik(model), rel=1e-9)  # the E-step's likelihood is the filter's


@pytest.mark.parametrize("chunk", [2, 3, 16])  # sequences of 9: several chunks, or one
def test_batched_filter_equals_the_scalar_hot_path_update(truth, chunk):
    data, _ = simulate(30, 4, 9, **{k: v[:4] for k, v in truth.items()}, seed=3)
    model = BatchedBKT(device="cpu", forget=True, max_iter=5, chunk=chunk).fit(data)
    before, after = model.trace(data)
    expected_before, expected_after = scalar_filter(data, model)
    np.testing.assert_allclose(before, expected_before, rtol=0, atol=1e-12)
    np.testing.assert_allclose(after, expected_after, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.predict(data), before)


def test_batched_filter_equals_the_scalar_update_with_item_guess_and_slip():
    rng = np.random.default_rng(5)
    item_guess = rng.uniform(0.05, 0.4, size=(3, 4))
    data, _ = simulate(40, 3, 8, prior=np.full(3, 0.3), learn=np.full(3, 0.2), guess=np.full(3, 0.2),
                       slip=np.full(3, 0.1), item_guess=item_guess, n_items=4, seed=5)
    model = BatchedBKT(device="cpu", item_params=True, max_iter=5, chunk=3).fit(data)
    before, after = model.trace(data)
    expected_before, expected_after = scalar_filter(data, model, use_items=True)
    np.testing.assert_allclose(before, expected_before, atol=1e-12)
    np.testing.assert_allclose(after, expected_after, atol=1e-12)


@pytest.mark.parametrize("options", [{}, {"item_params": True}, {"learner_prior": True}, {"forget": True, "chunk": 3}])
def test_a_prediction_uses_only_the_learners_own_past(truth, options):
    data, _ = simulate(200, 5, 10, **{k: v[:5] for k, v in truth.items()}, seed=7, n_items=3)
    model = BatchedBKT(device="cpu", max_iter=10, **options).fit(data)
    full = model.predict(data)
    cut = data.seq < 20  # drop every learner's later rows (row 20 starts the third skill)
    prefix = Interactions(user=data.user[cut], seq=data.seq[cut], skill=data.skill[cut],
                          correct=data.correct[cut], problem=data.problem[cut], n_skills=data.n_skills)
    np.testing.assert_allclose(model.predict(prefix), full[cut], atol=1e-12)
    flipped = data.correct.copy()
    flipped[~cut] = 1 - flipped[~cut]  # other answers from row 20 on change nothing before them, nor row 20
    changed = Interactions(user=data.user, seq=data.seq, skill=data.skill, correct=flipped,
                           problem=data.problem, n_skills=data.n_skills)
    unchanged = data.seq <= 20
    np.testing.assert_allclose(model.predict(changed)[unchanged], full[unchanged], atol=1e-12)


def test_guess_and_slip_stay_below_one_half_even_on_label_swapped_data():
    n = 6
    # Simulated with guess 0.8 and slip 0.7: the states' meanings are swapped, the degenerate solution.
    data, _ = simulate(500, n, 12, prior=np.full(n, 0.3), learn=np.full(n, 0.2), guess=np.full(n, 0.8),
                       slip=np.full(n, 0.7), seed=11)
    for cap in (0.45, 0.3):
        p = BatchedBKT(device="cpu", max_guess=cap, max_slip=cap).fit(data).params()
        assert p["guess"].max() <= cap and p["slip"].max() <= cap
    # With guess free to pass 1/2, the separation bound still keeps the known state the one that answers better.
    p = BatchedBKT(device="cpu", max_guess=0.999, min_separation=0.1).fit(data).params()
    assert np.all(p["guess"] + p["slip"] <= 0.9 + 1e-9)
    for bad in (dict(max_guess=1.0), dict(max_slip=0.5), dict(min_separation=0.0)):
        with pytest.raises(ValueError):
            BatchedBKT(**bad)


def test_a_guess_above_one_half_is_recovered_when_allowed_and_capped_by_default():
    n = 4
    truth = dict(prior=np.full(n, 0.3), learn=np.full(n, 0.2), guess=np.full(n, 0.65), slip=np.full(n, 0.1))
    data, _ = simulate(2000, n, 12, **truth, seed=12)
    free = BatchedBKT(device="cpu", max_guess=0.999, tol=1e-7).fit(data)
    capped = BatchedBKT(device="cpu", tol=1e-7).fit(data)
    assert np.abs(free.params()["guess"] - 0.65).max() < 0.04
    assert np.abs(free.params()["prior"] - 0.3).max() < 0.12  # weakly identified when guess is high
    assert np.all(capped.params()["guess"] <= 0.499)
    assert capped.params()["prior"].min() > 0.45  # the cap makes up for the guesses by overstating mastery
    assert free.loglik > capped.loglik


def test_the_bounded_guess_and_slip_step_is_the_best_point_of_its_feasible_set():
    import torch

    from knowledge.tracing.bkt import _guess_and_slip

    rng = np.random.default_rng(13)
    cfg = dict(max_guess=0.9, max_slip=0.45, min_separation=0.1)
    unknown, known = rng.uniform(5, 50, 40), rng.uniform(5, 50, 40)
    guessed, slipped = unknown * rng.uniform(0.3, 0.99, 40), known * rng.uniform(0.05, 0.6, 40)
    targets = rng.uniform(0.05, 0.5, 40), rng.uniform(0.05, 0.4, 40)
    as_tensors = [torch.as_tensor(x) for x in (guessed, unknown, targets[0], slipped, known, targets[1])]
    guess, slip = (x.numpy() for x in _guess_and_slip(*as_tensors[:3], *as_tensors[3:], 2.0, cfg))
    a, b = guessed + 2 * targets[0], unknown - guessed + 2 * (1 - targets[0])
    c, d = slipped + 2 * targets[1], known - slipped + 2 * (1 - targets[1])

    assert np.all((guess <= 0.9) & (slip <= 0.45) & (guess + slip <= 0.9 + 1e-12))
    assert (guess + slip > 0.9 - 1e-9).sum() >= 5  # the joint bound binds for some
    best = a * np.log(guess) + b * np.log(1 - guess) + c * np.log(slip) + d * np.log(1 - slip)
    grid = np.linspace(1e-4, 0.9, 1801)
    g, s = np.meshgrid(grid, grid[grid <= 0.45], indexing="ij")
    feasible = g + s <= 0.9
    for i in range(40):
        values = a[i] * np.log(g) + b[i] * np.log(1 - g) + c[i] * np.log(s) + d[i] * np.log(1 - s)
        assert best[i] >= values[feasible].max() - 1e-9, (i, values[feasible].max() - best[i])


def test_item_guess_and_slip_are_recovered_and_fit_better():
    rng = np.random.default_rng(8)
    n_skills, n_items = 4, 6
    item_guess = rng.uniform(0.02, 0.42, size=(n_skills, n_items))
    data, _ = simulate(1500, n_skills, 12, prior=np.full(n_skills, 0.3), learn=np.full(n_skills, 0.15),
                       guess=np.full(n_skills, 0.2), slip=np.full(n_skills, 0.1), item_guess=item_guess,
                       n_items=n_items, seed=8)
    plain = BatchedBKT(device="cpu").fit(data)
    idem = BatchedBKT(device="cpu", item_params=True).fit(data)
    p = idem.params()
    true = item_guess[p["item_skill"], p["item_problem"] - p["item_skill"] * n_items]
    assert np.abs(p["item_guess"] - true).max() < 0.06
    assert np.corrcoef(p["item_guess"], true)[0, 1] > 0.95
    assert idem.loglik > plain.loglik + 0.004 * len(data)


def test_forgetting_is_recovered_when_switched_on_and_zero_when_off():
    n = 5
    truth = dict(prior=np.full(n, 0.4), learn=np.full(n, 0.2), guess=np.full(n, 0.2), slip=np.full(n, 0.1),
                 forget=np.full(n, 0.1))
    data, _ = simulate(2000, n, 15, **truth, seed=9)
    with_forget = BatchedBKT(device="cpu", forget=True, tol=1e-7).fit(data)
    without = BatchedBKT(device="cpu").fit(data)
    assert np.abs(with_forget.params()["forget"] - 0.1).max() < 0.04
    assert np.abs(with_forget.params()["learn"] - 0.2).max() < 0.05
    assert np.all(without.params()["forget"] == 0.0)
    assert with_forget.loglik > without.loglik


def test_individualised_prior_follows_the_learners_earlier_answers():
    n_skills, n_users = 8, 1500
    rng = np.random.default_rng(12)
    offset = np.where(rng.random(n_users) < 0.5, -0.25, 0.35)  # weak and strong learners
    data, _ = simulate(n_users, n_skills, 6, prior=np.full(n_skills, 0.4), learn=np.full(n_skills, 0.1),
                       guess=np.full(n_skills, 0.15), slip=np.full(n_skills, 0.1), user_offset=offset, seed=12)
    plain = BatchedBKT(device="cpu").fit(data)
    individual = BatchedBKT(device="cpu", learner_prior=True).fit(data)
    band = individual.params()["prior_band"]  # [skill, band]: band 0 = no history, then weakest..strongest
    assert np.all(band[1:, -1] > band[1:, 1] + 0.3)  # skill 0 always starts with no history
    assert individual.loglik > plain.loglik + 0.01 * len(data)


def test_state_dict_round_trips_through_json(truth, fitted):
    model, data = fitted
    for options in ({}, {"item_params": True, "learner_prior": True, "forget": True}):
        fitted_model = model if not options else BatchedBKT(device="cpu", max_iter=5, **options).fit(data)
        restored = BatchedBKT().load_state_dict(json.loads(json.dumps(fitted_model.state_dict())))
        assert restored.config == fitted_model.config
        np.testing.assert_array_equal(restored.predict(data), fitted_model.predict(data))
        for name, value in fitted_model.params().items():
            np.testing.assert_array_equal(restored.params()[name], value)
    with pytest.raises(ValueError):
        BatchedBKT().load_state_dict({"kind": "something else"})


def test_skills_and_items_the_fit_never_saw_get_the_mean_parameters(truth, fitted):
    model, _ = fitted
    new = Interactions(user=[0, 0], seq=[0, 1], skill=[25, 25], correct=[1, 0], problem=[999, 999], n_skills=26)
    p = model.params()
    mean = BKTParams(p["prior"].mean(), p["learn"].mean(), p["guess"].mean(), p["slip"].mean(), 0.0)
    expected = [predict_correct(mean.p_init, mean), predict_correct(mastery_after(mean.p_init, True, mean), mean)]
    np.testing.assert_allclose(model.predict(new), expected, atol=1e-12)


def test_skill_params_feed_the_hot_path(fitted):
    model, _ = fitted
    p = model.params()
    params = model.skill_params(3)
    assert isinstance(params, BKTParams)
    assert (params.p_init, params.p_learn, params.p_guess, params.p_slip) == (
        p["prior"][3], p["learn"][3], p["guess"][3], p["slip"][3])


def test_device_choice_and_empty_input(fitted):
    model, _ = fitted
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda")
    empty = Interactions(user=[], seq=[], skill=[], correct=[])
    assert model.predict(empty).shape == (0,)
    with pytest.raises(RuntimeError):
        BatchedBKT().predict(empty)


def test_long_runs_of_right_then_wrong_answers_keep_probabilities_in_range(fitted):
    model, _ = fitted
    # After ~25 right answers P(known) rounds to 1 in float64; the wrong answers after it must not push the
    # filter outside [0, 1] (the scalar update, which normalises every step, is the reference).
    answers = [1] * 80 + [0] * 40 + [1] * 5
    data = Interactions(user=np.zeros(len(answers)), seq=np.arange(len(answers)), skill=np.zeros(len(answers)),
                        correct=answers, n_skills=20)
    before, after = model.trace(data)
    assert np.all((before >= 0) & (before <= 1)) and np.all((after >= 0) & (after <= 1))
    expected_before, expected_after = scalar_filter(data, model)
    np.testing.assert_allclose(before, expected_before, atol=1e-9)
    np.testing.assert_allclose(after, expected_after, atol=1e-9)


def test_the_chunk_length_changes_nothing_but_speed(truth):
    # Sequences of 1 to 40 answers, so that chunks of 4 split most of them and chunks of 64 none.
    data, _ = simulate(300, 6, 40, **{k: v[:6] for k, v in truth.items()}, forget=np.full(6, 0.05), seed=13)
    keep = np.random.default_rng(13).random(len(data)) < np.repeat(np.linspace(0.1, 1.0, 300 * 6), 40)
    data = Interactions(user=data.user[keep], seq=data.seq[keep], skill=data.skill[keep],
                        correct=data.correct[keep], n_skills=6)
    fits = [BatchedBKT(device="cpu", forget=True, max_iter=8, chunk=chunk).fit(data) for chunk in (4, 64)]
    assert fits[0].loglik == pytest.approx(fits[1].loglik, rel=1e-10)
    for name, value in fits[0].params().items():
        np.testing.assert_allclose(value, fits[1].params()[name], rtol=1e-8)
    np.testing.assert_allclose(fits[0].predict(data), fits[1].predict(data), atol=1e-10)
