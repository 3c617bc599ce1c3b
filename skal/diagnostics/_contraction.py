"""Contraction of the gradient discrepancy during training (paper 001, Appendix A).

For a fixed sample ``S`` (``n`` labeled rows) and a random subset ``S_J`` of it
(``m`` rows), the appendix tracks over epochs ``t``

    ||DF(S, S_J, t)|| = ||grad f(theta_t; S) - grad f(theta_t; S_J)||,

where ``f(theta; T)`` is the mean loss over ``T`` with the true labels (Eq. 2) and
the gradient covers the full parameter vector (Eq. 7). Proposition A.1 gives
conditions under which it eventually decreases; Figure 6 shows it on three sets.
"""

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.ticker import FuncFormatter
from sklearn.utils import check_random_state
from skorch.callbacks import Callback

from .. import gradients
from .._arrays import chunks
from .._torch import eval_mode
from .._validation import check_pool
from ..nets._batches import rows_to_tensor
from ._common import panel_grid


class GradientDiscrepancyMonitor(Callback):
    """skorch callback recording ``||grad f(S) - grad f(S_J)||`` every epoch.

    ``f`` is the mean cross-entropy of the module's outputs (taken as logits)
    with the true labels; the gradient is over every trainable parameter of
    ``net.module_``, computed in eval mode (dropout off) after the epoch's last
    update. Since ``S_J`` is a subset of ``S``, the difference of the two mean
    gradients is the gradient of one weighted loss, ``sum_i w_i l_i`` with
    ``w_i = 1/n - 1/m`` on ``S_J`` and ``1/n`` elsewhere: one backward pass per
    chunk of ``S`` per epoch.

    The value before training is kept in ``initial_discrepancy_`` and each
    epoch's value in ``discrepancies_`` and in ``net.history`` (column
    ``name``). Cloning a net clones its callbacks: when a clone is trained (as
    :class:`skal.ActiveLearner` does each round), read the values from the
    trained clone's ``history``, not from the monitor you passed in.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n, ...)
        The sample ``S`` (e.g. the training set, as in the appendix).
    y : array-like of shape (n,)
        Its true labels (as in ``net.classes_``).
    subset_size : int or float, default=0.5
        Size ``m`` of ``S_J``: a count, or a fraction of ``n`` in (0, 1). The
        appendix draws ``S_J`` uniformly from ``S`` without giving its size.
    random_state : int, RandomState instance or None, default=None
        Draws ``S_J`` (once, when the net is initialized).
    chunk_size : int, default=None
        Rows per forward/backward chunk; default from :func:`skal.get_config`.
    name : str, default="gradient_discrepancy"
        History column.

    Attributes
    ----------
    sample_ : ndarray or CSR matrix
        ``X`` validated (sparse input stays sparse).
    subset_indices_ : ndarray of shape (m,)
        Rows of ``S`` forming ``S_J``.
    initial_discrepancy_ : float
        The value at the initial parameters (epoch 0).
    discrepancies_ : list of float
        The value after each epoch.

    References
    ----------
    Gradient-Discrepancy Acquisition for Pool-Based Active Learning, arXiv
    2605.02609 (2026), Eq. 7, Appendix A, Proposition A.1 and Figure 6.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skal.nets import MLPClassifier
    >>> from skal.diagnostics import GradientDiscrepancyMonitor
    >>> X, y = load_iris(return_X_y=True)
    >>> monitor = GradientDiscrepancyMonitor(X, y, random_state=0)
    >>> net = MLPClassifier((8,), max_epochs=3, callbacks=[monitor], random_state=0)
    >>> len(net.fit(X, y).history[:, "gradient_discrepancy"])
    3
    """

    def __init__(
        self,
        X,
        y,
        *,
        subset_size=0.5,
        random_state=None,
        chunk_size=None,
        name="gradient_discrepancy",
    ):
        self.X = X
        self.y = y
        self.subset_size = subset_size
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.name = name

    def initialize(self):
        """Draw ``S_J`` and clear the recorded values."""
        self.sample_ = check_pool(self.X, name="X", owner=type(self).__name__)
        n = self.sample_.shape[0]
        if len(self.y) != n:
            raise ValueError(f"X has {n} rows but y has {len(self.y)} labels.")
        m = _subset_count(self.subset_size, n)
        rng = check_random_state(self.random_state)
        self.subset_indices_ = np.sort(rng.choice(n, m, replace=False))
        self.initial_discrepancy_ = None
        self.discrepancies_ = []
        return self

    def on_train_begin(self, net, **kwargs):
        if self.initial_discrepancy_ is None:  # not again on partial_fit
            self.initial_discrepancy_ = self.discrepancy(net)

    def on_epoch_end(self, net, **kwargs):
        value = self.discrepancy(net)
        self.discrepancies_.append(value)
        net.history.record(self.name, value)

    def discrepancy(self, net):
        """``||grad f(S) - grad f(S_J)||`` at the net's current parameters.

        Parameters
        ----------
        net : initialized skorch net

        Returns
        -------
        value : float
        """
        flush = getattr(net.optimizer_, "flush", None)
        if flush is not None:
            flush()  # lazy sparse SGD owes rows their momentum steps: read up-to-date
        module = net.module_
        params = [p for p in module.parameters() if p.requires_grad]
        weights = self._loss_weights()
        labels = torch.as_tensor(gradients.class_indices(net, np.asarray(self.y)))
        total = [torch.zeros(p.shape, dtype=torch.float64) for p in params]
        with eval_mode(module):
            for rows in chunks(len(weights), self.chunk_size):
                x = rows_to_tensor(self.sample_, rows).to(net.device)
                with torch.enable_grad():
                    logits = _logits(module(x), len(net.classes_))
                    losses = torch.nn.functional.cross_entropy(
                        logits, labels[rows].to(net.device), reduction="none"
                    )
                    weighted = (losses.double() * weights[rows].to(net.device)).sum()
                    grads = torch.autograd.grad(weighted, params, allow_unused=True)
                for acc, g in zip(total, grads):
                    if g is not None:
                        acc += (g.to_dense() if g.is_sparse else g).double().cpu()
        return float(torch.sqrt(sum(g.pow(2).sum() for g in total)))

    def _loss_weights(self):
        n, m = len(self.y), len(self.subset_indices_)
        weights = torch.full((n,), 1.0 / n, dtype=torch.float64)
        weights[torch.as_tensor(self.subset_indices_)] -= 1.0 / m
        return weights


