"""Mini-batch iteration that slices whole batches instead of single rows.

skorch's default ``DataLoader`` calls ``Dataset.__getitem__`` once per row and
collates the rows; on a scipy CSR matrix that densifies every row separately, which
dominates training time on TF-IDF input (measured in ``benchmarks/sparse_training.py``).
:class:`BatchSlicer` indexes the whole batch at once (``X[rows]`` on CSR is a cheap
row gather) and densifies only that batch, so the pool itself stays sparse.
"""

import numpy as np
import torch
from scipy import sparse


def rows_to_tensor(X, rows=None):
    """Dense float32 tensor of ``X[rows]`` (all rows when ``rows`` is None).

    Only the selected rows are densified; ``X`` may be an ndarray, a scipy sparse
    matrix or a tensor.
    """
    batch = X if rows is None else X[rows]
    if sparse.issparse(batch):
        batch = batch.toarray()
    if isinstance(batch, torch.Tensor):
        return batch.float()
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))


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
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, drop_last=False, **_):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last

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
            X_batch = rows_to_tensor(X, rows)
            # skorch expects a placeholder target when predicting.
            y_batch = (
                torch.zeros(len(X_batch)) if y is None else torch.as_tensor(y[rows])
            )
            yield X_batch, y_batch
