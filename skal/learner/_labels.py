"""Labels: what ``missing_label`` marks, cleaning, classes, the oracle's answers."""

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d


def _is_nan_marker(value):
    """True for the missing labels that mean "None or NaN"."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def _missing_mask(y, missing_label):
    if _is_nan_marker(missing_label):
        return np.asarray(pd.isna(y), dtype=bool).reshape(len(y))
    if isinstance(missing_label, str):
        if y.dtype.kind in "US":
            return y == missing_label
        if y.dtype == object:
            return np.array(
                [isinstance(v, str) and v == missing_label for v in y], dtype=bool
            )
        return np.zeros(len(y), dtype=bool)
    if y.dtype.kind in "iufb":
        return y == missing_label
    if y.dtype == object:
        return np.array(
            [
                not isinstance(v, str) and v is not None and bool(v == missing_label)
                for v in y
            ],
            dtype=bool,
        )
    return np.zeros(len(y), dtype=bool)  # string labels, numeric missing_label


def _clean_labels(labels, name, missing_label):
    """An object array of numeric labels as a plain int/float array.

    Object arrays of strings stay as they are (as in scikit-learn); numbers in an
    object array (unlabeled rows were None) become a numeric array.
    """
    labels = np.asarray(labels)
    if labels.dtype != object or len(labels) == 0:
        return labels
    is_string = np.array([isinstance(v, str) for v in labels], dtype=bool)
    if is_string.all():
        return labels
    if is_string.any():
        raise ValueError(
            f"{name} mixes string and numeric labels (e.g. {labels[is_string][0]!r} "
            f"and {labels[~is_string][0]!r}); use one type. Unlabeled rows are "
            f"marked with missing_label={missing_label!r}."
        )
    if pd.isna(labels).any():
        raise ValueError(
            f"{name} contains None or NaN, but missing_label={missing_label!r}. If "
            f"None/NaN marks unlabeled rows, pass missing_label=None (or np.nan)."
        )
    return np.asarray(labels.tolist())


def _labels_at(y, rows):
    rows = np.asarray(rows, dtype=np.int64)
    return _clean_labels(y[rows], "y", None) if y.dtype == object else y[rows]


def _concat_labels(a, b):
    if len(a) == 0:
        return np.asarray(b)
    if len(b) == 0:
        return np.asarray(a)
    return np.concatenate([a, b])


class _LabelHandling:
    """How the learner reads ``y``, ``missing_label`` and ``classes``."""

    def _missing(self, y):
        """Boolean mask of the rows of ``y`` equal to ``missing_label``."""
        return _missing_mask(np.asarray(y), self.missing_label)

    def _clean(self, labels, name):
        """Labeled values as a plain array (object input -> int/float/str)."""
        return _clean_labels(labels, name, self.missing_label)

    def _split_labels(self, y, *, n_samples):
        """``(labels, unlabeled mask)`` from the ``y`` given to ``fit``.

        Refuses a ``y`` whose unlabeled rows are ambiguous (see
        ``missing_label``).
        """
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] != 1:
            raise ValueError(
                f"y has shape {y.shape}: ActiveLearner does single-label "
                f"classification (one class per row); multi-label and multi-output "
                f"targets are not supported."
            )
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)} labels.")
        unlabeled = self._missing(y)
        self._check_missing_label_choice(y, unlabeled)
        labels = self._clean(y[~unlabeled], "y")
        if not unlabeled.any():
            return labels, unlabeled
        full = np.empty(len(y), dtype=object)
        full[~unlabeled] = labels.tolist()
        return full, unlabeled

    def _check_missing_label_choice(self, y, unlabeled):
        missing = self.missing_label
        if self.classes is not None and not _is_nan_marker(missing):
            if np.any(_missing_mask(np.asarray(self.classes, dtype=object), missing)):
                raise ValueError(
                    f"classes={list(self.classes)} contains missing_label="
                    f"{missing!r}, which marks unlabeled rows. If {missing!r} is a "
                    f"class, pass missing_label=None (unlabeled rows are then None "
                    f"or NaN)."
                )
        labeled = y[~unlabeled]
        if isinstance(missing, (Integral, float)) and not _is_nan_marker(missing):
            strings = np.array([isinstance(v, str) for v in labeled], dtype=bool)
            if strings.any() and np.any(labeled[strings] == str(missing)):
                raise ValueError(
                    f"y holds string labels, among them {str(missing)!r}, but "
                    f"missing_label={missing!r} is a number, so no row is unlabeled. "
                    f"If {str(missing)!r} marks unlabeled rows, pass "
                    f"missing_label={str(missing)!r}; if it is a class, pass "
                    f"missing_label=None."
                )
        if not _is_nan_marker(missing) and np.any(pd.isna(labeled)):
            raise ValueError(
                f"y contains None or NaN, but missing_label={missing!r}. If None/NaN "
                f"marks unlabeled rows, pass missing_label=None (or np.nan)."
            )
        if not unlabeled.any() or self.classes is not None or len(labeled) == 0:
            return
        present = pd.unique(pd.Series(labeled, dtype=object))
        if len(present) > 1:
            return
        (only,) = present
        if _is_nan_marker(missing):
            binary = ""
        else:
            binary = (
                f"If {missing!r} is a class (binary labels {missing!r}/{only!r}), pass "
                f"missing_label=None (unlabeled rows are then marked None or NaN; "
                f"here none is). "
            )
        raise ValueError(
            f"y is ambiguous: with missing_label={missing!r}, {int(unlabeled.sum())} "
            f"rows are unlabeled and the {len(labeled)} labeled rows are all of the "
            f"single class {only!r}, leaving nothing to tell apart. {binary}If those "
            f"rows are unlabeled, pass the full label set with classes=[...] or "
            f"label rows of another class."
        )

    def _check_targets(self, labels):
        try:
            check_classification_targets(labels if len(labels) else [0, 1])
        except ValueError as exc:
            raise ValueError(
                f"{exc} ActiveLearner does classification: y must hold one class "
                f"label per row (integers or strings, missing_label="
                f"{self.missing_label!r} for unlabeled rows); regression targets are "
                f"not supported."
            ) from exc

    def _infer_classes(self, y):
        if self.classes is None:
            return np.unique(y)
        classes = np.unique(np.asarray(self.classes))
        unknown = ~np.isin(y, classes)
        if unknown.any():
            raise ValueError(
                f"y contains labels {np.unique(y[unknown]).tolist()} that are not in "
                f"classes={classes.tolist()}."
            )
        return classes

    def _keep_answered(self, indices, labels):
        """Drop rows the oracle declined; reject labels outside ``classes``."""
        labels = np.asarray(labels, dtype=object)
        answered = ~self._missing(labels)
        indices = np.asarray(indices)[answered]
        labels = self._clean(labels[answered], "The oracle")
        self._check_known_classes(labels)
        if self.classes is None and len(labels):
            self.classes_ = (
                np.union1d(self.classes_, labels)
                if len(self.classes_)
                else np.unique(labels)
            )
        return indices, labels

    def _check_known_classes(self, labels):
        if self.classes is not None and len(labels):
            unknown = ~np.isin(labels, self.classes_)
            if unknown.any():
                raise ValueError(
                    f"Labels {np.unique(labels[unknown]).tolist()} are not in "
                    f"classes={list(self.classes_)}."
                )
