"""Scores for P(correct) predictions against 0/1 labels (numpy only)."""

import numpy as np


def _check(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.shape != probs.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and probabilities {probs.shape} must be 1-D of one length")
    return labels, probs


def auc(labels, probs) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic from ranks, tied scores sharing their mean
    rank (so a tie counts one half). NaN when only one class is present."""
    labels, probs = _check(labels, probs)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(probs, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # 1-based rank of the last member of each tie group
    mean_rank = upper - (counts - 1) / 2.0
    rank_sum = mean_rank[inverse][labels == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def rmse(labels, probs) -> float:
    labels, probs = _check(labels, probs)
    return float(np.sqrt(np.mean((labels - probs) ** 2)))


def logloss(labels, probs, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood, probabilities clipped to [eps, 1 - eps] so one confident miss is finite."""
    labels, probs = _check(labels, probs)
    probs = np.clip(probs, eps, 1.0 - eps)
    return float(-np.mean(labels * np.log(probs) + (1.0 - labels) * np.log1p(-probs)))


def accuracy(labels, probs, threshold: float = 0.5) -> float:
    labels, probs = _check(labels, probs)
    return float(np.mean((probs >= threshold) == (labels == 1)))


def all_metrics(labels, probs) -> dict:
    return {"auc": auc(labels, probs), "rmse": rmse(labels, probs), "logloss": logloss(labels, probs),
            "accuracy": accuracy(labels, probs)}
