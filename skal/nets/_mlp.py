"""The multilayer perceptron of the papers (hidden layers 512 and 256, ReLU)."""

import numpy as np
import torch
from scipy import sparse
from torch import nn

from ._base import SkalNetClassifier
from ._batches import BatchSlicer
from ._sparse import SparseInputLinear


class MLPModule(nn.Module):
    """Fully connected network: hidden ReLU layers, then a linear output layer.

    Parameters
    ----------
    n_features : int
        Input dimension (inferred from the data by :class:`MLPClassifier`).
    n_classes : int
        Number of output logits.
    hidden_layer_sizes : tuple of int, default=(512, 256)
        Widths of the hidden layers; ``()`` gives multinomial logistic regression.
    dropout : float, default=0.0
        Dropout probability after each hidden activation (needed by MC-dropout).

    Attributes
    ----------
    accepts_sparse_input : bool
        True when there is a hidden layer: the first layer is then a
        :class:`~skal.nets._sparse.SparseInputLinear`, which takes dense or torch
        sparse CSR input. Without hidden layers the only layer is ``output_layer``,
        an ``nn.Linear`` (dense input only).
    """

    def __init__(
        self, n_features, n_classes, hidden_layer_sizes=(512, 256), dropout=0.0
    ):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            linear = SparseInputLinear if not layers else nn.Linear
            layers += [linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        self.hidden = nn.Sequential(*layers)
        self.output_layer = nn.Linear(width, n_classes)
        self.accepts_sparse_input = bool(hidden_layer_sizes)

    @property
    def default_feature_layers(self):
        """Names of the hidden activations: what a loss-prediction module reads."""
        return [
            name
            for name, m in self.hidden.named_modules(prefix="hidden")
            if isinstance(m, nn.ReLU)
        ]

    def features(self, X):
        """Penultimate representation ``h`` (the input of ``output_layer``)."""
        return self.hidden(X)

    def forward(self, X):
        return self.output_layer(self.features(X))


class MLPClassifier(SkalNetClassifier):
    """skorch classifier with the papers' MLP, for dense, DataFrame or CSR input.

    A ``NeuralNetClassifier`` whose module is :class:`MLPModule` (sizes inferred
    from the data), trained with cross-entropy and SGD with momentum 0.9. Sparse
    CSR input (TF-IDF) is never densified: each mini-batch is sliced and fed as a
    torch sparse CSR tensor to the first layer, and SGD with momentum updates only
    the first-layer weights of the features present in the batch, lazily yet exactly
    (:class:`~skal.nets._sparse.LazyMomentumSGD`).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(512, 256)
        Widths of the hidden layers (routed to ``module__hidden_layer_sizes``).
    dropout : float, default=0.0
        Dropout after each hidden layer (``module__dropout``).
    lr : float, default=0.01
        SGD learning rate. Stable on a few hundred labels with momentum 0.9; too
        high a rate makes small-set models collapse (see DESIGN.md).
    first_layer_lr_scale : 'auto' or float, default='auto'
        Multiplier of ``lr`` for the first layer's weight. The first layer's
        gradient is ``delta x^T``, so one step moves a pre-activation by
        ``lr ||x||^2 delta``: its learning speed scales with the squared size of the
        input entries. ``'auto'`` is ``1 / mean(x_ij^2 over the non-zero entries)``
        of the training input, the rate at which the network would train if those
        entries had unit mean square: ~1 on standardized features (the optimizer
        of paper 001 as printed), ~70 on L2-normalized TF-IDF rows (100k columns,
        ~100 small non-zeros). Without it, SGD at ``lr=0.01`` does not move the
        first layer on TF-IDF input within 30 epochs and the network scores chance
        (0.05 on 300 20 Newsgroups documents; ``benchmarks/defaults_learn.py``).
        ``1.0`` gives paper 001's optimizer on any input. 'auto' is clipped to
        [1e-4, 1e4] (inputs of extreme scale should be rescaled instead).
    max_epochs : int, default=30
        Epochs per fit (paper 001 uses 30-60).
    batch_size : int, default=8
        SGD mini-batch size, as in paper 001: small labeled sets still get enough
        steps per epoch. Larger batches train faster on big labeled sets.
    optimizer__momentum : float, default=0.9
        SGD momentum (skorch routes it to the optimizer).
    criterion__label_smoothing : float, default=0.1
        Label smoothing of the cross-entropy (skorch routes it to the criterion;
        ignored by a criterion without that argument). Paper 001 uses none
        (``0.0``). Once a small labeled set is fitted, plain cross-entropy keeps
        growing the margins along whatever separates those few rows, and test
        accuracy falls: on 300 20 Newsgroups documents it peaks at ~0.35 after 10
        epochs and ends at 0.25 after 30 (``LogisticRegression(C=10)``: 0.31).
        Smoothed targets have a finite optimum, so training stops there: 0.33 at
        30 epochs, and no loss on ISOLET, digits or MNIST (slight gains;
        ``benchmarks/defaults_learn.py``). Paper 001's optimizer and loss as
        printed: ``first_layer_lr_scale=1.0, criterion__label_smoothing=0.0``.
    lazy_sparse_updates : bool, default=True
        On sparse input, replace ``torch.optim.SGD`` by its exact lazy equivalent
        :class:`~skal.nets._sparse.LazyMomentumSGD`. Applies only to SGD without
        weight decay, dampening or Nesterov momentum and to networks with a hidden
        layer; otherwise (or when False) each batch is densified and every weight
        updated, which gives the same result more slowly.
    classes : array-like, default=None
        Fixed label set; needed when the first labeled set may miss classes.
    random_state : int, RandomState or None, default=None
        Seeds weight initialization and batch shuffling.
    **kwargs
        Any other skorch ``NeuralNet`` parameter (``device``, ``callbacks``,
        ``optimizer``, ``module__*``, ``iterator_train__*``, ...).

    Attributes
    ----------
    module_ : MLPModule
        The trained network.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skal.nets import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> net = MLPClassifier(hidden_layer_sizes=(16,), max_epochs=5, random_state=0)
    >>> net.fit(X, y).predict_proba(X[:2]).shape
    (2, 3)
    """

    def __init__(
        self,
        hidden_layer_sizes=(512, 256),
        dropout=0.0,
        *,
        lr=0.01,
        max_epochs=30,
        batch_size=8,
        module=MLPModule,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        criterion__label_smoothing=0.1,
        iterator_train=BatchSlicer,
        iterator_valid=BatchSlicer,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
        classes=None,
        random_state=None,
        lazy_sparse_updates=True,
        first_layer_lr_scale="auto",
        lean_training=True,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            optimizer__momentum=optimizer__momentum,
            criterion__label_smoothing=criterion__label_smoothing,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            iterator_train__shuffle=iterator_train__shuffle,
            train_split=train_split,
            verbose=verbose,
            classes=classes,
            random_state=random_state,
            lazy_sparse_updates=lazy_sparse_updates,
            lean_training=lean_training,
            **kwargs,
        )
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.first_layer_lr_scale = first_layer_lr_scale

    def _inspect_training_input(self, X):
        super()._inspect_training_input(X)
        self.input_entry_scale_ = mean_square_of_nonzeros(X)

    def _lr_scales(self):
        """``{first-layer weight: lr multiplier}`` (see ``first_layer_lr_scale``)."""
        scale = self.first_layer_lr_scale
        if isinstance(scale, str) and scale == "auto":
            mean_square = getattr(self, "input_entry_scale_", 0.0)
            scale = 1.0 / mean_square if mean_square > 0 else 1.0
            # Inputs of denormal or huge size would give an infinite or vanishing
            # rate: beyond 1e4 either way, scale the inputs instead.
            scale = float(np.clip(scale, 1e-4, 1e4))
        elif (
            isinstance(scale, str)
            or isinstance(scale, bool)
            or not isinstance(scale, (int, float, np.integer, np.floating))
            or not (np.isfinite(scale) and scale > 0)
        ):
            raise ValueError(
                f"first_layer_lr_scale must be 'auto' or a positive number, got "
                f"{scale!r}."
            )
        if scale == 1 or not isinstance(self.module_, MLPModule):
            # A user's own module: which layer is "first" is theirs to say.
            return {}
        if not self.hidden_layer_sizes:
            return {}
        return {self.module_.hidden[0].weight: float(scale)}

    def _module_defaults(self):
        return {
            **super()._module_defaults(),
            "hidden_layer_sizes": tuple(self.hidden_layer_sizes),
            "dropout": self.dropout,
        }


def mean_square_of_nonzeros(X, max_rows=100_000):
    """Mean of ``x_ij^2`` over the non-zero entries of ``X`` (0.0 if there are none).

    Reads at most ``max_rows`` evenly spaced rows, in chunks (memmaps stay on disk).
    """
    n = X.shape[0]
    rows = np.linspace(0, n - 1, min(n, max_rows)).astype(np.int64)
    if sparse.issparse(X):
        data = np.asarray(X.tocsr()[rows].data if n > max_rows else X.data, np.float64)
        data = data[data != 0]
        return float(data @ data) / len(data) if len(data) else 0.0
    total, count = 0.0, 0
    for start in range(0, len(rows), 4096):
        chunk = np.asarray(X[rows[start : start + 4096]], dtype=np.float64)
        total += float(np.square(chunk).sum())
        count += int(np.count_nonzero(chunk))
    return total / count if count else 0.0
