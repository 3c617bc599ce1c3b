"""Training each round's model: warm start, threads, plain skorch nets, seeds."""

import contextlib
import time
import warnings

import numpy as np
from sklearn.base import clone


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run a block with ``n_threads`` torch and BLAS threads, then restore them.

    ``None`` leaves both alone. BLAS (OpenBLAS/MKL, through threadpoolctl) is
    limited too: the strategies' NumPy work (K-center, BADGE, grad_seq) slowed
    5-8x when OpenBLAS spun threads on cores busy with other processes
    (measured with benchmarks/acquisition.py on a loaded 2-core machine).
    """
    if n_threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        with threadpool_limits(limits=int(n_threads)):
            yield
    finally:
        torch.set_num_threads(previous)


def _is_skorch_net(estimator):
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        return False
    return isinstance(estimator, NeuralNet)


def _is_plain_skorch_net(estimator):
    """A skorch net that is not one of skal's (which encode labels and cast X)."""
    from ..nets import SkalNetClassifier

    return _is_skorch_net(estimator) and not isinstance(estimator, SkalNetClassifier)


def _wants_float32(estimator):
    """True for a plain skorch net whose module computes in float32."""
    if not _is_plain_skorch_net(estimator):
        return False
    import torch

    module = getattr(estimator, "module_", None) or estimator.module
    if isinstance(module, torch.nn.Module):
        parameter = next(module.parameters(), None)
        return parameter is None or parameter.dtype == torch.float32
    return torch.get_default_dtype() == torch.float32


def _check_skorch_labels(estimator, y):
    if not _is_plain_skorch_net(estimator):
        return
    y = np.asarray(y)
    integers = y.dtype.kind in "iu" or (
        y.dtype.kind == "f" and np.all(y == np.round(y))
    )
    if not integers or (len(y) and y.min() < 0):
        shown = np.unique(y)[:5].tolist()
        raise ValueError(
            f"{type(estimator).__name__} (skorch) takes labels 0..n_classes-1 (output "
            f"j is class j), got labels such as {shown}. Encode them with "
            f"sklearn.preprocessing.LabelEncoder, or use skal.nets.SkalNetClassifier "
            f"(or skal.nets.MLPClassifier), which encodes labels."
        )


def _explain_training_error(estimator, y, exc, *, simulate):
    """Re-raise a training error with what the user should change, if known."""
    name = type(estimator).__name__
    text = str(exc)
    if _is_skorch_net(estimator) and getattr(estimator, "train_split", None):
        if "n_splits" in text or "members in each class" in text:
            raise ValueError(
                f"{name}'s train_split holds out a validation split (skorch's "
                f"default: 5-fold stratified), which the {len(y)} labeled rows of "
                f"an active-learning round cannot fill. Pass train_split=None to "
                f"the net (e.g. NeuralNetClassifier(..., train_split=None)). "
                f"Original error: {text}"
            ) from exc
    if _is_plain_skorch_net(estimator) and isinstance(exc, IndexError):
        raise ValueError(
            f"{name} could not be trained: a label is not smaller than the number "
            f"of outputs of its module (skorch's output j is class j). Size the "
            f"output layer to the classes or encode the labels 0..n_classes-1. "
            f"Original error: {text}"
        ) from exc
    if len(np.unique(y)) < 2:
        fix = "use a larger n_initial" if simulate else "label rows of another class"
        raise ValueError(
            f"{name} could not be trained on {len(y)} labeled samples of the single "
            f"class {np.unique(y)[0].item()!r}; {fix}, or use an estimator that "
            f"accepts `classes` (skal's nets) and pass classes=[...]. Original "
            f"error: {text}"
        ) from exc


def _new_seed(rng):
    return int(rng.randint(np.iinfo(np.int32).max))


