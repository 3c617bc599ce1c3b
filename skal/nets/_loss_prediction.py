"""Loss prediction: an auxiliary module that learns to predict the target loss.

Learning Loss (Yoo & Kweon, CVPR 2019) and LPLgrad (paper 002) attach to the main
network a small module that reads intermediate features, each through global
average pooling (feature maps) and a fully connected layer with ReLU, concatenates
them, and outputs one scalar: the predicted loss. It is trained jointly with the
main network by a pairwise margin ranking loss.

The loss-prediction loss, and why it is not paper 002's Eq. 2 as printed
-----------------------------------------------------------------------
Learning Loss pairs the samples of a mini-batch, (i, j), and penalizes
``max(0, -sign(l_i - l_j) (l^_i - l^_j) + margin)``: only the *order* of the
predicted losses ``l^`` must match the order of the true losses ``l``, which makes
the module robust to the loss's overall scale as it shrinks during training.
Paper 002's Eq. 2 writes ``max(0, M - d_i (l^_i - l_i))`` with
``d_i = max(0, l_i)`` (Eq. 3): it compares a sample's predicted loss with its own
true loss and, since ``d_i >= 0``, only ever pushes predictions up, which cannot
learn a ranking. Its text, however, speaks of P/2 pairs formed in a mini-batch
and of robustness to scale, which is Learning Loss's construction; skal
implements that (``sign(l_i - l_j)`` as the direction) for both strategies.

How a net gets one
------------------
:class:`LossPredictionMixin` (part of :class:`skal.nets.SkalNetClassifier`) owns
the whole mechanism: the ``loss_prediction`` parameter, the forward hooks
(:class:`FeatureRecorder`) on the feature layers, the second skorch module
``loss_module_`` (in the optimizer with the network), the ranking loss added to
the training loss, and :meth:`~LossPredictionMixin.predict_loss`.
"""

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._arrays import chunks
from .._torch import eval_mode
from ._batches import rows_to_tensor


class LossPrediction(BaseEstimator):
    """Settings of the loss-prediction module (``net.set_params(loss_prediction=...)``).

    Being an estimator-like object, its fields are reachable by GridSearchCV as
    ``estimator__loss_prediction__margin`` and the like.

    Parameters
    ----------
    layers : list of str, default=None
        Names (``module_.named_modules()``) of the layers whose outputs feed the
        module; ``None`` uses the module's ``default_feature_layers``.
    width : int, default=128
        Units of each block's fully connected layer (Learning Loss uses 128).
    weight : float, default=1.0
        lambda in ``target loss + lambda * loss-prediction loss`` (Learning Loss: 1).
    margin : float, default=1.0
        xi of the ranking loss (Learning Loss: 1).
    detach_epoch : int, float or None, default=0.6
        When the features are detached before the module, so that its gradient no
        longer reaches the main network. An int is a 0-based epoch; a float in
        ``(0, 1]`` is a fraction of the net's ``max_epochs`` (the first epoch at or
        after ``detach_epoch * max_epochs``); ``None`` never detaches. The default
        is Learning Loss's schedule, epoch 120 of 200, which the public LPLgrad code
        keeps; with 30 epochs it detaches from epoch 18 on.
    """

    def __init__(
        self, layers=None, width=128, weight=1.0, margin=1.0, detach_epoch=0.6
    ):
        self.layers = layers
        self.width = width
        self.weight = weight
        self.margin = margin
        self.detach_epoch = detach_epoch

    def first_detached_epoch(self, max_epochs):
        """The 0-based epoch from which the features are detached (None: never).

        Parameters
        ----------
        max_epochs : int
            Epochs of one fit of the net.

        Returns
        -------
        epoch : int or None
        """
        detach = self.detach_epoch
        if detach is None:
            return None
        if isinstance(detach, bool) or not isinstance(
            detach, (int, float, np.integer, np.floating)
        ):
            raise TypeError(
                f"detach_epoch must be an int (an epoch), a float in (0, 1] (a "
                f"fraction of max_epochs) or None, got {detach!r}."
            )
        if isinstance(detach, (float, np.floating)):
            if not 0 < detach <= 1:
                raise ValueError(
                    f"A float detach_epoch is a fraction of max_epochs and must be "
                    f"in (0, 1], got {detach}; pass an int for an epoch number."
                )
            return math.ceil(detach * max_epochs - 1e-9)
        if detach < 0:
            raise ValueError(f"detach_epoch must be >= 0, got {detach}.")
        return int(detach)


class LossPredictionModule(nn.Module):
    """Blocks of (global average pooling, Linear, ReLU), concatenated, then Linear -> 1.

    Parameters
    ----------
    in_channels : list of int
        Channels (feature maps) or width (vectors) of each input feature.
    width : int, default=128
        Units per block.
    """

    def __init__(self, in_channels, width=128):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU()) for c in in_channels
        )
        self.output = nn.Linear(width * len(in_channels), 1)

    def forward(self, features):
        pooled = [f.flatten(2).mean(2) if f.dim() > 2 else f for f in features]
        blocks = [block(f) for block, f in zip(self.blocks, pooled)]
        return self.output(torch.cat(blocks, dim=1)).squeeze(1)


