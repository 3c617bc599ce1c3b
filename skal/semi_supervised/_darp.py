"""DARP: refine soft pseudo-labels towards a target class distribution.

Kim et al. (2020) observe that pseudo-labels of a model trained on class-imbalanced
labels are even more imbalanced than the labels, and refine them by the smallest
change (in KL divergence) that gives them a target class distribution. Given the
``M x K`` pseudo-labels ``P`` (rows on the simplex), per-row weights ``w`` and target
class counts ``c`` (``sum(c) = M``), DARP solves the convex problem

    minimize_X   sum_m w_m KL(x_m || p_m)
    subject to   sum_k x_mk = 1 (each row),  sum_m x_mk = c_k (each class),  X >= 0.

The Lagrangian's stationary point is ``x_mk = p_mk exp(-(lambda_m + nu_k) / w_m - 1)``,
so ``X`` is ``P`` scaled per row and (within each row's weight) per column. DARP
maximizes the dual by coordinate ascent: the row step (``lambda``) is a row
normalization; the column step solves, for each class ``k``, the one-dimensional
equation ``sum_m x_mk(nu_k) = c_k`` by Newton's method. With equal weights that
equation is linear in ``exp(-nu_k / w)`` and the iteration is Sinkhorn's matrix
scaling. DARP's weights are ``w_m = 1 / H(p_m)``: confident pseudo-labels (low
entropy) are expensive to move, uncertain ones absorb the correction.

skal works in the log domain (the column equation is ``logsumexp_m(a_mk - nu_k / w_m)
= log c_k``, convex and decreasing in ``nu_k``, so Newton converges from any start
without overflow) and solves all classes' equations at once; DARP's reference code
runs ``scipy.optimize.newton`` per class in the linear domain for a fixed 10 sweeps.
Here the sweeps stop when the refined class distribution is within ``tol`` (L1) of
the target. Cost per sweep: a few ``M x K`` exponentials.

References
----------
J. Kim, Y. Hur, S. Park, E. Yang, S. J. Hwang, J. Shin. Distribution aligning
refinery of pseudo-label for imbalanced semi-supervised learning. NeurIPS 2020.
"""

import warnings

import numpy as np
from scipy.special import softmax, xlogy
from sklearn.exceptions import ConvergenceWarning

# A one-hot pseudo-label has zero entropy: its weight is capped at 1 / this
# (DARP's code adds 1e-6 to the entropy too).
_ENTROPY_FLOOR = 1e-6
# Newton iterations per column step; the iteration converges quadratically once
# it is near the root, and each sweep warm-starts from the previous duals.
_NEWTON_STEPS = 50


def target_class_counts(target, n_samples, n_classes):
    """Target counts ``c`` (summing to ``n_samples``) from a target distribution.

    Parameters
    ----------
    target : 'uniform' or array-like of shape (n_classes,)
        Class proportions (normalized here) or counts; ``'uniform'`` gives every
        class ``n_samples / n_classes``.
    n_samples, n_classes : int

    Returns
    -------
    counts : ndarray of shape (n_classes,)
    """
    if isinstance(target, str):
        if target != "uniform":
            raise ValueError(
                f"target must be 'uniform' or an array of {n_classes} class "
                f"proportions, got {target!r}."
            )
        return np.full(n_classes, n_samples / n_classes)
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (n_classes,):
        raise ValueError(
            f"target has shape {target.shape} but the pseudo-labels have {n_classes} "
            f"classes: give one proportion per class, in the order of classes_."
        )
    if not np.all(np.isfinite(target)) or np.any(target < 0) or target.sum() <= 0:
        raise ValueError(
            f"target must hold non-negative finite proportions with a positive sum, "
            f"got {target.tolist()}."
        )
    return target * (n_samples / target.sum())


def entropy_weights(proba):
    """DARP's row weights ``1 / H(p_m)`` (entropy floored at 1e-6)."""
    entropy = -xlogy(proba, proba).sum(axis=1)
    return 1.0 / np.maximum(entropy, _ENTROPY_FLOOR)


