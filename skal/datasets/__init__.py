"""Dataset loaders for the skal benchmarks (paper 001, section 4.3), offline-capable.

Every loader first reads local files under :func:`get_data_home` (the argument,
else the ``SKAL_DATA`` environment variable, else ``~/skal_data``), then falls back
to the scikit-learn fetcher or OpenML when ``download_if_missing=True``. If neither
works, a :class:`FileNotFoundError` names every path that was looked for and how
to obtain the data; a network error is chained as its ``__cause__``.

Each loader returns a :class:`sklearn.utils.Bunch` with ``X_train, y_train,
X_test, y_test`` (float32 arrays, or CSR for 20 Newsgroups), ``target_names``,
``feature_names`` and a short ``DESCR``. Labels are integers ``0 .. n_classes-1``.
"""

from ._base import get_data_home
from ._cifar import load_cifar10, load_cifar10_test_jpeg, load_cifar100
from ._image_folders import load_caltech101, load_cinic10, load_gtsrb
from ._mnist import load_mnist, read_idx
from ._newsgroups import load_20newsgroups
from ._svhn_stl10 import load_stl10, load_svhn
from ._tabular import load_digits_split, load_isolet, load_openml, load_pokerhand

__all__ = [
    "get_data_home",
    "load_20newsgroups",
    "load_caltech101",
    "load_cifar10",
    "load_cifar10_test_jpeg",
    "load_cifar100",
    "load_cinic10",
    "load_digits_split",
    "load_gtsrb",
    "load_isolet",
    "load_mnist",
    "load_openml",
    "load_pokerhand",
    "load_stl10",
    "load_svhn",
    "read_idx",
]
