"""Input checks shared by the learner, the strategies and the nets.

Every public entry point validates through these helpers so that bad input fails the
same way everywhere, with a message that names the problem.
"""

from numbers import Integral

import numpy as np
from scipy import sparse
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array, check_is_fitted

# Sentinel that marks an unlabeled row in ``y`` (scikit-learn's semi-supervised
# convention, see sklearn.semi_supervised).
UNLABELED = -1


def check_pool(X, *, n_features=None, name="X_pool", dtype=None, owner="the estimator"):
    """Validate a pool (or any sample matrix) without densifying it.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features) or (n_samples, ...)
        Dense arrays, pandas DataFrames and scipy sparse matrices are accepted;
        sparse input is returned as CSR, never densified. Dense arrays may have
        more than two dimensions (images); their feature count is the product of
        the trailing dimensions.
    n_features : int, default=None
        Expected number of features (the one seen in ``fit``).
    name : str, default="X_pool"
        Name used in error messages.
    dtype : dtype or list of dtypes, default=None
        Passed to :func:`sklearn.utils.check_array`; ``None`` keeps float32 and
        float64 as they are, keeps uint8 images (arrays of three or more
        dimensions) as raw pixels, and converts anything else to float64.
    owner : str, default="the estimator"
        Who expects ``n_features`` (named in the error message).

    Returns
    -------
    X : ndarray or csr_matrix
        The validated matrix; a copy only where a conversion was needed.
    """
    if dtype is None:
        dtype = [np.float64, np.float32]
        if getattr(X, "dtype", None) == np.uint8 and getattr(X, "ndim", 2) > 2:
            # Raw pixels: float64 would take 8x the memory; nets cast per batch.
            dtype = np.uint8
    if X is None or (hasattr(X, "shape") and len(X.shape) >= 1 and X.shape[0] == 0):
        raise ValueError(f"{name} is empty: at least one sample is required.")
    X = check_array(
        X,
        accept_sparse="csr",
        dtype=dtype,
        ensure_all_finite=True,
        allow_nd=True,
        input_name=name,
    )
    if n_features is not None and n_features_of_array(X) != n_features:
        raise ValueError(
            f"{name} has {n_features_of_array(X)} features, but {owner} is expecting "
            f"{n_features} features as input."
        )
    return X


def n_features_of_array(X):
    """Features per sample: the product of all but the first dimension."""
    return int(np.prod(X.shape[1:]))


def check_n_queries(n, n_pool):
    """Check the number of points to query against the pool size.

    Parameters
    ----------
    n : int
        Number of points requested.
    n_pool : int
        Number of candidate points.

    Returns
    -------
    n : int
    """
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"n must be an integer, got {n!r} of type {type(n).__name__}.")
    if n < 1:
        raise ValueError(f"n must be at least 1, got n={n}.")
    if n > n_pool:
        raise ValueError(
            f"n={n} is larger than the pool, which has only {n_pool} samples."
        )
    return int(n)


def check_fitted_estimator(estimator, *, name="estimator"):
    """Raise a clear error when ``estimator`` is missing or not fitted."""
    if estimator is None:
        raise ValueError(
            f"No {name} was given: pass a fitted estimator, "
            f"e.g. strategy.fit(X, y, estimator=fitted_classifier)."
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        raise NotFittedError(
            f"The {name} {type(estimator).__name__} is not fitted yet; fit it "
            f"before querying."
        ) from exc
    return estimator


def n_features_of(estimator):
    """Number of input features a fitted estimator expects, or None if unknown."""
    n = getattr(estimator, "n_features_in_", None)
    return None if n is None else int(n)


def num_samples(X):
    """Number of rows of an array, sparse matrix or DataFrame."""
    if sparse.issparse(X) or hasattr(X, "shape"):
        return X.shape[0]
    return len(X)


def take_rows(X, indices):
    """Rows ``indices`` of an array, sparse matrix or DataFrame (as its own type)."""
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    return X[indices]
