"""Closed-form per-sample gradient norms against per-sample autograd loops and vmap."""

import gc
import weakref

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


def autograd_conv_weight_sq_norms(conv, x, delta):
    """||d(sum conv(x_i) * delta_i)/dW||^2 for each sample, one autograd call each."""
    sq = []
    for i in range(len(x)):
        (weight_grad,) = torch.autograd.grad(
            (conv(x[i : i + 1]) * delta[i]).sum(), conv.weight
        )
        sq.append(weight_grad.pow(2).sum())
    return torch.stack(sq).numpy()


CONV_CASES = [  # (in, out, kernel, stride, padding, dilation, height, width)
    (3, 4, 3, 1, 1, 1, 7, 7),
    (3, 4, 3, 2, 1, 1, 9, 8),  # stride 2, odd height: the last row is cut
    (2, 3, (3, 2), (2, 1), (1, 0), 1, 8, 7),  # rectangular everything
    (2, 3, 3, 1, 2, 2, 6, 7),  # dilated
    (2, 3, 3, 1, "same", 2, 5, 6),
    (3, 2, 1, 2, 0, 1, 7, 6),  # 1x1 projection shortcut
    (2, 3, 5, 1, "valid", 1, 7, 9),
]


@pytest.mark.parametrize("form", _layer_norms._CONV_FORMS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_each_conv_weight_form_equals_autograd(form, case):
    c_in, c_out, kernel, stride, padding, dilation, h, w = case
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation).double()
    x = torch.randn(5, c_in, h, w, dtype=torch.float64)
    delta = torch.randn_like(conv(x))
    expected = autograd_conv_weight_sq_norms(conv, x, delta)
    got = _layer_norms._conv_weight_sq_norms(conv, x, delta, form)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize(
    "form, block_values",
    [("per_sample", None), ("pixel_gram", 1), ("pixel_gram", 3 * 8**4)],
)
def test_conv_forms_in_channels_last_float32(form, block_values, monkeypatch):
    # ResNet-18 runs channels_last. pixel_gram in blocks of one sample (one dot
    # product per kernel offset), and of three (strided windows; 7 = 3 + 3 + 1).
    if block_values is not None:
        monkeypatch.setattr(_layer_norms, "_PIXEL_GRAM_BLOCK_VALUES", block_values)
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(7, 6, 6, 6).contiguous(memory_format=torch.channels_last)
    delta = torch.randn_like(conv(x))
    expected = autograd_conv_weight_sq_norms(conv.double(), x.double(), delta.double())
    conv.float()
    got = _layer_norms._conv_weight_sq_norms(conv, x, delta, form)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_cost_model_picks_the_known_best_form_for_resnet_stages():
    # Measured in benchmarks/resnet_norms.py --layers: forming the gradient is
    # cheapest on 32x32 maps, the pixel Gram on 16x16 to 4x4 maps.
    def cheapest(c_in, c_out, size, stride=1):
        conv = nn.Conv2d(c_in, c_out, 3, stride, 1)
        out = (size + 2 - 3) // stride + 1
        costs = _layer_norms.conv_weight_costs(
            conv, (1, c_in, size, size), (1, c_out, out, out)
        )
        return min(costs, key=costs.get)

    assert cheapest(64, 64, 32) == "per_sample"
    assert cheapest(64, 128, 32, stride=2) == "per_sample"
    assert cheapest(128, 128, 16) == "pixel_gram"
    assert cheapest(256, 256, 8) == "pixel_gram"
    assert cheapest(512, 512, 4) == "pixel_gram"


def test_unknown_conv_form():
    conv = nn.Conv2d(1, 1, 3)
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="form must be one of"):
        _layer_norms._conv_weight_sq_norms(conv, x, conv(x), "unfold")


class TinyResNet(nn.Module):
    """Every layer type of ResNet-18, in float64: stem, a downsampling residual
    block with a projection shortcut, in-place ReLUs, batch norm, a dilated
    'same' conv and a linear head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1, bias=False),
            nn.BatchNorm2d(4),
            nn.ReLU(inplace=True),
        )
        self.conv1 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding="same", dilation=2)
        self.bn2 = nn.BatchNorm2d(6)
        self.shortcut = nn.Sequential(nn.Conv2d(4, 6, 1, stride=2), nn.BatchNorm2d(6))
        self.relu = nn.ReLU(inplace=True)
        self.output_layer = nn.Linear(6, 3)
        for bn in (self.stem[1], self.bn1, self.bn2, self.shortcut[1]):
            # Running statistics and affine parameters away from 0 and 1.
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            nn.init.uniform_(bn.weight, 0.5, 1.5)
            nn.init.uniform_(bn.bias, -0.5, 0.5)
        self.double()

    def forward(self, X):
        x = self.stem(X.double().view(-1, 2, 9, 9))
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))
        return self.output_layer(out.mean((2, 3)))


def autograd_full_gradient_sq_norms(module, X, loss):
    """Per-sample squared norm of every parameter's gradient: a loop of autograd."""
    module.eval()
    params = list(module.parameters())
    sq = []
    for x in torch.as_tensor(X, dtype=torch.float32):
        logits = module(x[None])
        value = gradients._batched_losses(logits, loss, None).sum()
        grads = torch.autograd.grad(value, params)
        sq.append([g.pow(2).sum().item() for g in grads])
    return np.array(sq)  # (N, n_tensors)


