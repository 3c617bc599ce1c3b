"""FixMatch's weak and strong image augmentations, batched in torch.

Both work on float ``N x C x H x W`` batches with pixel values in [0, 1] (uint8
pixels / 255), on any device, and draw every random parameter from a CPU
``torch.Generator`` (moved to the batch's device afterwards), so a seeded
generator gives the same augmentation on CPU and GPU. Each image gets its own
parameters. No torchvision: the operations follow PIL's definitions, which
FixMatch's RandAugment uses.

- :class:`WeakAugment`: random horizontal flip and a random translation of up to
  12.5 % of the size with reflect padding (FixMatch, section 2.3).
- :class:`StrongAugment`: RandAugment as in FixMatch (its table 12): for each
  image, ``n_ops`` operations drawn uniformly from the list below, each with a
  magnitude drawn uniformly from its range, then Cutout.

========================  =============================================
operation                 magnitude range (FixMatch, table 12)
========================  =============================================
identity, autocontrast,   none
equalize
brightness, color,        blend factor in [0.05, 0.95] (0: black/gray/
contrast, sharpness       flat/blurred image, 1: the original)
posterize                 bits kept in {4, ..., 8}
solarize                  threshold in [0, 1]
rotate                    angle in [-30, 30] degrees
shear_x, shear_y          shear in [-0.3, 0.3]
translate_x, translate_y  shift in [-0.3, 0.3] of the image size
========================  =============================================

Geometric operations fill uncovered pixels with gray (0.5) and sample
bilinearly; Cutout paints a gray square of side ``cutout`` times the image size
(0.5, as in the FixMatch reimplementations; table 12 lists a range [0, 0.5]).
"""

import math

import torch
import torch.nn.functional as F

# ITU-R 601-2 luma, as PIL's convert("L").
_LUMA = (0.299, 0.587, 0.114)
_GRAY = 0.5
_FACTOR_RANGE = (0.05, 0.95)


def _uniform(n, generator, device, low=0.0, high=1.0):
    """``n`` uniform draws on the CPU generator, moved to ``device``."""
    draws = torch.rand(n, generator=generator, dtype=torch.float64)
    return (low + (high - low) * draws).to(device=device, dtype=torch.float32)


def _check_images(images):
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(
            "Augmentations take a float N x C x H x W tensor with values in [0, 1] "
            f"(uint8 pixels / 255), got {type(images).__name__} of shape "
            f"{tuple(getattr(images, 'shape', ()))}."
        )
    if not images.is_floating_point():
        raise TypeError(
            f"Augmentations take float pixels in [0, 1], got dtype {images.dtype}: "
            f"divide uint8 images by 255 first."
        )


def _per_image(values):
    return values.view(-1, 1, 1, 1)


# --- colour operations ----------------------------------------------------------
def _grayscale(x):
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    luma = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * luma).sum(dim=1, keepdim=True)


def _blend(degenerate, x, factor):
    """PIL's ImageEnhance: ``degenerate + factor * (x - degenerate)``, clipped."""
    return (degenerate + _per_image(factor) * (x - degenerate)).clamp(0.0, 1.0)


def _factor(magnitude):
    low, high = _FACTOR_RANGE
    return low + (high - low) * magnitude


def identity(x, magnitude):
    """The image unchanged."""
    return x


def autocontrast(x, magnitude):
    """Stretch each channel to the full range [0, 1] (flat channels unchanged)."""
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    span = high - low
    stretched = (x - low) / span.clamp_min(1e-12)
    return torch.where(span > 0, stretched, x)


