"""What strategies need from a fitted model, streamed over the pool in chunks.

Strategies never call a network directly; they ask this module for

- class probabilities (:func:`predict_proba`), for any classifier with
  ``predict_proba``: always the estimator's own probabilities (for a skorch net,
  its module's output through its ``predict_nonlinearity``, exactly what
  ``net.predict_proba`` returns), so probability-only strategies work with any
  head (a temperature, a cosine classifier, ...);
- a forward pass (:func:`forward_pass`): probabilities, logits and the penultimate
  features ``h`` (the input of the last linear layer ``z = W h + b``), for

  * skal's nets and any skorch net whose module ends in an ``nn.Linear``
    (the layer is found by :func:`output_layer`; ``h`` is captured with a forward
    hook, so CNNs and MLPs look the same). The softmax of that layer's output must
    be the net's own probabilities (checked on every chunk): a module that
    applies anything after it is refused with a clear error rather than giving
    strategies logits the net does not use; and
  * scikit-learn linear classifiers (``LogisticRegression``, ...), where ``h`` is
    the input itself and ``W`` is ``coef_``.

The pool is processed ``chunk_size`` rows at a time (see :func:`skal.get_config`),
under ``torch.inference_mode()``, so memory is bounded by the chunk and the
``N x (C + D)`` outputs, never by ``N x C x D``. Sparse pools stay sparse: modules
that accept sparse input (skal's MLP) get torch sparse CSR chunks, others get one
densified chunk at a time.
"""

import contextlib
import contextvars
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.special import softmax
from torch import nn

from ._arrays import chunks
from ._torch import eval_mode
from ._validation import check_fitted_estimator
from .nets._batches import rows_to_tensor


@dataclass
class ForwardPass:
    """Outputs of one pass over a pool.

    Attributes
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Class probabilities (float64).
    logits : ndarray of shape (n_samples, n_outputs)
        Inputs of the softmax (``decision_function`` for sklearn models).
    features : ndarray or sparse matrix of shape (n_samples, n_features)
        Penultimate features ``h``: the input of the last linear layer.
    """

    proba: np.ndarray
    logits: np.ndarray
    features: object


def is_torch_net(estimator):
    """True for a (fitted) skorch net: it carries a torch ``module_``."""
    return isinstance(getattr(estimator, "module_", None), nn.Module)


def is_linear_model(estimator):
    """True for a scikit-learn linear classifier (``coef_`` and ``decision_function``)."""
    return hasattr(estimator, "coef_") and hasattr(estimator, "decision_function")


def output_layer(module, n_classes=None):
    """The final ``nn.Linear`` of a network, whose input is the penultimate layer.

    Looks, in order, for ``module.output_layer``, the last element of an
    ``nn.Sequential``, and the last ``nn.Linear`` (in registration order) with
    ``n_classes`` outputs.

    Parameters
    ----------
    module : torch.nn.Module
    n_classes : int, default=None
        Expected number of outputs, used to check the choice.

    Returns
    -------
    layer : torch.nn.Linear
    """
    layer = getattr(module, "output_layer", None)
    if layer is None and isinstance(module, nn.Sequential):
        layer = module[-1]
    if not isinstance(layer, nn.Linear):
        linears = [
            m
            for m in module.modules()
            if isinstance(m, nn.Linear) and n_classes in (None, m.out_features)
        ]
        layer = linears[-1] if linears else None
    if layer is None:
        raise TypeError(
            f"{type(module).__name__} has no final nn.Linear layer: skal needs one "
            f"(name it `output_layer`) to compute features and gradients."
        )
    if n_classes is not None and layer.out_features != n_classes:
        raise TypeError(
            f"The output layer of {type(module).__name__} has {layer.out_features} "
            f"outputs but the classifier has {n_classes} classes."
        )
    return layer


def predict_proba(estimator, X, *, chunk_size=None):
    """Class probabilities of any fitted classifier, chunk by chunk.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        A validated pool (see :func:`skal._validation.check_pool`).
    chunk_size : int, default=None
        Rows per chunk; default from :func:`skal.get_config`.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes), float64
    """
    check_fitted_estimator(estimator)
    if not hasattr(estimator, "predict_proba"):
        raise TypeError(
            f"{type(estimator).__name__} has no predict_proba, which this strategy "
            f"needs; use a probabilistic classifier (e.g. LogisticRegression, "
            f"skal.nets.MLPClassifier)."
        )
    if is_torch_net(estimator):
        return _shared_net_proba(estimator, X, chunk_size)
    parts = [
        estimator.predict_proba(X[rows]) for rows in chunks(X.shape[0], chunk_size)
    ]
    return np.asarray(np.concatenate(parts), dtype=np.float64)


# {key: (estimator, X, ForwardPass)} inside shared_forward_passes(); a ContextVar so
# that threads (joblib's threading backend, Dask workers) never share each other's.
_shared = contextvars.ContextVar("skal_shared_forward_passes", default=None)


