"""Neural pre-conditioning (NPC): maximize the smallest eigenvalue of the Gram matrix."""

import hashlib

import numpy as np
import scipy.linalg
from scipy import sparse
from sklearn.utils import check_random_state

from .. import gradients
from ._registry import register
from .base import QueryStrategy


def npc_criterion(h_labeled, h_batch, n_classes, rank=None):
    """NPC's value of one candidate batch (brute-force-checkable form).

    The last-layer output gradients of ``z = W h + b`` are ``dz_k/d[W, b] = e_k h~^T``,
    so the Gram matrix of labeled set + batch, with each C x C class block replaced
    by its trace (paper 004, section 3.4), is ``C H H^T`` where ``H`` stacks the
    ``n`` rows ``h~``. Its smallest eigenvalue is zero for every batch as soon as
    ``n`` exceeds the dimension ``r`` the features span (at most ``D + 1``, less
    with dead ReLU units), which would make the search blind. skal's value is
    ``C`` times the ``min(n, r)``-th largest eigenvalue of ``H H^T``:

    - ``n <= r``: ``C lambda_min(H H^T)``, exactly the paper's value;
    - ``n > r``: the smallest non-zero eigenvalue, ``C lambda_min(H^T H)`` restricted
      to the span (an E-optimal design criterion).

    It equals the paper's value whenever that is non-zero.

    Parameters
    ----------
    h_labeled : ndarray of shape (n_labeled, D + 1)
    h_batch : ndarray of shape (n_batch, D + 1)
    n_classes : int
    rank : int, default=None
        Dimension ``r`` spanned by all features (labeled set and pool); ``None``
        means ``D + 1``.

    Returns
    -------
    value : float
    """
    H = np.vstack([h_labeled, h_batch]).astype(np.float64)
    rank = H.shape[1] if rank is None else rank
    eigenvalues = np.linalg.eigvalsh(H @ H.T)  # ascending
    return n_classes * float(eigenvalues[-min(H.shape[0], rank)])


def span_basis(*feature_sets):
    """Orthonormal basis (columns) of the space spanned by the rows of all sets."""
    gram = sum(h.T @ h for h in feature_sets)
    eigenvalues, vectors = np.linalg.eigh(gram)
    # A Gram matrix resolves eigenvalues only down to ~eps * its largest one;
    # anything below a safe multiple of that is a direction the data does not span.
    keep = eigenvalues > eigenvalues.max() * gram.shape[0] * np.finfo(float).eps * 1e3
    return vectors[:, keep]


def _overflow_safe_scale(*feature_sets):
    """1, or a power of two bringing features below 2**256 (Gram entries stay finite)."""
    # max(h.max(), -h.min()) needs no N x D temporary, unlike np.abs(h).max().
    largest = max((max(h.max(), -h.min()) for h in feature_sets if h.size), default=0)
    if largest <= 2.0**256:
        return 1.0
    return 2.0 ** (np.ceil(np.log2(largest)) - 256)


def _row_fingerprints(X):
    """A hash per row, to recognize duplicated samples (Proposition 1)."""
    if sparse.issparse(X):
        X = X.tocsr()
        return [
            hashlib.blake2b(
                X.indices[X.indptr[i] : X.indptr[i + 1]].tobytes()
                + X.data[X.indptr[i] : X.indptr[i + 1]].astype(np.float64).tobytes(),
                digest_size=16,
            ).digest()
            for i in range(X.shape[0])
        ]
    rows = np.ascontiguousarray(np.asarray(X).reshape(X.shape[0], -1), dtype=np.float64)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]


