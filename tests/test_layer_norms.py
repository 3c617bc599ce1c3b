"""Closed-form per-sample gradient norms of conv nets against torch.func (vmap)."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn

from skal import _layer_norms, gradients

from .nets.test_cnn import tiny_cnn


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, (48, 32, 32, 3), dtype=np.uint8), rng.randint(0, 3, 48)


@pytest.mark.parametrize("backbone", ["lenet", "vgg16", "resnet18"])
@pytest.mark.parametrize("norm", ["global", "per_tensor_sum"])
def test_cnn_gradient_norms_equal_vmap(backbone, norm, images):
    # VGG-16 and ResNet-18 have batch norm (running statistics after one epoch)
    # and in-place ReLUs right after the layers whose outputs are differentiated.
    X, y = images
    net = tiny_cnn(backbone, dropout=0.2).fit(X, y)
    assert _layer_norms.parameter_owners(net.module_) is not None
    kwargs = dict(loss="entropy", norm=norm, chunk_size=16)
    factored = gradients.per_sample_gradient_norms(
        net, X[:20], method="factored", **kwargs
    )
    vmapped = gradients.per_sample_gradient_norms(net, X[:20], method="vmap", **kwargs)
    np.testing.assert_allclose(factored, vmapped, rtol=2e-4)


@pytest.mark.parametrize(
    "size, stride, dilation, ghost",
    [(3, 1, 1, True), (10, 1, 1, False), (11, 2, 1, False), (9, 1, 2, False)],
)
def test_conv_weight_norms_in_both_forms_equal_autograd(size, stride, dilation, ghost):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, stride=stride, padding=1, dilation=dilation)
    x = torch.randn(5, 8, size, size)
    delta = torch.randn_like(conv(x))
    p, k = delta[0, 0].numel(), 8 * 9
    assert (p * (16 + k) < 16 * k) == ghost  # the branch this case exercises
    expected = []
    for i in range(5):
        weight_grad = torch.autograd.grad(
            (conv(x[i : i + 1]) * delta[i]).sum(), conv.weight
        )
        expected.append(weight_grad[0].double().pow(2).sum())
    got = _layer_norms._conv_weight_sq_norms(conv, x, delta)
    np.testing.assert_allclose(got.numpy(), torch.stack(expected).numpy(), rtol=1e-5)


def test_a_layer_used_twice_falls_back_to_vmap():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)
            self.output_layer = nn.Linear(16, 3)

        def forward(self, X):
            x = X.view(-1, 1, 4, 4)
            return self.output_layer(self.conv(self.conv(x)).flatten(1))

    rng = np.random.RandomState(0)
    X, y = rng.rand(12, 16).astype(np.float32), np.arange(12) % 3
    net = NeuralNetClassifier(
        Twice, max_epochs=1, train_split=None, criterion=nn.CrossEntropyLoss
    ).fit(X, y)
    with pytest.raises(ValueError, match="more than once"):
        gradients.per_sample_gradient_norms(net, X, method="factored")
    np.testing.assert_allclose(
        gradients.per_sample_gradient_norms(net, X),  # auto: falls back
        gradients.per_sample_gradient_norms(net, X, method="vmap"),
        rtol=1e-5,
    )
