"""Hierarchical knowledge tracing (knowledge/tracing/hierarchical.py): recovery of planted learner traits and of a
planted prerequisite effect on data simulated from the model, online filtering for new learners, mastery with its
interval, the words for teachers, the stored state, and the DBE-KT22-style skill graph loader."""

import json

import numpy as np
import pytest

from knowledge.tracing.data import Interactions, read_skill_graph
from knowledge.tracing.hierarchical import (
    HierarchicalKT,
    _Features,
    describe_learner,
    describe_traits,
    prerequisite_weights,
)
from knowledge.tracing.metrics import auc

TRUE_BETA = 2.0
TRAIT_SD = (0.5, 1.0, 0.6)  # ability, learn, forget
N_SKILLS, ANSWERS, REVIEWS = 16, (2, 7), 1


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def simulate(n_learners, n_skills=N_SKILLS, beta=TRUE_BETA, seed=0, n_questions=3, log_phi=-1.5, user_offset=0,
             answers=ANSWERS, reviews=REVIEWS):
    """A log drawn from the model itself. Skills form a chain (k - 1 is the prerequisite of k); each learner works
    through them in order, 2 to 6 answers each, then reviews every skill once in random order. Latent states are
    drawn (known / unknown), learning depends on the learner's standing on the prerequisite (as the model defines
    it: smoothed success rate so far, mapped to [-1, 1]), forgetting on the gap since the last answer."""
    rng = np.random.default_rng(seed)
    params = np.random.default_rng(1234)  # the same skills and questions for every call
    init, learn = params.normal(-1.5, 0.5, n_skills), params.normal(-1.5, 0.4, n_skills)
    base, gap = params.normal(-1.0, 0.3, n_skills), params.normal(3.0, 0.3, n_skills)
    difficulty = params.normal(0.0, 0.5, (n_skills, n_questions))
    traits = rng.normal(0.0, 1.0, (n_learners, 3)) * np.array(TRAIT_SD)
    user, skill, problem, correct, seq = [], [], [], [], []
    for u in range(n_learners):
        ability, learn_u, forget_u = traits[u]
        phi = np.exp(log_phi + forget_u)
        plan = [k for k in range(n_skills) for _ in range(rng.integers(*answers))]
        review = list(np.repeat(np.arange(n_skills), reviews))
        rng.shuffle(review)
        plan += review
        known = rng.random(n_skills) < _sigmoid(init)
        seen, right, last = np.zeros(n_skills), np.zeros(n_skills), np.full(n_skills, -1)
        for t, k in enumerate(plan):
            if last[k] >= 0 and known[k] and rng.random() > (1.0 + t - last[k] - 1) ** -phi:
                known[k] = False
            q = rng.integers(n_questions)
            logit = base[k] + ability - difficulty[k, q] + (np.log1p(np.exp(gap[k])) if known[k] else 0.0)
            c = int(rng.random() < _sigmoid(logit))
            x = 2.0 * (right[k - 1] + 1.0) / (seen[k - 1] + 2.0) - 1.0 if k > 0 else 0.0
            if not known[k] and rng.random() < _sigmoid(learn[k] + learn_u + beta * x):
                known[k] = True
            seen[k], right[k], last[k] = seen[k] + 1, right[k] + c, t
            user.append(u + user_offset), skill.append(k), problem.append(k * n_questions + q), correct.append(c)
            seq.append(t)
    data = Interactions(user=user, seq=seq, skill=skill, correct=correct, problem=problem, n_skills=n_skills,
                        n_problems=n_skills * n_questions)
    edges = np.array([(k - 1, k) for k in range(1, n_skills)])
    return data, traits, edges


def fit(data, edges, **kw):
    options = dict(epochs=100, batch_learners=75, min_steps=150, particles=256, seed=0)
    options.update(kw)
    return HierarchicalKT(prerequisites=edges, device="cpu", **options).fit(data)


@pytest.fixture(scope="module")
def fitted():
    data, traits, edges = simulate(150, seed=0)
    return data, traits, edges, fit(data, edges)


def test_recovers_learner_traits(fitted):
    data, truth, _, model = fitted
    traits = model.traits()
    assert (traits["users"] == np.arange(150)).all()
    learn = traits["learn"]["mean"]
    assert np.corrcoef(truth[:, 1], learn)[0, 1] > 0.5
    assert np.corrcoef(truth[:, 0], traits["ability"]["mean"])[0, 1] > 0.5
    assert np.corrcoef(truth[:, 2], traits["forget"]["mean"])[0, 1] > 0.25
    # Fast and slow learners (the top and bottom fifths of the planted learning offsets) are told apart.
    fast, slow = truth[:, 1] > np.quantile(truth[:, 1], 0.8), truth[:, 1] < np.quantile(truth[:, 1], 0.2)
    assert (learn[fast][:, None] > learn[slow][None, :]).mean() > 0.9  # nearly every fast one above every slow one
    assert learn[fast].mean() > 0 > learn[slow].mean()
    # Intervals are intervals; the population's learning-rate spread is found, if shrunk (mean-field SVI
    # underestimates spreads, and single learners' learning rates are weakly determined by ~70 answers).
    assert (traits["learn"]["lo"] < learn).all() and (learn < traits["learn"]["hi"]).all()
    assert 0.3 < model.population()["sd_learn"] < 1.5


