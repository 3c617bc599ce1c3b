"""The fitted pool: recognizing it in ``query`` and keeping its rows for ``teach``."""

import numpy as np
from scipy import sparse

from .._fingerprints import row_fingerprint

# Rows of the fitted pool whose fingerprints are kept to recognize it in `query`.
_POOL_SAMPLE_ROWS = 32


def _take(X, indices):
    return X[np.asarray(indices, dtype=np.int64)]


def _close(A, B, rtol=1e-6):
    """Same shape and values equal up to ``rtol`` times the largest magnitude."""
    if A.shape != B.shape:
        return False
    if sparse.issparse(A) or sparse.issparse(B):
        A, B = sparse.csr_matrix(A, dtype=np.float64), sparse.csr_matrix(B)
        gap, scale = abs(A - B), max(abs(A).max(), abs(B).max(), 0.0)
        return gap.nnz == 0 or gap.max() <= rtol * scale
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.size == 0:
        return True
    scale = max(np.abs(A).max(), np.abs(B).max())
    return bool(np.all(np.abs(A - B) <= rtol * scale))


def _row_signatures(X, rows):
    """Per row: the sum, the sum of squares and a position-weighted sum."""
    block = _take(X, rows)
    if sparse.issparse(block):
        block = sparse.csr_matrix(block, dtype=np.float64)
        weights = np.arange(1, block.shape[1] + 1) / block.shape[1]
        return np.column_stack(
            [
                np.asarray(block.sum(axis=1)).ravel(),
                np.asarray(block.multiply(block).sum(axis=1)).ravel(),
                block @ weights,
            ]
        )
    block = np.asarray(block, dtype=np.float64).reshape(len(rows), -1)
    weights = np.arange(1, block.shape[1] + 1) / block.shape[1]
    return np.column_stack([block.sum(axis=1), (block**2).sum(axis=1), block @ weights])


class _FittedPool:
    """Which rows of the fitted pool are labeled, declined or proposed."""

    def _remember_pool(self, X, declined):
        """What :meth:`query` needs to recognize the fitted pool, and its rows."""
        n = X.shape[0]
        sample = np.unique(np.linspace(0, n - 1, min(n, _POOL_SAMPLE_ROWS)).astype(int))
        self._pool = {
            "n_samples": int(n),
            "sample_rows": sample.astype(np.int64),
            "sample_signatures": _row_signatures(X, sample),
            "declined": np.flatnonzero(declined).astype(np.int64),
            "proposed": {},
        }
        self._pool_rows = self.labeled_indices_.copy()  # pool row of each labeled row

    def _is_fitted_pool(self, X):
        """True if ``X`` has the fitted pool's rows at the fitted pool's positions.

        Checked where it matters: every labeled row is where it was (so excluding
        ``labeled_indices_`` excludes exactly them), and evenly spaced rows are
        unchanged (three sums per row kept at fit). Values are compared up to
        rounding: a vectorizer's ``transform`` may differ from its
        ``fit_transform`` in the last bit. Costs one gather of the labeled rows.
        """
        pool = getattr(self, "_pool", None)
        if pool is None or X.shape[0] != pool["n_samples"]:
            return False
        from_pool = self._pool_rows >= 0
        here = _take(X, self._pool_rows[from_pool])
        if not _close(here, _take(self._labeled_X, np.flatnonzero(from_pool))):
            return False
        now = _row_signatures(X, pool["sample_rows"])
        return _close(now, pool["sample_signatures"])

    def _remember_proposed(self, X, picks):
        proposed = self._pool["proposed"]
        for row in picks:
            rows = proposed.setdefault(row_fingerprint(X, row), [])
            if int(row) not in rows:
                rows.append(int(row))

    def _match_proposed(self, X_new):
        """Pool row of each row of ``X_new`` that ``query`` proposed, else -1."""
        proposed = self._pool["proposed"] if hasattr(self, "_pool") else {}
        rows = np.full(X_new.shape[0], -1, dtype=np.int64)
        for i in range(X_new.shape[0]):
            candidates = proposed.get(row_fingerprint(X_new, i))
            if candidates:
                rows[i] = candidates.pop(0)
        return rows
