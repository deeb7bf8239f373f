"""Deep knowledge-tracing models on small synthetic logs: they learn, never look ahead, and are reproducible."""

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from knowledge.tracing.data import Interactions, load_csv, merge_question_attempts  # noqa: E402
from knowledge.tracing.deep import DKT, AttentionKT  # noqa: E402
from knowledge.tracing.metrics import auc  # noqa: E402

SMALL = {"window": 40, "stride": 20, "batch_size": 32, "epochs": 12, "patience": 3, "lr": 0.01}
SIZES = {DKT: {"hidden": 32}, AttentionKT: {"dim": 32, "heads": 2}}
MODELS = [DKT, AttentionKT]
DATA = Path(os.environ.get("TUTOR_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")) / "kt"


@pytest.fixture(autouse=True)
def _one_thread():
    # small tensors: one thread is as fast, and far faster when other work shares the cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def simulated_log(n_learners=240, length=40, n_skills=4, n_problems=24, seed=0) -> Interactions:
    """Learners whose correctness follows an IRT model with learning: logit P(correct) =
    ability(learner) + 0.4 * (earlier attempts on the skill) - difficulty(problem) - 1. Every fourth problem
    is tagged with two skills and so becomes two rows of one attempt."""
    rng = np.random.default_rng(seed)
    problem_skills = [[p % n_skills] + ([(p + 1) % n_skills] if p % 4 == 3 else []) for p in range(n_problems)]
    difficulty = rng.normal(0, 1, n_problems)
    columns = {"user": [], "seq": [], "skill": [], "correct": [], "problem": [], "attempt": []}
    attempt = 0
    for learner in range(n_learners):
        ability = rng.normal(0, 1)
        practice = np.zeros(n_skills)
        for t in range(length):
            p = int(rng.integers(n_problems))
            skills = problem_skills[p]
            logit = ability + 0.4 * practice[skills].mean() - difficulty[p] - 1.0
            correct = int(rng.random() < 1 / (1 + np.exp(-logit)))
            practice[skills] += 1
            for s in skills:
                for key, value in zip(columns, (learner, t, s, correct, p, attempt), strict=True):
                    columns[key].append(value)
            attempt += 1
    return Interactions(**columns, n_skills=n_skills, n_problems=n_problems)


def make(cls, log, seed=0, **extra):
    return cls(log.n_skills, log.n_problems, seed=seed, device="cpu", **SIZES[cls], **{**SMALL, **extra})


@pytest.fixture(scope="module")
def split():
    log = simulated_log()
    train = log.subset(np.arange(log.n_users) < 180)
    test = log.subset(np.arange(log.n_users) >= 180)
    return train, test


@pytest.mark.parametrize("cls", MODELS)
def test_learns_the_planted_pattern_better_than_skill_means(cls, split):
    train, test = split
    model = make(cls, train).fit(train)
    labels, probs = merge_question_attempts(test, model.predict(test))
    tried = np.bincount(train.skill, None, train.n_skills)
    skill_rate = np.bincount(train.skill, train.correct, train.n_skills) / tried
    _, baseline = merge_question_attempts(test, skill_rate[test.skill])
    assert auc(labels, probs) > auc(labels, baseline) + 0.05
    assert auc(labels, probs) > 0.68
    assert model.history and model.history[-1]["epoch"] <= SMALL["epochs"]