@pytest.mark.parametrize("form", [None, *_layer_norms._CONV_FORMS])
@pytest.mark.parametrize("loss", ["entropy", "pseudo_label"])
def test_tiny_resnet_norms_equal_a_per_sample_autograd_loop(form, loss, monkeypatch):
    # Blocks smaller than the chunks of 4 rows: pixel_gram's 9x9 stem in blocks
    # of 3 and 1 (both paths), batch norm in blocks of 2.
    monkeypatch.setattr(_layer_norms, "_PIXEL_GRAM_BLOCK_VALUES", 3 * 11**4)
    monkeypatch.setattr(_layer_norms, "_BATCH_NORM_BLOCK_VALUES", 2 * 4 * 9 * 9)
    if form is not None:  # every conv in the given form
        original = _layer_norms._conv_weight_sq_norms
        monkeypatch.setattr(
            _layer_norms,
            "_conv_weight_sq_norms",
            lambda layer, x, delta, _=None: original(layer, x, delta, form),
        )
    torch.manual_seed(0)
    X = np.random.RandomState(0).randn(10, 2 * 9 * 9).astype(np.float32)
    net = NeuralNetClassifier(TinyResNet, criterion=nn.CrossEntropyLoss).initialize()
    expected = autograd_full_gradient_sq_norms(net.module_, X, loss)
    for norm, reduce in [
        ("global", lambda sq: np.sqrt(sq.sum(1))),
        ("per_tensor_sum", lambda sq: np.sqrt(sq).sum(1)),
    ]:
        got = gradients.per_sample_gradient_norms(
            net, X, loss=loss, norm=norm, method="factored", chunk_size=4
        )
        np.testing.assert_allclose(got, reduce(expected), rtol=1e-10)


def test_an_input_modified_in_place_after_its_layer_is_refused():
    # With the layer's weight frozen, autograd does not keep its input, so only
    # the capture's version check notices the in-place change (the norms would
    # silently use the modified input).
    class ModifiesInput(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(4, 5)
            self.output_layer = nn.Linear(5, 3)
            self.output_layer.weight.requires_grad_(False)

        def forward(self, X):
            h = torch.relu(self.hidden(X))
            out = self.output_layer(h)
            h.mul_(2)  # after output_layer read it
            return out + h.sum(1, keepdim=True)

    X = np.random.RandomState(0).rand(12, 4).astype(np.float32)
    net = NeuralNetClassifier(ModifiesInput, criterion=nn.CrossEntropyLoss)
    net.initialize()
    with pytest.raises(ValueError, match="modified in place"):
        gradients.per_sample_gradient_norms(net, X, method="factored")


def test_a_layer_the_loss_does_not_use_has_zero_norm():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Linear(4, 2)
            self.output_layer = nn.Linear(4, 3)

        def forward(self, X):
            return self.output_layer(X)

    rng = np.random.RandomState(0)
    X = rng.rand(6, 4).astype(np.float32)
    net = NeuralNetClassifier(Unused, criterion=nn.CrossEntropyLoss).initialize()
    np.testing.assert_allclose(
        gradients.per_sample_gradient_norms(net, X, method="factored"),
        gradients.per_sample_gradient_norms(net, X, method="vmap"),
        rtol=1e-5,
    )


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


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(6, 5)
        self.output_layer = nn.Linear(5, 3)

    def forward(self, X):
        return self.output_layer(torch.relu(self.hidden(X)))


def test_default_factored_chunks_fit_the_activation_budget(monkeypatch):
    # A chunk of 16 rows, then chunks whose captured layer inputs, twice, fit the
    # budget: the MLP's two Linear layers read 6 + 5 float32 values per sample.
    X = np.random.RandomState(0).rand(40, 6).astype(np.float32)
    net = NeuralNetClassifier(TinyMLP, criterion=nn.CrossEntropyLoss).initialize()
    chunks = []
    net.module_.register_forward_hook(
        lambda _m, inputs, _o: chunks.append(len(inputs[0]))
    )
    monkeypatch.setattr(gradients, "ACTIVATION_CHUNK_BYTES", 2 * (6 + 5) * 4 * 7)
    norms = gradients.per_sample_gradient_norms(net, X, method="factored")
    assert chunks == [16, 7, 7, 7, 3]
    np.testing.assert_allclose(
        norms, gradients.per_sample_gradient_norms(net, X, method="vmap"), rtol=1e-5
    )
    chunks.clear()
    gradients.per_sample_gradient_norms(net, X, method="factored", chunk_size=25)
    assert chunks == [25, 15]


def test_no_activation_outlives_the_norms():
    # The gradient hooks refer to the capture; if it kept the activations, the
    # cycle through autograd's graph would leak every chunk (gc cannot free it).
    X = np.random.RandomState(0).rand(8, 6).astype(np.float32)
    net = NeuralNetClassifier(TinyMLP, criterion=nn.CrossEntropyLoss).initialize()
    seen = []
    net.module_.output_layer.register_forward_hook(
        lambda _m, inputs, _o: seen.append(weakref.ref(inputs[0]))
    )
    gradients.per_sample_gradient_norms(net, X, method="factored")
    gc.collect()
    assert seen and all(ref() is None for ref in seen)
