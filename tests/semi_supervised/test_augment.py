import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from skal.semi_supervised import RANDAUGMENT_OPS, StrongAugment, WeakAugment, cutout
from skal.semi_supervised import _augment as ops


def pixels(n=6, channels=3, size=12, seed=0):
    """uint8 N x H x W x C images with a spread of levels."""
    rng = np.random.RandomState(seed)
    base = rng.randint(40, 200, (n, size, size, channels))
    return np.clip(base + rng.randint(-40, 40, (n, 1, 1, 1)), 0, 255).astype(np.uint8)


def to_unit(images):
    return torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255


def to_levels(x):
    return x.permute(0, 2, 3, 1).numpy() * 255


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def pil_image(image):
    return Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)


def pil_array(image, channels):
    array = np.asarray(image, dtype=np.float64)
    return array[..., None] if channels == 1 else array


FACTOR = 0.6  # an enhancement factor; magnitude (0.6 - 0.05) / 0.9


@pytest.mark.parametrize(
    "name, magnitude, reference",
    [
        ("autocontrast", 0.0, ImageOps.autocontrast),
        ("equalize", 0.0, ImageOps.equalize),
        ("posterize", 0.3, lambda im: ImageOps.posterize(im, 5)),
        ("solarize", 128 / 255, lambda im: ImageOps.solarize(im, 128)),
        (
            "brightness",
            (FACTOR - 0.05) / 0.9,
            lambda im: ImageEnhance.Brightness(im).enhance(FACTOR),
        ),
        (
            "color",
            (FACTOR - 0.05) / 0.9,
            lambda im: ImageEnhance.Color(im).enhance(FACTOR),
        ),
        (
            "contrast",
            (FACTOR - 0.05) / 0.9,
            lambda im: ImageEnhance.Contrast(im).enhance(FACTOR),
        ),
        (
            "sharpness",
            (FACTOR - 0.05) / 0.9,
            lambda im: ImageEnhance.Sharpness(im).enhance(FACTOR),
        ),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_colour_operations_match_pil(name, magnitude, reference, channels):
    images = pixels(channels=channels)
    out = RANDAUGMENT_OPS[name](to_unit(images), torch.full((len(images),), magnitude))
    expected = np.stack(
        [pil_array(reference(pil_image(image)), channels) for image in images]
    )
    # PIL rounds (autocontrast truncates) to integer levels.
    np.testing.assert_allclose(to_levels(out), expected, atol=1.01)


def test_sharpness_smooths_with_pils_kernel_inside_the_border():
    image = pixels(1, 1, 8)
    smooth = pil_array(pil_image(image[0]).filter(ImageFilter.SMOOTH), 1)
    # Factor 0 would be the smoothed image; the range starts at 0.05.
    out = to_levels(ops.sharpness(to_unit(image), torch.zeros(1)))[0]
    expected = smooth + 0.05 * (image[0] - smooth)
    np.testing.assert_allclose(out, expected, atol=1.01)


def test_geometric_operations_at_zero_magnitude_are_identity():
    x = to_unit(pixels())
    middle = torch.full((len(x),), 0.5)  # magnitudes map to [-limit, limit]
    for name in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y"):
        torch.testing.assert_close(
            RANDAUGMENT_OPS[name](x, middle), x, atol=1e-6, rtol=0
        )


@pytest.mark.parametrize("name, axis", [("translate_x", 3), ("translate_y", 2)])
def test_translation_shifts_whole_pixels_and_fills_gray(name, axis):
    x = to_unit(pixels(2, 3, 10))
    out = RANDAUGMENT_OPS[name](x, torch.ones(2))  # 0.3 * 10 = 3 pixels
    shifted = torch.full_like(x, 0.5)
    if axis == 3:
        shifted[..., :-3] = x[..., 3:]
    else:
        shifted[:, :, :-3] = x[:, :, 3:]
    mirrored = torch.full_like(x, 0.5)
    if axis == 3:
        mirrored[..., 3:] = x[..., :-3]
    else:
        mirrored[:, :, 3:] = x[:, :, :-3]
    close = [torch.allclose(out, ref, atol=1e-5) for ref in (shifted, mirrored)]
    assert any(close)


def test_rotation_by_thirty_degrees_moves_a_point_as_expected():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 18] = 1.0  # 8 pixels right of the center
    out = ops.rotate(x, torch.ones(1))[0, 0]  # +30 degrees
    row, col = np.unravel_index(int(out.argmax()), out.shape)
    angle = np.degrees(np.arctan2(row - 10, col - 10))
    assert abs(abs(angle) - 30) < 6  # one pixel of rounding at radius 8


@pytest.mark.parametrize("augment", [WeakAugment(), StrongAugment()])
@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (4, 3, 32, 32), (3, 3, 20, 24)])
def test_augmentations_keep_shape_dtype_and_range(augment, shape):
    x = torch.rand(shape)
    out = augment(x, generator())
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


