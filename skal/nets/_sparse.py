"""A first layer for sparse input, and SGD with momentum that updates it lazily.

On TF-IDF input (tens of thousands of features, ~100 non-zeros per row) the first
layer holds almost all the weights, yet a mini-batch touches only the rows of the
features present in it. :class:`SparseInputLinear` computes the layer from a torch
sparse CSR batch with ``embedding_bag`` and yields a sparse gradient over those rows;
:class:`LazyMomentumSGD` then applies SGD with momentum to those rows only, and owes
every other row its momentum-only steps, which it applies in closed form when the row
is next read (:meth:`LazyMomentumSGD.catch_up`, :meth:`LazyMomentumSGD.flush`).
:class:`LazySparseMixin` is how :class:`skal.nets.SkalNetClassifier` uses them:
it chooses the optimizer, keeps batches sparse, catches rows up before each
forward pass and flushes them whenever the weights are read.
"""

import math

import torch
import torch.nn.functional as F
from scipy import sparse
from skorch.callbacks import (
    EpochScoring,
    EpochTimer,
    LRScheduler,
    PassthroughScoring,
    PrintLog,
)
from torch import nn

from ._batches import BatchSlicer
from ._lean import sparse_batch

# Epoch-end callbacks that never read the weights after a training epoch: with
# these alone (skorch's defaults) rows stay lazy between training epochs. Validation
# scoring reads predictions made in the validation epoch, which flushes first.
_NO_WEIGHT_READS = {
    EpochTimer: lambda callback: True,
    LRScheduler: lambda callback: True,
    PassthroughScoring: lambda callback: True,
    PrintLog: lambda callback: True,
    EpochScoring: lambda callback: not callback.on_train,
}
# torch.optim.SGD arguments LazyMomentumSGD accepts (it rejects non-default values
# of all but lr and momentum).
_LAZY_SGD_ARGS = {"lr", "momentum", "dampening", "weight_decay", "nesterov"}


