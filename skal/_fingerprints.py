"""Fingerprints of rows and pools: hashes of values, not of their representation.

float32 and float64 copies, a DataFrame and its array, and a dense array and its
CSR matrix have the same fingerprint: the hash covers the non-zero positions and
values as float64, row by row. The label store keeps them to recognize a pool
and its rows; the learner to match taught rows to proposed ones; round
recorders to know which rows they recorded.
"""

import hashlib
import json

import numpy as np
from scipy import sparse
from sklearn.utils import gen_batches

from ._config import get_config


def _canonical_rows(X):
    """Per-row non-zero counts, column indices and float64 values of a block."""
    if sparse.issparse(X):
        X = sparse.csr_matrix(X, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        X.sort_indices()
        return np.diff(X.indptr), X.indices, X.data.astype(np.float64)
    X = np.asarray(X).reshape(X.shape[0], -1)
    nonzero = X != 0
    return nonzero.sum(axis=1), np.nonzero(nonzero)[1], X[nonzero].astype(np.float64)


def row_fingerprint(X, index):
    """Hash of one row's values (independent of dtype and dense/sparse storage).

    Parameters
    ----------
    X : ndarray or sparse matrix
        A validated pool.
    index : int

    Returns
    -------
    fingerprint : str
        ``"blake2b:<hex>"``.
    """
    row = X[int(index) : int(index) + 1]
    _, columns, values = _canonical_rows(row)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(int(np.prod(X.shape[1:]))).encode())
    digest.update(columns.astype("<i8").tobytes())
    digest.update(values.astype("<f8").tobytes())
    return f"blake2b:{digest.hexdigest()}"


def pool_fingerprint(X, *, chunk_size=None):
    """Hash of a whole pool: its shape and every value, read chunk by chunk.

    Memory is bounded by the chunk, not the pool; the result does not depend on
    the chunk size, the dtype (float32/float64) or dense/sparse storage.

    Parameters
    ----------
    X : ndarray or sparse matrix
        A validated pool.
    chunk_size : int, default=None
        Rows hashed at once; default from :func:`skal.get_config`.

    Returns
    -------
    fingerprint : str
        ``"blake2b:<hex>"``.
    """
    chunk_size = chunk_size or get_config()["chunk_size"]
    # Three streams hashed separately, so the chunk boundaries do not matter.
    streams = [hashlib.blake2b(digest_size=16) for _ in range(3)]
    for rows in gen_batches(X.shape[0], chunk_size):
        for stream, part, dtype in zip(
            streams, _canonical_rows(X[rows]), ("<i8", "<i8", "<f8")
        ):
            stream.update(np.ascontiguousarray(part, dtype=dtype).tobytes())
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(list(X.shape)).encode())
    for stream in streams:
        digest.update(stream.digest())
    return f"blake2b:{digest.hexdigest()}"