@pytest.mark.parametrize("name", sorted(RANDAUGMENT_OPS))
def test_each_operation_keeps_shape_dtype_and_range(name):
    x = torch.rand(6, 3, 16, 16)
    magnitude = torch.linspace(0, 1, 6)
    out = RANDAUGMENT_OPS[name](x, magnitude)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("augment", [WeakAugment(), StrongAugment()])
def test_augmentations_are_deterministic_under_a_seed(augment):
    x = torch.rand(8, 3, 16, 16)
    torch.testing.assert_close(augment(x, generator(3)), augment(x, generator(3)))
    assert not torch.equal(augment(x, generator(3)), augment(x, generator(4)))
    # Without a generator they follow torch's global seed.
    torch.manual_seed(5)
    first = augment(x)
    torch.manual_seed(5)
    torch.testing.assert_close(augment(x), first)


def test_weak_translation_is_a_crop_of_the_reflect_padded_image():
    x = torch.rand(6, 2, 16, 16)
    out = WeakAugment(flip=False, translate=0.125)(x, generator(1))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for image, result in zip(padded, out):
        crops = [
            torch.equal(image[:, dy : dy + 16, dx : dx + 16], result)
            for dy in range(5)
            for dx in range(5)
        ]
        assert sum(crops) >= 1


def test_weak_flip_mirrors_about_half_of_the_images():
    x = torch.rand(64, 1, 8, 8)
    out = WeakAugment(flip=True, translate=0.0)(x, generator(2))
    same = [torch.equal(a, b) for a, b in zip(out, x)]
    mirrored = [torch.equal(a, b.flip(2)) for a, b in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 16 < sum(mirrored) < 48


def test_cutout_paints_one_gray_square():
    x = torch.zeros(20, 1, 40, 40)
    out = cutout(x, 10, generator(0))
    for image in out[:, 0]:
        rows, cols = torch.nonzero(image == 0.5, as_tuple=True)
        height = int(rows.max() - rows.min()) + 1
        width = int(cols.max() - cols.min()) + 1
        assert len(rows) == height * width  # a filled rectangle
        assert 5 <= height <= 10 and 5 <= width <= 10  # clipped by at most half
    assert torch.isin(out, torch.tensor([0.0, 0.5])).all()


def test_strong_augment_applies_n_ops_from_its_list():
    x = torch.rand(4, 3, 16, 16)
    only_identity = StrongAugment(n_ops=3, cutout=0.0, ops=["identity"])
    torch.testing.assert_close(only_identity(x, generator()), x)
    inverted = StrongAugment(n_ops=1, cutout=0.0, ops=["solarize"])(x, generator())
    assert torch.all((inverted == x) | torch.isclose(inverted, 1 - x))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="N x C x H x W"):
        WeakAugment()(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="divide uint8 images by 255"):
        StrongAugment()(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="Unknown"):
        StrongAugment(ops=["blur"])(torch.rand(2, 1, 8, 8))