def _logits(output, n_classes):
    if not isinstance(output, torch.Tensor) or output.shape[-1] != n_classes:
        raise TypeError(
            f"GradientDiscrepancyMonitor needs a module whose forward returns the "
            f"(N, {n_classes}) logits, as skal's nets do; got "
            f"{type(output).__name__} {getattr(output, 'shape', '')}."
        )
    return output


def _subset_count(subset_size, n):
    if isinstance(subset_size, (float, np.floating)) and 0 < subset_size < 1:
        m = int(round(subset_size * n))
    elif isinstance(subset_size, (int, np.integer)) and not isinstance(
        subset_size, bool
    ):
        m = int(subset_size)
    else:
        raise ValueError(
            f"subset_size must be a count or a fraction in (0, 1), got {subset_size!r}."
        )
    if not 1 <= m < n:
        raise ValueError(
            f"S_J must hold between 1 and n - 1 = {n - 1} rows of S (a proper "
            f"subset); subset_size={subset_size!r} gives {m}."
        )
    return m


def plot_discrepancy_curves(curves, *, log=True):
    """``||DF(S, S_J, t)||`` over epochs, one panel per run (paper 001, Figure 6).

    Parameters
    ----------
    curves : dict of str to GradientDiscrepancyMonitor or array-like
        Per panel title, a fitted monitor (its epoch-0 value is drawn too) or the
        values of epochs ``1..T``.
    log : bool, default=True
        Logarithmic value axis.

    Returns
    -------
    fig : matplotlib.figure.Figure

    References
    ----------
    Gradient-Discrepancy Acquisition for Pool-Based Active Learning, arXiv
    2605.02609 (2026), Appendix A and Figure 6.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError(
            "curves must be a non-empty dict {title: GradientDiscrepancyMonitor "
            "or values per epoch}."
        )
    fig, axes = panel_grid(len(curves), ncols=min(len(curves), 3), height=3.2)
    for ax, (title, curve) in zip(axes, curves.items()):
        epochs, values = _curve_points(curve, title)
        ax.plot(epochs, values, color="tab:blue", linewidth=1.5)
        peak = int(np.argmax(values))
        ax.plot(
            epochs[peak],
            values[peak],
            "o",
            color="tab:red",
            label=f"max at epoch {epochs[peak]}",
        )
        ax.plot(
            epochs[-1],
            values[-1],
            "s",
            color="black",
            label=f"last: {values[-1] / values[peak]:.2g} x max",
        )
        if log:
            _log_axis(ax, values)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(r"$\|\nabla f(S) - \nabla f(S_J)\|$")
        ax.legend(frameon=False, fontsize="small")
    return fig


def _log_axis(ax, values):
    """Log scale labeled with plain numbers (0.25, not 2.5 x 10^-1).

    Minor ticks are labeled on short ranges only: all of them within a decade,
    those at 2 and 5 within two decades.
    """
    ax.set_yscale("log")
    decades = np.log10(values.max() / values.min())
    labeled = set(range(1, 10)) if decades <= 1 else {2, 5} if decades <= 2 else set()

    def minor_label(value, _):
        leading = int(round(value / 10 ** np.floor(np.log10(value))))
        return f"{value:.3g}" if leading in labeled else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor_label))


def _curve_points(curve, title):
    if isinstance(curve, GradientDiscrepancyMonitor):
        if not getattr(curve, "discrepancies_", None):
            raise ValueError(f"The monitor for {title!r} recorded no epoch yet.")
        values = [curve.initial_discrepancy_, *curve.discrepancies_]
        start = 0
    else:
        values, start = list(curve), 1
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0 or not np.all(np.isfinite(values)):
        raise ValueError(
            f"The curve {title!r} must be a non-empty 1-D sequence of finite values."
        )
    return np.arange(start, start + len(values)), values