@contextlib.contextmanager
def shared_forward_passes():
    """Compute each (estimator, pool) forward pass once inside this block.

    Strategies that combine others (ALBL's experts) would otherwise run the same
    network over the same pool once per member. Inside the block,
    :func:`forward_pass` returns the result already computed for the same
    estimator object and the same pool object (and chunk size); anything else is
    computed as usual. Shared arrays are read-only. The results are dropped when
    the block ends.
    """
    token = _shared.set({} if _shared.get() is None else _shared.get())
    try:
        yield
    finally:
        _shared.reset(token)


def forward_pass(estimator, X, *, chunk_size=None):
    """Probabilities, logits and penultimate features over a pool.

    Parameters
    ----------
    estimator : fitted skorch net ending in ``nn.Linear``, or sklearn linear classifier
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        A validated pool.
    chunk_size : int, default=None
        Rows per chunk; default from :func:`skal.get_config`.

    Returns
    -------
    ForwardPass
    """
    shared = _shared.get()
    if shared is not None:
        # Identity, not equality: the kept references keep the ids valid.
        key = (id(estimator), id(X), chunk_size)
        if key not in shared:
            out = _forward_pass(estimator, X, chunk_size)
            for values in (out.proba, out.logits, out.features):
                if isinstance(values, np.ndarray):
                    values.flags.writeable = False  # shared: a write would leak
            shared[key] = (estimator, X, out)
        return shared[key][2]
    return _forward_pass(estimator, X, chunk_size)


def _forward_pass(estimator, X, chunk_size):
    check_fitted_estimator(estimator)
    if is_torch_net(estimator):
        return _check_finite(_net_forward_pass(estimator, X, chunk_size))
    if is_linear_model(estimator) and hasattr(estimator, "predict_proba"):
        return _check_finite(_linear_forward_pass(estimator, X, chunk_size))
    raise TypeError(
        f"{type(estimator).__name__} exposes no penultimate features: this strategy "
        f"needs a skorch net whose module ends in nn.Linear (e.g. skal's nets) or a "
        f"scikit-learn linear classifier with predict_proba."
    )


def _check_finite_array(values, name):
    if not np.isfinite(values).all():
        raise FloatingPointError(
            f"The model's outputs ({name}) contain NaN or infinity: they are not "
            f"finite (did training diverge? are the inputs too large for the "
            f"model's float32 arithmetic?)."
        )
    return values


def _check_finite(out):
    """Raise FloatingPointError if the model's outputs contain NaN or infinity.

    Strategies that do not rank by a score (BADGE, K-center, NPC) would otherwise
    fail deep inside NumPy/SciPy with a message about "the input". Huge but finite
    inputs overflow float32 networks, diverged training gives NaN weights.
    """
    for name in ("proba", "logits", "features"):
        values = getattr(out, name)
        values = values.data if sparse.issparse(values) else np.asarray(values)
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.sum(values, dtype=np.float64)  # O(1) memory, fast path
        if np.isfinite(total):
            continue
        flat = values.reshape(len(values), -1) if values.ndim else values.reshape(1)
        if not all(np.isfinite(flat[rows]).all() for rows in chunks(len(flat))):
            raise FloatingPointError(
                f"The model's outputs ({name}) contain NaN or infinity: they are not "
                f"finite (did training diverge? are the inputs too large for the "
                f"model's float32 arithmetic?)."
            )
    return out


# A net's probabilities and the softmax of its last layer's output may differ by
# float32 rounding (~1e-7); anything larger means the module transforms the logits.
LOGIT_CONSISTENCY_ATOL = 1e-4


def _shared_net_proba(net, X, chunk_size):
    """The net's probabilities; inside :func:`shared_forward_passes`, computed once.

    In a shared block a full forward pass is computed (and kept) when the net
    allows one, so that strategies combining probability and feature experts
    (ALBL) still run the network once; its ``proba`` is the same array.
    """
    shared = _shared.get()
    if shared is None:
        return _check_finite_array(_net_proba(net, X, chunk_size), "proba")
    key = (id(net), id(X), chunk_size)
    if key in shared:
        return shared[key][2].proba
    proba_key = ("proba",) + key
    if proba_key not in shared:
        try:
            return forward_pass(net, X, chunk_size=chunk_size).proba
        except TypeError:  # no usable last layer: probabilities only
            proba = _check_finite_array(_net_proba(net, X, chunk_size), "proba")
            proba.flags.writeable = False
            shared[proba_key] = (net, X, proba)
    return shared[proba_key][2]


def _standard_predict_proba(net):
    """True if ``net.predict_proba`` is skorch's: nonlinearity(module output).

    Then the module can be run on whole chunks instead of skorch's mini-batches
    of ``batch_size`` rows (3x faster for skal's MLP with batch 8). A subclass
    with its own ``predict_proba`` is called as it is.
    """
    from skorch import NeuralNet, NeuralNetClassifier

    from .nets import SkalNetClassifier

    standard = {
        NeuralNet.predict_proba,
        NeuralNetClassifier.predict_proba,
        SkalNetClassifier.predict_proba,
    }
    return type(net).predict_proba in standard


