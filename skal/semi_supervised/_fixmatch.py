"""FixMatch (Sohn et al., 2020) for skal's CNNs, with optional DARP.

Each training step takes ``B`` labeled and ``mu * B`` unlabeled images. The
labeled ones are weakly augmented and trained with cross-entropy. Each unlabeled
image is augmented twice: the prediction on the weak view (detached) is its
pseudo-label, kept only where its top probability reaches ``threshold``, and the
strong view is trained to predict it:

    loss = CE(weak labeled) + lambda_u * mean_u( 1[max p_weak >= threshold]
                                                 * CE(strong_u, argmax p_weak) ).

The mean runs over all ``mu * B`` unlabeled images, masked or not. The three
batches go through the network in one forward pass (as in FixMatch's code, so
batch normalization sees them together). An epoch is one pass over the unlabeled
rows; the labeled rows are cycled, reshuffled at each pass. The learning rate
decays as ``lr cos(7 pi k / 16 K)`` over the ``K`` steps (FixMatch).

DARP (``darp=``): the latest weak-view probabilities of every unlabeled row are
kept in a table (DARP's ``pseudo_orig``). From epoch ``ceil(darp_warmup *
max_epochs)`` on (at least the second, so that every row has a prediction; DARP
warms up for 40 % of training), DARP is solved on the whole table at the start of
each epoch, warm-started from the previous duals. Within the epoch, each batch's
fresh weak probabilities are refined with that solve's class duals
(:func:`apply_column_duals`, the solution's closed form) before thresholding.
DARP's code instead reuses the refined rows of the last solve, re-solving every
10 steps; per-batch DARP on ``mu * B`` rows would force every small batch to the
target. The refined rows of a solve are exactly the duals applied to the table,
so the two differ only in how fresh the per-image predictions are.

Not reproduced from FixMatch: the exponential moving average of the weights
used for evaluation, weight decay 5e-4 and Nesterov momentum (set them on the
estimator: ``optimizer__weight_decay``, ``optimizer__nesterov``), and feeding the
labeled images into the unlabeled stream too.

References
----------
K. Sohn, D. Berthelot, C.-L. Li, Z. Zhang, N. Carlini, E. D. Cubuk, A. Kurakin,
H. Zhang, C. Raffel. FixMatch: simplifying semi-supervised learning with
consistency and confidence. NeurIPS 2020.
"""

import contextlib
import math
from collections import namedtuple
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state

from .._validation import check_pool
from ..nets import CNNClassifier
from ..nets._cnn import image_layout
from ._augment import StrongAugment, WeakAugment
from ._darp import apply_column_duals, darp, target_class_counts
from ._unlabeled import FinalEstimatorPrediction, labeled_mask

FixMatchLoss = namedtuple("FixMatchLoss", "total supervised unsupervised mask")
FixMatchLoss.__doc__ = """FixMatch's loss and its parts (see :func:`fixmatch_loss`)."""

# DARP's solve between epochs: class duals to this L1 precision are plenty for
# pseudo-labels that change from step to step anyway.
_DARP_TOL = 1e-4


def fixmatch_loss(
    logits_labeled,
    y_labeled,
    logits_strong,
    pseudo_proba,
    *,
    threshold=0.95,
    lambda_u=1.0,
):
    """FixMatch's loss on one step's batches.

    Parameters
    ----------
    logits_labeled : torch.Tensor of shape (B, n_classes)
        Logits of the weakly augmented labeled images.
    y_labeled : torch.Tensor of shape (B,)
        Their class indices.
    logits_strong : torch.Tensor of shape (mu * B, n_classes)
        Logits of the strongly augmented unlabeled images.
    pseudo_proba : torch.Tensor of shape (mu * B, n_classes)
        Class probabilities of the weakly augmented views of the same images
        (softmax of their logits, refined by DARP if used); detached here.
    threshold : float, default=0.95
        Confidence a pseudo-label needs (``max p >= threshold``).
    lambda_u : float, default=1.0
        Weight of the unlabeled loss.

    Returns
    -------
    loss : FixMatchLoss
        ``total = supervised + lambda_u * unsupervised``; ``mask`` (float, one
        entry per unlabeled image) tells which pseudo-labels were used.
    """
    supervised = F.cross_entropy(logits_labeled, y_labeled)
    confidence, pseudo_labels = pseudo_proba.detach().max(dim=1)
    mask = (confidence >= threshold).to(logits_strong.dtype)
    if len(logits_strong):
        per_image = F.cross_entropy(logits_strong, pseudo_labels, reduction="none")
        unsupervised = (per_image * mask).mean()
    else:
        unsupervised = logits_labeled.new_zeros(())
    return FixMatchLoss(
        supervised + lambda_u * unsupervised, supervised, unsupervised, mask
    )