def test_recovers_prerequisite_effect(fitted):
    model = fitted[3]
    effect = model.prerequisite_effect(interval=0.95)
    assert effect["lo"] > 0.0, effect  # the sign
    assert effect["lo"] <= TRUE_BETA <= effect["hi"], effect  # the interval covers the truth
    assert abs(effect["mean"] - TRUE_BETA) < 0.6, effect  # and the size, roughly


def test_no_prerequisite_effect_is_found_where_none_was_planted():
    data, _, edges = simulate(100, beta=0.0, seed=1)
    effect = fit(data, edges, epochs=60).prerequisite_effect(interval=0.95)
    assert effect["lo"] <= 0.0 <= effect["hi"], effect
    assert abs(effect["mean"]) < 0.6, effect


def test_skill_params_have_intervals(fitted):
    params = fitted[3].skill_params()
    for name in ("init", "learn", "guess", "slip"):
        p = params[name]
        assert p["mean"].shape == (N_SKILLS,)
        assert ((0 < p["lo"]) & (p["lo"] <= p["mean"]) & (p["mean"] <= p["hi"]) & (p["hi"] < 1)).all()
    assert (params["guess"]["mean"] < 0.5).all() and (params["slip"]["mean"] < 0.3).all()


def test_new_learners_filtered_online(fitted):
    _, _, edges, model = fitted
    new, truth, _ = simulate(60, seed=7, user_offset=1000)
    p = model.predict(new)
    assert p.shape == (len(new),) and ((0 < p) & (p < 1)).all()
    # Better than the skill's success rate in the training data, which knows no learner.
    train = fitted[0]
    rate = np.bincount(train.skill, train.correct, N_SKILLS) / np.bincount(train.skill, None, N_SKILLS)
    assert auc(new.correct, p) > auc(new.correct, rate[new.skill]) + 0.05
    # The traits filtered from the new learners' own answers follow their planted traits.
    online = model.traits(new)
    assert (online["users"] == np.arange(1000, 1060)).all()
    assert np.corrcoef(truth[:, 1], online["learn"]["mean"])[0, 1] > 0.4
    assert np.corrcoef(truth[:, 0], online["ability"]["mean"])[0, 1] > 0.4
    # For learners the fit saw, the online posterior from their answers agrees with the variational one.
    train = fitted[0]
    some = np.arange(0, 150, 5)
    online, fitted_traits = model.traits(train.subset(some)), model.traits()
    assert (online["effective_particles"] > 20).all()
    for name in ("ability", "learn"):
        assert np.corrcoef(online[name]["mean"], fitted_traits[name]["mean"][some])[0, 1] > 0.8
    # With no answers yet, a learner's traits are the population's.
    first = np.r_[True, new.user[1:] != new.user[:-1]]
    for problem in np.unique(new.problem[first]):
        same = p[first & (new.problem == problem)]
        assert np.allclose(same, same[0], atol=1e-6)


