"""Behaviour shared by skal's skorch classifiers.

:class:`BaseNetClassifier` is the generic net: what active learning needs from
any network on top of skorch's ``NeuralNetClassifier``:

- the module's input and output sizes are inferred from the data at ``fit``;
- labels of any type are encoded to ``0..C-1``, and ``classes`` fixes the label set
  even when the labeled set has not seen every class yet (early rounds);
- input is validated like any scikit-learn estimator (NaN, feature count, sparse);
- sparse CSR input stays sparse: batches are sliced one at a time
  (:class:`skal.nets._batches.BatchSlicer`) and densified only per batch;
- ``random_state`` makes training reproducible without touching torch's global
  random state (training runs inside ``torch.random.fork_rng``);
- the learning rate can differ per parameter (``_lr_scales``).

:class:`SkalNetClassifier`, the base of skal's classifiers, adds one mechanism
per concern, each a cooperative mixin in its own module:

- :class:`~skal.nets._loss_prediction.LossPredictionMixin`: a loss-prediction
  module trained with the network (``loss_prediction``; Learning Loss, LPLgrad);
- :class:`~skal.nets._sparse.LazySparseMixin`: torch sparse CSR batches and the
  exact lazy SGD with momentum (``lazy_sparse_updates``) for modules that set
  ``accepts_sparse_input = True``;
- :class:`~skal.nets._lean.LeanTrainingMixin`: training epochs without skorch's
  per-batch bookkeeping (``lean_training``).

The module must expose the output layer as ``module_.output_layer`` (an
``nn.Linear``) and the penultimate features as ``module_.features(X)``; this is the
contract :mod:`skal.embeddings` relies on.
"""

import contextlib
import functools
import inspect
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch import NeuralNetClassifier
from skorch.callbacks import BatchScoring, EpochScoring
from skorch.dataset import Dataset, unpack_data
from skorch.utils import to_numpy

from .._validation import check_pool, n_features_of_array, take_rows
from ._lean import LeanTrainingMixin
from ._loss_prediction import LossPredictionMixin
from ._sparse import LazySparseMixin


