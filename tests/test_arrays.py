"""Row and array helpers (skal._arrays) against literal NumPy."""

import numpy as np
import pytest
from scipy import sparse

import skal
from skal._arrays import chunks, dense, row_sq_norms


def test_chunks_cover_the_rows_once_in_order():
    slices = list(chunks(10, 4))
    assert [(s.start, s.stop) for s in slices] == [(0, 4), (4, 8), (8, 10)]
    assert list(chunks(0, 4)) == []
    with skal.config_context(chunk_size=3):
        assert [s.stop for s in chunks(7)] == [3, 6, 7]
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        chunks(5, -2)


def test_dense_and_row_sq_norms_of_dense_and_sparse_rows():
    rng = np.random.RandomState(0)
    M = rng.randn(6, 4) * (rng.rand(6, 4) < 0.5)
    expected = np.array([sum(v * v for v in row) for row in M])
    for variant in (M, sparse.csr_matrix(M)):
        np.testing.assert_array_equal(dense(variant), M)
        np.testing.assert_allclose(row_sq_norms(variant), expected, rtol=1e-12)
    assert isinstance(dense(sparse.csr_matrix(M)), np.ndarray)
