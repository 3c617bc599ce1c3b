"""skal's lean training epoch: the math of skorch's loop without its per-batch costs.

skorch's ``run_single_epoch`` notifies every callback twice per batch, records two
history entries per batch, synchronizes the loss (``.item()``), and its iterator
slices and converts each batch from the host arrays. For small networks trained
with batch 8 (paper 001) that bookkeeping costs as much as the arithmetic. The lean
epoch instead

- moves the training set to the device once per fit (:class:`TrainingTensors`),
  permutes it once per epoch (the same ``torch.randperm`` draw as
  :class:`~skal.nets._batches.BatchSlicer`, so the batches are identical) and
  takes each batch as a contiguous slice (a view, also for CSR);
- on sparse input with :class:`~skal.nets._sparse.LazyMomentumSGD`, gathers the
  batch's first-layer weight rows once (:class:`~skal.nets._sparse.GatheredBatch`)
  instead of forming, coalescing and re-indexing a sparse gradient;
- accumulates the loss on the device and records one history entry per epoch
  (``train_loss`` is the same batch-size-weighted mean skorch computes).

It is used only when it cannot change what the user sees: no callback acts on
training batches (:func:`per_batch_callbacks`), no fit parameters, skal's own batch
iterator. Otherwise skorch's loop runs.
"""

import numpy as np
import torch
from scipy import sparse
from skorch.callbacks import Callback, EpochScoring, LRScheduler

# Callbacks known to ignore training batches although they define batch hooks.
_EPOCH_LEVEL = {
    EpochScoring: lambda cb: not cb.on_train,  # caches validation predictions only
    LRScheduler: lambda cb: cb.step_every != "batch",
}
_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_grad_computed")


def per_batch_callbacks(net):
    """Names of the net's callbacks that act on training batches."""
    names = []
    for name, callback in getattr(net, "callbacks_", []):
        overrides = any(
            getattr(type(callback), hook, None) is not getattr(Callback, hook)
            for hook in _BATCH_HOOKS
        )
        known = _EPOCH_LEVEL.get(type(callback))
        if overrides and not (known is not None and known(callback)):
            names.append(name)
    return names


class TrainingTensors:
    """The training set on the device, as a dense tensor or CSR parts.

    Dense input keeps its dtype when it is uint8 (raw pixels, cast per batch as
    :func:`~skal.nets._batches.rows_to_tensor` does), else becomes float32.

    Parameters
    ----------
    X : ndarray, scipy sparse matrix or tensor
    y : array-like of int
    device : str or torch.device
    """

    def __init__(self, X, y, device):
        self.sparse = sparse.issparse(X)
        self.n_rows = X.shape[0]
        if self.sparse:
            X = X.tocsr()
            self.indptr = torch.from_numpy(X.indptr.astype(np.int64)).to(device)
            self.indices = torch.from_numpy(X.indices.astype(np.int64)).to(device)
            self.values = torch.from_numpy(np.asarray(X.data, np.float32)).to(device)
            self.n_features = X.shape[1]
        else:
            if isinstance(X, torch.Tensor):
                X = X.detach().cpu().numpy()
            dtype = np.uint8 if X.dtype == np.uint8 else np.float32
            # np.array copies: read-only memmaps never reach torch.
            self.X = torch.from_numpy(np.array(X, dtype=dtype)).to(device)
        self.y = torch.as_tensor(np.asarray(y), device=device)

    def permuted(self, order):
        """The rows in ``order``: (X, y), X dense or (indptr_host, indptr, indices, values)."""
        y = self.y.index_select(0, order)
        if not self.sparse:
            return self.X.index_select(0, order), y
        lengths = (self.indptr[1:] - self.indptr[:-1]).index_select(0, order)
        indptr = torch.zeros(self.n_rows + 1, dtype=torch.int64, device=order.device)
        torch.cumsum(lengths, 0, out=indptr[1:])
        # Source position of every non-zero of the permuted matrix.
        starts = torch.repeat_interleave(self.indptr.index_select(0, order), lengths)
        shifts = torch.repeat_interleave(indptr[:-1], lengths)
        source = starts + torch.arange(len(starts), device=order.device) - shifts
        parts = (
            indptr.cpu().numpy(),  # batch bounds without a device sync per batch
            indptr,
            self.indices.index_select(0, source),
            self.values.index_select(0, source),
        )
        return parts, y


def dense_batch(X, start, stop):
    """Rows ``start:stop`` of a dense training tensor, as float32."""
    batch = X[start:stop]
    return batch.float() if batch.dtype != torch.float32 else batch


def sparse_batch(parts, start, stop):
    """Rows ``start:stop`` of permuted CSR parts: (offsets, columns, values) views."""
    indptr_host, indptr, indices, values = parts
    first, last = int(indptr_host[start]), int(indptr_host[stop])
    offsets = indptr[start:stop] - first
    return offsets, indices[first:last], values[first:last]
