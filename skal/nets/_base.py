"""Behaviour shared by skal's skorch classifiers.

:class:`SkalNetClassifier` adds to skorch's ``NeuralNetClassifier`` what active
learning needs from a network:

- the module's input and output sizes are inferred from the data at ``fit``;
- labels of any type are encoded to ``0..C-1``, and ``classes`` fixes the label set
  even when the labeled set has not seen every class yet (early rounds);
- input is validated like any scikit-learn estimator (NaN, feature count, sparse);
- sparse CSR input stays sparse: batches are sliced one at a time
  (:class:`skal.nets._batches.BatchSlicer`) and densified, unless the module sets
  ``accepts_sparse_input = True``: it then gets torch sparse CSR batches, and with
  ``lazy_sparse_updates`` plain SGD with momentum is replaced by its exact lazy
  version (:class:`skal.nets._sparse.LazyMomentumSGD`), which updates only the
  first-layer rows of the features present in a batch;
- ``random_state`` makes training reproducible without touching torch's global
  random state (training runs inside ``torch.random.fork_rng``).

The module must expose the output layer as ``module_.output_layer`` (an
``nn.Linear``) and the penultimate features as ``module_.features(X)``; this is the
contract :mod:`skal.embeddings` relies on.
"""

import contextlib
import inspect
import warnings

import numpy as np
import torch
from scipy import sparse
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data

from .._config import get_config
from .._validation import check_pool, n_features_of_array
from ._batches import BatchSlicer, rows_to_tensor
from ._lean import TrainingTensors, dense_batch, per_batch_callbacks, sparse_batch
from ._loss_prediction import FeatureRecorder, LossPredictionModule, ranking_loss
from ._sparse import GatheredBatch, LazyMomentumSGD, SparseInputLinear

# torch.optim.SGD arguments LazyMomentumSGD accepts (it rejects non-default values
# of all but lr and momentum).
_LAZY_SGD_ARGS = {"lr", "momentum", "dampening", "weight_decay", "nesterov"}


