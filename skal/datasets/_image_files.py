"""What the image loaders share: decoding, resizing, archives, subsampling, results.

Every image loader (:mod:`._mnist`, :mod:`._cifar`, :mod:`._svhn_stl10`,
:mod:`._image_folders`) reads local files under ``<data_home>/<name>/`` (see
:func:`skal.datasets.get_data_home`) and returns a Bunch with ``X_train, y_train,
X_test, y_test`` (uint8 images ``N x H x W x C`` and int64 labels ``0..C-1``),
``target_names`` and ``DESCR``. Nothing is downloaded: the files are large, so a
missing file raises a :class:`FileNotFoundError` that names the paths looked for
and the official source. As in paper 001, images can be resized to 32x32 (Pillow,
bilinear with antialiasing) and the training pool uniformly subsampled
(``n_train``, ``random_state``). Normalization with mean/std 0.5 happens inside
:class:`skal.nets.CNNClassifier`, so the arrays stay uint8 (4x smaller than floats).
"""

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._base import _check_n

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".gif", ".tif", ".tiff")


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow is a dependency
        raise ImportError(
            "Reading and resizing image files needs Pillow: pip install pillow"
        ) from exc
    return Image


def _resize(images, size):
    """Resize uint8 ``N x H x W x C`` images to ``size x size`` (Pillow bilinear)."""
    if size is None or images.shape[1:3] == (size, size):
        return images
    Image = _pil()
    out = np.empty((len(images), size, size, images.shape[3]), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        small = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
        out[i] = small.reshape(size, size, -1)
    return out


def _decode(data_or_path, size, mode="RGB"):
    """One image file -> uint8 H x W x C in ``mode`` (resized if ``size``)."""
    Image = _pil()
    source = (
        io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    )
    with Image.open(source) as image:
        image = image.convert(mode)
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array.reshape(array.shape[0], array.shape[1], -1)


def _stack(images, n_channels):
    if not images:
        return np.empty((0, 0, 0, n_channels), dtype=np.uint8)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"Images have different sizes {sorted(shapes)[:3]}...; pass size= to "
            f"resize them to one size."
        )
    return np.stack(images)


def _check_counts(n_train, n_test=None):
    _check_n(n_train, "n_train")
    _check_n(n_test, "n_test")


def _subsample(n_rows, n, rng):
    """Sorted indices of a uniform subsample of ``n`` rows (all rows if n is None)."""
    if n is None or n >= n_rows:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, n, replace=False))


def _bunch(X_tr, y_tr, X_te, y_te, names, descr, n_train, n_test, random_state):
    """Subsample the arrays uniformly and build the result Bunch."""
    rng = check_random_state(random_state)
    tr, te = _subsample(len(y_tr), n_train, rng), _subsample(len(y_te), n_test, rng)
    return _result(X_tr[tr], y_tr[tr], X_te[te], y_te[te], names, descr)


def _result(X_tr, y_tr, X_te, y_te, names, descr):
    y_tr, y_te = (np.asarray(y, dtype=np.int64) for y in (y_tr, y_te))
    descr += (
        f" {len(y_tr)} training / {len(y_te)} test images of shape "
        f"{tuple(X_tr.shape[1:])} (H, W, C), uint8."
    )
    return Bunch(
        X_train=np.ascontiguousarray(X_tr),
        y_train=y_tr,
        X_test=np.ascontiguousarray(X_te),
        y_test=y_te,
        target_names=list(names),
        DESCR=descr,
    )


def _read_members(folder, subdir, archive, names):
    """``{name: bytes}`` for files ``names`` of ``folder/subdir``, else of the
    tarball ``folder/archive`` (members under ``subdir/``, read in one pass);
    None if neither exists."""
    directory = folder / subdir
    if directory.is_dir():
        return {name: (directory / name).read_bytes() for name in names}
    tar_path = folder / archive
    if not tar_path.is_file():
        return None
    wanted, out = {f"{subdir}/{name}": name for name in names}, {}
    with tarfile.open(tar_path, "r:*") as tar:
        for member in tar:
            if member.name in wanted and member.isfile():
                out[wanted[member.name]] = tar.extractfile(member).read()
    absent = [f"{subdir}/{name}" for name in names if name not in out]
    if absent:
        raise FileNotFoundError(f"{tar_path} has no member(s) {absent}.")
    return out


def _read_maybe_gz(path):
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


# ------------------------------------------------------------ image files in folders
def _list_images(directory):
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def _class_folders(directory, exclude=()):
    return sorted(
        p for p in directory.iterdir() if p.is_dir() and p.name not in exclude
    )


def _decode_files(files, size, mode="RGB"):
    return _stack([_decode(f, size, mode) for f in files], 1 if mode == "L" else 3)


def _pick(files, labels, n, rng):
    keep = _subsample(len(files), n, rng)
    return [files[i] for i in keep], np.asarray(labels, dtype=np.int64)[keep]