def _seed_unset_random_states(estimator, rng):
    """Give every ``random_state`` left at None a seed drawn from ``rng``.

    Like scikit-learn's ensembles do for their members, so that an ActiveLearner
    with a ``random_state`` is reproducible end to end.
    """
    params = estimator.get_params(deep=True)
    unset = {
        key: _new_seed(rng)
        for key, value in params.items()
        if (key == "random_state" or key.endswith("__random_state")) and value is None
    }
    if unset:
        estimator.set_params(**unset)


class _Training:
    """Train the estimator of a round (fresh clone or warm start)."""

    def _train(self, X, y, previous=None, *, simulate=False):
        """Train a model on (X, y); return the seconds.

        A fresh clone of the estimator, or ``previous`` trained further when
        ``warm_start`` is set.
        """
        estimator = self._model_for_round(y, previous)
        _check_skorch_labels(estimator, y)
        start = time.perf_counter()
        try:
            estimator.fit(X, y)
        except (ValueError, IndexError) as exc:
            _explain_training_error(estimator, y, exc, simulate=simulate)
            raise
        seconds = time.perf_counter() - start
        self.estimator_ = estimator
        self._align_skorch_outputs(estimator, X)
        return seconds

    def _model_for_round(self, y, previous):
        wanted = self._classes_for(self._base_estimator())
        if self.warm_start and previous is not None:
            had = (
                previous.get_params(deep=False).get("classes")
                if wanted is not None
                else getattr(previous, "classes_", None)
            )
            needed = wanted if wanted is not None else np.unique(y)
            if had is not None and np.array_equal(np.asarray(had), needed):
                return previous
            warnings.warn(
                f"warm_start: the labeled set now has the classes "
                f"{np.asarray(needed).tolist()}, but the previous round's model has "
                f"outputs for {np.asarray(had).tolist()} only; this round trains a "
                f"fresh model. Pass classes=[...] (the full label set) so that "
                f"networks have every output from the first round.",
                UserWarning,
                stacklevel=4,
            )
        estimator = clone(self._base_estimator())
        _seed_unset_random_states(estimator, self._model_rng)
        if wanted is not None:
            estimator.set_params(classes=wanted)
        if self.warm_start:
            estimator.set_params(warm_start=True)
        return estimator

    def _classes_for(self, estimator):
        """The ``classes`` an estimator accepting them gets, else None."""
        params = estimator.get_params(deep=False)
        if "classes" not in params:
            return None
        return self.classes_ if params["classes"] is None else params["classes"]

    def _align_skorch_outputs(self, estimator, X):
        """A plain skorch net's output j is class j: make ``classes_`` say so.

        skorch's ``NeuralNetClassifier`` does not encode labels; its module fixes
        the number of outputs. When the labels seen so far are a subset of
        ``0..n_outputs-1`` (labeling without ``classes``), the label set is all of
        them; other labels cannot be told apart from output indices.
        """
        if not _is_plain_skorch_net(estimator):
            return
        n_outputs = np.asarray(estimator.predict_proba(X[:1])).shape[1]
        classes = np.asarray(self.classes_)
        if n_outputs == len(classes):
            return
        integers = classes.dtype.kind in "iu" or (
            classes.dtype.kind == "f" and np.all(classes == np.round(classes))
        )
        if self.classes is None and integers and np.all(classes >= 0):
            if np.all(classes < n_outputs):
                self.classes_ = np.arange(n_outputs)
                estimator.set_params(classes=self.classes_)
                return
        raise ValueError(
            f"The module of {type(estimator).__name__} has {n_outputs} outputs but "
            f"the label set is {classes.tolist()}: skorch's NeuralNetClassifier "
            f"treats output j as the label j. Pass classes=np.arange({n_outputs}) "
            f"to ActiveLearner with labels 0..{n_outputs - 1} (encode them with "
            f"sklearn.preprocessing.LabelEncoder), or size the output layer to the "
            f"classes, or use skal.nets.SkalNetClassifier, which encodes labels."
        )

    def _torch_threads(self):
        return torch_threads(self.n_threads)

    def _base_estimator(self):
        if self.estimator is None:
            from ..nets import MLPClassifier

            return MLPClassifier()
        return self.estimator
