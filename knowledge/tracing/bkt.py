"""Bayesian Knowledge Tracing for one learner and one skill (Corbett & Anderson, 1995).

The two-state hidden Markov model: a skill is known or not; a known skill is answered correctly
unless the learner slips, an unknown one only by a guess; after each opportunity an unknown skill
becomes known with probability `p_learn`, and a known one may be forgotten with `p_forget`
(the forgetting variant of pyBKT). These scalar functions are the online update of the practice
loop's hot path: a handful of float operations per skill.
"""

from dataclasses import dataclass


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
