"""Interaction logs (knowledge/tracing/data.py) and the scores (knowledge/tracing/metrics.py)."""

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest

from knowledge.tracing.data import (
    Interactions,
    learner_folds,
    load_csv,
    merge_question_attempts,
    question_attempts,
)
from knowledge.tracing.metrics import accuracy, all_metrics, auc, logloss, rmse

SHARED_DATA = Path(os.environ.get("TUTOR_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
KT = SHARED_DATA / "kt"
needs_real_data = pytest.mark.skipif(not (KT / "assist2009.csv.gz").exists(),
                                     reason=f"real KT logs not found at {KT} (set TUTOR_SHARED_DATA)")


# ---- metrics --------------------------------------------------------------------------------------------------

def test_auc_counts_ordered_pairs_and_half_of_the_ties():
    # Positives 0.8, 0.4, 0.4; negatives 0.4, 0.1. Pairs (pos, neg): 0.8>0.4, 0.8>0.1, 0.4=0.4 (1/2),
    # 0.4>0.1, 0.4=0.4 (1/2), 0.4>0.1 -> (1 + 1 + 0.5 + 1 + 0.5 + 1) / 6.
    labels = [1, 1, 1, 0, 0]
    probs = [0.8, 0.4, 0.4, 0.4, 0.1]
    assert auc(labels, probs) == pytest.approx(5 / 6)
    assert auc([0, 1], [0.2, 0.9]) == 1.0
    assert auc([1, 0], [0.2, 0.9]) == 0.0
    assert auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_auc_does_not_depend_on_row_order():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    probs = np.round(rng.random(500), 1)  # many ties
    order = rng.permutation(500)
    assert auc(labels, probs) == pytest.approx(auc(labels[order], probs[order]))
    # The brute-force pair count agrees.
    pos, neg = probs[labels == 1], probs[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert auc(labels, probs) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_rmse_logloss_and_accuracy_by_hand():
    labels, probs = [1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6]
    assert rmse(labels, probs) == pytest.approx(math.sqrt((0.01 + 0.04 + 0.36 + 0.36) / 4))
    assert logloss(labels, probs) == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4)) / 4)
    assert accuracy(labels, probs) == 0.5
    assert logloss([1], [0.0]) == pytest.approx(-math.log(1e-7))  # clipped, so finite
    assert set(all_metrics(labels, probs)) == {"auc", "rmse", "logloss", "accuracy"}
    with pytest.raises(ValueError):
        rmse([1, 0], [0.5])


# ---- the log --------------------------------------------------------------------------------------------------

def test_rows_are_sorted_by_learner_then_order_and_counted():
    data = Interactions(user=[1, 0, 1, 0], seq=[1, 5, 0, 2], skill=[0, 2, 1, 0], correct=[1, 0, 0, 1])
    assert data.user.tolist() == [0, 0, 1, 1]
    assert data.seq.tolist() == [2, 5, 0, 1]
    assert data.skill.tolist() == [0, 2, 1, 0]
    assert data.correct.tolist() == [1, 0, 0, 1]
    assert (data.n_users, data.n_skills, data.n_problems, len(data)) == (2, 3, 0, 4)
    with pytest.raises(ValueError):
        Interactions(user=[0], seq=[0], skill=[0], correct=[2])


def test_subset_keeps_whole_learners_and_the_id_spaces():
    data = Interactions(user=[0, 0, 1, 2, 2], seq=[0, 1, 0, 0, 1], skill=[0, 1, 0, 3, 3], correct=[1, 1, 0, 0, 1])
    by_mask = data.subset(np.array([True, False, True]))
    by_ids = data.subset([0, 2])
    for part in (by_mask, by_ids):
        assert part.user.tolist() == [0, 0, 2, 2]
        assert (part.n_users, part.n_skills) == (3, 4)
    with pytest.raises(ValueError):
        data.subset(np.array([True, False]))


def test_question_attempts_group_expanded_multi_skill_rows():
    # Learner 0: problem 7 tagged with skills 1 and 2 (two rows, one attempt), then problem 7 again with the
    # same skills (a new attempt: skill 1 repeats), then problem 8. Learner 1 starts a new attempt.
    user = np.array([0, 0, 0, 0, 0, 1])
    problem = np.array([7, 7, 7, 7, 8, 8])
    skill = np.array([1, 2, 1, 2, 1, 1])
    assert question_attempts(user, skill, problem).tolist() == [0, 0, 1, 1, 2, 3]
    assert question_attempts(user, skill, None).tolist() == [0, 1, 2, 3, 4, 5]


def test_merge_question_attempts_averages_predictions_of_one_attempt():
    data = Interactions(user=[0, 0, 0, 1], seq=[0, 1, 2, 0], skill=[1, 2, 1, 1], correct=[1, 1, 0, 1],
                        problem=[7, 7, 8, 7])
    labels, probs = merge_question_attempts(data, [0.2, 0.6, 0.3, 0.9])
    assert labels.tolist() == [1, 0, 1]
    np.testing.assert_allclose(probs, [0.4, 0.3, 0.9])
    with pytest.raises(ValueError):
        merge_question_attempts(data, [0.5])