@pytest.mark.parametrize("cls", MODELS)
def test_predictions_never_depend_on_the_present_or_later_attempts(cls):
    # long enough for several sliding windows (window 40, stride 20); random weights suffice to show leakage
    log = simulated_log(n_learners=3, length=130)
    model = make(cls, log)
    before = model.predict(log)
    rows = np.flatnonzero(log.user == 1)
    cut = rows[len(rows) // 2]  # first row of some attempt of learner 1? move back to it
    cut = rows[np.searchsorted(log.attempt[rows], log.attempt[cut])]
    changed = Interactions(
        user=log.user, seq=log.seq, skill=log.skill.copy(), correct=log.correct.copy(), problem=log.problem.copy(),
        attempt=log.attempt, n_skills=log.n_skills, n_problems=log.n_problems)
    later = rows[rows >= cut]
    changed.correct[later] = 1 - changed.correct[later]  # the present attempt's response and all later ones
    changed.problem[later[later > cut + 3]] = 0
    after = model.predict(changed)
    upto = log.attempt <= log.attempt[cut]
    np.testing.assert_array_equal(before[upto], after[upto])
    assert not np.allclose(before[~upto & (log.user == 1)], after[~upto & (log.user == 1)])
    np.testing.assert_array_equal(before[log.user != 1], after[log.user != 1])  # other learners untouched


@pytest.mark.parametrize("cls", MODELS)
def test_rows_of_one_attempt_share_a_prediction_made_before_the_attempt(cls):
    log = simulated_log(n_learners=4, length=20)
    probs = make(cls, log).predict(log)
    assert probs.shape == (len(log),) and np.all((probs > 0) & (probs < 1))
    for attempt in np.unique(log.attempt):
        assert np.ptp(probs[log.attempt == attempt]) == 0


@pytest.mark.parametrize("cls", MODELS)
def test_a_fixed_seed_gives_identical_models(cls, split):
    train, test = split
    first = make(cls, train, seed=3, epochs=2).fit(train).predict(test)
    second = make(cls, train, seed=3, epochs=2).fit(train).predict(test)
    np.testing.assert_array_equal(first, second)
    other = make(cls, train, seed=4, epochs=2).fit(train).predict(test)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("cls", MODELS)
def test_early_stopping_keeps_the_best_weights(cls, split, tmp_path):
    # a few learners, a large step and many epochs: the model overfits, validation AUC falls, training stops
    train, test = split
    few = train.subset(np.arange(train.n_users) < 20)
    checkpoint = tmp_path / "best.pt"
    model = make(cls, few, lr=0.03, epochs=40, patience=2, dropout=0.0, soup=1).fit(few, valid=test,
                                                                                    checkpoint=str(checkpoint))
    scores = [r["valid_auc"] for r in model.history]
    best = int(np.argmax(scores))
    assert len(scores) == best + 1 + 2 < 40  # stopped two epochs after the best one
    assert scores[-1] < scores[best]
    labels, probs = merge_question_attempts(test, model.predict(test))
    assert auc(labels, probs) == pytest.approx(scores[best], abs=1e-12)  # the best epoch's weights, restored
    np.testing.assert_array_equal(cls.load(checkpoint, device="cpu").predict(test), model.predict(test))


@pytest.mark.parametrize("cls", MODELS)
def test_a_soup_of_epochs_is_kept_only_when_it_scores_higher_on_validation(cls, split, tmp_path):
    train, test = split
    checkpoint = tmp_path / "soup.pt"
    model = make(cls, train, soup=4, epochs=6, patience=6).fit(train, valid=test, checkpoint=str(checkpoint))
    best = max(r["valid_auc"] for r in model.history)
    assert 1 <= model.soup_size <= 4 and model.valid_auc >= best
    labels, probs = merge_question_attempts(test, model.predict(test))
    assert auc(labels, probs) == pytest.approx(model.valid_auc, abs=1e-12)  # the soup's weights, kept
    np.testing.assert_array_equal(cls.load(checkpoint, device="cpu").predict(test), model.predict(test))


@pytest.mark.parametrize("cls", MODELS)
def test_save_and_load_give_identical_predictions(cls, split, tmp_path):
    train, test = split
    model = make(cls, train, epochs=2)
    checkpoint = tmp_path / "best.pt"
    model.fit(train, valid=test, checkpoint=str(checkpoint))
    model.save(tmp_path / "model.pt")
    loaded = cls.load(tmp_path / "model.pt", device="cpu")
    np.testing.assert_array_equal(model.predict(test), loaded.predict(test))
    assert checkpoint.exists() and cls.load(checkpoint, device="cpu").hyper == model.hyper
    other = DKT if cls is AttentionKT else AttentionKT
    with pytest.raises(ValueError, match="holds a"):
        other.load(tmp_path / "model.pt")


def test_item_vectors_feed_the_attention_model_and_survive_a_round_trip(split, tmp_path):
    train, test = split
    vectors = np.random.default_rng(1).normal(size=(train.n_problems, 8))
    model = make(AttentionKT, train, item_vectors=vectors, epochs=2).fit(train)
    assert model.hyper["item_dim"] == 8
    model.save(tmp_path / "text.pt")
    loaded = AttentionKT.load(tmp_path / "text.pt", device="cpu")
    np.testing.assert_array_equal(model.predict(test), loaded.predict(test))
    np.testing.assert_allclose(loaded.net.item_vectors[: train.n_problems].numpy(), vectors, rtol=1e-6)
    with pytest.raises(ValueError, match="item_vectors"):
        AttentionKT(train.n_skills, train.n_problems, item_vectors=vectors[:5])


def test_history_features_count_each_learners_strictly_earlier_attempts():
    from knowledge.tracing.deep import HISTORY_COLUMNS, _history_features

    # learner 0: problems 5, 5, 7, 5, unknown (9 = n_problems); skills 0, 0, 1, [0, 1], 1; answers 0, 1, 1, 0, 1
    # learner 1: problem 5 on skill 0 three times (listed twice in its last attempt), answers 1, 1, 0
    skills = np.array([[0, 2], [0, 2], [1, 2], [0, 1], [1, 2], [0, 2], [0, 2], [0, 0]])  # 2 = n_skills pads
    problem = np.array([5, 5, 7, 5, 9, 5, 5, 5])
    correct = np.array([0, 1, 1, 0, 1, 1, 1, 0])
    starts = np.array([0, 5, 8])
    counts = np.expm1(_history_features(skills, problem, correct, starts, 2, 9))
    column = {name: counts[:, i] for i, name in enumerate(HISTORY_COLUMNS)}
    # attempt 3 practises skills 0 (2 earlier attempts, 1 right, last 2 attempts ago) and 1 (1, right, 1 ago):
    # the mean of the two
    np.testing.assert_allclose(column["skill_tried"], [0, 1, 0, 1.5, 2, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(column["skill_right"], [0, 0, 0, 1, 1, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(column["skill_wrong"], [0, 1, 0, 0.5, 1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(column["skill_gap"], [0, 1, 0, 1.5, 1, 0, 1, 1], atol=1e-6)
    np.testing.assert_allclose(column["problem_tried"], [0, 1, 0, 2, 0, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(column["problem_right"], [0, 0, 0, 1, 0, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(column["problem_wrong"], [0, 1, 0, 1, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(column["learner_tried"], [0, 1, 2, 3, 4, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(column["learner_right"], [0, 0, 1, 2, 2, 0, 1, 2], atol=1e-6)
    np.testing.assert_allclose(column["learner_wrong"], [0, 1, 1, 1, 2, 0, 0, 0], atol=1e-6)


def test_the_attention_model_sees_counts_from_before_its_window():
    # window 40 by 20: attempt 100 of learner 0 is predicted from attempts 80..99, plus counts over all 100
    log = simulated_log(n_learners=2, length=120)
    model = make(AttentionKT, log)
    first = np.flatnonzero(log.attempt == log.attempt[0])
    changed = Interactions(user=log.user, seq=log.seq, skill=log.skill, correct=log.correct.copy(),
                           problem=log.problem, attempt=log.attempt, n_skills=log.n_skills,
                           n_problems=log.n_problems)
    changed.correct[first] = 1 - changed.correct[first]
    later = (log.user == 0) & (log.seq >= 100)
    assert not np.allclose(model.predict(log)[later], model.predict(changed)[later])


def test_unknown_hyperparameters_and_skills_are_refused(split):
    train, _ = split
    with pytest.raises(TypeError, match="no hyperparameter"):
        DKT(train.n_skills, train.n_problems, hiden=64)
    with pytest.raises(ValueError, match="skill ids"):
        DKT(train.n_skills - 1, train.n_problems).predict(train)


@pytest.mark.skipif(not (DATA / "assist2009.csv.gz").exists(),
                    reason=f"real data not found: {DATA / 'assist2009.csv.gz'} (set TUTOR_SHARED_DATA)")
def test_both_models_beat_skill_means_on_a_slice_of_assist2009():
    log, _ = load_csv(DATA / "assist2009.csv.gz")
    log = log.subset(np.arange(log.n_users) < 400)
    train, test = log.subset(np.arange(log.n_users) < 320), log.subset(np.arange(log.n_users) >= 320)
    tried = np.bincount(train.skill, None, train.n_skills)
    skill_rate = np.bincount(train.skill, train.correct, train.n_skills) / np.maximum(tried, 1)
    labels, baseline = merge_question_attempts(test, skill_rate[test.skill])
    for cls in MODELS:
        model = make(cls, log, window=50, stride=25, batch_size=16, epochs=3, lr=0.005).fit(train)
        labels, probs = merge_question_attempts(test, model.predict(test))
        # measured: skill means 0.63, DKT 0.75, AttentionKT 0.76
        assert auc(labels, probs) > max(0.70, auc(labels, baseline) + 0.05), cls.__name__