@register("npc")
class NPC(QueryStrategy):
    """Neural pre-conditioning (``npc``), paper 004, Eq. 3 and Algorithm 1.

    Draws ``n_candidates`` random batches of ``n`` pool points and returns the one
    that maximizes the smallest eigenvalue of the last-layer gradient Gram matrix
    of labeled set + batch (:func:`npc_criterion` gives the exact, non-degenerate
    rule). A batch that repeats a sample (within itself or from the labeled set) is
    degenerate: the paper's Gram matrix is singular for it (Proposition 1), so it
    is ranked below every batch without repeats, in every regime.

    Features are first expressed in an orthonormal basis of the span of the
    labeled and pool features (dimension ``r``), so that dead units do not make
    every candidate look singular. The labeled part is computed once per round and
    reused for every candidate:
    ``H_L^T H_L`` (or ``H_L H_L^T`` when labeled + batch have at most ``D + 1``
    rows). Each candidate then costs O(n D^2 + D^3) (or O((n_L + n)^3)); the
    candidates' smallest eigenvalues come from LAPACK's ``syevr`` with an index range. Memory:
    O(N D) for the pool features plus a stack of (D+1)^2 matrices.

    Parameters
    ----------
    n_candidates : int, default=None
        Random batches searched. ``None`` means as many as there are pool points
        (the paper's m = O(N_U)) capped at ``max_candidates``.
    max_candidates : int, default=1000
        Cap for the default number of candidates.
    random_state : int, RandomState instance or None, default=None
        Draws the candidate batches.

    Attributes
    ----------
    best_value_ : float
        The criterion of the returned batch (after the last query).

    References
    ----------
    A Neural Pre-Conditioning Active Learning Algorithm to Reduce Label
    Complexity (NeurIPS 2022), Eq. 3, Algorithm 1, Proposition 1, section 3.4.
    """

    def __init__(self, n_candidates=None, max_candidates=1000, random_state=None):
        self.n_candidates = n_candidates
        self.max_candidates = max_candidates
        self.random_state = random_state

    def _fit(self, X, y):
        self.random_state_ = check_random_state(self.random_state)
        if X is None or X.shape[0] == 0:
            self.h_labeled_ = None
            self.labeled_fingerprints_ = set()
        else:
            self.h_labeled_ = self._features(X)
            self.labeled_fingerprints_ = set(_row_fingerprints(X))
        self.n_classes_ = len(self.estimator_.classes_)

    def _features(self, X):
        factors, _ = gradients.last_layer_factors(self.estimator_, X)
        return gradients._dense(factors.h).astype(np.float64)

    def _select(self, X_pool, n):
        h_pool = self._features(X_pool)
        width = h_pool.shape[1]
        h_labeled = (
            self.h_labeled_ if self.h_labeled_ is not None else np.zeros((0, width))
        )
        n_candidates = self.n_candidates or min(X_pool.shape[0], self.max_candidates)
        batches = np.array(
            [
                self.random_state_.choice(X_pool.shape[0], n, replace=False)
                for _ in range(n_candidates)
            ]
        )
        # Eigenvalues scale with the square of the features: divide huge (finite)
        # features by a power of two, exactly, so that the Gram matrices cannot
        # overflow (LAPACK fails on infinities). The ranking is unchanged.
        scale = _overflow_safe_scale(h_labeled, h_pool)
        if scale != 1.0:
            h_labeled, h_pool = h_labeled / scale, h_pool / scale
        values = self._values(h_labeled, h_pool, batches)
        degenerate = self._degenerate(X_pool, batches)
        # Lexicographic: batches without repeated samples first, then by value.
        order = np.lexsort((-values, degenerate))
        best = order[0]
        with np.errstate(over="ignore"):
            self.best_value_ = float(values[best] * scale**2)
        return batches[best]

    def _values(self, h_labeled, h_pool, batches, stack=64):
        n_labeled, rank = h_labeled.shape
        small = n_labeled + batches.shape[1] <= rank
        if small:  # (n_L + n)^2 Gram of the rows
            labeled_gram = h_labeled @ h_labeled.T
        else:  # (D+1)^2 Gram of the columns
            labeled_gram = h_labeled.T @ h_labeled
        values = np.empty(len(batches))
        for start in range(0, len(batches), stack):
            H_b = h_pool[batches[start : start + stack]]  # (stack, n, D+1)
            if small:
                cross = np.einsum("ld,snd->sln", h_labeled, H_b)
                top = np.concatenate(
                    [
                        np.broadcast_to(labeled_gram, (len(H_b), n_labeled, n_labeled)),
                        cross,
                    ],
                    axis=2,
                )
                bottom = np.concatenate(
                    [cross.transpose(0, 2, 1), H_b @ H_b.transpose(0, 2, 1)], axis=2
                )
                grams = np.concatenate([top, bottom], axis=1)
            else:
                grams = labeled_gram + H_b.transpose(0, 2, 1) @ H_b
            # Only the smallest eigenvalue is needed: LAPACK's syevr with an index
            # range finds it ~9x faster than numpy's full batched eigvalsh (measured
            # on 257 x 257 Gram matrices).
            values[start : start + stack] = [
                scipy.linalg.eigh(
                    g, eigvals_only=True, subset_by_index=[0, 0], driver="evr"
                )[0]
                for g in grams
            ]
        return self.n_classes_ * values

    def _degenerate(self, X_pool, batches):
        # Only rows in some candidate batch: hashing the whole pool made a float64
        # copy of it (4.9 GB for 1M x 617) and took minutes.
        rows = np.unique(batches)
        fingerprints = dict(zip(rows.tolist(), _row_fingerprints(X_pool[rows])))
        return np.array(
            [
                len({fingerprints[i] for i in batch}) < len(batch)
                or any(fingerprints[i] in self.labeled_fingerprints_ for i in batch)
                for batch in batches
            ]
        )
