"""Convolutional classifiers for images: a backbone, the papers' MLP head, a linear output.

Paper 001 (section 4.3) runs every strategy on images with LeNet, VGG-16 and
ResNet-18 whose classifier is replaced by a light MLP head (512, 256) before the
output layer. :class:`CNNModule` is that network; its penultimate features are the
output of the head's last hidden layer (the input of ``output_layer``), so the
strategies use exactly the same acquisition code as for the MLP.

Image input
-----------
:class:`ImageInput`, the first layer of the module, takes either

- **channels-last raw pixels** ``N x H x W x C`` (or ``N x H x W`` grayscale) with
  values 0..255, uint8 or any other dtype: they are scaled to [0, 1] and normalized
  with ``mean``/``std`` (0.5, 0.5, 0.5 as in the paper); or
- **channels-first floats** ``N x C x H x W``, used as they are (already
  normalized by the user). A uint8 channels-first tensor is scaled like raw pixels.

The layout is read from the shape, not the dtype, because every path to the module
casts batches to float32 (:func:`skal.nets._batches.rows_to_tensor`) and
:class:`skal.ActiveLearner` validates pools to floats. Doing the conversion inside
the module means skorch training, ``predict_proba`` and :mod:`skal.embeddings` all
see the same normalization, and a pool can stay uint8 (4x less memory than float32)
until a chunk of it reaches the network.
"""

import copy

import numpy as np
import torch
from skorch.utils import to_tensor
from torch import nn

from .._torch import eval_mode
from .._validation import check_pool, n_features_of_array
from ._backbones import make_backbone
from ._base import SkalNetClassifier
from ._batches import BatchSlicer


def image_layout(shape, dtype=None):
    """How an image array of this shape is read: ``'NCHW'``, ``'NHWC'`` or ``'NHW'``.

    Three dimensions are grayscale ``N x H x W``. With four, uint8 arrays are
    channels-last images; float arrays are channels-first unless only the last
    axis looks like a channel axis (1 to 4 entries), as in a uint8 NHWC pool that
    was converted to floats (e.g. by :class:`skal.ActiveLearner`'s validation).

    Parameters
    ----------
    shape : tuple of int
        Shape of the array, samples first.
    dtype : numpy dtype, default=None

    Returns
    -------
    layout : str
    """
    if len(shape) == 3:
        return "NHW"
    if len(shape) != 4:
        raise ValueError(
            f"Images must be N x C x H x W floats, or N x H x W x C / N x H x W raw "
            f"pixels (0..255); got an array of shape {tuple(shape)}."
        )
    small_last, small_first = shape[3] <= 4, shape[1] <= 4
    if dtype is not None and np.dtype(dtype) == np.uint8:
        if not small_last:
            raise ValueError(
                f"uint8 images must be channels-last (N x H x W x C, C <= 4); got "
                f"shape {tuple(shape)}. Transpose them, or convert them to "
                f"normalized floats in N x C x H x W."
            )
        return "NHWC"
    return "NHWC" if small_last and not small_first else "NCHW"


def image_shape(shape, layout):
    """``(C, H, W)`` of images of array shape ``shape`` read with ``layout``."""
    if layout == "NHW":
        return (1, shape[1], shape[2])
    if layout == "NHWC":
        return (shape[3], shape[1], shape[2])
    return tuple(shape[1:4])


def _per_channel(value, n_channels, name):
    value = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
    if value.numel() == 1:
        value = value.expand(n_channels)
    if value.numel() != n_channels:
        raise ValueError(
            f"{name} has {value.numel()} values but the images have {n_channels} "
            f"channels."
        )
    return value.reshape(1, n_channels, 1, 1).clone()