class SkalNetClassifier(NeuralNetClassifier):
    """Base class of skal's skorch classifiers (see the module docstring).

    Subclasses pass their module class and defaults to ``__init__``; every skorch
    parameter (``module__*``, ``optimizer__*``, ``callbacks``, ``device``, ...) is
    accepted through ``**kwargs`` and reachable by ``set_params``/GridSearchCV.
    The module class must accept ``n_features`` and ``n_classes`` keyword arguments.
    ``lazy_sparse_updates`` (default True) lets a module with
    ``accepts_sparse_input = True`` train on sparse input with
    :class:`skal.nets._sparse.LazyMomentumSGD` in place of ``torch.optim.SGD``.
    ``lean_training`` (default True) runs training epochs in skal's lean loop
    (:mod:`skal.nets._lean`: same batches and arithmetic as skorch's loop, without
    its per-batch bookkeeping) whenever no callback acts on training batches; the
    history then holds one batch entry per epoch. False always uses skorch's loop.
    """

    def __init__(
        self,
        module,
        *args,
        random_state=None,
        lazy_sparse_updates=True,
        loss_prediction=None,
        lean_training=True,
        **kwargs,
    ):
        super().__init__(module, *args, **kwargs)
        self.random_state = random_state
        self.lazy_sparse_updates = lazy_sparse_updates
        self.loss_prediction = loss_prediction
        self.lean_training = lean_training

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
        self.sparse_input_ = sparse.issparse(X)  # chooses the optimizer at initialize
        self._inspect_training_input(X)
        self.example_input_ = X[:2]  # sizes the loss-prediction module at initialize
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
        if self.loss_prediction is not None:
            self._attach_loss_prediction()
        return self

    # --- loss prediction (Learning Loss, LPLgrad) --------------------------------------
    def set_params(self, **params):
        """skorch's ``set_params``; ``loss_prediction__<field>`` reaches the settings."""
        prefix = "loss_prediction__"
        nested = {
            k[len(prefix) :]: params.pop(k)
            for k in list(params)
            if k.startswith(prefix)
        }
        super().set_params(**params)
        if nested:
            if self.loss_prediction is None:
                raise ValueError(f"{list(nested)} given but loss_prediction is None.")
            self.loss_prediction.set_params(**nested)
        return self

    def _attach_loss_prediction(self):
        """Hook the feature layers and build the loss module, sized by a dry run."""
        settings = self.loss_prediction
        layers = settings.layers or getattr(
            self.module_, "default_feature_layers", None
        )
        if not layers:
            raise ValueError(
                f"loss_prediction needs layer names: {type(self.module_).__name__} "
                f"has no default_feature_layers; pass LossPrediction(layers=[...])."
            )
        named = dict(self.module_.named_modules())
        unknown = [name for name in layers if name not in named]
        if unknown:
            raise ValueError(f"Unknown layers {unknown}; available: {list(named)[1:]}.")
        self.loss_features_ = {}
        for name in layers:
            named[name].register_forward_hook(
                FeatureRecorder(self.loss_features_, name)
            )
        self.module_.eval()
        with torch.no_grad():
            self.module_(rows_to_tensor(self.example_input_, slice(0, 2)))
        self.module_.train()
        channels = [self.loss_features_[name].shape[1] for name in layers]
        self.loss_module_ = LossPredictionModule(channels, settings.width)
        self.loss_layers_ = list(layers)

    def _predicted_loss(self, detach=False):
        features = [self.loss_features_[name] for name in self.loss_layers_]
        if detach:
            features = [f.detach() for f in features]
        return self.loss_module_(features)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Target loss, plus the weighted ranking loss of the loss-prediction module."""
        target_loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if self.loss_prediction is None or not training:
            return target_loss
        settings = self.loss_prediction
        per_sample = torch.nn.functional.cross_entropy(
            y_pred, y_true.to(y_pred.device).long(), reduction="none"
        )
        # Epochs count within this fit: warm-started rounds restart the schedule.
        epoch = len(self.history) - 1 - getattr(self, "fit_start_epoch_", 0)
        first_detached = settings.first_detached_epoch(self.max_epochs)
        detach = first_detached is not None and epoch >= first_detached
        predicted = self._predicted_loss(detach=detach)
        return target_loss + settings.weight * ranking_loss(
            predicted, per_sample, settings.margin
        )

    def predict_loss(self, X):
        """Losses predicted by the loss-prediction module, chunk by chunk.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, ...)

        Returns
        -------
        predicted : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        if self.loss_prediction is None:
            raise TypeError(
                f"This {type(self).__name__} was trained without a loss-prediction "
                f"module: set loss_prediction=LossPrediction() and fit again."
            )
        X = self._validate_X(X, reset=False)
        was_training = self.module_.training
        self.module_.eval()
        self.loss_module_.eval()
        predicted = []
        try:
            with torch.inference_mode():
                for rows in gen_batches(X.shape[0], get_config()["chunk_size"]):
                    self.module_(rows_to_tensor(X, rows).to(self.device))
                    predicted.append(self._predicted_loss().float().cpu().numpy())
        finally:
            self.module_.train(was_training)
            self.loss_module_.train(was_training)
        return np.concatenate(predicted)

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

    def _lr_scales(self):
        """Hook: ``{parameter: lr multiplier}`` for parameters trained at another rate."""
        return {}

    # --- lazy sparse updates ---------------------------------------------------------
    def initialize_optimizer(self, *args, **kwargs):
        """Create the optimizer; plain SGD on sparse input becomes LazyMomentumSGD."""
        super().initialize_optimizer(*args, **kwargs)
        if not (
            self.lazy_sparse_updates
            and getattr(self, "sparse_input_", False)
            and getattr(self.module_, "accepts_sparse_input", False)
            and self.optimizer is torch.optim.SGD
        ):
            return self
        params = self.get_all_learnable_params()
        opt_args, opt_kwargs = self.get_params_for_optimizer("optimizer", params)
        if set(opt_kwargs) <= _LAZY_SGD_ARGS:
            try:
                self.optimizer_ = LazyMomentumSGD(*opt_args, **opt_kwargs)
            except ValueError:
                pass  # weight decay, Nesterov, dampening: keep the dense SGD
        return self

    def _lazy(self):
        return isinstance(getattr(self, "optimizer_", None), LazyMomentumSGD)

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; batches stay sparse when the module accepts them.

        Training batches stay sparse only with :class:`LazyMomentumSGD`: other
        optimizers get dense batches, hence dense gradients they all support.
        """
        iterator = super().get_iterator(dataset, training=training)
        if isinstance(iterator, BatchSlicer):
            accepts = getattr(self.module_, "accepts_sparse_input", False)
            iterator.keep_sparse = accepts and (self._lazy() or not training)
        return iterator

    def _prepare_training_batch(self, X):
        """Hook: the training batch as the module gets it (CNN: augmentation)."""
        return X

    def train_step_single(self, batch, **fit_params):
        """skorch's step, after catching up the weight rows the batch will read."""
        Xi, yi = unpack_data(batch)
        if self._lazy() and getattr(Xi, "layout", None) == torch.sparse_csr:
            rows = Xi.col_indices()
            for layer in self.module_.modules():
                if isinstance(layer, SparseInputLinear):
                    self.optimizer_.catch_up(layer.weight, rows)
        batch = (self._prepare_training_batch(Xi), yi)
        return super().train_step_single(batch, **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, or the lean one; after training, bring every weight up to date.

        The flush runs before validation and the ``on_epoch_end`` callbacks
        (scoring, checkpoints), which read the weights.
        """
        if training and self._trains_lean(iterator, step_fn, fit_params):
            self._run_lean_epoch(iterator)
        else:
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and self._lazy():
            self.optimizer_.flush()

    # --- lean training loop (see skal/nets/_lean.py) ----------------------------------
    def _trains_lean(self, iterator, step_fn, fit_params):
        """Whether the lean epoch does exactly what skorch's loop would do here."""
        cls = type(self)
        overridden = any(
            getattr(cls, name) is not getattr(reference, name)
            for name, reference in (
                ("train_step", NeuralNetClassifier),
                ("train_step_single", SkalNetClassifier),
                ("infer", NeuralNetClassifier),
                ("on_batch_begin", NeuralNetClassifier),
                ("on_batch_end", NeuralNetClassifier),
                ("on_grad_computed", NeuralNetClassifier),
            )
        )
        if (
            not self.lean_training
            or overridden
            or fit_params
            or type(iterator) is not BatchSlicer
            or getattr(step_fn, "__func__", None) is not NeuralNetClassifier.train_step
            or per_batch_callbacks(self)
        ):
            return False
        if sparse.issparse(iterator.dataset.X):
            # Sparse batches: only the gathered-rows step (others densify per batch).
            return iterator.keep_sparse and self._sparse_layer() is not None
        return True

    def _sparse_layer(self):
        """The module's single SparseInputLinear when LazyMomentumSGD trains it."""
        layers = [m for m in self.module_.modules() if isinstance(m, SparseInputLinear)]
        if not self._lazy() or len(layers) != 1:
            return None
        return layers[0]

    def _lean_data(self, dataset):
        """The training set on the device, converted once per fit."""
        cached = getattr(self, "_lean_data_", None)
        if cached is None or cached[0] is not dataset:
            tensors = TrainingTensors(dataset.X, dataset.y, self.device)
            self._lean_data_ = cached = (dataset, tensors)
        return cached[1]

    def _run_lean_epoch(self, iterator):
        data = self._lean_data(iterator.dataset)
        n, batch_size = data.n_rows, iterator.batch_size
        # The same draw as BatchSlicer, so both loops see the same batches.
        order = torch.randperm(n) if iterator.shuffle else torch.arange(n)
        X, y = data.permuted(order.to(data.y.device))
        self._set_training(True)
        self.history.new_batch()
        losses, sizes = [], []
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if iterator.drop_last and stop - start < batch_size:
                break
            # Kept on the device: no synchronization per batch.
            losses.append(self._lean_step(X, y[start:stop], start, stop).detach())
            sizes.append(stop - start)
        if losses:
            # One entry whose size-weighted mean is skorch's per-epoch train_loss.
            weights = torch.tensor(sizes, dtype=torch.float64)
            total = torch.stack(losses).double().cpu() @ weights
            self.history.record_batch("train_loss", float(total) / sum(sizes))
            self.history.record_batch("train_batch_size", sum(sizes))
        self.history.record("train_batch_count", len(losses))

    def _lean_step(self, X, y, start, stop):
        for name in self._optimizers:
            getattr(self, name + "_").zero_grad(set_to_none=True)
        if isinstance(X, tuple):  # permuted CSR parts
            offsets, columns, values = sparse_batch(X, start, stop)
            rows, local = torch.unique(columns, return_inverse=True)
            weight = self.optimizer_.gather_rows(self._sparse_layer().weight, rows)
            Xi = GatheredBatch(offsets, local, values, weight)
        else:
            Xi = self._prepare_training_batch(dense_batch(X, start, stop))
        y_pred = self.module_(Xi)
        loss = self.get_loss(y_pred, y, X=Xi, training=True)
        loss.backward()
        for name in self._optimizers:
            getattr(self, name + "_").step()
        return loss

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        # History rows before this fit (partial_fit, warm start): the loss module's
        # detach schedule counts epochs from here.
        self.fit_start_epoch_ = len(self.history)
        return super().on_train_begin(net, X=X, y=y, **kwargs)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Also after an interrupted epoch (skorch catches KeyboardInterrupt).
        if self._lazy():
            self.optimizer_.flush()
        self._lean_data_ = None  # release the device copy of the training set
        return super().on_train_end(net, X=X, y=y, **kwargs)

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