def test_learner_folds_are_deterministic_balanced_and_seeded():
    users = np.arange(10_000)
    folds = learner_folds(users, 5, seed=0)
    assert folds.tolist() == learner_folds(users, 5, seed=0).tolist()
    assert set(folds.tolist()) == {0, 1, 2, 3, 4}
    assert np.bincount(folds).min() > 1800  # about 2,000 each
    assert (learner_folds(users, 5, seed=1) != folds).mean() > 0.7
    # A learner's fold depends on that learner only, not on who else is in the data.
    np.testing.assert_array_equal(learner_folds(users[::7], 5, seed=0), folds[::7])
    # Fixed values: the same folds on every machine, Python version and run (no salted hash()).
    assert learner_folds(np.arange(10), 5, seed=0).tolist() == [0, 3, 1, 0, 3, 4, 1, 1, 1, 1]
    assert learner_folds(np.array(["a", "b", "c", "d"]), 3, seed=0).tolist() == [1, 2, 1, 1]


def test_learner_folds_split_learners_not_rows():
    rng = np.random.default_rng(3)
    data = Interactions(user=rng.integers(0, 300, 5000), seq=np.arange(5000), skill=rng.integers(0, 4, 5000),
                        correct=rng.integers(0, 2, 5000))
    fold_of_user = learner_folds(np.arange(data.n_users), 4, seed=0)
    seen = set()
    for k in range(4):
        test = data.subset(fold_of_user == k)
        train = data.subset(fold_of_user != k)
        assert not set(test.user.tolist()) & set(train.user.tolist())
        assert len(test) + len(train) == len(data)
        seen |= set(test.user.tolist())
    assert seen == set(data.user.tolist())


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz"])
def test_load_csv_reindexes_ids_and_returns_the_fold_column(tmp_path, name):
    path = _write(tmp_path / name, "user_id,seq_idx,problem_id,skill_id,correct,fold\n"
                                   "u9,1,50,s2,1,3\n"
                                   "u9,0,51,s1,0,3\n"
                                   "a1,0,50,s2,1,1\n")
    data, fold = load_csv(path, skill_col="skill_id", fold_col="fold")
    # Learners in string order (a1 -> 0, u9 -> 1), rows by (learner, order), folds following the rows.
    assert data.user.tolist() == [0, 1, 1]
    assert data.seq.tolist() == [0, 0, 1]
    assert data.skill.tolist() == [1, 0, 1]
    assert data.problem.tolist() == [0, 1, 0]
    assert data.correct.tolist() == [1, 0, 1]
    assert fold.tolist() == [1, 3, 3]
    with pytest.raises(ValueError, match="no column"):
        load_csv(path, skill_col="skill_idx")


@pytest.mark.parametrize("header", ["", "kc_a,kc_b,kc_c\n"])
def test_load_csv_expands_problems_through_a_qmatrix(tmp_path, header):
    qmatrix = _write(tmp_path / "q.csv", header + "1,0,0\n0,1,1\n0,0,1\n")  # problem ids 1..3
    path = _write(tmp_path / "log.csv", "seq_id,seq_idx,question_id,correct\n"
                                        "s1,0,2,1\n"
                                        "s1,1,3,0\n"
                                        "s1,2,2,0\n")
    data, fold = load_csv(path, user_col="seq_id", skill_col=None, problem_col="question_id", qmatrix=qmatrix)
    assert fold is None
    assert data.skill.tolist() == [1, 2, 2, 1, 2]  # problem 2 has skills 1 and 2, problem 3 skill 2
    assert data.correct.tolist() == [1, 1, 0, 0, 0]
    assert data.attempt.tolist() == [0, 0, 1, 2, 2]
    assert data.n_skills == 3


# ---- the real logs (skipped where ../shared/data is absent) ------------------------------------------------

@needs_real_data
def test_assist2009_loads_with_its_question_attempts_and_learner_folds():
    data, fold = load_csv(KT / "assist2009.csv.gz", fold_col="akt_test_fold")
    assert (len(data), data.n_users, data.n_skills, data.n_problems) == (325_589, 4_150, 110, 16_891)
    assert len(np.unique(data.attempt)) == 274_561  # the README's 51,033 extra rows, give or take repeats
    user_fold = np.zeros(data.n_users, dtype=np.int64)
    user_fold[data.user] = fold
    assert np.all(user_fold[data.user] == fold)  # one fold per learner
    assert set(fold.tolist()) == {1, 2, 3, 4, 5}
    labels, _ = merge_question_attempts(data, np.full(len(data), 0.5))
    assert len(labels) == 274_561


@needs_real_data
def test_statics2011_maps_steps_to_skills_through_its_qmatrix():
    data, _ = load_csv(KT / "statics2011.csv.gz", user_col="seq_id", skill_col=None, problem_col="question_id",
                       qmatrix=KT / "statics2011_qmatrix.csv")
    assert (len(data), data.n_users, data.n_problems, data.n_skills) == (189_297, 333, 1_223, 98)