def test_predictions_use_only_earlier_rows(fitted):
    model = fitted[3]
    new, _, _ = simulate(5, seed=3)
    p = model.predict(new)
    rows = np.flatnonzero(new.user == 2)
    cut = rows[len(rows) // 2]
    changed = Interactions(user=new.user, seq=new.seq, skill=new.skill, problem=new.problem,
                           correct=np.where((np.arange(len(new)) >= cut) & (new.user == 2), 1 - new.correct,
                                            new.correct),
                           n_skills=new.n_skills, n_problems=new.n_problems)
    q = model.predict(changed)
    assert np.allclose(p[:cut + 1], q[:cut + 1], atol=1e-6)  # up to and including the first changed row
    assert not np.allclose(p[cut + 1 : rows[-1] + 1], q[cut + 1 : rows[-1] + 1])
    assert np.allclose(p[rows[-1] + 1 :], q[rows[-1] + 1 :], atol=1e-6)  # other learners untouched
    # A learner's rows predict the same alone as among other learners.
    alone = model.predict(new.subset(np.array([2])))
    assert np.allclose(alone, p[rows], atol=1e-5)


def test_mastery_with_interval(fitted):
    model = fitted[3]
    new, _, _ = simulate(20, seed=5)
    m = model.mastery(new)
    assert m["mean"].shape == (20, N_SKILLS)
    assert ((m["lo"] <= m["mean"] + 1e-6) & (m["mean"] <= m["hi"] + 1e-6)).all()
    assert ((0 <= m["lo"]) & (m["hi"] <= 1)).all()
    # Learners who answered the last skill right more often are more likely to know it.
    last = new.skill == N_SKILLS - 1
    rate = np.bincount(new.user[last], new.correct[last], 20) / np.bincount(new.user[last], None, 20)
    better = rate > np.median(rate)
    assert m["mean"][better, -1].mean() > m["mean"][~better, -1].mean() + 0.1
    assert np.corrcoef(rate, m["mean"][:, -1])[0, 1] > 0.5


def test_words_for_teachers(fitted):
    assert describe_traits((0.8, 0.3), (0.5, 0.3)) == "learns fast, forgets fast"
    assert describe_traits((-0.8, 0.3), (0.0, 0.5), (1.0, 0.4)) == (
        "learns slowly, forgets at a typical rate, answers above the typical level")
    assert describe_traits((0.15, 0.3), (-0.15, 0.3)) == "learns at a typical pace, forgets at a typical rate"
    assert describe_traits((0.15, 0.3), (-0.15, 0.3), confidence=0.6) == "learns fast, forgets slowly"
    data, truth, _, model = fitted
    traits = model.traits()
    words = [describe_learner(traits, i) for i in range(150)]
    fastest, slowest = np.argsort(truth[:, 1])[-10:], np.argsort(truth[:, 1])[:10]
    assert sum("learns fast" in words[i] for i in fastest) >= 3
    assert sum("learns slowly" in words[i] for i in slowest) >= 3
    assert not any("learns slowly" in words[i] for i in fastest)
    assert not any("learns fast" in words[i] for i in slowest)
    said_fast = np.array(["learns fast" in w for w in words])
    said_slow = np.array(["learns slowly" in w for w in words])
    assert (truth[said_fast, 1] > 0).mean() >= 0.8 and (truth[said_slow, 1] < 0).mean() >= 0.8


def test_state_dict_roundtrip_and_determinism(fitted):
    data, _, edges, model = fitted
    new, _, _ = simulate(10, seed=9)
    state = json.loads(json.dumps(model.state_dict()))
    loaded = HierarchicalKT(device="cpu").load_state_dict(state)
    assert np.allclose(loaded.predict(new), model.predict(new), atol=1e-6)
    assert np.allclose(loaded.traits()["learn"]["mean"], model.traits()["learn"]["mean"])
    small = data.subset(np.arange(30))
    a = fit(small, edges, epochs=5, min_steps=20).predict(new)
    b = fit(small, edges, epochs=5, min_steps=20).predict(new)
    assert np.array_equal(a, b)


def test_features_use_earlier_attempts_only():
    # learner 0: skill 0 twice (right), skill 1 (wrong), skill 2, skill 0 again; learner 1: one problem tagged with
    # skills 0 and 1 (one attempt, two rows), then skill 1 alone.
    data = Interactions(user=[0, 0, 0, 0, 0, 1, 1, 1], seq=[0, 1, 2, 3, 4, 0, 0, 1], skill=[0, 0, 1, 2, 0, 0, 1, 1],
                        correct=[1, 1, 0, 1, 1, 1, 1, 0], problem=[0, 1, 2, 3, 4, 5, 5, 6])
    feats = _Features(data, prerequisite_weights([(0, 1), (1, 2)], 3), 3)
    # x = 2 * (right + 1) / (answers + 2) - 1 on the prerequisite, before the row's attempt
    assert np.allclose(feats.x, [0, 0, 2 * 3 / 4 - 1, 2 * 1 / 3 - 1, 0, 0, 0, 2 * 2 / 3 - 1])
    # question attempts between two answers on one skill
    assert np.allclose(np.expm1(feats.log_gap), [0, 0, 0, 0, 2, 0, 0, 0])


def test_prerequisite_weights():
    w = prerequisite_weights([(0, 2), (1, 2), (2, 2), (5, 1)], 3)
    assert np.allclose(w, [[0, 0, 0], [0, 0, 0], [0.5, 0.5, 0]])


def test_read_skill_graph(tmp_path):
    (tmp_path / "log.csv").write_text("user,kc,correct\n1,Join,1\n1,select ,0\n2,Set,1\n")
    (tmp_path / "kcs.csv").write_text('"id","name","description"\n7,Set,x\n8,SELECT,y\n9,Join,z\n10,Other,w\n')
    (tmp_path / "edges.csv").write_text('"id","from_knowledgecomponent_id","to_knowledgecomponent_id"\n'
                                        "1,7,8\n2,8,9\n3,10,9\n")
    edges = read_skill_graph(tmp_path / "log.csv", "kc", tmp_path / "edges.csv", tmp_path / "kcs.csv")
    # skills numbered as load_csv numbers names (string order): Join 0, Set 1, "select " 2
    assert edges.tolist() == [[1, 2], [2, 0]]
