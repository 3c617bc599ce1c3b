"""The space in which model-free and coverage strategies measure distances.

K-center, TypiClust and ProbCover compare pool points by Euclidean distance in a
representation the user chooses: the network's penultimate features, the raw
input, or any embedding (a fitted transformer or a function of ``X``).
"""

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, StrOptions

from .. import embeddings
from .base import QueryStrategy

# The ``space`` parameter's entry in a strategy's ``_parameter_constraints``.
SPACE_CONSTRAINTS = [
    StrOptions({"features", "input"}),
    HasMethods(["transform"]),
    callable,
]


def uses_estimator(space):
    """Whether ``space`` needs a fitted estimator (only ``"features"`` does)."""
    return isinstance(space, str) and space == "features"


def represent(X, space, estimator=None):
    """Rows of ``X`` in the chosen space, as a 2-D float array or CSR matrix.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (N, ...)
        Validated rows (images may have more than two dimensions).
    space : "features", "input", transformer or callable
        ``"features"``: the estimator's penultimate features (streamed);
        ``"input"``: the rows themselves (images flattened, uint8 cast to float);
        a fitted transformer's ``transform(X)`` or ``space(X)``.
    estimator : fitted estimator, default=None
        Needed for ``"features"``.

    Returns
    -------
    points : ndarray or CSR matrix of shape (N, D)
    """
    if isinstance(space, str) and space == "features":
        return embeddings.forward_pass(estimator, X).features
    if isinstance(space, str):  # "input"
        rows = X.reshape(X.shape[0], -1) if X.ndim > 2 else X
        # Raw uint8 pixels would wrap around in differences.
        return rows.astype(np.float64) if rows.dtype == np.uint8 else rows
    points = space.transform(X) if hasattr(space, "transform") else space(X)
    points = np.asarray(points) if not hasattr(points, "tocsr") else points.tocsr()
    if points.ndim != 2 or points.shape[0] != X.shape[0]:
        raise ValueError(
            f"The embedding returned shape {points.shape} for {X.shape[0]} rows; "
            f"it must return one row per sample (N, D)."
        )
    return points


class SpaceStrategy(QueryStrategy):
    """Base of strategies that measure distances in a chosen ``space``.

    Subclasses have ``space`` and ``random_state`` parameters. ``fit`` keeps the
    labeled points in that space (``labeled_points_``, None without a labeled
    set) and a ``random_state_``; a model-free space needs no estimator.
    """

    @property
    def needs_estimator(self):
        return uses_estimator(self.space)

    def _fit(self, X, y):
        self.random_state_ = check_random_state(self.random_state)
        empty = X is None or X.shape[0] == 0
        self.labeled_points_ = None if empty else self._represent(X)

    def _represent(self, X):
        return represent(X, self.space, self.estimator_)
