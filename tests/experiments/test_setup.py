"""Tests for the benchmark datasets and models (skal.experiments._setup)."""

import gzip

import numpy as np
import pytest

from skal.experiments import (
    available_datasets,
    flat_pixels,
    load_benchmark_data,
    make_model,
    run_benchmark,
    split_pool,
)
from skal.nets import CNNClassifier, MLPClassifier

from ..datasets.test_images import idx_bytes


def test_split_pool_holds_out_a_stratified_validation_split():
    X, y = np.arange(400.0).reshape(200, 2), np.repeat([0, 1, 2, 3], 50)
    data = split_pool(X, y, X[:5], y[:5], validation_size=0.2, pool_size=100)
    assert len(data.y_val) == 40 and len(data.y_pool) == 100
    assert np.bincount(data.y_val).tolist() == [10, 10, 10, 10]
    assert not set(data.X_pool[:, 0]) & set(data.X_val[:, 0])  # never acquired
    again = split_pool(X, y, X[:5], y[:5], validation_size=0.2, pool_size=100)
    np.testing.assert_array_equal(data.X_pool, again.X_pool)  # fixed per dataset


def test_image_datasets_are_registered():
    assert {"mnist", "cifar10", "cifar10_test"} <= set(available_datasets())


def test_make_model_builds_the_papers_networks():
    mlp = make_model("mlp", max_epochs=3, sgd_batch_size=16, dropout=0.1)
    assert isinstance(mlp, MLPClassifier)
    assert mlp.hidden_layer_sizes == (512, 256) and mlp.max_epochs == 3
    for name in ("lenet", "vgg16", "resnet18"):
        cnn = make_model(name, lr=0.05)
        assert isinstance(cnn, CNNClassifier) and cnn.backbone == name
        assert cnn.head == (512, 256) and cnn.lr == 0.05
        assert cnn.optimizer__momentum == 0.9
    with pytest.raises(ValueError, match="Unknown model 'vgg19'"):
        make_model("vgg19")


def test_flat_pixels_scales_uint8_images_and_keeps_tables():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)[..., None]
    np.testing.assert_allclose(flat_pixels(images), [[0, 1, 0.2, 0.4]], rtol=1e-6)
    assert flat_pixels(images).dtype == np.float32
    table = np.ones((3, 4))
    assert flat_pixels(table) is table


@pytest.fixture
def mnist_home(tmp_path):
    """40 training and 10 test 28x28 digits in MNIST's IDX format."""
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = (np.arange(50) % 2).astype(np.uint8)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split, part in (("train", slice(0, 40)), ("t10k", slice(40, None))):
        for kind, array in (
            ("images-idx3", images[part]),
            ("labels-idx1", labels[part]),
        ):
            data = gzip.compress(idx_bytes(array))
            (folder / f"{split}-{kind}-ubyte.gz").write_bytes(data)
    return tmp_path


def test_mnist_loads_as_images_or_flat_pixel_rows(mnist_home):
    images = load_benchmark_data("mnist", data_home=mnist_home, validation_size=8)
    assert images.X_pool.shape == (32, 28, 28, 1) and images.X_pool.dtype == np.uint8
    assert len(images.y_val) == 8 and images.X_test.shape == (10, 28, 28, 1)
    rows = load_benchmark_data(
        "mnist", data_home=mnist_home, validation_size=8, flatten_images=True
    )
    assert rows.X_pool.shape == (32, 784) and rows.X_test.shape == (10, 784)
    np.testing.assert_allclose(rows.X_pool * 255, images.X_pool.reshape(32, -1))


def test_bench_runs_a_cnn_on_images_and_refuses_it_on_tables(mnist_home, tmp_path):
    report = run_benchmark(
        ["mnist"],
        model="lenet",
        strategies=["random", "entropy"],
        seeds=1,
        n_rounds=1,
        batch_size=4,
        max_epochs=1,
        lr=0.01,
        validation_size=8,
        data_home=mnist_home,
        output_dir=tmp_path / "out",
        report=False,
        progress=False,
        print_fn=None,
    )
    assert not report.failures
    assert set(report.results["model"]) == {"lenet"}
    assert report.results["n_labeled"].max() == 8
    with pytest.raises(ValueError, match="lenet model needs images; isolet"):
        run_benchmark(["isolet"], model="lenet", output_dir=tmp_path / "x")
