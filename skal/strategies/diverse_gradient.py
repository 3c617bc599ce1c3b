"""Gradient discrepancy with within-batch diversity (beyond paper 001).

Paper 001 names grad's main limitation in its conclusion: it scores points one by
one, so a batch can be full of near-duplicate gradient signals, and it suggests a
diversity check on the angle between last-layer gradient embeddings. Three designs,
all on the factored gradients ``g = a (x) h~`` of :mod:`skal.gradients`:

- ``grad_kmeans``: D^2 sampling (as BADGE) weighted by the discrepancy score;
- ``grad_cos``: greedy score minus a penalty on the largest cosine similarity to
  the gradients already picked (the paper's suggestion);
- ``grad_seq_div``: grad_seq whose reference absorbs each pick with extra weight.

Which one to recommend is decided with ``skal bench`` and the penalty matrix; see
``docs/results/`` for the evidence.
"""

import numpy as np
from sklearn.utils import check_random_state

from .. import gradients
from ._registry import register
from .gradient import GradDiscrepancy, SequentialGradDiscrepancy, _row


def _discrepancy_and_factors(strategy, X_pool):
    factors, _ = gradients.last_layer_factors(strategy.estimator_, X_pool)
    sq_distances = factors.sq_distances_to(strategy.reference_gradient_)
    return np.sqrt(sq_distances).astype(np.float64), factors


@register("grad_kmeans")
class GradKMeans(GradDiscrepancy):
    """Discrepancy-weighted k-means++ seeding on the gradient embeddings.

    The first pick is grad's top point. Each next pick is drawn with probability
    proportional to ``s(x)^score_power * min_c ||g_x - g_c||^2`` over the picks
    ``c`` so far: BADGE's D^2 sampling (distances between the discrepancy vectors
    ``g_x - mean_L g`` equal those between the gradients) tilted towards high
    discrepancy. Cost O(n N (C + D)); memory O(N (C + D)).

    Parameters
    ----------
    score_power : float, default=2.0
        How strongly the discrepancy score tilts the D^2 draws (0 gives BADGE's
        draws after grad's first pick).
    reference_batch_size : int, default=None
        See :class:`GradDiscrepancy`.
    random_state : int, RandomState instance or None, default=None
        Source of the draws (and of the reference mini-batch).
    """

    last_layer = True

    def __init__(self, score_power=2.0, reference_batch_size=None, random_state=None):
        self.score_power = score_power
        self.reference_batch_size = reference_batch_size
        self.random_state = random_state

    def _fit(self, X, y):
        super()._fit(X, y)
        self.random_state_ = check_random_state(self.random_state)

    def _select(self, X_pool, n):
        scores, factors = _discrepancy_and_factors(self, X_pool)
        tilt = (scores / max(scores.max(), 1e-300)) ** self.score_power
        sq_norms = factors.sq_norms().astype(np.float64)
        picks = [int(np.argmax(scores))]
        available = np.ones(len(scores), dtype=bool)
        available[picks[0]] = False
        nearest = factors.sq_distances_to_sample(picks[0], sq_norms)
        while len(picks) < n:
            weights = np.where(available, nearest * tilt, 0.0)
            total = weights.sum()
            if total > 0:
                pick = int(self.random_state_.choice(len(weights), p=weights / total))
            else:
                pick = int(self.random_state_.choice(np.flatnonzero(available)))
            picks.append(pick)
            available[pick] = False
            nearest = np.minimum(
                nearest, factors.sq_distances_to_sample(pick, sq_norms)
            )
        return np.asarray(picks)


@register("grad_cos")
class GradCosine(GradDiscrepancy):
    """Greedy discrepancy with a penalty on the angle to earlier picks.

    Picks one point at a time, maximizing
    ``s(x) / max s - diversity * max_{p picked} cos(g_x, g_p)``, where the cosine
    of two factored gradients is ``cos(a_x, a_p) cos(h~_x, h~_p)``. With
    ``diversity=0`` it is grad. Cost O(n N (C + D)); memory O(N (C + D)).

    Parameters
    ----------
    diversity : float, default=0.5
        Weight of the cosine penalty (the scores are scaled to [0, 1]).
    reference_batch_size : int, default=None
        See :class:`GradDiscrepancy`.
    random_state : int, RandomState instance or None, default=None
        Draws the reference mini-batch.
    """

    last_layer = True

    def __init__(self, diversity=0.5, reference_batch_size=None, random_state=None):
        self.diversity = diversity
        self.reference_batch_size = reference_batch_size
        self.random_state = random_state

    def _select(self, X_pool, n):
        scores, factors = _discrepancy_and_factors(self, X_pool)
        relevance = scores / max(scores.max(), 1e-300)
        a_norms = np.sqrt(gradients._row_sq_norms(factors.a))
        h_norms = np.sqrt(gradients._row_sq_norms(factors.h))
        norms = a_norms * h_norms
        max_cosine = np.full(len(scores), -np.inf)
        available = np.ones(len(scores), dtype=bool)
        picks = []
        for _ in range(n):
            penalty = np.where(np.isinf(max_cosine), 0.0, max_cosine)
            objective = np.where(
                available, relevance - self.diversity * penalty, -np.inf
            )
            pick = int(np.argmax(objective))
            picks.append(pick)
            available[pick] = False
            inner = factors.inner_with(factors.a[pick], _row(factors.h, pick))
            denominator = norms * norms[pick]
            cosine = np.divide(
                inner, denominator, out=np.zeros_like(inner), where=denominator > 0
            )
            max_cosine = np.maximum(max_cosine, cosine)
        return np.asarray(picks)


@register("grad_seq_div")
class WeightedSequentialGradDiscrepancy(SequentialGradDiscrepancy):
    """grad_seq whose reference absorbs each pick as ``fold_weight`` points.

    After each pick ``g*`` the reference becomes
    ``(n_ref M + w g*) / (n_ref + w)``: with ``w = 1`` this is grad_seq; a larger
    ``w`` pulls the reference further towards what was just picked, so points
    whose gradients resemble it lose more discrepancy and the batch spreads out.
    Cost O(n N (C + D)); memory O(N (C + D)).

    Parameters
    ----------
    fold_weight : float, default=10.0
        Weight ``w`` of each pick in the reference.
    reference_batch_size : int, default=None
        See :class:`GradDiscrepancy`.
    random_state : int, RandomState instance or None, default=None
        Draws the reference mini-batch.
    """

    def __init__(self, fold_weight=10.0, reference_batch_size=None, random_state=None):
        self.fold_weight = fold_weight
        self.reference_batch_size = reference_batch_size
        self.random_state = random_state

    def _fold_weight(self):
        return float(self.fold_weight)
