import pytest

from knowledge.tracing.bkt import BKTParams, mastery_after, posterior_known, predict_correct

PARAMS = BKTParams(p_init=0.3, p_learn=0.2, p_guess=0.2, p_slip=0.1, p_forget=0.05)


def test_posterior_after_a_correct_answer_matches_bayes_rule():
    # 0.3 * 0.9 / (0.3 * 0.9 + 0.7 * 0.2) = 0.27 / 0.41
    assert posterior_known(0.3, True, PARAMS) == pytest.approx(0.27 / 0.41)


def test_posterior_after_an_error_matches_bayes_rule():
    # 0.3 * 0.1 / (0.3 * 0.1 + 0.7 * 0.8) = 0.03 / 0.59
    assert posterior_known(0.3, False, PARAMS) == pytest.approx(0.03 / 0.59)


def test_learning_and_forgetting_follow_the_transition():
    post = 0.27 / 0.41
    assert mastery_after(0.3, True, PARAMS) == pytest.approx(post * 0.95 + (1 - post) * 0.2)


def test_prediction_mixes_slip_and_guess():
    assert predict_correct(0.3, PARAMS) == pytest.approx(0.3 * 0.9 + 0.7 * 0.2)


def test_repeated_correct_answers_converge_towards_mastery_and_errors_pull_it_down():
    no_forgetting = BKTParams(0.3, 0.2, 0.2, 0.1, 0.0)
    p = 0.3
    for _ in range(6):
        p = mastery_after(p, True, no_forgetting)
    assert p > 0.95
    assert mastery_after(p, False, no_forgetting) < p
