"""Convolutional backbones of paper 001 (section 4.3): LeNet, VGG-16, ResNet-18.

Each backbone maps an ``N x C x H x W`` batch to an ``N x D`` feature vector; the
original classifiers are left out because :class:`skal.nets.CNNClassifier` puts the
papers' MLP head (512, 256) and the output layer on top. VGG-16 and ResNet-18 are
the standard 32x32 (CIFAR) variants: 3x3 stems without the ImageNet downsampling, so
that 32x32 inputs keep enough resolution. All three also accept 28x28 inputs.

Every backbone lists in ``feature_layers`` the names of its children whose outputs
are its intermediate feature maps (e.g. ResNet-18's ``layer1`` ... ``layer4``, which
Learning Loss attaches to): :attr:`skal.nets.CNNModule.default_feature_layers`
names them in the whole module (``backbone.layer1`` ...), where a forward hook
(e.g. :class:`skal.nets._loss_prediction.FeatureRecorder`) can record them. Any
other submodule is reachable by its ``named_modules`` name too.

``width`` multiplies every channel count (1.0 is the published architecture);
tests and quick benchmarks shrink the networks with it.
"""

from torch import nn


def _channels(n, width):
    return max(1, int(round(n * width)))


class LeNet(nn.Module):
    """Convolutional part of LeNet-5 (LeCun et al., 1998), with ReLU and max pooling.

    Two blocks ``conv 5x5 -> ReLU -> max pool 2``, with 6 and 16 channels, then
    flattening: ``D = 16 * 5 * 5`` on 32x32 inputs, ``16 * 4 * 4`` on 28x28. The
    fully connected layers C5/F6 are replaced by the MLP head of the classifier.

    Parameters
    ----------
    in_channels : int, default=1
    width : float, default=1.0
        Channel multiplier.

    References
    ----------
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to
    document recognition. Proc. IEEE 86(11), 1998.
    """

    feature_layers = ("conv1", "conv2")

    def __init__(self, in_channels=1, width=1.0):
        super().__init__()
        c1, c2 = _channels(6, width), _channels(16, width)
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(c1, c2, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2)
        )

    def forward(self, x):
        return self.conv2(self.conv1(x)).flatten(1)


class VGG16(nn.Module):
    """VGG-16 (configuration D of Simonyan & Zisserman, 2015), 32x32 variant.

    Thirteen 3x3 convolutions in five blocks (64, 64 | 128, 128 | 256 x 3 |
    512 x 3 | 512 x 3 channels), each followed by batch normalization (as in the
    common CIFAR variant; without it VGG-16 hardly trains from scratch with SGD)
    and ReLU, each block ending in a 2x2 max pool. The three fully connected layers
    are replaced by global average pooling, so ``D = 512``. Pools round up
    (``ceil_mode``) so that 28x28 inputs also reach 1x1 after five blocks.

    Parameters
    ----------
    in_channels : int, default=3
    width : float, default=1.0
        Channel multiplier.
    batch_norm : bool, default=True
        Batch normalization after every convolution.

    References
    ----------
    K. Simonyan, A. Zisserman. Very deep convolutional networks for large-scale
    image recognition. ICLR 2015.
    """

    feature_layers = ("block1", "block2", "block3", "block4", "block5")
    _config = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))

    def __init__(self, in_channels=3, width=1.0, batch_norm=True):
        super().__init__()
        channels = in_channels
        for i, block in enumerate(self._config, start=1):
            layers = []
            for out in block:
                out = _channels(out, width)
                layers.append(
                    nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm)
                )
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU(inplace=True))
                channels = out
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            self.add_module(f"block{i}", nn.Sequential(*layers))
        self.pool = nn.AdaptiveAvgPool2d(1)
        _init_conv_bn(self)

    def forward(self, x):
        for name in self.feature_layers:
            x = getattr(self, name)(x)
        return self.pool(x).flatten(1)


class BasicBlock(nn.Module):
    """Residual block of two 3x3 convolutions (He et al., 2016, figure 2)."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            # Projection shortcut (option B of the paper) where the shape changes.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al., 2016), the standard 32x32 (CIFAR) variant.

    A 3x3 stride-1 stem convolution (64 channels) without the ImageNet max pool,
    then ``layer1`` ... ``layer4``: two :class:`BasicBlock` each, with 64, 128,
    256 and 512 channels and stride 1, 2, 2, 2 (32x32 -> 32, 16, 8, 4), then global
    average pooling, so ``D = 512``. The ImageNet classifier is left out.

    Parameters
    ----------
    in_channels : int, default=3
    width : float, default=1.0
        Channel multiplier.

    References
    ----------
    K. He, X. Zhang, S. Ren, J. Sun. Deep residual learning for image recognition.
    CVPR 2016.
    """

    # The maps Learning Loss (Yoo & Kweon, 2019) reads; ``stem`` is reachable too.
    feature_layers = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, in_channels=3, width=1.0):
        super().__init__()
        c = [_channels(n, width) for n in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(c[0]),
            nn.ReLU(inplace=True),
        )
        previous = c[0]
        for i, (channels, stride) in enumerate(zip(c, (1, 2, 2, 2)), start=1):
            blocks = nn.Sequential(
                BasicBlock(previous, channels, stride), BasicBlock(channels, channels)
            )
            self.add_module(f"layer{i}", blocks)
            previous = channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        _init_conv_bn(self)

    def forward(self, x):
        x = self.stem(x)
        for name in self.feature_layers:
            x = getattr(self, name)(x)
        return self.pool(x).flatten(1)


def _init_conv_bn(module):
    """He initialization of convolutions, unit/zero batch norm (He et al., 2015)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


BACKBONES = {"lenet": LeNet, "vgg16": VGG16, "resnet18": ResNet18}


def make_backbone(name, in_channels, width=1.0):
    """A new backbone from its name (``'lenet'``, ``'vgg16'``, ``'resnet18'``).

    Parameters
    ----------
    name : str
    in_channels : int
    width : float, default=1.0
        Channel multiplier.

    Returns
    -------
    backbone : torch.nn.Module
    """
    try:
        cls = BACKBONES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown backbone {name!r}; use one of {sorted(BACKBONES)} or pass an "
            f"nn.Module that maps N x C x H x W images to feature vectors."
        ) from None
    return cls(in_channels=in_channels, width=width)