class SparseInputLinear(nn.Module):
    """``nn.Linear`` that also accepts torch sparse CSR input.

    The weight is stored transposed, shape ``(in_features, out_features)``, so the
    weights of one input feature are one contiguous row. On sparse CSR input the
    output is ``embedding_bag`` over the non-zeros (weighted by their values) plus the
    bias, and the weight gradient is sparse: it holds only the rows of the features
    present in the batch. Dense input gives ``X @ weight + bias`` and a dense gradient.

    Parameters
    ----------
    in_features : int
    out_features : int

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (in_features, out_features)
        Initialized with exactly the values ``nn.Linear(in_features, out_features)``
        draws from the same random state (uniform in +-1/sqrt(in_features)),
        transposed.
    bias : torch.nn.Parameter of shape (out_features,)
        Uniform in +-1/sqrt(in_features), as in ``nn.Linear``.
    """

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        # Draw in nn.Linear's (out, in) layout and order, so seeded networks get the
        # same initial weights as with nn.Linear.
        weight = torch.empty(self.out_features, self.in_features)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        self.weight.copy_(weight.t())
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, X):
        if isinstance(X, GatheredBatch):
            # Lean training step: the weight rows of the batch's features were
            # gathered (and caught up) by LazyMomentumSGD.gather_rows.
            out = F.embedding_bag(
                X.local_columns,
                X.weight_rows,
                X.offsets,
                mode="sum",
                per_sample_weights=X.values,
            )
            return out + self.bias
        if X.layout == torch.sparse_csr:
            offsets = X.crow_indices()[:-1]
            out = F.embedding_bag(
                X.col_indices(),
                self.weight,
                offsets,
                mode="sum",
                sparse=True,
                per_sample_weights=X.values(),
            )
            return out + self.bias
        return F.linear(X, self.weight.t(), self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class GatheredBatch:
    """A CSR batch whose columns index a gathered block of first-layer weight rows.

    What :class:`SparseInputLinear` computes in skal's lean training step: the
    optimizer gathers the rows ``columns`` of the weight once per step
    (:meth:`LazyMomentumSGD.gather_rows`), the forward pass reads that small block
    (``weight_rows``, a leaf tensor whose gradient is dense), and the step writes it
    back. No sparse gradient is formed, coalesced or re-indexed.

    Parameters
    ----------
    offsets : LongTensor of shape (n_rows,)
        Start of each row in ``local_columns`` (CSR row pointers without the last).
    local_columns : LongTensor of shape (nnz,)
        Position of each non-zero's feature in ``columns``.
    values : Tensor of shape (nnz,)
    weight_rows : Tensor of shape (len(columns), out_features)
    """

    def __init__(self, offsets, local_columns, values, weight_rows):
        self.offsets = offsets
        self.local_columns = local_columns
        self.values = values
        self.weight_rows = weight_rows

    def __len__(self):
        return len(self.offsets)


class LazyMomentumSGD(torch.optim.Optimizer):
    """SGD with momentum, applied lazily and exactly to rows with sparse gradients.

    For a parameter with a dense gradient this is ``torch.optim.SGD`` (no dampening,
    no Nesterov, no weight decay): ``v = mu * v + g``, ``w -= lr * v``. For a
    parameter with a sparse gradient (e.g. :class:`SparseInputLinear`'s weight on
    sparse input) only the rows present in the gradient are updated. A row absent
    for ``k`` steps owes ``k`` momentum-only steps, applied in closed form when it is
    next touched: ``v <- mu**k * v`` and ``w <- w - lr * v * mu (1 - mu**k) / (1 - mu)``.
    Each row records the last step applied to it. The result equals ``torch.optim.SGD``
    on the dense gradient up to float rounding; a row first touched at step ``t`` gets
    ``v = g_t`` as in torch (its velocity was zero before).

    Stale rows must be caught up before the weights are read: call
    :meth:`catch_up` with the rows of a batch before its forward pass, and
    :meth:`flush` before predicting, validating or saving.

    A change of ``lr`` or ``momentum`` between steps (LR schedulers) stays exact: the
    step that sees the change first catches every row up with the old values. A
    schedule that changes ``lr`` at every step thus costs a dense update per step.

    Parameters
    ----------
    params : iterable of tensors or dicts
        Parameters or parameter groups, as for any torch optimizer.
    lr : float, default=1e-3
        Learning rate.
    momentum : float, default=0
        Momentum factor ``mu``, in ``[0, 1)``.
    dampening, weight_decay : float, default=0
        Must be 0 (only accepted so that SGD's arguments can be passed through).
    nesterov : bool, default=False
        Must be False.

    Raises
    ------
    ValueError
        For a negative ``lr``, ``momentum`` outside ``[0, 1)``, or non-zero
        ``dampening``/``weight_decay`` or ``nesterov=True`` in any parameter group.
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["lr"] < 0:
            raise ValueError(f"Invalid learning rate: {group['lr']}.")
        if not 0 <= group["momentum"] < 1:
            raise ValueError(f"momentum must be in [0, 1), got {group['momentum']}.")
        if group["dampening"] or group["weight_decay"] or group["nesterov"]:
            raise ValueError(
                "LazyMomentumSGD supports neither dampening, weight decay nor "
                "Nesterov momentum; use torch.optim.SGD for those."
            )

    @torch.no_grad()
    def catch_up(self, param, rows):
        """Apply the momentum-only steps owed by ``param[rows]``.

        Parameters
        ----------
        param : torch.nn.Parameter
            A parameter of this optimizer (others are ignored).
        rows : LongTensor
            Row indices; repeats are allowed.
        """
        if "row_step" in self.state.get(param, {}):
            self._catch_up(param, torch.unique(rows))

    @torch.no_grad()
    def gather_rows(self, param, rows):
        """Caught-up copy of ``param[rows]`` to train in place of ``param``.

        The fused form of :meth:`catch_up` + a sparse step, used by skal's lean
        training loop: the returned leaf tensor (``rows`` must be unique) takes part
        in the forward pass instead of ``param``; the next :meth:`step` applies SGD
        with momentum to it from its gradient and writes the rows back. The
        arithmetic is that of :meth:`catch_up` and the sparse update, so the
        trajectory equals ``torch.optim.SGD``'s up to float rounding.

        Parameters
        ----------
        param : torch.nn.Parameter
            A parameter of this optimizer.
        rows : LongTensor of unique row indices

        Returns
        -------
        weight_rows : Tensor of shape (len(rows), ...) with ``requires_grad=True``
        """
        group = next(
            g for g in self.param_groups if any(p is param for p in g["params"])
        )
        hyper = (float(group["lr"]), float(group["momentum"]))
        state = self._row_state(param, hyper)
        if state["hyper"] != hyper:  # owed steps use the old lr/momentum
            self._catch_up(param)
            state["hyper"] = hyper
        owed = state["step"] - state["row_step"].index_select(0, rows)
        velocity = state["momentum_buffer"].index_select(0, rows)
        weight_rows = param.index_select(0, rows)
        if bool((owed > 0).any()):
            lr, mu = hyper
            decay = mu ** owed.double()
            moved = -lr * mu * (1 - decay) / (1 - mu)
            weight_rows.addcmul_(velocity, moved.to(param.dtype)[:, None])
            velocity.mul_(decay.to(velocity.dtype)[:, None])
        state["gathered"] = (rows, weight_rows, velocity)
        return weight_rows.requires_grad_()

    def _row_state(self, param, hyper):
        state = self.state[param]
        if "row_step" not in state:
            # v_0 = 0: the first mu * v + g gives v = g, as torch does. After dense
            # steps (a velocity everywhere) every row counts as touched (see flush).
            moved = "momentum_buffer" in state
            state.setdefault("momentum_buffer", torch.zeros_like(param))
            state.setdefault("step", 0)
            state["row_step"] = torch.full(
                (len(param),), state["step"], device=param.device
            )
            state["hyper"] = hyper
            state["touched"] = torch.full(
                (len(param),), moved, dtype=torch.bool, device=param.device
            )
        elif "touched" not in state:  # a state saved by an older skal: assume all
            state["touched"] = torch.ones(
                len(param), dtype=torch.bool, device=param.device
            )
        return state

    def _apply_gathered(self, param, state):
        """SGD with momentum on the gathered rows, then write them back."""
        rows, weight_rows, velocity = state.pop("gathered")
        if weight_rows.grad is None:
            return
        lr, mu = state["hyper"]
        state["step"] += 1
        velocity.mul_(mu).add_(weight_rows.grad)
        weight_rows = weight_rows.detach().add_(velocity, alpha=-lr)
        param.index_copy_(0, rows, weight_rows)
        state["momentum_buffer"].index_copy_(0, rows, velocity)
        state["row_step"].index_fill_(0, rows, state["step"])
        state["touched"] = state["touched"].bool().index_fill_(0, rows, True)

    @torch.no_grad()
    def flush(self):
        """Catch up every row of every parameter, so the weights can be read.

        Only rows that ever had a gradient can owe steps (the velocity of the
        others is zero), so the cost grows with the features seen, not the
        vocabulary.
        """
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state.get(param, {})
                if "row_step" not in state:
                    continue
                if "touched" not in state:  # e.g. a state saved by an older skal
                    self._catch_up(param)
                    continue
                # .bool(): load_state_dict may cast state tensors to floats.
                stale = state["touched"].bool() & (state["row_step"] < state["step"])
                rows = stale.nonzero().squeeze(1)
                if len(rows):
                    self._catch_up(param, rows)

    def _catch_up(self, param, rows=None):
        """Apply the steps owed by ``param[rows]``; all rows, in place, if None."""
        state = self.state[param]
        row_step = state["row_step"] if rows is None else state["row_step"][rows]
        # row_step may be float after load_state_dict (torch casts state tensors to
        # the parameter's dtype): exact up to 2**24 steps in float32.
        owed = state["step"] - row_step
        stale = owed > 0
        if not stale.any():
            return
        if rows is not None:
            rows, owed = rows[stale], owed[stale]
        lr, mu = state["hyper"]
        decay = mu ** owed.double()
        moved = -lr * mu * (1 - decay) / (1 - mu)  # -lr (mu + mu**2 + ... + mu**owed)
        buffer = state["momentum_buffer"]
        decay, moved = decay.to(buffer.dtype)[:, None], moved.to(param.dtype)[:, None]
        if rows is None:
            # Rows already up to date get decay 1 and moved 0: unchanged, exactly.
            param.addcmul_(buffer, moved)
            buffer.mul_(decay)
            state["row_step"].fill_(state["step"])
            return
        # index_select is several times faster than buffer[rows] for row gathers.
        velocity = buffer.index_select(0, rows)
        param.index_add_(0, rows, velocity * moved)
        buffer.index_copy_(0, rows, velocity.mul_(decay))
        state["row_step"][rows] = state["step"]

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step (see the class docstring).

        Parameters
        ----------
        closure : callable, default=None
            Re-evaluates the model and returns the loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = (float(group["lr"]), float(group["momentum"]))
            plain = []  # dense gradients, no lazy rows: one multi-tensor update
            for param in group["params"]:
                state = self.state.get(param, {})
                if "gathered" in state:
                    self._apply_gathered(param, state)
                elif param.grad is None:
                    continue
                elif param.grad.is_sparse or "row_step" in state:
                    self._update(param, param.grad, hyper)
                else:
                    plain.append(param)
            self._update_dense(plain, hyper)
        return loss

    def _update_dense(self, params, hyper):
        """``torch.optim.SGD``'s foreach update (as its own step) of dense parameters."""
        lr, mu = hyper
        old = [p for p in params if "momentum_buffer" in self.state[p]]
        for param in params:
            if "momentum_buffer" not in self.state[param]:  # first step: v = g
                self.state[param]["momentum_buffer"] = param.grad.detach().clone()
        if old:
            buffers = [self.state[p]["momentum_buffer"] for p in old]
            torch._foreach_mul_(buffers, mu)
            torch._foreach_add_(buffers, [p.grad for p in old])
        for param in params:
            state = self.state[param]
            state["step"] = state.get("step", 0) + 1
        if params:
            buffers = [self.state[p]["momentum_buffer"] for p in params]
            torch._foreach_add_(params, buffers, alpha=-lr)

    def _update(self, param, grad, hyper):
        state = self.state[param]
        lr, mu = hyper
        if grad.is_sparse:
            grad = grad.coalesce()
            self._row_state(param, hyper)
        if "row_step" in state:
            if not grad.is_sparse or state["hyper"] != hyper:
                # A dense step touches every row; owed steps use the old lr/momentum.
                self._catch_up(param)
                state["hyper"] = hyper
            else:  # a no-op when the caller caught up before the forward pass
                self._catch_up(param, grad.indices()[0])
        state["step"] = state.get("step", 0) + 1
        if grad.is_sparse:
            rows, values = grad.indices()[0], grad.values()
            buffer = state["momentum_buffer"]
            velocity = buffer.index_select(0, rows).mul_(mu).add_(values)
            buffer.index_copy_(0, rows, velocity)
            param.index_add_(0, rows, velocity, alpha=-lr)
            state["row_step"][rows] = state["step"]
            state["touched"] = state["touched"].bool().index_fill_(0, rows, True)
            return
        buffer = state.get("momentum_buffer")
        if buffer is None:
            buffer = state["momentum_buffer"] = grad.detach().clone()
        else:
            buffer.mul_(mu).add_(grad)
        param.add_(buffer, alpha=-lr)
        if "row_step" in state:
            state["row_step"].fill_(state["step"])
            state["touched"] = torch.ones_like(state["row_step"], dtype=torch.bool)


class LazySparseMixin:
    """Sparse input trained with :class:`LazyMomentumSGD` (see the module docstring).

    Cooperative mixin of :class:`skal.nets.SkalNetClassifier`. When the training
    input is sparse, the module sets ``accepts_sparse_input = True`` and the
    optimizer is plain ``torch.optim.SGD`` (no weight decay, dampening or
    Nesterov), the optimizer becomes :class:`LazyMomentumSGD` and training
    batches stay sparse. Stale weight rows are caught up before each forward pass
    (skorch's loop) or gathered caught up (the lean loop, :class:`GatheredBatch`),
    and every row is flushed after each training epoch and at the end of training,
    so validation, callbacks and predictions read current weights.

    Parameters
    ----------
    lazy_sparse_updates : bool, default=True
        False keeps ``torch.optim.SGD``: sparse batches are then densified.
    """

    def __init__(self, *args, lazy_sparse_updates=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_sparse_updates = lazy_sparse_updates

    def _inspect_training_input(self, X):
        super()._inspect_training_input(X)
        self.sparse_input_ = sparse.issparse(X)  # chooses the optimizer at initialize

    def initialize_optimizer(self, *args, **kwargs):
        """Create the optimizer; plain SGD on sparse input becomes LazyMomentumSGD."""
        super().initialize_optimizer(*args, **kwargs)
        if not (
            self.lazy_sparse_updates
            and getattr(self, "sparse_input_", False)
            and getattr(self.module_, "accepts_sparse_input", False)
            and self.optimizer is torch.optim.SGD
        ):
            return self
        params = self.get_all_learnable_params()
        opt_args, opt_kwargs = self.get_params_for_optimizer("optimizer", params)
        if set(opt_kwargs) <= _LAZY_SGD_ARGS:
            try:
                self.optimizer_ = LazyMomentumSGD(*opt_args, **opt_kwargs)
            except ValueError:
                pass  # weight decay, Nesterov, dampening: keep the dense SGD
        return self

    def _lazy(self):
        return isinstance(getattr(self, "optimizer_", None), LazyMomentumSGD)

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; batches stay sparse when the module accepts them.

        Training batches stay sparse only with :class:`LazyMomentumSGD`: other
        optimizers get dense batches, hence dense gradients they all support.
        """
        iterator = super().get_iterator(dataset, training=training)
        if isinstance(iterator, BatchSlicer):
            accepts = getattr(self.module_, "accepts_sparse_input", False)
            iterator.keep_sparse = accepts and (self._lazy() or not training)
        return iterator

    def train_step_single(self, batch, **fit_params):
        """The net's step, after catching up the weight rows the batch will read."""
        Xi = batch[0]
        if self._lazy() and getattr(Xi, "layout", None) == torch.sparse_csr:
            rows = Xi.col_indices()
            for layer in self.module_.modules():
                if isinstance(layer, SparseInputLinear):
                    self.optimizer_.catch_up(layer.weight, rows)
        return super().train_step_single(batch, **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """The net's epoch, with every weight brought up to date before it is read.

        Validation epochs flush first. After a training epoch the flush runs only
        when an ``on_epoch_end`` callback may read the weights (scoring,
        checkpoints, user callbacks): with skorch's default callbacks, which read
        the history alone, rows stay lazy across epochs and :meth:`on_train_end`
        flushes once. A flush touches every row seen so far, so flushing after
        each epoch cost ~20 % of a small 20 Newsgroups fit.
        """
        if not training and iterator is not None and self._lazy():
            self.optimizer_.flush()  # None: no validation data this fit
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and self._lazy() and self._epoch_end_may_read_weights():
            self.optimizer_.flush()

    def _epoch_end_may_read_weights(self):
        """Whether a callback that may read the weights runs at epoch end."""
        for _, callback in getattr(self, "callbacks_", []):
            reads_none = _NO_WEIGHT_READS.get(type(callback))
            if reads_none is None or not reads_none(callback):
                return True
        return False

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Also after an interrupted epoch (skorch catches KeyboardInterrupt).
        if self._lazy():
            self.optimizer_.flush()
        return super().on_train_end(net, X=X, y=y, **kwargs)

    # --- the lean loop's sparse batches (skal/nets/_lean.py) ------------------------
    def _lean_supports_input(self, iterator):
        """Sparse batches train lean only as gathered rows of one SparseInputLinear."""
        if sparse.issparse(iterator.dataset.X) and iterator.keep_sparse:
            return self._sparse_layer() is not None
        return super()._lean_supports_input(iterator)

    def _sparse_layer(self):
        """The module's single SparseInputLinear when LazyMomentumSGD trains it."""
        layers = [m for m in self.module_.modules() if isinstance(m, SparseInputLinear)]
        if not self._lazy() or len(layers) != 1:
            return None
        return layers[0]

    def _lean_batch(self, X, start, stop):
        if not isinstance(X, tuple):  # dense
            return super()._lean_batch(X, start, stop)
        offsets, columns, values = sparse_batch(X, start, stop)
        rows, local = torch.unique(columns, return_inverse=True)
        weight = self.optimizer_.gather_rows(self._sparse_layer().weight, rows)
        return GatheredBatch(offsets, local, values, weight)
