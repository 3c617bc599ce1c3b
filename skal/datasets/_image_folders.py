"""Image sets stored as one file per image in class folders: GTSRB, CINIC-10,
Caltech-101. The subsample is drawn from the file list before decoding, so a small
pool is fast to load."""

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from ._base import _first, _missing, get_data_home, shared_docs
from ._cifar import _CIFAR10_CLASSES
from ._image_files import (
    _check_counts,
    _class_folders,
    _decode_files,
    _list_images,
    _pick,
    _result,
)

_GTSRB_URL = (
    "https://benchmark.ini.rub.de/gtsrb_dataset.html (GTSRB_Final_Training_Images."
    "zip, GTSRB_Final_Test_Images.zip, GTSRB_Final_Test_GT.zip)"
)
_CINIC_URL = "https://datashare.ed.ac.uk/handle/10283/3192 (CINIC-10.tar.gz)"
_CALTECH_URL = "https://data.caltech.edu/records/mzrjq-6wc02 (101_ObjectCategories)"


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


@shared_docs
def load_gtsrb(data_home=None, *, size=32, n_train=None, n_test=None, random_state=0):
    """Load GTSRB (Stallkamp et al., 2012), 43 traffic-sign classes, resized.

    Reads the official image folders under ``<data_home>/gtsrb/``: training images
    in ``GTSRB/Final_Training/Images/000NN/`` (class folders; ``GTSRB/Training/``
    also works), test images in ``GTSRB/Final_Test/Images/`` with their labels in
    ``GT-final_test.csv`` (from ``GTSRB_Final_Test_GT.zip``; semicolon-separated,
    columns ``Filename`` and ``ClassId``). Whole images are resized (no ROI crop).

    Parameters
    ----------
    {data_home}
    size : int or None, default=32
        Resize to ``size x size`` (paper 001); None keeps the sizes, which then
        must all agree.
    {n_train_n_test}
        Drawn before decoding.
    {random_state_subsampling}

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
@shared_docs
def load_cinic10(data_home=None, *, size=32, n_train=None, n_test=None, random_state=0):
    """Load CINIC-10 (Darlow et al., 2018); train + valid form the training source.

    Reads ``<data_home>/cinic10/{train,valid,test}/<class>/*.png`` (also under a
    ``CINIC-10/`` subfolder). As in paper 001, the train and valid splits together
    (180,000 images) are the training source, to subsample uniformly to 100,000
    (``n_train=100000``). Grayscale images are converted to RGB.

    Parameters
    ----------
    {data_home}
    size : int or None, default=32
        Resize to ``size x size`` (CINIC-10 images are already 32x32).
    {n_train_n_test}
        Drawn before decoding.
    {random_state_subsampling}

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
@shared_docs
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
    {data_home}
    size : int, default=32
        Images have many sizes, so they must be resized.
    {test_size}
    {n_train}
    {random_state_split_subsampling}

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
