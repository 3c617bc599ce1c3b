"""Self-training: refit on confident pseudo-labels, optionally refined by DARP."""

from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state, get_tags

from .._validation import num_samples, take_rows
from ._darp import darp as refine_pseudo_labels
from ._unlabeled import FinalEstimatorPrediction, labeled_mask


class SelfTrainingClassifier(
    FinalEstimatorPrediction, MetaEstimatorMixin, ClassifierMixin, BaseEstimator
):
    """Self-training around any classifier with ``predict_proba``, with DARP.

    Each round predicts the unlabeled rows with the current model, optionally
    refines these soft pseudo-labels with DARP (:func:`darp`) towards a target
    class distribution, keeps the rows whose (refined) top probability exceeds
    ``threshold`` and refits a fresh clone of ``estimator`` on the labeled rows plus
    those pseudo-labeled rows. Round 0 is the supervised fit on the labeled rows.

    Unlike :class:`sklearn.semi_supervised.SelfTrainingClassifier`, which adds
    pseudo-labels once and keeps them, every round relabels *all* unlabeled rows
    from the current model: DARP's target is a property of the whole unlabeled
    set, and a pseudo-label may be dropped or changed as the model improves.
    Training stops after ``max_iter`` rounds or when the pseudo-labeled set (rows
    and labels) repeats, since the next fit would repeat the last one.

    Paper 004 uses DARP with a uniform target because actively acquired labels are
    class-imbalanced (``darp='uniform'``).

    Parameters
    ----------
    estimator : estimator object
        A classifier with ``fit``, ``predict_proba`` and ``classes_`` (any skal net
        or scikit-learn classifier); cloned for every fit. For skal nets, set
        ``classes`` on it when the labeled rows may miss classes.
    threshold : float in (0, 1], default=0.75
        A row is pseudo-labeled when its top (refined) probability is strictly
        greater than this (as scikit-learn's): 1.0 keeps no pseudo-label, so the
        result is the supervised fit.
    max_iter : int, default=10
        Maximum number of pseudo-labeling rounds (refits after round 0).
    darp : None, 'uniform' or array-like of shape (n_classes,), default=None
        Refine the pseudo-labels with DARP towards this class distribution (in the
        order of ``classes_``) before thresholding; None uses the predictions as
        they are.
    random_state : int, RandomState or None, default=None
        When set, every ``random_state`` parameter of ``estimator`` (nested ones
        too) gets one seed drawn from it, the same in every round, so round 0 is
        the supervised fit with that seed. None leaves ``estimator`` as it is.

    Attributes
    ----------
    estimator_ : estimator object
        The last fitted clone (on labeled and final pseudo-labeled rows).
    classes_ : ndarray of shape (n_classes,)
    transduction_ : ndarray of shape (n_samples,)
        Labels of the last fit: the given labels, the pseudo-labels, ``-1`` for
        rows left out.
    n_pseudo_labels_ : list of int
        Pseudo-labeled rows of each refit.
    n_iter_ : int
        Fits of ``estimator``: 1 (round 0) plus the refits, at most
        ``max_iter + 1``.
    termination_condition_ : {'max_iter', 'no_change', 'all_labeled'}
    n_features_in_ : int
        When ``estimator_`` has it.

    References
    ----------
    D. Yarowsky. Unsupervised word sense disambiguation rivaling supervised
    methods. ACL 1995.
    J. Kim et al. Distribution aligning refinery of pseudo-label for imbalanced
    semi-supervised learning. NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skal.semi_supervised import SelfTrainingClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> y_partial = np.where(np.arange(150) % 10 == 0, y, -1)  # 15 labels
    >>> model = SelfTrainingClassifier(LogisticRegression(), darp="uniform")
    >>> model.fit(X, y_partial).predict(X[:2])
    array([0, 0])
    """

    def __init__(
        self, estimator, *, threshold=0.75, max_iter=10, darp=None, random_state=None
    ):
        self.estimator = estimator
        self.threshold = threshold
        self.max_iter = max_iter
        self.darp = darp
        self.random_state = random_state

    def _check_params(self):
        if not (
            hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict_proba")
        ):
            raise TypeError(
                f"estimator must be a classifier with fit and predict_proba, got "
                f"{self.estimator!r}."
            )
        if not isinstance(self.threshold, Real) or not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}.")
        if not isinstance(self.max_iter, Integral) or self.max_iter < 0:
            raise ValueError(
                f"max_iter must be a non-negative integer, got {self.max_iter!r}."
            )

    def _seeded_estimator(self):
        estimator = clone(self.estimator)
        if self.random_state is None:
            return estimator
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        keys = [
            key
            for key in estimator.get_params(deep=True)
            if key == "random_state" or key.endswith("__random_state")
        ]
        return estimator.set_params(**dict.fromkeys(keys, seed))

    def fit(self, X, y):
        """Fit on the labeled rows, then self-train on the unlabeled ones.

        Parameters
        ----------
        X : array-like, sparse matrix or DataFrame of shape (n_samples, ...)
            Anything ``estimator`` accepts (images for a CNN).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows.

        Returns
        -------
        self : object
        """
        self._check_params()
        if sparse.issparse(X):
            X = X.tocsr()  # row indexing (COO, DIA... have none)
        elif not hasattr(X, "shape"):  # lists (of texts, of rows): index as arrays
            X = np.asarray(X)
        y, labeled = labeled_mask(y, num_samples(X))
        template = self._seeded_estimator()
        labeled_rows = np.flatnonzero(labeled)
        unlabeled_rows = np.flatnonzero(~labeled)
        X_unlabeled = take_rows(X, unlabeled_rows) if len(unlabeled_rows) else None

        def fit_on(pseudo_rows, pseudo_labels):
            rows = np.concatenate([labeled_rows, pseudo_rows])
            targets = np.concatenate([y[labeled_rows], pseudo_labels])
            return clone(template).fit(take_rows(X, rows), targets), targets

        estimator, targets = fit_on(unlabeled_rows[:0], y[:0])
        selection = (unlabeled_rows[:0], y[:0])
        self.n_pseudo_labels_, self.n_iter_ = [], 1
        self.termination_condition_ = "max_iter"
        if X_unlabeled is None:
            self.termination_condition_ = "all_labeled"
        for _ in range(self.max_iter if X_unlabeled is not None else 0):
            new_selection = self._pseudo_labels(estimator, X_unlabeled, unlabeled_rows)
            if _same_selection(new_selection, selection):
                self.termination_condition_ = "no_change"
                break
            selection = new_selection
            estimator, targets = fit_on(*selection)
            self.n_pseudo_labels_.append(len(selection[0]))
            self.n_iter_ += 1
        self.estimator_ = estimator
        self.transduction_ = np.full(len(y), -1, dtype=targets.dtype)
        self.transduction_[np.concatenate([labeled_rows, selection[0]])] = targets
        if hasattr(estimator, "n_features_in_"):
            self.n_features_in_ = estimator.n_features_in_
        return self

    def _pseudo_labels(self, estimator, X_unlabeled, unlabeled_rows):
        """Rows (indices into X) and labels of the confident pseudo-labels."""
        proba = np.asarray(estimator.predict_proba(X_unlabeled), dtype=np.float64)
        if self.darp is not None:
            proba = refine_pseudo_labels(proba, self.darp)
        confident = proba.max(axis=1) > self.threshold
        labels = np.asarray(estimator.classes_)[proba.argmax(axis=1)]
        return unlabeled_rows[confident], labels[confident]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = get_tags(self.estimator).input_tags.sparse
        return tags


def _same_selection(a, b):
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
