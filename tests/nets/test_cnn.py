import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn

from skal import ActiveLearner, embeddings
from skal.gradients import per_sample_gradient_norms
from skal.nets import (
    CNNClassifier,
    CNNModule,
    ImageInput,
    LossPrediction,
    RandomCropFlip,
)
from skal.nets._cnn import image_layout
from skal.nets._loss_prediction import FeatureRecorder
from skal.strategies import available_strategies


def images(n=16, size=32, channels=3, seed=0):
    """Random uint8 N x H x W x C images and labels of 3 classes."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 256, (n, size, size, channels)).astype(np.uint8)
    return X, np.arange(n) % 3


def normalized_nchw(X):
    """What the paper's ToTensor + Normalize(0.5, 0.5) would give, in numpy."""
    return ((X / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2).astype(np.float32)


def tiny_cnn(backbone="lenet", **params):
    defaults = dict(
        head=(16, 8), width=0.125, max_epochs=1, batch_size=8, random_state=0
    )
    return CNNClassifier(backbone, **{**defaults, **params})


@pytest.mark.parametrize("backbone", ["lenet", "vgg16", "resnet18"])
@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes_for_each_backbone(backbone, size, channels):
    X, y = images(8, size, channels)
    net = tiny_cnn(backbone).fit(X, y)
    assert net.image_shape_ == (channels, size, size)
    assert net.n_features_in_ == channels * size * size
    assert net.predict_proba(X).shape == (8, 3)
    module = net.module_
    assert module.output_layer.in_features == 8
    with torch.no_grad():
        h = module.eval().features(torch.from_numpy(X).float())
    assert h.shape == (8, 8)


def test_paper_defaults_and_head():
    net = CNNClassifier()
    assert net.backbone == "lenet" and net.head == (512, 256)
    assert net.optimizer is torch.optim.SGD and net.optimizer__momentum == 0.9
    assert net.augment is None
    module = CNNModule(3 * 32 * 32, 10, (3, 32, 32), "resnet18", dropout=0.25)
    linears = [m for m in module.head if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [512, 256]
    assert linears[0].in_features == 512  # ResNet-18's pooled features
    assert sum(isinstance(m, nn.Dropout) for m in module.head) == 2
    assert module.output_layer.in_features == 256
    assert module.output_layer.out_features == 10
    assert CNNModule(784, 10, (1, 28, 28)).head[0].in_features == 16 * 4 * 4


def test_uint8_nhwc_and_float_nchw_give_identical_outputs():
    X, y = images(12, 28, 3)
    net = tiny_cnn("resnet18").fit(X, y)
    expected = net.predict_proba(X)
    np.testing.assert_allclose(
        net.predict_proba(normalized_nchw(X)), expected, atol=1e-6
    )
    # ActiveLearner's validation turns a uint8 pool into float64 NHWC pixels.
    np.testing.assert_allclose(
        net.predict_proba(X.astype(np.float64)), expected, atol=1e-6
    )
    module = net.module_.eval()
    with torch.no_grad():
        direct = module(torch.from_numpy(normalized_nchw(X)))
        from_uint8 = module(torch.from_numpy(X))
    torch.testing.assert_close(from_uint8, direct)


def test_grayscale_without_channel_axis():
    X, y = images(8, 28, 1)
    net = tiny_cnn().fit(X[..., 0], y)
    assert net.image_shape_ == (1, 28, 28)
    np.testing.assert_allclose(
        net.predict_proba(X), net.predict_proba(X[..., 0]), atol=1e-6
    )
    np.testing.assert_allclose(
        net.predict_proba(normalized_nchw(X)), net.predict_proba(X), atol=1e-6
    )


def test_image_input_normalizes_per_channel():
    layer = ImageInput((3, 2, 2), mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 1.0))
    x = torch.full((1, 2, 2, 3), 255, dtype=torch.uint8)
    out = layer(x)
    assert out.shape == (1, 3, 2, 2) and out.is_contiguous()
    expected = torch.tensor([0.9 / 0.5, 0.8 / 0.25, 0.7 / 1.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected.expand(1, 3, 2, 2))
    floats = torch.randn(2, 3, 2, 2)
    torch.testing.assert_close(layer(floats), floats)
    assert ImageInput((3, 2, 2), channels_last=True)(floats).is_contiguous(
        memory_format=torch.channels_last
    )
    with pytest.raises(ValueError, match="Expected images of shape"):
        layer(torch.zeros(1, 3, 4, 4))


def test_layout_rules_and_errors():
    assert image_layout((5, 28, 28)) == "NHW"
    assert image_layout((5, 32, 32, 3), np.uint8) == "NHWC"
    assert image_layout((5, 32, 32, 3), np.float64) == "NHWC"
    assert image_layout((5, 3, 32, 32), np.float32) == "NCHW"
    X, y = images(8, 28, 3)
    with pytest.raises(ValueError, match="channels-last"):
        tiny_cnn().fit(X.transpose(0, 3, 1, 2).copy(), y)
    net = tiny_cnn().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        net.predict(images(2, 32, 3)[0])
    with pytest.raises(ValueError, match="Unknown backbone"):
        tiny_cnn("alexnet").fit(X, y)


def test_forward_pass_features_equal_module_features():
    X, y = images(20, 32, 3)
    net = tiny_cnn("vgg16").fit(X, y)
    out = embeddings.forward_pass(net, X, chunk_size=7)
    module = net.module_.eval()
    with torch.no_grad():
        h = module.features(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out.features, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.proba, net.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert out.features.shape == (20, 8)
    assert embeddings.output_layer(module) is module.output_layer


def recorded_outputs(module, names, X):
    """Outputs of the named submodules in one forward pass, recorded by the hooks
    loss prediction uses (FeatureRecorder)."""
    outputs, modules = {}, dict(module.named_modules())
    hooks = [
        modules[name].register_forward_hook(FeatureRecorder(outputs, name))
        for name in names
    ]
    try:
        module(X)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def test_intermediate_feature_maps_by_name():
    X, y = images(6, 32, 3)
    net = tiny_cnn("resnet18").fit(X, y)
    module = net.module_.eval()
    assert module.feature_layers == ("layer1", "layer2", "layer3", "layer4")
    layers = module.default_feature_layers
    assert layers == tuple(f"backbone.layer{i}" for i in range(1, 5))
    with torch.no_grad():
        maps = recorded_outputs(
            module, [*layers, "backbone.stem", "head"], torch.from_numpy(X)
        )
    # width 0.125: 8, 16, 32, 64 channels at 32, 16, 8, 4 pixels.
    assert maps["backbone.layer1"].shape == (6, 8, 32, 32)
    assert maps["backbone.layer2"].shape == (6, 16, 16, 16)
    assert maps["backbone.layer3"].shape == (6, 32, 8, 8)
    assert maps["backbone.layer4"].shape == (6, 64, 4, 4)
    assert maps["backbone.stem"].shape == (6, 8, 32, 32)
    np.testing.assert_allclose(
        maps["head"], embeddings.forward_pass(net, X).features, atol=1e-6
    )
    # Inside training code: the recorded maps stay in the autograd graph.
    module.train()
    captured = recorded_outputs(
        module, ["backbone.layer3", "backbone.layer4"], torch.from_numpy(X)
    )
    captured["backbone.layer4"].sum().backward()
    assert module.backbone.layer4[0].conv1.weight.grad is not None
    with pytest.raises(ValueError, match="Unknown layers.*backbone.layer1"):
        tiny_cnn(
            "resnet18", loss_prediction=LossPrediction(layers=["backbone.layer9"])
        ).fit(X, y)
    lenet = tiny_cnn().fit(X, y).module_
    assert lenet.default_feature_layers == ("backbone.conv1", "backbone.conv2")
    assert set(lenet.backbone.feature_layers) == {"conv1", "conv2"}


class Recorder:
    """An augmentation that records the batches it sees and returns them unchanged."""

    def __init__(self):
        self.shapes = []

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        return x


def test_augmentation_only_in_training():
    X, y = images(20, 28, 3)
    recorder = Recorder()
    net = tiny_cnn(augment=recorder, max_epochs=2).fit(X, y)
    assert recorder.shapes[0] == (8, 3, 28, 28)  # normalized NCHW batches
    assert len(recorder.shapes) == 2 * 3  # every training step, nothing else
    net.predict_proba(X)
    embeddings.forward_pass(net, X)
    per_sample_gradient_norms(net, X)  # backward passes outside training
    assert len(recorder.shapes) == 6
    # An identity augmentation does not change training.
    plain = tiny_cnn(max_epochs=2).fit(X, y)
    np.testing.assert_allclose(net.predict_proba(X), plain.predict_proba(X), atol=1e-6)
    augmented = tiny_cnn(augment=True, max_epochs=2).fit(X, y)
    assert not np.allclose(augmented.predict_proba(X), plain.predict_proba(X))


def test_random_crop_flip():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    assert torch.equal(RandomCropFlip(padding=0, flip=False)(x), x)
    out = RandomCropFlip(padding=2, flip=False, fill=-7.0)(x)
    assert out.shape == x.shape
    for image, original in zip(out, x):
        padded = nn.functional.pad(original, (2, 2, 2, 2), value=-7.0)
        windows = padded.unfold(1, 4, 1).unfold(2, 5, 1)  # C x 5 x 5 x 4 x 5
        hits = (windows == image[:, None, None]).flatten(3).all(3).all(0)
        assert hits.any()  # the output is one crop of the padded image
    flipped = RandomCropFlip(padding=0)(x[:1].expand(64, 3, 4, 5))
    n_flipped = (flipped == x[0].flip(2)).flatten(1).all(1).sum()
    assert 10 < n_flipped < 54


def test_random_state_reproducible_and_channels_last_equivalent():
    X, y = images(16, 32, 3)
    first = tiny_cnn("resnet18", channels_last=False).fit(X, y).predict_proba(X)
    second = clone(tiny_cnn("resnet18", channels_last=False)).fit(X, y)
    np.testing.assert_array_equal(first, second.predict_proba(X))
    assert second.module_.backbone.stem[0].weight.is_contiguous()
    fast = tiny_cnn("resnet18", channels_last=True).fit(X, y)
    assert fast.module_.backbone.stem[0].weight.is_contiguous(
        memory_format=torch.channels_last
    )
    np.testing.assert_allclose(fast.predict_proba(X), first, rtol=1e-4, atol=1e-5)
    # 'auto': channels_last for VGG-16 and ResNet-18, not for LeNet.
    auto = tiny_cnn("resnet18").fit(X, y).module_
    assert auto.input.channels_last
    assert not tiny_cnn("lenet").fit(X, y).module_.input.channels_last


def test_custom_backbone_module_is_copied():
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
    X, y = images(8, 28, 1)
    net = tiny_cnn(backbone).fit(X, y)
    assert net.module_.head[0].in_features == 16
    assert net.module_.backbone is not backbone
    assert not torch.equal(net.module_.backbone[0].weight, backbone[0].weight)
    with torch.no_grad():
        maps = recorded_outputs(net.module_, ["backbone.0"], torch.from_numpy(X))
    assert maps["backbone.0"].shape == (8, 4, 26, 26)


# Strategies that need a network trained with a loss-prediction module.
NEEDS_LOSS_PREDICTION = {"learning_loss", "lplgrad"}


@pytest.mark.parametrize("strategy", available_strategies())
def test_every_strategy_runs_on_a_cnn_in_active_learner(strategy):
    X, y = images(30, 28, 1)
    params = dict(dropout=0.1, width=0.5)
    if strategy in NEEDS_LOSS_PREDICTION:
        params["loss_prediction"] = LossPrediction(width=8)
    learner = ActiveLearner(
        tiny_cnn(**params),
        strategy,
        batch_size=4,
        n_rounds=2,
        random_state=0,
    ).fit(X[..., 0], y)
    assert learner.history_["n_labeled"].tolist() == [4, 8, 12]
    assert len(np.unique(learner.labeled_indices_)) == 12
    assert learner.predict_proba(X[..., 0]).shape == (30, 3)


def test_loss_prediction_reads_resnet_layers():
    X, y = images(8, 32, 3)
    net = tiny_cnn("resnet18", loss_prediction=LossPrediction(width=4)).fit(X, y)
    assert net.loss_layers_ == [f"backbone.layer{i}" for i in range(1, 5)]
    assert net.predict_loss(X).shape == (8,)
