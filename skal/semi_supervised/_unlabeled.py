"""The unlabeled-row marker shared by the semi-supervised learners."""

import numpy as np
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._validation import UNLABELED


def labeled_mask(y, n_samples):
    """Boolean mask of the labeled rows of ``y``; unlabeled rows hold ``-1``.

    scikit-learn's semi-supervised convention (``sklearn.semi_supervised``), also
    what :class:`skal.ActiveLearner` hands over. String labels must come as an
    object array, so that ``-1`` can mark the unlabeled rows.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
    n_samples : int
        Rows of ``X``, to check ``y`` against.

    Returns
    -------
    y : ndarray of shape (n_samples,)
    labeled : ndarray of bool of shape (n_samples,)
    """
    y = column_or_1d(y, warn=True)
    if y.dtype.kind in "US":
        raise ValueError(
            "y has a string dtype, which cannot hold the unlabeled marker -1: pass "
            "an object array, e.g. np.array(labels, dtype=object), with -1 for the "
            "unlabeled rows."
        )
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(y)} labels.")
    if y.dtype.kind == "O":
        labeled = np.array([isinstance(v, str) or v != UNLABELED for v in y], bool)
    else:
        labeled = y != UNLABELED
    if not labeled.any():
        raise ValueError(
            "y marks every row as unlabeled (-1): at least one labeled row is needed."
        )
    return y, labeled


class FinalEstimatorPrediction:
    """Mixin: ``classes_``, ``predict`` and ``predict_proba`` of ``estimator_``,
    the model a semi-supervised learner ends with."""

    @property
    def classes_(self):
        """Class labels of the final model."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_

    def predict(self, X):
        """Labels predicted by the final model."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        """Class probabilities of the final model (columns as ``classes_``)."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)