class BaseNetClassifier(NeuralNetClassifier):
    """The generic skal net (see the module docstring); use :class:`SkalNetClassifier`.

    Subclasses pass their module class and defaults to ``__init__``; every skorch
    parameter (``module__*``, ``optimizer__*``, ``callbacks``, ``device``, ...) is
    accepted through ``**kwargs`` and reachable by ``set_params``/GridSearchCV.
    The module class must accept ``n_features`` and ``n_classes`` keyword arguments.

    Hooks for subclasses and mixins: ``_inspect_training_input(X)`` (what
    training needs to know about the validated input; overrides call
    ``super()``), ``_module_defaults()``, ``_prepare_training_batch(X)`` and
    ``_lr_scales()``.
    """

    def __init__(self, module, *args, random_state=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.random_state = random_state

    # --- fitting -----------------------------------------------------------------
    def _encode_targets(self, y, classes=None):
        y = column_or_1d(y, warn=True)
        with warnings.catch_warnings():
            # Small labeled sets (early rounds) trip sklearn's "many unique classes"
            # warning; with `classes` given, the label set is known to be right.
            warnings.filterwarnings("ignore", message="The number of unique classes")
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
        self._inspect_training_input(X)
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

    def _inspect_training_input(self, X):
        """Hook: measure what training needs to know about ``X`` (its scale)."""

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
        if X.ndim > 2:
            raise ValueError(
                f"{type(self).__name__} expects 2-D X (n_samples, n_features), got "
                f"an array of shape {X.shape}: flatten images first "
                f"(X.reshape(len(X), -1)) or use skal.nets.CNNClassifier."
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

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's routing; ``optimizer__momentum`` is dropped for optimizers
        without a momentum argument (Adam...), so the SGD default does not break them."""
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        optimizer = getattr(self, prefix)
        if "momentum" in kwargs and not _accepts(optimizer, "momentum"):
            del kwargs["momentum"]
        scales = self._lr_scales() if prefix == "optimizer" else {}
        if scales:
            args = (_scale_group_lr(args[0], scales, kwargs["lr"]),) + tuple(args[1:])
        return args, kwargs

    def get_params_for(self, prefix):
        """skorch's routing; ``criterion__label_smoothing`` is dropped for criteria
        without that argument, so the MLP's default does not break them."""
        params = super().get_params_for(prefix)
        if (
            prefix == "criterion"
            and "label_smoothing" in params
            and not _accepts(self.criterion, "label_smoothing")
        ):
            del params["label_smoothing"]
        return params

    def _lr_scales(self):
        """Hook: ``{parameter: lr multiplier}`` for parameters trained at another rate."""
        return {}

    def _prepare_training_batch(self, X):
        """Hook: the training batch as the module gets it (CNN: augmentation)."""
        return X

    def train_step_single(self, batch, **fit_params):
        """skorch's step on the batch prepared by ``_prepare_training_batch``."""
        Xi, yi = unpack_data(batch)
        batch = (self._prepare_training_batch(Xi), yi)
        return super().train_step_single(batch, **fit_params)

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
        if isinstance(X, torch.utils.data.Dataset):
            # skorch's scoring callbacks (EpochScoring with on_train=True, or on
            # a validation split) pass the Dataset this net trains on.
            return super().predict_proba(X)
        X = self._validate_X(X, reset=False)
        return super().predict_proba(X)

    def get_split_datasets(self, X, y=None, **fit_params):
        """skorch's split; a ``Subset`` (``ValidSplit``'s output) becomes a Dataset.

        skal's batch slicer and lean loop read ``dataset.X`` and ``dataset.y``,
        which a ``torch.utils.data.Subset`` does not have.
        """
        train, valid = super().get_split_datasets(X, y, **fit_params)
        return _rows_dataset(train), _rows_dataset(valid)

    def notify(self, method_name, **cb_kwargs):
        """skorch's notify; scoring callbacks that predict labels get labels as y.

        skal trains on targets encoded as ``0..C-1``. A skorch scoring callback
        compares ``net.predict(X)`` with targets taken from the training data:
        for ``BatchScoring`` (a batch tensor) and ``EpochScoring`` without
        caching (the raw ``X`` of the Dataset), ``predict`` returns the user's
        labels, so their targets are decoded to the user's labels too. (Cached
        ``EpochScoring`` predicts on the Dataset itself: indices against
        indices, see :meth:`predict`.)
        """
        decoding = method_name in ("on_batch_end", "on_epoch_end")
        with _scoring_targets_decoded(self) if decoding else contextlib.nullcontext():
            return super().notify(method_name, **cb_kwargs)

    def predict(self, X):
        """Most probable class label for each row of ``X``.

        Given a torch ``Dataset`` (what skorch's scoring callbacks pass), the
        class *indices* (positions in ``classes_``): the Dataset holds the
        encoded targets the net trains on, which the callback compares them with.
        """
        indices = np.argmax(self.predict_proba(X), axis=1)
        if isinstance(X, torch.utils.data.Dataset):
            return indices
        return self.classes_[indices]


@contextlib.contextmanager
def _scoring_targets_decoded(net):
    """Give the net's label-predicting scoring callbacks decoded targets, then restore."""
    classes = getattr(net, "fitted_classes_", None)
    changed = []
    for _, callback in getattr(net, "callbacks_", []) if classes is not None else []:
        if isinstance(callback, BatchScoring):
            predicts_labels = True
        elif isinstance(callback, EpochScoring):
            caching = callback.use_caching
            if net.use_caching != "auto":
                caching = net.use_caching
            predicts_labels = not caching
        else:
            predicts_labels = False
        if predicts_labels:
            changed.append((callback, callback.target_extractor))
            callback.target_extractor = functools.partial(
                _decoded_targets, classes, callback.target_extractor
            )
    try:
        yield
    finally:
        for callback, extractor in changed:
            callback.target_extractor = extractor


def _decoded_targets(classes, extractor, y):
    """The user's labels of encoded targets ``y``, then the callback's extractor."""
    return extractor(classes[np.asarray(to_numpy(y), dtype=np.int64)])


def _rows_dataset(dataset):
    """A ``Subset`` of a skorch Dataset as a skorch Dataset of its rows."""
    if isinstance(dataset, torch.utils.data.Subset) and hasattr(dataset.dataset, "X"):
        base, rows = dataset.dataset, np.asarray(dataset.indices)
        y = None if base.y is None else base.y[rows]
        return Dataset(take_rows(base.X, rows), y)
    return dataset


class SkalNetClassifier(
    LossPredictionMixin, LazySparseMixin, LeanTrainingMixin, BaseNetClassifier
):
    """Base class of skal's skorch classifiers (see the module docstring).

    :class:`BaseNetClassifier` with loss prediction, lazy sparse updates and the
    lean training loop. Subclasses pass their module class and defaults to
    ``__init__``; every skorch parameter is accepted through ``**kwargs``.

    Parameters
    ----------
    module : type of torch.nn.Module
        Instantiated with ``n_features`` and ``n_classes`` (inferred from the data)
        and the ``module__*`` parameters.
    random_state : int, RandomState or None, default=None
        Seeds training in a private torch RNG.
    lazy_sparse_updates : bool, default=True
        Lets a module with ``accepts_sparse_input = True`` train on sparse input
        with :class:`skal.nets._sparse.LazyMomentumSGD` in place of
        ``torch.optim.SGD`` (see :class:`skal.nets._sparse.LazySparseMixin`).
    loss_prediction : LossPrediction or None, default=None
        Train a loss-prediction module with the network (see
        :class:`skal.nets.LossPrediction`).
    lean_training : bool, default=True
        Run training epochs in skal's lean loop (:mod:`skal.nets._lean`: same
        batches and arithmetic as skorch's loop, without its per-batch
        bookkeeping) whenever no callback acts on training batches; the history
        then holds one batch entry per epoch. False always uses skorch's loop.
    **kwargs
        Any other skorch ``NeuralNet`` parameter.
    """


def _scale_group_lr(groups, scales, lr):
    """Param groups with each parameter of ``scales`` in its own group, lr scaled."""
    scaled = {id(param): factor for param, factor in scales.items()}
    result = []
    for group in groups:
        params = list(group["params"])
        kept = [p for p in params if id(p) not in scaled]
        if kept:
            result.append({**group, "params": kept})
        for param in params:
            if id(param) in scaled:
                group_lr = group.get("lr", lr) * scaled[id(param)]
                result.append({**group, "params": [param], "lr": group_lr})
    return result


def _accepts(callable_, argument):
    try:
        return argument in inspect.signature(callable_).parameters
    except (TypeError, ValueError):  # no signature: let the call decide
        return True
