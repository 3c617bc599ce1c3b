"""The one row hash (row_digests, row_fingerprint) against a hash written here."""

import hashlib

import numpy as np
import pytest
from scipy import sparse

from skal._fingerprints import row_digests, row_fingerprint


def reference_digest(row, width):
    """blake2b of the width, then each non-zero (column, float64 value), row order."""
    columns = [j for j, v in enumerate(row) if float(v) != 0.0]
    values = [float(row[j]) for j in columns]
    digest = hashlib.blake2b(str(width).encode(), digest_size=16)
    digest.update(np.array(columns, dtype="<i8").tobytes())
    digest.update(np.array(values, dtype="<f8").tobytes())
    return digest.digest()


@pytest.fixture
def rows_with_zeros():
    rng = np.random.RandomState(0)
    X = rng.randn(30, 8).astype(np.float32)
    X[X < 0.4] = 0.0
    X[4] = X[9]  # a repeated row
    X[5] = 0.0  # an empty row
    return X


def test_digests_equal_the_reference_hash(rows_with_zeros):
    X = rows_with_zeros
    expected = [reference_digest(row, 8) for row in X]
    assert row_digests(X) == expected
    assert row_digests(X, [9, 3, 3]) == [expected[9], expected[3], expected[3]]
    assert row_digests(X, []) == []
    for i in (0, 4, 5):
        assert row_fingerprint(X, i) == f"blake2b:{expected[i].hex()}"


def test_equal_rows_have_equal_digests_and_different_rows_different_ones(
    rows_with_zeros,
):
    X = rows_with_zeros
    digests = row_digests(X)
    assert digests[4] == digests[9]
    distinct = {row.tobytes() for row in X}
    assert len(set(digests)) == len(distinct) < len(X)
    assert X[0, 2] != 0 and X[0, 5] == 0
    changed = X.copy()
    changed[0, 2] = np.nextafter(changed[0, 2], np.float32(np.inf))
    assert row_digests(changed, [0]) != row_digests(X, [0])
    moved = X.copy()
    moved[0] = np.roll(X[0], 1)  # same values, other columns
    assert row_digests(moved, [0]) != row_digests(X, [0])


def test_digests_ignore_the_storage(rows_with_zeros):
    X = rows_with_zeros
    expected = row_digests(X)
    with_explicit_zeros = sparse.csr_matrix(X)
    with_explicit_zeros.data[::3] = 0.0  # stored zeros count as absent
    negative_zero = X.copy()
    negative_zero[negative_zero == 0] = -0.0
    for variant in (
        X.astype(np.float64),
        negative_zero,
        sparse.csr_matrix(X),
        sparse.csr_matrix(X.astype(np.float64)),
        X.reshape(30, 2, 4),  # an N-D pool is hashed as its flattened rows
    ):
        assert row_digests(variant) == expected
    assert row_digests(with_explicit_zeros) == row_digests(
        with_explicit_zeros.toarray()
    )
