"""Mini-batch iteration that slices whole batches instead of single rows.

skorch's default ``DataLoader`` calls ``Dataset.__getitem__`` once per row and
collates the rows; on a scipy CSR matrix that densifies every row separately, which
dominates training time on TF-IDF input (measured in ``benchmarks/sparse_training.py``).
:class:`BatchSlicer` indexes the whole batch at once (``X[rows]`` on CSR is a cheap
row gather) and densifies only that batch, so the pool itself stays sparse. With
``keep_sparse`` the batch is not densified at all but handed to the module as a torch
sparse CSR tensor (for modules whose first layer is
:class:`skal.nets._sparse.SparseInputLinear`).
"""

import warnings

import numpy as np
import torch
from scipy import sparse


def rows_to_tensor(X, rows=None, keep_sparse=False):
    """Float32 tensor of ``X[rows]`` (all rows when ``rows`` is None).

    ``X`` may be an ndarray, a scipy sparse matrix or a tensor. Sparse rows become a
    torch sparse CSR tensor with ``keep_sparse``, else only the selected rows are
    densified.
    """
    batch = X if rows is None else X[rows]
    if sparse.issparse(batch):
        if keep_sparse:
            return csr_to_tensor(batch)
        batch = batch.toarray()
    if isinstance(batch, torch.Tensor):
        return batch.float()
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if not batch.flags.writeable:
        # Read-only memmaps/DataFrames: torch could write into a shared buffer
        # (an in-place first layer), so hand it a copy of the rows.
        batch = batch.copy()
    return torch.from_numpy(batch)


def csr_to_tensor(matrix):
    """Torch sparse CSR float32 tensor with the entries of a scipy sparse matrix."""
    matrix = matrix.tocsr()
    with warnings.catch_warnings():
        # torch warns once per process that sparse CSR support is in beta.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(np.asarray(matrix.data, dtype=np.float32)),
            size=matrix.shape,
            check_invariants=False,  # scipy's CSR is valid; checking costs time
        )


class BatchSlicer:
    """Iterable of ``(X_batch, y_batch)`` tensors over a skorch ``Dataset``.

    A drop-in replacement for ``torch.utils.data.DataLoader`` as skorch's
    ``iterator_train`` / ``iterator_valid`` for in-memory arrays and sparse
    matrices. Shuffling draws from torch's global generator, so
    ``torch.manual_seed`` (or a net's ``random_state``) makes it reproducible.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        Must expose ``X`` (ndarray, CSR matrix or tensor) and ``y`` (or None).
    batch_size : int, default=128
        Rows per batch.
    shuffle : bool, default=False
        Draw a new permutation of the rows at every pass.
    drop_last : bool, default=False
        Skip a last incomplete batch.
    keep_sparse : bool, default=False
        Yield batches of a scipy sparse ``X`` as torch sparse CSR tensors instead of
        dense ones (skal's nets set it when their module accepts sparse input).
    """

    def __init__(
        self,
        dataset,
        batch_size=128,
        shuffle=False,
        drop_last=False,
        keep_sparse=False,
        **_,
    ):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.keep_sparse = keep_sparse

    def __len__(self):
        n = self.dataset.X.shape[0]
        full, rest = divmod(n, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __iter__(self):
        X, y = self.dataset.X, self.dataset.y
        n = X.shape[0]
        order = torch.randperm(n).numpy() if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            if self.drop_last and len(rows) < self.batch_size:
                return
            if not self.shuffle:
                rows = slice(start, start + self.batch_size)
            X_batch = rows_to_tensor(X, rows, keep_sparse=self.keep_sparse)
            # skorch expects a placeholder target when predicting.
            y_batch = (
                torch.zeros(X_batch.shape[0]) if y is None else torch.as_tensor(y[rows])
            )
            yield X_batch, y_batch