class ImageInput(nn.Module):
    """First layer of :class:`CNNModule`: any accepted image batch -> normalized NCHW.

    Channels-last batches (``N x H x W x C``, or ``N x H x W`` when ``C == 1``) are
    raw pixels 0..255: they become ``(x / 255 - mean) / std`` in ``N x C x H x W``.
    Channels-first batches are returned as they are (cast to float32), except uint8
    ones, which are normalized too. Shapes are matched against ``in_shape``; when
    both readings fit (``C == H == W``), channels-first wins.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C, H, W)`` of the images.
    mean, std : float or sequence of float, default=0.5
        Per-channel normalization of the pixels scaled to [0, 1] (paper 001 uses
        0.5 for every channel, mapping pixels to [-1, 1]).
    channels_last : bool, default=False
        Return the batch in ``torch.channels_last`` memory format (else contiguous
        NCHW), so that every convolution runs in one format.
    """

    def __init__(self, in_shape, mean=0.5, std=0.5, channels_last=False):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        n_channels = self.in_shape[0]
        mean = _per_channel(mean, n_channels, "mean")
        std = _per_channel(std, n_channels, "std")
        # (x / 255 - mean) / std as one multiply-add.
        self.register_buffer("scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("shift", -mean / std, persistent=False)
        self.channels_last = channels_last

    def forward(self, x):
        C, H, W = self.in_shape
        shape = tuple(x.shape[1:])
        raw = x.dtype == torch.uint8
        if x.ndim == 4 and shape == (C, H, W):
            pass
        elif x.ndim == 4 and shape == (H, W, C):
            x, raw = x.permute(0, 3, 1, 2), True
        elif x.ndim == 3 and C == 1 and shape == (H, W):
            x, raw = x.unsqueeze(1), True
        else:
            raise ValueError(
                f"Expected images of shape N x {C} x {H} x {W} (floats) or "
                f"N x {H} x {W} x {C} (raw pixels), got {tuple(x.shape)}."
            )
        x = x.float() * self.scale + self.shift if raw else x.float()
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    def extra_repr(self):
        return f"in_shape={self.in_shape}, channels_last={self.channels_last}"


class RandomCropFlip:
    """Random crop with zero padding and horizontal flip, per image, on a batch.

    The usual CIFAR augmentation (pad 4, crop back, flip with probability 0.5),
    vectorized with torch ops over a normalized ``N x C x H x W`` batch. It draws
    from torch's global generator, which :class:`CNNClassifier` seeds from its
    ``random_state``.

    Parameters
    ----------
    padding : int, default=4
        Pixels added on each side before cropping back to ``H x W``.
    flip : bool, default=True
        Flip each image left-right with probability 0.5.
    fill : float, default=-1.0
        Value of the padding in normalized units; -1 is a black pixel under the
        paper's normalization (mean = std = 0.5), as torchvision's
        ``RandomCrop(padding=4)`` pads raw images with black.
    """

    def __init__(self, padding=4, flip=True, fill=-1.0):
        self.padding = padding
        self.flip = flip
        self.fill = fill

    def __call__(self, x):
        n, _, h, w = x.shape
        p = int(self.padding)
        if p > 0:
            padded = nn.functional.pad(x, (p, p, p, p), value=self.fill)
            dy = torch.randint(0, 2 * p + 1, (n, 1, 1), device=x.device)
            dx = torch.randint(0, 2 * p + 1, (n, 1, 1), device=x.device)
            rows = dy + torch.arange(h, device=x.device).view(1, h, 1)
            cols = dx + torch.arange(w, device=x.device).view(1, 1, w)
            batch = torch.arange(n, device=x.device).view(n, 1, 1)
            # Advanced indices around a slice put the channel axis last: N x H x W x C.
            x = padded[batch, :, rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            flipped = torch.rand(n, device=x.device) < 0.5
            x = torch.where(flipped.view(n, 1, 1, 1), x.flip(3), x)
        return x.contiguous(memory_format=_memory_format(x))

    def __repr__(self):
        return (
            f"RandomCropFlip(padding={self.padding}, flip={self.flip}, "
            f"fill={self.fill})"
        )


def _memory_format(x):
    if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


# Where channels_last pays off on CPU (measured in benchmarks/cnn.py).
_CHANNELS_LAST_BACKBONES = ("vgg16", "resnet18")


class CNNModule(nn.Module):
    """Image input -> backbone -> MLP head -> linear output layer.

    Parameters
    ----------
    n_features : int
        ``C * H * W`` (passed by the classifier; checked against ``in_shape``).
    n_classes : int
        Number of output logits.
    in_shape : tuple of int
        ``(C, H, W)`` of the images.
    backbone : {'lenet', 'vgg16', 'resnet18'} or torch.nn.Module, default='lenet'
        A named backbone (see :mod:`skal.nets._backbones`), or a module mapping
        normalized ``N x C x H x W`` batches to ``N x D`` feature vectors (or maps,
        which are flattened). A module is deep-copied, so that every fit starts
        from its weights.
    head : tuple of int, default=(512, 256)
        Widths of the hidden layers of the MLP head (ReLU).
    dropout : float, default=0.0
        Dropout after each hidden layer of the head (for MC dropout / BALD).
    width : float, default=1.0
        Channel multiplier of a named backbone.
    mean, std : float or sequence of float, default=0.5
        Normalization of raw pixels (see :class:`ImageInput`).
    channels_last : bool or 'auto', default='auto'
        Run the convolutions in ``torch.channels_last`` memory format. ``'auto'``
        uses it for VGG-16 and ResNet-18, where it speeds up CPU inference by about
        a third and leaves training at batch 8 unchanged, but not for LeNet, whose
        training it slows down (``benchmarks/cnn.py``).

    Attributes
    ----------
    input : ImageInput
    backbone : torch.nn.Module
    head : torch.nn.Sequential
    output_layer : torch.nn.Linear
        The final layer; its input is :meth:`features`.
    """

    def __init__(
        self,
        n_features,
        n_classes,
        in_shape,
        backbone="lenet",
        head=(512, 256),
        dropout=0.0,
        width=1.0,
        mean=0.5,
        std=0.5,
        channels_last="auto",
    ):
        super().__init__()
        in_shape = tuple(int(s) for s in in_shape)
        if channels_last == "auto":
            channels_last = (
                isinstance(backbone, str) and backbone in _CHANNELS_LAST_BACKBONES
            )
        if len(in_shape) != 3 or int(np.prod(in_shape)) != n_features:
            raise ValueError(
                f"in_shape={in_shape} does not describe images of {n_features} values."
            )
        self.input = ImageInput(in_shape, mean, std, channels_last)
        if isinstance(backbone, nn.Module):
            self.backbone = copy.deepcopy(backbone)
        else:
            self.backbone = make_backbone(backbone, in_shape[0], width)
        layers, size = [], self._backbone_size(in_shape)
        for hidden in head:
            layers += [nn.Linear(size, hidden), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            size = hidden
        self.head = nn.Sequential(*layers)
        self.output_layer = nn.Linear(size, n_classes)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def _backbone_size(self, in_shape):
        """Length of the backbone's feature vector, from one dummy image."""
        # Eval mode: batch norm cannot train on a single 1x1 map.
        with eval_mode(self.backbone), torch.no_grad():
            out = self.backbone(torch.zeros(1, *in_shape))
        return int(out[0].numel())

    def features(self, X):
        """Penultimate representation ``h``: the head's output, input of ``output_layer``."""
        return self.head(self.backbone(self.input(X)).flatten(1))

    def forward(self, X):
        return self.output_layer(self.features(X))

    @property
    def feature_layers(self):
        """Names of the backbone's intermediate feature maps (``()`` if unknown)."""
        return tuple(getattr(self.backbone, "feature_layers", ()))

    @property
    def default_feature_layers(self):
        """:attr:`feature_layers` as names in this module (``'backbone.layer1'``, ...).

        What a loss-prediction module attaches to by default (see
        :class:`skal.nets.LossPrediction`).
        """
        return tuple(f"backbone.{name}" for name in self.feature_layers)


class CNNClassifier(SkalNetClassifier):
    """skorch classifier with a convolutional backbone and the papers' MLP head.

    The network of paper 001 for images: LeNet (LeCun et al., 1998), VGG-16
    (Simonyan & Zisserman, 2015) or ResNet-18 (He et al., 2016) in their 32x32
    variants, whose classifier is replaced by an MLP head (512, 256) before the
    final linear layer; trained with cross-entropy and SGD with momentum 0.9.
    Input channels and image size are inferred from the data.

    Images are either normalized float arrays ``N x C x H x W`` or raw uint8 pixels
    ``N x H x W x C`` / ``N x H x W``, normalized inside the network with
    ``mean``/``std`` (see :class:`ImageInput`). uint8 pools stay uint8: only each
    mini-batch or chunk is converted.

    Parameters
    ----------
    backbone : {'lenet', 'vgg16', 'resnet18'} or torch.nn.Module, default='lenet'
        A named backbone, or any module mapping normalized ``N x C x H x W``
        batches to feature vectors (deep-copied at every fit).
    head : tuple of int, default=(512, 256)
        Hidden widths of the MLP head.
    dropout : float, default=0.0
        Dropout after each hidden layer of the head (MC dropout / BALD).
    width : float, default=1.0
        Channel multiplier of a named backbone (shrinks it for tests or quick runs).
    mean, std : float or sequence of float, default=0.5
        Normalization of raw pixels scaled to [0, 1], per channel or for all.
    augment : callable, True or None, default=None
        Per-batch augmentation ``augment(x) -> x`` of the normalized
        ``N x C x H x W`` training batches, applied in the training step only (never
        in prediction, validation or the strategies' passes). True means
        :class:`RandomCropFlip` with its defaults. Paper 001 uses none.
    channels_last : bool or 'auto', default='auto'
        Run the convolutions in ``torch.channels_last`` memory format; ``'auto'``
        does for VGG-16 and ResNet-18 only (see :class:`CNNModule` and
        ``benchmarks/cnn.py`` for when it pays off on CPU).
    lr : float, default=0.01
        SGD learning rate (paper 001 sweeps 1e-4 ... 1e-2 once per dataset).
    max_epochs : int, default=30
        Epochs per fit (paper 001 uses 30-60).
    batch_size : int, default=8
        SGD mini-batch size, as in paper 001.
    optimizer__momentum : float, default=0.9
    classes : array-like, default=None
        Fixed label set (see :class:`skal.nets.SkalNetClassifier`).
    random_state : int, RandomState or None, default=None
        Seeds initialization, shuffling and augmentation.
    **kwargs
        Any other skorch ``NeuralNet`` parameter.

    Attributes
    ----------
    module_ : CNNModule
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
        ``C * H * W``.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> from skal.nets import CNNClassifier
    >>> X = np.random.RandomState(0).randint(0, 256, (16, 28, 28), dtype=np.uint8)
    >>> y = np.arange(16) % 2
    >>> net = CNNClassifier("lenet", head=(8,), max_epochs=1, random_state=0)
    >>> net.fit(X, y).predict_proba(X[:3]).shape
    (3, 2)
    """

    def __init__(
        self,
        backbone="lenet",
        head=(512, 256),
        dropout=0.0,
        *,
        width=1.0,
        mean=0.5,
        std=0.5,
        augment=None,
        channels_last="auto",
        lr=0.01,
        max_epochs=30,
        batch_size=8,
        module=CNNModule,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        iterator_train=BatchSlicer,
        iterator_valid=BatchSlicer,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
        classes=None,
        random_state=None,
        lean_training=True,
        **kwargs,
    ):
        # Set before skorch's __init__: afterwards skorch refuses nn.Module
        # attributes (a custom ``backbone``) outside its initialize methods.
        self.backbone = backbone
        self.head = head
        self.dropout = dropout
        self.width = width
        self.mean = mean
        self.std = std
        self.augment = augment
        self.channels_last = channels_last
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            optimizer__momentum=optimizer__momentum,
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
            lean_training=lean_training,
            **kwargs,
        )

    def _validate_X(self, X, *, reset):
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        # uint8 stays uint8 and float64 is not copied: batches are cast one by one.
        X = check_pool(
            X,
            n_features=None if reset else self.n_features_in_,
            name="X",
            dtype=[np.float32, np.uint8, np.float64],
            owner=type(self).__name__,
        )
        layout = image_layout(X.shape, X.dtype)
        shape = image_shape(X.shape, layout)
        if reset:
            self.n_features_in_ = n_features_of_array(X)
            self.image_shape_ = shape
        elif shape != self.image_shape_:
            raise ValueError(
                f"X holds images of shape {shape} (C, H, W) but {type(self).__name__} "
                f"was fitted on {self.image_shape_}."
            )
        return X

    def _module_defaults(self):
        return {
            **super()._module_defaults(),
            "in_shape": self.image_shape_,
            "backbone": self.backbone,
            "head": tuple(self.head),
            "dropout": self.dropout,
            "width": self.width,
            "mean": self.mean,
            "std": self.std,
            "channels_last": self.channels_last,
        }

    def _augmenter(self):
        if self.augment is True:
            return RandomCropFlip()
        if self.augment is None or self.augment is False:
            return None
        if not callable(self.augment):
            raise TypeError(
                f"augment must be None, True or a callable, got {self.augment!r}."
            )
        return self.augment

    def _prepare_training_batch(self, X):
        """The augmentation (if any) is applied to training batches, and only there."""
        augment = self._augmenter()
        if augment is None:
            return X
        with torch.no_grad():
            return augment(self.module_.input(to_tensor(X, device=self.device)))