def _net_chunks(net, X, chunk_size, layer=None):
    """Yield, per chunk, the net's probabilities and (with ``layer``) the layer's
    input and output, from one module call in eval mode."""
    module = net.module_
    nonlinearity = net._get_predict_nonlinearity()
    captured = {}

    def keep_input_and_output(_layer, inputs, output):
        captured["features"] = inputs[0]
        captured["logits"] = output

    keep_sparse = getattr(module, "accepts_sparse_input", False)  # no densifying
    hook = None if layer is None else layer.register_forward_hook(keep_input_and_output)
    try:
        with torch.inference_mode(), eval_mode(module):
            for rows in chunks(X.shape[0], chunk_size):
                batch = rows_to_tensor(X, rows, keep_sparse=keep_sparse)
                output = module(batch.to(net.device))
                if isinstance(output, tuple):  # skorch's convention: first output
                    output = output[0]
                proba = nonlinearity(output).double().cpu().numpy()
                if layer is None:
                    yield rows, proba, None, None
                else:
                    yield (
                        rows,
                        proba,
                        captured["logits"].float().cpu().numpy(),
                        captured["features"].flatten(1).float().cpu().numpy(),
                    )
    finally:
        if hook is not None:
            hook.remove()


def _net_proba(net, X, chunk_size):
    """The net's own ``predict_proba``, chunk by chunk, as float64."""
    if _standard_predict_proba(net):
        parts = [proba for _, proba, _, _ in _net_chunks(net, X, chunk_size)]
    else:
        parts = [
            np.asarray(net.predict_proba(X[rows]), dtype=np.float64)
            for rows in chunks(X.shape[0], chunk_size)
        ]
    proba = np.concatenate(parts)
    _check_probabilities(net, proba)
    return proba


def _check_probabilities(net, proba):
    """A net whose predict_proba returns log-probabilities or scores is refused."""
    with np.errstate(invalid="ignore"):
        bad = (proba < -1e-6).any() or not np.allclose(proba.sum(axis=1), 1, atol=1e-3)
    if bad and np.isfinite(proba).all():
        raise ValueError(
            f"{type(net).__name__}.predict_proba does not return probabilities "
            f"(rows must be non-negative and sum to 1). A module ending in "
            f"LogSoftmax needs predict_nonlinearity=torch.exp; one returning "
            f"scores, criterion=nn.CrossEntropyLoss (softmax is then applied)."
        )


def _net_forward_pass(net, X, chunk_size):
    module = net.module_
    layer = output_layer(module, n_classes=len(net.classes_))
    features, logits, probas = [], [], []
    for rows, proba, chunk_logits, chunk_features in _net_chunks(
        net, X, chunk_size, layer
    ):
        if not probas:
            _check_net_returns(net, X[rows], proba)
        _check_logits_give(net, layer, chunk_logits, proba)
        probas.append(proba)
        logits.append(chunk_logits)
        features.append(chunk_features)
    return ForwardPass(
        proba=np.concatenate(probas),
        logits=np.concatenate(logits),
        features=np.concatenate(features),
    )


def _check_net_returns(net, X_chunk, proba):
    """A custom ``predict_proba`` must agree with the module's output."""
    if _standard_predict_proba(net):
        return
    own = np.asarray(net.predict_proba(X_chunk), dtype=np.float64)
    if own.shape != proba.shape or not np.allclose(
        own, proba, atol=LOGIT_CONSISTENCY_ATOL, rtol=0
    ):
        raise TypeError(
            f"{type(net).__name__}.predict_proba differs from its module's output "
            f"(after predict_nonlinearity): this strategy needs the last layer's "
            f"logits of the probabilities the net returns. Use a strategy that needs "
            f"only probabilities (entropy, margin, least_confidence, random, ...)."
        )


def _check_logits_give(net, layer, logits, proba):
    """softmax(last layer's output) must be the net's probabilities."""
    if logits.shape != proba.shape:
        return  # binary one-logit heads are refused by output_layer already
    gap = np.abs(softmax(logits.astype(np.float64), axis=1) - proba)
    if np.isfinite(gap).all() and gap.max() > LOGIT_CONSISTENCY_ATOL:
        raise TypeError(
            f"The softmax of the output of {type(net.module_).__name__}'s last "
            f"nn.Linear ({layer}) differs from {type(net).__name__}'s probabilities "
            f"by up to {gap.max():.3g}: the module applies something after that layer "
            f"(a temperature, a scaling, a custom head). This strategy needs logits "
            f"and features of the probabilities the net returns: make the layer "
            f"whose output is the logits the module's last operation (name it "
            f"`output_layer`), or use a strategy that needs only probabilities "
            f"(entropy, margin, least_confidence, random, ...)."
        )


def _linear_forward_pass(model, X, chunk_size):
    proba, logits = [], []
    for rows in chunks(X.shape[0], chunk_size):
        proba.append(model.predict_proba(X[rows]))
        logits.append(
            np.asarray(model.decision_function(X[rows])).reshape(len(proba[-1]), -1)
        )
    features = X.tocsr() if sparse.issparse(X) else np.asarray(X)
    return ForwardPass(
        proba=np.concatenate(proba).astype(np.float64),
        logits=np.concatenate(logits),
        features=features,
    )