def ranking_loss(predicted, target, margin=1.0):
    """Learning Loss's pairwise margin ranking loss over pairs in a mini-batch.

    The batch is split into pairs (i, n-1-i); for each pair the predicted
    difference must have the sign of the true difference by at least ``margin``.

    Parameters
    ----------
    predicted : torch.Tensor of shape (B,)
    target : torch.Tensor of shape (B,)
        True per-sample losses (treated as constants).
    margin : float, default=1.0

    Returns
    -------
    loss : torch.Tensor (scalar)
    """
    half = len(predicted) // 2
    if half == 0:
        return predicted.sum() * 0.0
    predicted_diff = (predicted - predicted.flip(0))[:half]
    target_diff = (target - target.flip(0))[:half].detach()
    direction = 2 * torch.sign(torch.clamp(target_diff, min=0)) - 1
    return torch.clamp(margin - direction * predicted_diff, min=0).mean()


class FeatureRecorder:
    """Forward hook that stores a layer's output under its name (picklable)."""

    def __init__(self, store, name):
        self.store = store
        self.name = name

    def __call__(self, _module, _inputs, output):
        self.store[self.name] = output


class LossPredictionMixin:
    """Loss prediction for a skorch net (see the module docstring).

    Cooperative mixin of :class:`skal.nets.SkalNetClassifier`. It needs from the
    net ``_inspect_training_input(X)`` (called at ``fit`` with the validated
    input, whose first rows size the loss module by a dry run) and
    ``_validate_X``. Without ``loss_prediction`` every method here passes through.

    Parameters
    ----------
    loss_prediction : LossPrediction or None, default=None
        Settings of the loss-prediction module; None trains the network alone.
    """

    def __init__(self, *args, loss_prediction=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_prediction = loss_prediction

    def set_params(self, **params):
        """skorch's ``set_params``; ``loss_prediction__<field>`` reaches the settings."""
        prefix = "loss_prediction__"
        nested = {
            k[len(prefix) :]: params.pop(k)
            for k in list(params)
            if k.startswith(prefix)
        }
        super().set_params(**params)
        if nested:
            if self.loss_prediction is None:
                raise ValueError(f"{list(nested)} given but loss_prediction is None.")
            self.loss_prediction.set_params(**nested)
        return self

    def _inspect_training_input(self, X):
        super()._inspect_training_input(X)
        self.example_input_ = X[:2]  # sizes the loss-prediction module at initialize

    def initialize_module(self):
        """The net's module, then the loss-prediction module attached to it."""
        super().initialize_module()
        if self.loss_prediction is not None:
            self._attach_loss_prediction()
        return self

    def _attach_loss_prediction(self):
        """Hook the feature layers and build the loss module, sized by a dry run."""
        settings = self.loss_prediction
        layers = settings.layers or getattr(
            self.module_, "default_feature_layers", None
        )
        if not layers:
            raise ValueError(
                f"loss_prediction needs layer names: {type(self.module_).__name__} "
                f"has no default_feature_layers; pass LossPrediction(layers=[...])."
            )
        named = dict(self.module_.named_modules())
        unknown = [name for name in layers if name not in named]
        if unknown:
            raise ValueError(f"Unknown layers {unknown}; available: {list(named)[1:]}.")
        self.loss_features_ = {}
        for name in layers:
            named[name].register_forward_hook(
                FeatureRecorder(self.loss_features_, name)
            )
        with eval_mode(self.module_), torch.no_grad():
            self.module_(rows_to_tensor(self.example_input_, slice(0, 2)))
        channels = [self.loss_features_[name].shape[1] for name in layers]
        self.loss_module_ = LossPredictionModule(channels, settings.width)
        self.loss_layers_ = list(layers)

    def __setstate__(self, state):
        super().__setstate__(state)
        # skorch pickles module_ (with its feature hooks) in a stream of its own,
        # so after pickle or deepcopy the hooks fill a copy of loss_features_:
        # point them back at this net's store.
        if getattr(self, "loss_layers_", None) is not None:
            for module in self.module_.modules():
                for hook in module._forward_hooks.values():
                    if isinstance(hook, FeatureRecorder):
                        hook.store = self.loss_features_

    def _predicted_loss(self, detach=False):
        features = [self.loss_features_[name] for name in self.loss_layers_]
        if detach:
            features = [f.detach() for f in features]
        return self.loss_module_(features)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Target loss, plus the weighted ranking loss of the loss-prediction module."""
        target_loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if self.loss_prediction is None or not training:
            return target_loss
        settings = self.loss_prediction
        per_sample = torch.nn.functional.cross_entropy(
            y_pred, y_true.to(y_pred.device).long(), reduction="none"
        )
        # Epochs count within this fit: warm-started rounds restart the schedule.
        epoch = len(self.history) - 1 - getattr(self, "fit_start_epoch_", 0)
        first_detached = settings.first_detached_epoch(self.max_epochs)
        detach = first_detached is not None and epoch >= first_detached
        predicted = self._predicted_loss(detach=detach)
        return target_loss + settings.weight * ranking_loss(
            predicted, per_sample, settings.margin
        )

    def predict_loss(self, X):
        """Losses predicted by the loss-prediction module, chunk by chunk.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)

        Returns
        -------
        predicted : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        if self.loss_prediction is None:
            raise TypeError(
                f"This {type(self).__name__} was trained without a loss-prediction "
                f"module: set loss_prediction=LossPrediction() and fit again."
            )
        X = self._validate_X(X, reset=False)
        predicted = []
        with eval_mode(self.module_, self.loss_module_), torch.inference_mode():
            for rows in chunks(X.shape[0]):
                self.module_(rows_to_tensor(X, rows).to(self.device))
                predicted.append(self._predicted_loss().float().cpu().numpy())
        return np.concatenate(predicted)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        # History rows before this fit (partial_fit, warm start): the detach
        # schedule counts epochs from here.
        self.fit_start_epoch_ = len(self.history)
        return super().on_train_begin(net, X=X, y=y, **kwargs)
