"""Row and array helpers shared by the model-reading layer and the strategies.

Arrays here are 2-D NumPy arrays or SciPy sparse matrices (CSR for pools); the
helpers keep sparse input sparse and never densify more than they return.
"""

import numpy as np
from scipy import sparse

from ._config import get_config


def dense(M):
    """``M`` as an ndarray (a sparse matrix is densified, an array is left as is)."""
    return M.toarray() if sparse.issparse(M) else np.asarray(M)


def row_sq_norms(M):
    """Squared Euclidean norm of each row of ``M`` (dense or sparse), shape (N,)."""
    if sparse.issparse(M):
        return np.asarray(M.multiply(M).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", M, M)


def stack_rows(*blocks):
    """The rows of ``blocks`` one after the other (None blocks are skipped).

    Dense blocks of any rank are concatenated; if any block is sparse the result
    is CSR, with dense blocks flattened to rows.
    """
    blocks = [b for b in blocks if b is not None]
    if any(sparse.issparse(b) for b in blocks):
        return sparse.vstack(
            [b if sparse.issparse(b) else b.reshape(b.shape[0], -1) for b in blocks],
            format="csr",
        )
    return np.concatenate([np.asarray(b) for b in blocks])


def chunks(n_rows, chunk_size=None):
    """Row slices covering ``range(n_rows)``, ``chunk_size`` rows each.

    Parameters
    ----------
    n_rows : int
    chunk_size : int, default=None
        Rows per slice; default ``skal.get_config()["chunk_size"]``.

    Returns
    -------
    slices : generator of slice
        ``stop`` is clipped to ``n_rows``; none when ``n_rows`` is 0.
    """
    size = int(chunk_size or get_config()["chunk_size"])
    if size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}.")
    return (slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size))
