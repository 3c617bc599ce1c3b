"""Random sampling and uncertainty sampling (entropy, margin, least confidence).

Each needs only class probabilities, so it works with any fitted classifier that
has ``predict_proba``. Cost: one forward pass over the pool, O(N C) after it;
memory O(chunk_size x n_features + N x C).

References
----------
Settles, B. (2009). Active Learning Literature Survey. University of
Wisconsin-Madison, Computer Sciences Technical Report 1648, section 3.1.
"""

import numpy as np
from scipy.special import entr
from sklearn.utils import check_random_state

from .. import embeddings
from ._registry import register
from .base import QueryStrategy


@register("random")
class RandomSampling(QueryStrategy):
    """Uniform random sampling without replacement (the passive baseline).

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
        Seed of the draw; an int gives the same selection for the same pool.
    """

    needs_estimator = False

    _parameter_constraints = {
        "random_state": ["random_state"],
    }

    def __init__(self, random_state=None):
        self.random_state = random_state

    def _fit(self, X, y):
        self.random_state_ = check_random_state(self.random_state)

    def _score(self, X_pool):
        # Ranking by i.i.d. uniform scores is a uniform sample without replacement.
        return self.random_state_.random_sample(X_pool.shape[0])


class _ProbabilityStrategy(QueryStrategy):
    """Ranks the pool by a function of the predicted class probabilities."""

    def _fit(self, X, y):
        if not hasattr(self.estimator_, "predict_proba"):
            raise TypeError(
                f"{type(self).__name__} needs class probabilities, but "
                f"{type(self.estimator_).__name__} has no predict_proba."
            )

    def _score(self, X_pool):
        return self.uncertainty(embeddings.predict_proba(self.estimator_, X_pool))

    @staticmethod
    def uncertainty(proba):
        raise NotImplementedError


@register("entropy")
class Entropy(_ProbabilityStrategy):
    """Maximum-entropy sampling: ``-sum_k p_k log p_k`` of the prediction."""

    @staticmethod
    def uncertainty(proba):
        return entr(proba).sum(axis=1)


@register("margin")
class Margin(_ProbabilityStrategy):
    """Smallest-margin sampling: score ``1 - (p_first - p_second)``."""

    @staticmethod
    def uncertainty(proba):
        if proba.shape[1] < 2:
            return np.zeros(proba.shape[0])
        top_two = np.partition(proba, -2, axis=1)[:, -2:]
        return 1.0 - (top_two[:, 1] - top_two[:, 0])


@register("least_confidence")
class LeastConfidence(_ProbabilityStrategy):
    """Least-confidence sampling: score ``1 - max_k p_k``."""

    @staticmethod
    def uncertainty(proba):
        return 1.0 - proba.max(axis=1)
