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
iterator, no subclass overriding a batch-level method. Otherwise skorch's loop runs.
:class:`LeanTrainingMixin` puts it into :class:`skal.nets.SkalNetClassifier`.
"""

import numpy as np
import torch
from scipy import sparse
from skorch.callbacks import Callback, EpochScoring, LRScheduler

from ._batches import BatchSlicer

# Callbacks known to ignore training batches although they define batch hooks.
_EPOCH_LEVEL = {
    EpochScoring: lambda cb: not cb.on_train,  # caches validation predictions only
    LRScheduler: lambda cb: cb.step_every != "batch",
}
_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_grad_computed")
# Net methods that run per training batch: a subclass overriding one gets skorch's loop.
_BATCH_METHODS = ("train_step", "train_step_single", "infer", *_BATCH_HOOKS)


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


class LeanTrainingMixin:
    """Training epochs in the lean loop whenever that is exactly skorch's loop.

    Cooperative mixin of :class:`skal.nets.SkalNetClassifier`. Dense batches go
    through the net's ``_prepare_training_batch`` hook (CNN augmentation), as in
    skorch's step; other input kinds are handled by mixins earlier in the method
    order, which override :meth:`_lean_supports_input` and :meth:`_lean_batch`
    (sparse input: :class:`skal.nets._sparse.LazySparseMixin`).

    Parameters
    ----------
    lean_training : bool, default=True
        False always uses skorch's loop.
    """

    def __init__(self, *args, lean_training=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.lean_training = lean_training

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, or the lean one for training epochs where they agree."""
        if training and self._trains_lean(iterator, step_fn, fit_params):
            self._run_lean_epoch(iterator)
        else:
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def _trains_lean(self, iterator, step_fn, fit_params):
        """Whether the lean epoch does exactly what skorch's loop would do here."""
        # skal's own net (the class that mixes this in) is written for the lean
        # loop; a subclass of it that changes a batch-level method is not.
        cls = type(self)
        assembled = next(c for c in cls.__mro__ if LeanTrainingMixin in c.__bases__)
        overridden = any(
            getattr(cls, name) is not getattr(assembled, name)
            for name in _BATCH_METHODS
        )
        return (
            self.lean_training
            and not overridden
            and not fit_params
            and type(iterator) is BatchSlicer
            and getattr(step_fn, "__func__", None) is assembled.train_step
            and not per_batch_callbacks(self)
            and self._lean_supports_input(iterator)
        )

    def _lean_supports_input(self, iterator):
        """Dense input only here (skorch densifies sparse batches one by one)."""
        return not sparse.issparse(iterator.dataset.X)

    def _lean_data(self, dataset):
        """The training set on the device, converted once per fit."""
        cached = getattr(self, "_lean_data_", None)
        if cached is None or cached[0] is not dataset:
            tensors = TrainingTensors(dataset.X, dataset.y, self.device)
            self._lean_data_ = cached = (dataset, tensors)
        return cached[1]

    def _run_lean_epoch(self, iterator):
        data = self._lean_data(iterator.dataset)
        n, batch_size = data.n_rows, iterator.batch_size
        # The same draw as BatchSlicer, so both loops see the same batches.
        order = torch.randperm(n) if iterator.shuffle else torch.arange(n)
        X, y = data.permuted(order.to(data.y.device))
        self._set_training(True)
        self.history.new_batch()
        losses, sizes = [], []
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if iterator.drop_last and stop - start < batch_size:
                break
            # Kept on the device: no synchronization per batch.
            losses.append(self._lean_step(X, y[start:stop], start, stop).detach())
            sizes.append(stop - start)
        if losses:
            # One entry whose size-weighted mean is skorch's per-epoch train_loss.
            weights = torch.tensor(sizes, dtype=torch.float64)
            total = torch.stack(losses).double().cpu() @ weights
            self.history.record_batch("train_loss", float(total) / sum(sizes))
            self.history.record_batch("train_batch_size", sum(sizes))
        self.history.record("train_batch_count", len(losses))

    def _lean_step(self, X, y, start, stop):
        for name in self._optimizers:
            getattr(self, name + "_").zero_grad(set_to_none=True)
        Xi = self._lean_batch(X, start, stop)
        y_pred = self.module_(Xi)
        loss = self.get_loss(y_pred, y, X=Xi, training=True)
        loss.backward()
        for name in self._optimizers:
            getattr(self, name + "_").step()
        return loss

    def _lean_batch(self, X, start, stop):
        """Rows ``start:stop`` of the permuted training set, as the module gets them."""
        return self._prepare_training_batch(dense_batch(X, start, stop))

    def on_train_end(self, net, X=None, y=None, **kwargs):
        self._lean_data_ = None  # release the device copy of the training set
        return super().on_train_end(net, X=X, y=y, **kwargs)
