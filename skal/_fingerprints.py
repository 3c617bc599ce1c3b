"""Fingerprints of rows and pools: hashes of values, not of their representation.

float32 and float64 copies, a DataFrame and its array, and a dense array and its
CSR matrix have the same fingerprint: the hash covers the non-zero positions and
values as float64, row by row. The label store keeps them to recognize a pool
and its rows; the learner to match taught rows to proposed ones; round
recorders to know which rows they recorded; NPC to find a batch repeating a
sample; ALBL to match labels to the rows it queried (:func:`row_digests`).
"""

import hashlib
import json

import numpy as np
from scipy import sparse

from ._arrays import chunks


def _canonical_rows(X):
    """Per-row non-zero counts, column indices and float64 values of a block."""
    if sparse.issparse(X):
        X = sparse.csr_matrix(X, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        X.sort_indices()
        return np.diff(X.indptr), X.indices, X.data.astype(np.float64)
    width = int(np.prod(X.shape[1:]))
    flat = np.asarray(X).reshape(-1)
    nonzero = flat != 0  # -0.0 counts as zero
    # Positions in the flat block, row-major: ~4x faster than np.nonzero(X).
    positions = np.flatnonzero(nonzero)
    counts = nonzero.reshape(X.shape[0], width).sum(axis=1)
    return counts, positions % max(width, 1), flat[positions].astype(np.float64)


def row_digests(X, rows=None):
    """A 16-byte hash of each row's values, equal for equal rows.

    The one row hash of skal: the label store's :func:`row_fingerprint`, NPC's
    repeated-sample check and ALBL's matching of labels to queried rows. The hash
    covers the row width and the row's non-zero columns and values as float64,
    so it does not depend on the dtype or on dense/sparse storage (``-0.0`` and
    explicit zeros count as absent).

    Parameters
    ----------
    X : ndarray of shape (N, ...) or sparse matrix
        A validated pool (dense of any shape: rows are flattened).
    rows : slice or array-like of int, default=None
        The rows to hash (only they are copied); all rows by default.

    Returns
    -------
    digests : list of bytes
        One 16-byte digest per row, in the order of ``rows``.
    """
    block = X if rows is None else X[rows]
    counts, columns, values = _canonical_rows(block)
    width = str(int(np.prod(X.shape[1:]))).encode()
    # Byte views of the entries (no copy when already little-endian 8-byte).
    column_bytes = memoryview(np.ascontiguousarray(columns, "<i8")).cast("B")
    value_bytes = memoryview(np.ascontiguousarray(values, "<f8")).cast("B")
    ends = (np.cumsum(counts) * 8).tolist()  # both streams hold 8 bytes per entry
    seeded = hashlib.blake2b(width, digest_size=16)
    digests, start = [], 0
    for end in ends:
        digest = seeded.copy()  # cheaper than a new hash of the width
        digest.update(column_bytes[start:end])
        digest.update(value_bytes[start:end])
        digests.append(digest.digest())
        start = end
    return digests


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
        ``"blake2b:<hex>"`` of :func:`row_digests`.
    """
    index = int(index)
    (digest,) = row_digests(X, slice(index, index + 1))
    return f"blake2b:{digest.hex()}"


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
    # Three streams hashed separately, so the chunk boundaries do not matter.
    streams = [hashlib.blake2b(digest_size=16) for _ in range(3)]
    for rows in chunks(X.shape[0], chunk_size):
        for stream, part, dtype in zip(
            streams, _canonical_rows(X[rows]), ("<i8", "<i8", "<f8")
        ):
            stream.update(np.ascontiguousarray(part, dtype=dtype).tobytes())
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(list(X.shape)).encode())
    for stream in streams:
        digest.update(stream.digest())
    return f"blake2b:{digest.hexdigest()}"