class FixMatchClassifier(FinalEstimatorPrediction, ClassifierMixin, BaseEstimator):
    """FixMatch semi-supervised training of a :class:`skal.nets.CNNClassifier`.

    ``fit(X, y)`` takes raw images (uint8 ``N x H x W x C`` or ``N x H x W``,
    values 0..255) with ``y = -1`` on the unlabeled rows; the trained network
    then predicts like any :class:`~skal.nets.CNNClassifier`. See the module
    docstring for the loss, the schedule and how DARP is applied.

    Parameters
    ----------
    estimator : CNNClassifier, default=None
        The network (backbone, head, optimizer, ``lr``, ``device``,
        ``classes``); cloned. None is ``CNNClassifier()`` (LeNet). Its
        ``max_epochs`` is not used.
    threshold : float, default=0.95
        Confidence a pseudo-label needs.
    mu : int, default=7
        Unlabeled images per labeled image in a step.
    lambda_u : float, default=1.0
        Weight of the unlabeled loss.
    max_epochs : int, default=10
        Passes over the unlabeled rows.
    batch_size : int, default=None
        Labeled images per step (``B``); None uses the estimator's
        ``batch_size``. FixMatch uses 64.
    darp : None, 'uniform' or array-like of shape (n_classes,), default=None
        Refine the weak-view probabilities with DARP towards this class
        distribution (order of ``classes_``); paper 004 uses 'uniform'.
    darp_warmup : float in [0, 1], default=0.4
        Fraction of the epochs before DARP starts.
    weak_augment, strong_augment : callable, default=None
        ``augment(images, generator)`` on float ``N x C x H x W`` batches in
        [0, 1]; None means :class:`WeakAugment` and :class:`StrongAugment`.
    cosine_decay : bool, default=True
        Decay the learning rate as FixMatch does.
    device : str or torch.device, default=None
        Overrides the estimator's ``device``.
    random_state : int, RandomState or None, default=None
        Seeds initialization, batch order, augmentations and dropout (torch's
        global random state is left untouched).
    verbose : int, default=0
        Print one line per epoch.

    Attributes
    ----------
    estimator_ : CNNClassifier
        The trained network.
    classes_ : ndarray of shape (n_classes,)
    history_ : list of dict
        Per epoch: mean ``loss``, ``supervised``, ``unsupervised``, the fraction
        of pseudo-labels used (``mask_rate``), the last ``lr``, and whether DARP
        was applied (``darp``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skal.nets import CNNClassifier
    >>> from skal.semi_supervised import FixMatchClassifier
    >>> X = np.random.RandomState(0).randint(0, 256, (32, 28, 28), dtype=np.uint8)
    >>> y = np.where(np.arange(32) < 8, np.arange(32) % 2, -1)
    >>> net = CNNClassifier(head=(8,), width=0.5)
    >>> model = FixMatchClassifier(net, max_epochs=1, random_state=0).fit(X, y)
    >>> model.predict_proba(X[:3]).shape
    (3, 2)
    """

    def __init__(
        self,
        estimator=None,
        *,
        threshold=0.95,
        mu=7,
        lambda_u=1.0,
        max_epochs=10,
        batch_size=None,
        darp=None,
        darp_warmup=0.4,
        weak_augment=None,
        strong_augment=None,
        cosine_decay=True,
        device=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.threshold = threshold
        self.mu = mu
        self.lambda_u = lambda_u
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.darp = darp
        self.darp_warmup = darp_warmup
        self.weak_augment = weak_augment
        self.strong_augment = strong_augment
        self.cosine_decay = cosine_decay
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # --- validation ----------------------------------------------------------------
    def _check_params(self):
        if self.estimator is not None and not isinstance(self.estimator, CNNClassifier):
            raise TypeError(
                f"estimator must be a skal.nets.CNNClassifier (FixMatch augments "
                f"images), got {type(self.estimator).__name__}; use "
                f"SelfTrainingClassifier for other models."
            )
        _check_number("threshold", self.threshold, Real, 0, 1, low_open=True)
        _check_number("mu", self.mu, Integral, 1)
        _check_number("lambda_u", self.lambda_u, Real, 0)
        _check_number("max_epochs", self.max_epochs, Integral, 1)
        if self.batch_size is not None:
            _check_number("batch_size", self.batch_size, Integral, 1)
        _check_number("darp_warmup", self.darp_warmup, Real, 0, 1)

    def _check_images(self, X):
        X = check_pool(
            X, name="X", dtype=[np.uint8, np.float32, np.float64], owner="FixMatch"
        )
        layout = image_layout(X.shape, X.dtype) if X.ndim in (3, 4) else None
        if layout not in ("NHWC", "NHW"):
            raise ValueError(
                f"FixMatch augments raw pixels: pass images as N x H x W x C or "
                f"N x H x W arrays with values 0..255 (uint8), got shape {X.shape}."
            )
        if X.dtype != np.uint8 and (X.min() < 0 or X.max() > 255):
            raise ValueError(
                "FixMatch augments raw pixels in 0..255; X has values outside that "
                "range (already normalized?). Pass the uint8 images."
            )
        return X

    # --- fitting -------------------------------------------------------------------
    def fit(self, X, y):
        """Train the network with FixMatch on labeled and unlabeled images.

        Parameters
        ----------
        X : ndarray of shape (n_samples, H, W, C) or (n_samples, H, W)
            Raw pixels 0..255, preferably uint8 (batches are converted one by one).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows.

        Returns
        -------
        self : object
        """
        self._check_params()
        X = self._check_images(X)
        y, labeled = labeled_mask(y, X.shape[0])
        rng = check_random_state(self.random_state)
        net = clone(self.estimator if self.estimator is not None else CNNClassifier())
        if self.device is not None:
            net.set_params(device=self.device)
        if self.random_state is not None:
            net.set_params(random_state=_draw_seed(rng))
        labeled_rows = np.flatnonzero(labeled)
        # Zero epochs: skorch builds module and optimizer, skal validates and
        # encodes the labels (``classes`` included); FixMatch's loop trains.
        net.fit(X[labeled_rows], y[labeled_rows], epochs=0)
        if self.darp is not None:
            target_class_counts(self.darp, 1, len(net.classes_))  # fail early
        targets = np.searchsorted(net.classes_, y[labeled_rows])
        data = _Batches(X, labeled_rows, targets, np.flatnonzero(~labeled), net.device)
        with _torch_seeded(_draw_seed(rng), net.device):
            generator = torch.Generator().manual_seed(_draw_seed(rng))
            order = np.random.RandomState(_draw_seed(rng))
            self.history_ = self._train(net, data, generator, order)
        net.module_.eval()
        self.estimator_ = net
        self.n_features_in_ = net.n_features_in_
        return self

    def _train(self, net, data, generator, order):
        """Run the epochs; returns the per-epoch history."""
        optimizer = net.optimizer_
        batch = self.batch_size or net.batch_size
        n_unlabeled_batch = self.mu * batch
        if data.n_unlabeled:
            steps = math.ceil(data.n_unlabeled / n_unlabeled_batch)
        else:  # nothing unlabeled: plain supervised epochs
            steps = math.ceil(data.n_labeled / batch)
        schedule = _CosineDecay(optimizer, self.max_epochs * steps, self.cosine_decay)
        labeled_stream = _cycle(data.n_labeled, batch, order)
        pseudo_labels = _PseudoLabels(self.darp, data.n_unlabeled, len(net.classes_))
        darp_start = max(1, math.ceil(self.darp_warmup * self.max_epochs))
        history = []
        for epoch in range(self.max_epochs):
            net.module_.train()
            if epoch >= darp_start:
                pseudo_labels.solve()
            unlabeled_order = order.permutation(data.n_unlabeled)
            totals = np.zeros(4)
            for step in range(steps):
                schedule.step()
                positions = unlabeled_order[
                    step * n_unlabeled_batch : (step + 1) * n_unlabeled_batch
                ]
                loss = self._step(
                    net, data, next(labeled_stream), positions, pseudo_labels, generator
                )
                optimizer.zero_grad()
                loss.total.backward()
                optimizer.step()
                totals += [
                    loss.total.item(),
                    loss.supervised.item(),
                    loss.unsupervised.item(),
                    loss.mask.mean().item() if len(positions) else 0.0,
                ]
            means = totals / steps
            record = dict(
                zip(("loss", "supervised", "unsupervised", "mask_rate"), means)
            )
            record.update(
                epoch=epoch + 1, lr=schedule.lr, darp=pseudo_labels.duals is not None
            )
            history.append(record)
            if self.verbose:
                print(" ".join(f"{key}={value:.4g}" for key, value in record.items()))
        return history

    def _step(
        self, net, data, labeled_positions, unlabeled_positions, pseudo, generator
    ):
        """FixMatch's loss on one step: one forward pass over the three batches."""
        weak = WeakAugment() if self.weak_augment is None else self.weak_augment
        strong = StrongAugment() if self.strong_augment is None else self.strong_augment
        x_labeled, y_labeled = data.labeled(labeled_positions)
        inputs = [weak(x_labeled, generator)]
        n_labeled, n_unlabeled = len(x_labeled), len(unlabeled_positions)
        if n_unlabeled:
            x_unlabeled = data.unlabeled(unlabeled_positions)
            inputs += [weak(x_unlabeled, generator), strong(x_unlabeled, generator)]
        logits = net.module_(_module_input(torch.cat(inputs)))
        logits_weak = logits[n_labeled : n_labeled + n_unlabeled].detach()
        proba = pseudo.refine(
            torch.softmax(logits_weak.float(), 1), unlabeled_positions
        )
        return fixmatch_loss(
            logits[:n_labeled],
            y_labeled,
            logits[n_labeled + n_unlabeled :],
            proba,
            threshold=self.threshold,
            lambda_u=self.lambda_u,
        )


class _Batches:
    """Rows of the image pool as float ``N x C x H x W`` pixels in [0, 1] on a device."""

    def __init__(self, X, labeled_rows, targets, unlabeled_rows, device):
        self.X = X
        self.labeled_rows = labeled_rows
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.unlabeled_rows = unlabeled_rows
        self.device = device
        self.n_labeled, self.n_unlabeled = len(labeled_rows), len(unlabeled_rows)

    def _pixels(self, rows):
        batch = torch.from_numpy(np.ascontiguousarray(self.X[rows])).to(self.device)
        batch = batch.float() / 255
        if batch.ndim == 3:
            return batch.unsqueeze(1)
        return batch.permute(0, 3, 1, 2).contiguous()

    def labeled(self, positions):
        rows = self.labeled_rows[positions]
        return self._pixels(rows), self.targets[positions].to(self.device)

    def unlabeled(self, positions):
        return self._pixels(self.unlabeled_rows[positions])


class _PseudoLabels:
    """The weak-view probabilities of every unlabeled row, and DARP on them.

    Without a target, :meth:`refine` returns the probabilities unchanged.
    """

    def __init__(self, target, n_unlabeled, n_classes):
        self.target = target if n_unlabeled else None
        self.table = None
        if self.target is not None:
            self.table = np.zeros((n_unlabeled, n_classes), dtype=np.float32)
        self.duals = None

    def solve(self):
        """Solve DARP on the latest predictions, from the previous duals."""
        if self.target is None:
            return
        _, self.duals = darp(
            self.table,
            self.target,
            column_duals=self.duals,
            tol=_DARP_TOL,
            return_duals=True,
        )

    def refine(self, proba, positions):
        """Record ``proba`` for the rows ``positions``; refine it once DARP is on."""
        if self.target is None:
            return proba
        self.table[positions] = proba.cpu().numpy()
        if self.duals is None:
            return proba
        refined = apply_column_duals(self.table[positions], self.duals)
        return torch.as_tensor(refined, dtype=proba.dtype, device=proba.device)


class _CosineDecay:
    """FixMatch's learning rate ``lr cos(7 pi k / 16 K)`` at step ``k`` of ``K``."""

    def __init__(self, optimizer, total_steps, enabled=True):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.total_steps = total_steps
        self.enabled = enabled
        self.k = 0

    def step(self):
        """Set the rate of the next step."""
        if self.enabled:
            decay = math.cos(7 * math.pi * self.k / (16 * self.total_steps))
            for group, lr in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = lr * decay
        self.k += 1

    @property
    def lr(self):
        return self.optimizer.param_groups[0]["lr"]


def _module_input(pixels):
    """[0, 1] N x C x H x W -> raw 0..255 channels-last, which CNNModule normalizes."""
    return (pixels * 255).permute(0, 2, 3, 1)


def _cycle(n, batch_size, order):
    """Endless batches of positions 0..n-1, reshuffled at every pass."""
    stream = np.empty(0, dtype=np.int64)
    while True:
        while len(stream) < batch_size:
            stream = np.concatenate([stream, order.permutation(n)])
        yield stream[:batch_size]
        stream = stream[batch_size:]


def _draw_seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def _torch_seeded(seed, device):
    """Seed torch in a forked random state (CPU, plus the CUDA device in use)."""
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        devices = [
            device.index if device.index is not None else torch.cuda.current_device()
        ]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _check_number(name, value, kind, low, high=None, low_open=False):
    valid = isinstance(value, kind) and not isinstance(value, bool)
    if valid:
        valid = (value > low if low_open else value >= low) and (
            high is None or value <= high
        )
    if not valid:
        bounds = (
            f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}"
        )
        bounds += "]" if high is not None else ")"
        raise ValueError(
            f"{name} must be a {kind.__name__} in {bounds}, got {value!r}."
        )
