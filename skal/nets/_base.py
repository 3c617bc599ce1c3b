"""Behaviour shared by skal's skorch classifiers.

:class:`SkalNetClassifier` adds to skorch's ``NeuralNetClassifier`` what active
learning needs from a network:

- the module's input and output sizes are inferred from the data at ``fit``;
- labels of any type are encoded to ``0..C-1``, and ``classes`` fixes the label set
  even when the labeled set has not seen every class yet (early rounds);
- input is validated like any scikit-learn estimator (NaN, feature count, sparse);
- sparse CSR input stays sparse: batches are sliced and densified one at a time
  (:class:`skal.nets._batches.BatchSlicer`);
- ``random_state`` makes training reproducible without touching torch's global
  random state (training runs inside ``torch.random.fork_rng``).

The module must expose the output layer as ``module_.output_layer`` (an
``nn.Linear``) and the penultimate features as ``module_.features(X)``; this is the
contract :mod:`skal.embeddings` relies on.
"""

import contextlib

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch import NeuralNetClassifier

from .._validation import check_pool, n_features_of_array


class SkalNetClassifier(NeuralNetClassifier):
    """Base class of skal's skorch classifiers (see the module docstring).

    Subclasses pass their module class and defaults to ``__init__``; every skorch
    parameter (``module__*``, ``optimizer__*``, ``callbacks``, ``device``, ...) is
    accepted through ``**kwargs`` and reachable by ``set_params``/GridSearchCV.
    The module class must accept ``n_features`` and ``n_classes`` keyword arguments.
    """

    def __init__(self, module, *args, random_state=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.random_state = random_state

    # --- fitting -----------------------------------------------------------------
    def _encode_targets(self, y, classes=None):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if classes is None:
            classes = np.unique(y) if self.classes is None else self.classes
        classes = np.asarray(classes)
        if len(classes) == 0:
            raise ValueError("classes must not be empty.")
        encoded = np.searchsorted(classes, y)
        encoded = np.clip(encoded, 0, len(classes) - 1)
        unknown = classes[encoded] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels {np.unique(y[unknown]).tolist()} that are not in "
                f"classes={classes.tolist()}."
            )
        self.fitted_classes_ = classes
        return encoded.astype(np.int64)

    def fit(self, X, y, **fit_params):
        """Validate and encode the data, then train from scratch.

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **fit_params : dict
            Passed to skorch's ``fit``.

        Returns
        -------
        self : object
        """
        X = self._validate_X(X, reset=True)
        if X.shape[0] == 0:
            raise ValueError("Cannot fit on an empty training set.")
        y_encoded = self._encode_targets(y)
        if len(y_encoded) != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} samples but y has {len(y_encoded)} labels."
            )
        with self._seeded():
            if not self.warm_start or not getattr(self, "initialized_", False):
                self.initialize()
            # skorch's own partial_fit: ours would encode y a second time.
            return NeuralNetClassifier.partial_fit(self, X, y_encoded, **fit_params)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training on new data without re-initializing the module."""
        if not getattr(self, "initialized_", False):
            return self.fit(X, y, **fit_params)
        X = self._validate_X(X, reset=False)
        # The label set is fixed by the first fit: the output layer has that size.
        y_encoded = self._encode_targets(y, classes=self.fitted_classes_)
        with self._seeded():
            return NeuralNetClassifier.partial_fit(self, X, y_encoded, **fit_params)

    @contextlib.contextmanager
    def _seeded(self):
        """Train with a seeded private torch RNG; the global state is restored."""
        if self.random_state is None:
            yield
            return
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    def _validate_X(self, X, *, reset):
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        n_features = None if reset else self.n_features_in_
        X = check_pool(
            X,
            n_features=n_features,
            name="X",
            dtype=np.float32,
            owner=type(self).__name__,
        )
        if reset:
            self.n_features_in_ = n_features_of_array(X)
        return X

    def _module_defaults(self):
        """Module arguments inferred from the data; ``module__*`` params win."""
        return {"n_features": self.n_features_in_, "n_classes": len(self.classes_)}

    def initialize_module(self):
        """Instantiate the module with sizes inferred from the training data."""
        kwargs = {**self._module_defaults(), **self.get_params_for("module")}
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    # --- prediction --------------------------------------------------------------
    @property
    def classes_(self):
        try:
            return self.fitted_classes_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute 'classes_' before fit."
            ) from None

    def predict_proba(self, X):
        """Class probabilities, computed batch by batch (sparse stays sparse).

        Parameters
        ----------
        X : array-like, DataFrame or sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return super().predict_proba(X)

    def predict(self, X):
        """Most probable class label for each row of ``X``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