def equalize(x, magnitude):
    """Histogram equalization of each channel over 256 levels (PIL's algorithm)."""
    n, c, h, w = x.shape
    levels = (x * 255).round().clamp(0, 255).long().reshape(n * c, h * w)
    hist = torch.zeros(n * c, 256, device=x.device, dtype=torch.long)
    hist.scatter_add_(1, levels, torch.ones_like(levels))
    # PIL: step = (pixels - count of the highest occupied level) // 256.
    highest = 255 - (hist.flip(1) > 0).long().argmax(dim=1, keepdim=True)
    step = (h * w - hist.gather(1, highest)) // 256
    cdf = hist.cumsum(dim=1)
    lut = torch.cat([torch.zeros_like(cdf[:, :1]), cdf[:, :-1]], 1) + step // 2
    lut = (lut // step.clamp_min(1)).clamp(0, 255)
    equalized = lut.gather(1, levels).to(x.dtype) / 255
    # A channel with a single level (step 0) is left as it is.
    out = torch.where(step > 0, equalized, x.reshape(n * c, h * w))
    return out.view(n, c, h, w)


def brightness(x, magnitude):
    """Blend with black."""
    return _blend(torch.zeros_like(x), x, _factor(magnitude))


def color(x, magnitude):
    """Blend with the grayscale image (saturation)."""
    return _blend(_grayscale(x).expand_as(x), x, _factor(magnitude))


def contrast(x, magnitude):
    """Blend with the mean gray level of the image."""
    mean = _grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(mean.expand_as(x), x, _factor(magnitude))


def sharpness(x, magnitude):
    """Blend with PIL's SMOOTH-filtered image (border pixels kept)."""
    c = x.shape[1]
    kernel = torch.ones(3, 3, device=x.device, dtype=x.dtype)
    kernel[1, 1] = 5.0
    kernel = (kernel / 13.0).expand(c, 1, 3, 3)
    smooth = x.clone()
    smooth[:, :, 1:-1, 1:-1] = F.conv2d(x, kernel, groups=c)
    return _blend(smooth, x, _factor(magnitude))


def posterize(x, magnitude):
    """Keep the 4 to 8 most significant bits of each 8-bit level."""
    bits = 4 + (magnitude * 5).floor().clamp(max=4).long()
    mask = (255 - (2 ** (8 - bits) - 1)).view(-1, 1, 1, 1)
    levels = (x * 255).round().clamp(0, 255).long()
    return (levels & mask).to(x.dtype) / 255


def solarize(x, magnitude):
    """Invert the pixels at or above a threshold in [0, 1]."""
    return torch.where(x >= _per_image(magnitude), 1.0 - x, x)


# --- geometric operations ---------------------------------------------------------
def _affine(x, linear, shift):
    """Resample ``x`` at ``linear @ p + shift`` for each output pixel ``p``.

    ``linear`` (N x 2 x 2) and ``shift`` (N x 2, pixels) act on pixel coordinates
    centered on the image, (column, row); converted to ``affine_grid``'s
    normalized coordinates so that non-square images are not distorted.
    """
    n, _, h, w = x.shape
    to_pixels = torch.tensor([w / 2, h / 2], device=x.device, dtype=x.dtype)
    theta = torch.empty(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, :, :2] = linear * to_pixels.view(1, 1, 2) / to_pixels.view(1, 2, 1)
    theta[:, :, 2] = shift / to_pixels
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Sampling x - gray with zero padding fills the outside with gray.
    out = F.grid_sample(x - _GRAY, grid, mode="bilinear", align_corners=False)
    return (out + _GRAY).clamp(0.0, 1.0)


def _signed(magnitude, limit):
    return (2 * magnitude - 1) * limit


def rotate(x, magnitude):
    """Rotate by an angle in [-30, 30] degrees about the center."""
    angle = _signed(magnitude, 30.0) * (math.pi / 180)
    cos, sin = torch.cos(angle), torch.sin(angle)
    linear = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    return _affine(x, linear, torch.zeros(len(x), 2, device=x.device, dtype=x.dtype))


def _shear(x, magnitude, axis):
    linear = torch.eye(2, device=x.device, dtype=x.dtype).repeat(len(x), 1, 1)
    linear[:, axis, 1 - axis] = _signed(magnitude, 0.3)
    return _affine(x, linear, torch.zeros(len(x), 2, device=x.device, dtype=x.dtype))


def shear_x(x, magnitude):
    """Shear along the columns by a factor in [-0.3, 0.3]."""
    return _shear(x, magnitude, 0)


def shear_y(x, magnitude):
    """Shear along the rows by a factor in [-0.3, 0.3]."""
    return _shear(x, magnitude, 1)


def _translate(x, magnitude, axis):
    size = x.shape[3] if axis == 0 else x.shape[2]
    shift = torch.zeros(len(x), 2, device=x.device, dtype=x.dtype)
    shift[:, axis] = _signed(magnitude, 0.3) * size
    linear = torch.eye(2, device=x.device, dtype=x.dtype).repeat(len(x), 1, 1)
    return _affine(x, linear, shift)


def translate_x(x, magnitude):
    """Shift horizontally by up to 30 % of the width."""
    return _translate(x, magnitude, 0)


def translate_y(x, magnitude):
    """Shift vertically by up to 30 % of the height."""
    return _translate(x, magnitude, 1)


RANDAUGMENT_OPS = {
    op.__name__: op
    for op in (
        identity,
        autocontrast,
        equalize,
        brightness,
        color,
        contrast,
        sharpness,
        posterize,
        solarize,
        rotate,
        shear_x,
        shear_y,
        translate_x,
        translate_y,
    )
}


def cutout(x, size, generator=None):
    """Paint a gray square of side ``size`` (pixels) at a random center per image.

    The square is clipped at the borders, as in FixMatch's Cutout.
    """
    n, _, h, w = x.shape
    centers_y = (_uniform(n, generator, x.device) * h).floor().view(n, 1, 1)
    centers_x = (_uniform(n, generator, x.device) * w).floor().view(n, 1, 1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    half = size / 2
    inside = (
        (rows >= centers_y - half)
        & (rows < centers_y + half)
        & (cols >= centers_x - half)
        & (cols < centers_x + half)
    )
    return torch.where(inside.unsqueeze(1), torch.full_like(x, _GRAY), x)


# --- the two augmentations --------------------------------------------------------
class WeakAugment:
    """FixMatch's weak augmentation: flip, then translate with reflect padding.

    Parameters
    ----------
    flip : bool, default=True
        Flip each image left-right with probability 0.5 (FixMatch does on CIFAR;
        turn it off for digits, whose mirror images are other shapes).
    translate : float, default=0.125
        Largest shift, as a fraction of the height and width (rounded to pixels);
        the uncovered border is filled by reflection.

    Examples
    --------
    >>> import torch
    >>> from skal.semi_supervised import WeakAugment
    >>> x = torch.rand(4, 3, 32, 32)
    >>> WeakAugment()(x, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 32, 32])
    """

    def __init__(self, flip=True, translate=0.125):
        self.flip = flip
        self.translate = translate

    def __call__(self, images, generator=None):
        """Augment a float ``N x C x H x W`` batch in [0, 1]; returns a new tensor."""
        _check_images(images)
        n, _, h, w = images.shape
        x = images
        if self.flip:
            flipped = _uniform(n, generator, x.device) < 0.5
            x = torch.where(flipped.view(n, 1, 1, 1), x.flip(3), x)
        pad_y, pad_x = round(self.translate * h), round(self.translate * w)
        if pad_y or pad_x:
            padded = F.pad(x, (pad_x, pad_x, pad_y, pad_y), mode="reflect")
            dy = (_uniform(n, generator, x.device) * (2 * pad_y + 1)).floor().long()
            dx = (_uniform(n, generator, x.device) * (2 * pad_x + 1)).floor().long()
            rows = dy.view(n, 1, 1) + torch.arange(h, device=x.device).view(1, h, 1)
            cols = dx.view(n, 1, 1) + torch.arange(w, device=x.device).view(1, 1, w)
            batch = torch.arange(n, device=x.device).view(n, 1, 1)
            # Advanced indices around the channel slice put channels last.
            x = padded[batch, :, rows, cols].permute(0, 3, 1, 2)
        return x.contiguous()

    def __repr__(self):
        return f"WeakAugment(flip={self.flip}, translate={self.translate})"


class StrongAugment:
    """FixMatch's strong augmentation: RandAugment with random magnitudes, Cutout.

    Parameters
    ----------
    n_ops : int, default=2
        Operations applied to each image in turn, each drawn uniformly from
        ``ops`` (FixMatch's N = 2).
    cutout : float, default=0.5
        Side of the Cutout square as a fraction of the smaller image side; 0
        disables it.
    ops : sequence of str, default=None
        Names from :data:`RANDAUGMENT_OPS`; None uses all fourteen.

    Examples
    --------
    >>> import torch
    >>> from skal.semi_supervised import StrongAugment
    >>> x = torch.rand(4, 1, 28, 28)
    >>> y = StrongAugment()(x, torch.Generator().manual_seed(0))
    >>> y.shape, bool(y.min() >= 0 and y.max() <= 1)
    (torch.Size([4, 1, 28, 28]), True)
    """

    def __init__(self, n_ops=2, cutout=0.5, ops=None):
        self.n_ops = n_ops
        self.cutout = cutout
        self.ops = ops

    def _operations(self):
        names = list(RANDAUGMENT_OPS) if self.ops is None else list(self.ops)
        unknown = [name for name in names if name not in RANDAUGMENT_OPS]
        if unknown or not names:
            raise ValueError(
                f"Unknown or no operations {unknown}; choose from "
                f"{sorted(RANDAUGMENT_OPS)}."
            )
        return [RANDAUGMENT_OPS[name] for name in names]

    def __call__(self, images, generator=None):
        """Augment a float ``N x C x H x W`` batch in [0, 1]; returns a new tensor."""
        _check_images(images)
        operations = self._operations()
        x = images.clone()
        n = len(x)
        for _ in range(self.n_ops):
            chosen = torch.randint(len(operations), (n,), generator=generator)
            magnitude = _uniform(n, generator, x.device)
            for k, operation in enumerate(operations):
                rows = torch.nonzero(chosen == k).flatten().to(x.device)
                if len(rows):
                    x[rows] = operation(x[rows], magnitude[rows])
        if self.cutout:
            x = cutout(x, self.cutout * min(x.shape[2:]), generator)
        return x

    def __repr__(self):
        return (
            f"StrongAugment(n_ops={self.n_ops}, cutout={self.cutout}, ops={self.ops})"
        )