def _row_weights(proba, weighting):
    if weighting is None:
        return np.ones(proba.shape[0])
    if isinstance(weighting, str):
        if weighting != "entropy":
            raise ValueError(
                f"weighting must be 'entropy', None or an array of row weights, "
                f"got {weighting!r}."
            )
        return entropy_weights(proba)
    weights = np.asarray(weighting, dtype=np.float64)
    if weights.shape != (proba.shape[0],):
        raise ValueError(
            f"weighting has shape {weights.shape}; expected one weight per row "
            f"({proba.shape[0]},)."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError("Row weights must be positive and finite.")
    return weights


def _check_proba(proba):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] == 0 or proba.shape[1] == 0:
        raise ValueError(
            f"proba must be a non-empty (n_samples, n_classes) array, got shape "
            f"{proba.shape}."
        )
    if not np.all(np.isfinite(proba)) or np.any(proba < 0):
        raise ValueError("proba must hold finite, non-negative probabilities.")
    sums = proba.sum(axis=1)
    if np.any(sums <= 0):
        raise ValueError("Every row of proba needs a positive entry.")
    return proba / sums[:, None]


def apply_column_duals(proba, column_duals, weighting="entropy"):
    """The row step of DARP: ``x_m = normalize(p_m * exp(-nu / w_m))``.

    With the duals of a solved problem this reproduces its refined rows; applied
    to new predictions of the same samples it refines them with the class
    corrections of the last solve (what :class:`FixMatchClassifier` does between
    solves).

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
    column_duals : array-like of shape (n_classes,)
        ``nu`` as returned by :func:`darp` (``+inf`` for classes with a zero target).
    weighting : 'entropy', None or array-like of shape (n_samples,), default='entropy'

    Returns
    -------
    refined : ndarray of shape (n_samples, n_classes)
    """
    proba = _check_proba(proba)
    weights = _row_weights(proba, weighting)
    with np.errstate(divide="ignore"):
        log_p = np.log(proba)
    scores = (
        log_p - np.asarray(column_duals, dtype=np.float64)[None, :] / weights[:, None]
    )
    if np.any(np.all(np.isneginf(scores), axis=1)):
        raise ValueError(
            "A row of proba has no probability on any class with a positive target."
        )
    return softmax(scores, axis=1)


