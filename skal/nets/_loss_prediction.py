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
"""

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn


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
