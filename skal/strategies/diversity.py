"""Batch-diversity strategies: BADGE and core-set (K-center greedy)."""

import numpy as np
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from .. import embeddings, gradients
from ._registry import register
from .base import QueryStrategy


@register("badge")
class BADGE(QueryStrategy):
    """Batch Active learning by Diverse Gradient Embeddings (``badge``).

    Embeds each candidate by its last-layer weight gradient under its
    pseudo-label, ``g_x = (p - e_y_hat) (x) h_x`` (``h~_x = [h_x, 1]`` with
    ``include_bias``), and picks the batch by k-means++ seeding in
    that space: the first point has the largest gradient norm (as in the reference
    code), each next one is drawn with probability proportional to its squared
    distance to the nearest point picked so far. Distances are computed from the
    factors, ``||g_i - g_j||^2 = ||g_i||^2 + ||g_j||^2 - 2 (a_i . a_j)(h~_i . h~_j)``.
    Cost O(n N (C + D)) after the forward pass; memory O(N (C + D)), never the
    N x C(D+1) embedding matrix.

    Parameters
    ----------
    include_bias : bool, default=False
        Append the output bias's gradient ``p - e_y_hat`` to the embedding. The
        reference implementation embeds the weight gradient only,
        ``(p - e_y_hat) (x) h_x``, and so does the default; with the bias the
        distances change and later draws differ from the reference's.
    random_state : int, RandomState instance or None, default=None
        Source of the D^2 draws.

    References
    ----------
    Ash, J. T., Zhang, C., Krishnamurthy, A., Langford, J. & Agarwal, A. (2020).
    Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds. ICLR.
    """

    _parameter_constraints = {
        "include_bias": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, include_bias=False, random_state=None):
        self.include_bias = include_bias
        self.random_state = random_state

    def _fit(self, X, y):
        self.random_state_ = check_random_state(self.random_state)

    def _select(self, X_pool, n):
        factors, _ = gradients.last_layer_factors(
            self.estimator_, X_pool, include_bias=self.include_bias
        )
        return gradients.kmeans_plus_plus(factors, n, self.random_state_)


@register("kcenter")
class KCenterGreedy(QueryStrategy):
    """Core-set selection by greedy K-center (``kcenter``).

    Repeatedly picks the pool point farthest (Euclidean) from everything labeled
    or picked so far, in the network's penultimate feature space (or the input
    space). Distances to the labeled set come from scikit-learn's chunked
    ``pairwise_distances_argmin_min``; each pick then updates the N nearest
    distances with one O(N D) pass. Cost O((n_labeled + n) N D); memory O(N D).

    Parameters
    ----------
    space : {"features", "input"}, default="features"
        Penultimate features of the model (needs a skorch net ending in
        ``nn.Linear`` or a linear model) or the raw input.
    random_state : int, RandomState instance or None, default=None
        Draws the first point when nothing is labeled yet.

    References
    ----------
    Sener, O. & Savarese, S. (2018). Active Learning for Convolutional Neural
    Networks: A Core-Set Approach. ICLR (the greedy 2-approximation, Algorithm 1).
    """

    _parameter_constraints = {
        "space": [StrOptions({"features", "input"})],
        "random_state": ["random_state"],
    }

    def __init__(self, space="features", random_state=None):
        self.space = space
        self.random_state = random_state

    def _fit(self, X, y):
        self.random_state_ = check_random_state(self.random_state)
        self.labeled_points_ = None if X is None or X.shape[0] == 0 else self._embed(X)

    def _embed(self, X):
        if self.space == "input":
            rows = X.reshape(X.shape[0], -1) if X.ndim > 2 else X
            # Raw uint8 pixels would wrap around in differences.
            return rows.astype(np.float64) if rows.dtype == np.uint8 else rows
        return embeddings.forward_pass(self.estimator_, X).features

    def _select(self, X_pool, n):
        points = self._embed(X_pool)
        sq_norms = gradients._row_sq_norms(points)
        if self.labeled_points_ is None:
            nearest = np.full(points.shape[0], np.inf)
        else:
            _, distances = pairwise_distances_argmin_min(points, self.labeled_points_)
            nearest = distances.astype(np.float64) ** 2
        picks = []
        for _ in range(n):
            if np.isinf(nearest).all():
                pick = int(self.random_state_.randint(points.shape[0]))
            else:
                pick = int(np.argmax(nearest))
            picks.append(pick)
            center = gradients._dense(points[pick]).ravel()
            to_center = (
                sq_norms + sq_norms[pick] - 2 * gradients._dense(points @ center)
            )
            nearest = np.minimum(nearest, np.maximum(to_center.ravel(), 0.0))
            nearest[picks] = -1.0  # never pick twice, even among duplicates
        return np.asarray(picks)