def darp(
    proba,
    target="uniform",
    *,
    weighting="entropy",
    tol=1e-6,
    max_iter=1000,
    column_duals=None,
    return_duals=False,
):
    """Refine pseudo-labels so that their class distribution matches ``target``.

    Solves DARP's problem (see the module docstring): the refined labels are the
    closest to ``proba`` in weighted KL divergence among those whose rows are
    distributions and whose column sums are the target counts.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Soft pseudo-labels (rows are normalized). Zero entries stay zero.
    target : 'uniform' or array-like of shape (n_classes,), default='uniform'
        Target class distribution (proportions or counts, normalized here);
        classes with a zero target get no probability.
    weighting : 'entropy', None or array-like of shape (n_samples,), default='entropy'
        Row weights ``w_m``: DARP's ``1 / entropy(p_m)``, equal weights (None:
        Sinkhorn scaling), or given weights.
    tol : float, default=1e-6
        Stop when the L1 distance between the refined class distribution and the
        target is at most ``tol`` (rows always sum to one exactly).
    max_iter : int, default=1000
        Maximum number of row/column sweeps; a ``ConvergenceWarning`` is raised
        if ``tol`` is not reached.
    column_duals : array-like of shape (n_classes,), default=None
        Starting duals ``nu`` (e.g. from a previous solve on similar labels);
        None starts from zero, i.e. from ``proba`` itself.
    return_duals : bool, default=False
        Also return the column duals ``nu`` (see :func:`apply_column_duals`).

    Returns
    -------
    refined : ndarray of shape (n_samples, n_classes)
    column_duals : ndarray of shape (n_classes,)
        Only with ``return_duals=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.semi_supervised import darp
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    >>> refined = darp(proba)
    >>> refined.sum(axis=0).round(4)
    array([2., 2.])
    >>> refined.argmax(axis=1)
    array([0, 0, 1, 1])
    """
    proba = _check_proba(proba)
    n_samples, n_classes = proba.shape
    counts = target_class_counts(target, n_samples, n_classes)
    weights = _row_weights(proba, weighting)
    duals = (
        np.zeros(n_classes) if column_duals is None else np.array(column_duals, float)
    )
    if duals.shape != (n_classes,):
        raise ValueError(f"column_duals must have shape ({n_classes},).")
    active = counts > 0
    duals[~active] = np.inf
    duals[active & ~np.isfinite(duals)] = 0.0
    with np.errstate(divide="ignore"):
        log_p = np.log(proba[:, active])
        log_counts = np.log(counts[active])
    _check_reachable(log_p, np.flatnonzero(active))
    nu, inv_w = duals[active], (1.0 / weights)[:, None]
    target_counts = counts[active]
    for _ in range(max_iter):
        # Row step: normalize each row (the row duals, in closed form).
        log_refined = _log_normalize_rows(log_p - nu * inv_w)
        refined = np.exp(log_refined)
        if np.abs(refined.sum(axis=0) - target_counts).sum() <= tol * n_samples:
            break
        # Column step: the class duals, with the row normalizers held fixed.
        nu = _column_step(log_refined + nu * inv_w, inv_w, log_counts, nu, 0.1 * tol)
    else:
        warnings.warn(
            f"DARP did not reach tol={tol} in {max_iter} sweeps; the target may be "
            f"unreachable with these zero probabilities, or increase max_iter.",
            ConvergenceWarning,
            stacklevel=2,
        )
    result = np.zeros_like(proba)
    result[:, active] = refined
    duals[active] = nu
    return (result, duals) if return_duals else result


def _check_reachable(log_p, active_classes):
    """Refuse supports that make the target plainly unreachable."""
    empty = np.all(np.isneginf(log_p), axis=0)
    if np.any(empty):
        raise ValueError(
            f"Classes {active_classes[empty].tolist()} have a positive target but "
            f"zero probability in every row: no refinement can reach the target. "
            f"Give them a zero target or keep a small probability floor."
        )
    if np.any(np.all(np.isneginf(log_p), axis=1)):
        raise ValueError(
            "A row of proba has no probability on any class with a positive target."
        )


def _log_normalize_rows(scores):
    """``scores - logsumexp(scores, axis=1)`` (rows with a finite entry)."""
    shift = scores.max(axis=1, keepdims=True)
    shifted = scores - shift
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _column_step(log_a, inv_w, log_counts, nu, precision):
    """Solve ``logsumexp_m(log_a[m, k] - nu_k * inv_w[m]) = log_counts[k]`` for all k.

    Each left side is convex and decreasing in ``nu_k``, so Newton's iterates
    reach the root's left after one step and then increase monotonically to it.
    A residual of ``r`` in log space is a relative error ``~r`` of the column sum,
    so the steps stop at ``precision``; the outer sweeps do the rest.
    """
    for _ in range(_NEWTON_STEPS):
        scores = log_a - nu * inv_w
        # logsumexp and softmax over rows from one pass of exponentials.
        shift = scores.max(axis=0)
        shift[~np.isfinite(shift)] = 0.0
        exps = np.exp(scores - shift)
        totals = exps.sum(axis=0)
        residual = np.log(totals) + shift - log_counts
        if np.max(np.abs(residual)) <= precision:
            break
        # Minus the derivative: the mean of 1 / w_m under softmax_m(scores).
        slope = (inv_w * exps).sum(axis=0) / totals
        nu = nu + residual / slope
    return nu
