import numpy as np
import pytest

from skal._validation import check_pool
from skal.strategies import get_strategy

from .conftest import tiny_mlp


def test_uint8_images_stay_uint8_and_tables_become_float():
    images = np.random.RandomState(0).randint(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    checked = check_pool(images)
    assert checked.dtype == np.uint8 and checked.shape == images.shape
    table = images.reshape(5, -1)
    assert check_pool(table).dtype == np.float64
    assert check_pool(images.astype(np.float32)).dtype == np.float32


def test_mlp_rejects_images_with_a_clear_message():
    X = np.zeros((6, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="expects 2-D X.*CNNClassifier"):
        tiny_mlp().fit(X, np.arange(6) % 2)


def test_kcenter_input_space_on_uint8_images_equals_float_images(fitted_mlp):
    # Raw uint8 pixels must not wrap around in the distance computation.
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (40, 2, 5), dtype=np.uint8)
    labeled = rng.randint(0, 256, (3, 2, 5), dtype=np.uint8)
    picks = {}
    for dtype in (np.uint8, np.float64):
        strategy = get_strategy("kcenter", space="input", random_state=0)
        strategy.fit(labeled.astype(dtype), np.zeros(3), estimator=fitted_mlp)
        picks[dtype] = strategy.query(images.astype(dtype), 5)
    np.testing.assert_array_equal(picks[np.uint8], picks[np.float64])
