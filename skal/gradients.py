"""Per-sample gradients without materializing them.

For a last layer ``z = W h + b`` (``W`` is C x D) and a loss ``l(z)``, the gradient of
``l`` with respect to ``[W, b]`` is the outer product ``a h~^T`` with ``a = dl/dz``
(a C-vector) and ``h~ = [h, 1]``. So for two samples

    <g_i, g_j> = (a_i . a_j) (h~_i . h~_j),      ||g_i||^2 = ||a_i||^2 ||h~_i||^2,

and every distance, norm and mean the strategies need is computed from the
``N x C`` and ``N x (D+1)`` factors, never from the ``N x C(D+1)`` embedding matrix.
This module holds that mathematics once for every gradient strategy:

- :func:`last_layer_factors` streams ``a`` and ``h~`` over a pool for three losses
  (cross-entropy with the pseudo-label, cross-entropy with given labels, entropy);
- :class:`GradientFactors` answers norms, inner products, distances and means;
- :func:`kmeans_plus_plus` (in :mod:`skal._kmeanspp`, re-exported here) seeds
  k-means++ (BADGE) from factored distances;
- :func:`per_sample_gradient_norms` handles full-parameter gradients with
  ``torch.func`` (``vmap`` over ``grad``), chunk by chunk.

Every formula here has a brute-force twin in ``tests/test_gradients.py``.
"""

from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.special import xlogy
from torch.func import functional_call, grad, vmap

from . import embeddings
from ._arrays import chunks, dense, row_sq_norms
from ._config import get_config
from ._kmeanspp import kmeans_plus_plus  # noqa: F401 (public here)
from ._layer_norms import LayerCapture, UnsupportedLayer, parameter_owners
from ._torch import eval_mode
from .nets._batches import rows_to_tensor

LOSSES = ("pseudo_label", "label", "entropy")


# --------------------------------------------------------------------- the factors
@dataclass
class GradientFactors:
    """Last-layer gradients ``g_i = a_i (x) h~_i`` of ``N`` samples, kept factored.

    Attributes
    ----------
    a : ndarray of shape (N, C)
        Loss derivative with respect to the logits.
    h : ndarray or CSR matrix of shape (N, D + 1)
        Penultimate features with a trailing 1 for the bias (no 1 if the layer has
        no bias). Sparse for sparse linear-model input.
    """

    a: np.ndarray
    h: object

    def __len__(self):
        return self.a.shape[0]

    def take(self, rows):
        """Factors of a subset of samples."""
        return GradientFactors(self.a[rows], self.h[rows])

    def sq_norms(self):
        """``||g_i||^2`` for every sample, shape (N,)."""
        return row_sq_norms(self.a) * row_sq_norms(self.h)

    def inner_with(self, a_other, h_other):
        """``<g_i, a_other (x) h_other>`` for every sample, shape (N,)."""
        return (self.a @ a_other) * dense(self.h @ h_other)

    def mean_matrix(self):
        """The mean gradient as a C x (D+1) matrix ``M = mean_i a_i h~_i^T``."""
        return dense(self.h.T @ self.a).T / len(self)

    def inner_with_matrix(self, M):
        """``<g_i, vec(M)> = a_i^T M h~_i`` for every sample, shape (N,)."""
        return np.einsum("nc,nc->n", dense(self.h @ M.T), self.a)

    def sq_distances_to(self, M):
        """``||g_i - vec(M)||^2`` for every sample (clipped at 0), shape (N,)."""
        distances = np.sum(M * M) - 2 * self.inner_with_matrix(M) + self.sq_norms()
        return np.maximum(distances, 0.0)

    def sq_distances_to_sample(self, j, sq_norms=None):
        """``||g_i - g_j||^2`` for every sample i, shape (N,)."""
        sq_norms = self.sq_norms() if sq_norms is None else sq_norms
        a_j, h_j = self.a[j], dense(self.h[j]).ravel()
        distances = sq_norms + sq_norms[j] - 2 * self.inner_with(a_j, h_j)
        return np.maximum(distances, 0.0)


def logit_gradients(proba, logits, loss, y=None):
    """``a = dl/dz`` for each sample, shape (N, C) (or (N, 1) for one logit).

    Parameters
    ----------
    proba : ndarray of shape (N, C)
        Softmax probabilities.
    logits : ndarray of shape (N, C) or (N, 1)
        One column means a binary model with a sigmoid (sklearn's binary
        ``LogisticRegression``): ``p_1 = sigmoid(z)``.
    loss : {"pseudo_label", "label", "entropy"}
        Cross-entropy with ``argmax p`` as the label, cross-entropy with the
        class indices ``y``, or the entropy ``H(p)`` of the prediction.
    y : ndarray of shape (N,), default=None
        Class indices (``0..C-1``) for ``loss="label"``.

    Returns
    -------
    a : ndarray
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
    if loss == "label" and y is None:
        raise ValueError('loss="label" needs the class indices y.')
    labels = proba.argmax(axis=1) if loss == "pseudo_label" else y
    if logits.shape[1] == 1 and proba.shape[1] == 2:
        p1 = proba[:, 1]
        if loss == "entropy":
            # dH/dz for H = -p log p - (1-p) log(1-p), p = sigmoid(z): -z p (1 - p).
            return (-logits[:, 0] * p1 * (1 - p1))[:, None]
        return (p1 - (labels == 1))[:, None]
    if loss == "entropy":
        # dH/dz_k = -p_k (log p_k + H); xlogy gives 0 log 0 = 0.
        log_p = np.log(np.maximum(proba, np.finfo(proba.dtype).tiny))
        entropy = -xlogy(proba, proba).sum(axis=1, keepdims=True)
        return -proba * (log_p + entropy)
    a = proba.copy()
    a[np.arange(len(a)), labels] -= 1.0
    return a


def last_layer_factors(
    estimator, X, *, loss="pseudo_label", y=None, chunk_size=None, include_bias=True
):
    """Stream the factors of the last-layer gradients over ``X``.

    Parameters
    ----------
    estimator : fitted skorch net ending in ``nn.Linear``, or sklearn linear classifier
    X : ndarray or CSR matrix of shape (N, n_features)
        A validated pool or labeled set.
    loss : {"pseudo_label", "label", "entropy"}, default="pseudo_label"
    y : array-like of shape (N,), default=None
        Labels (as in ``estimator.classes_``) for ``loss="label"``.
    chunk_size : int, default=None
        Rows per forward chunk.
    include_bias : bool, default=True
        Include the bias's gradient (the trailing 1 of ``h~``) when the output
        layer has a bias; False gives the weight gradient alone.

    Returns
    -------
    factors : GradientFactors
    proba : ndarray of shape (N, C)
    """
    out = embeddings.forward_pass(estimator, X, chunk_size=chunk_size)
    y_index = None
    if loss == "label":
        y_index = class_indices(estimator, y)
    a = logit_gradients(out.proba, out.logits, loss, y_index)
    h = append_bias_column(out.features, include_bias and has_bias(estimator))
    dtype = np.float64 if sparse.issparse(h) else out.features.dtype
    return GradientFactors(a.astype(dtype), h), out.proba


def class_indices(estimator, y):
    """Positions of the labels ``y`` in ``estimator.classes_`` (ValueError if unknown)."""
    classes = np.asarray(estimator.classes_)
    y = np.asarray(y)
    indices = np.searchsorted(classes, y)
    indices = np.clip(indices, 0, len(classes) - 1)
    if np.any(classes[indices] != y):
        unknown = np.unique(y[classes[indices] != y]).tolist()
        raise ValueError(f"Labels {unknown} are not among the model's classes.")
    return indices


def has_bias(estimator):
    """Whether the model's output layer has a bias (a trailing 1 in ``h~``)."""
    if embeddings.is_torch_net(estimator):
        return embeddings.output_layer(estimator.module_).bias is not None
    return bool(getattr(estimator, "fit_intercept", True))


def append_bias_column(h, bias):
    """``[h, 1]`` (CSR stays CSR, in float64) when ``bias``, else ``h`` itself."""
    if not bias:
        return h
    if sparse.issparse(h):
        ones = sparse.csr_matrix(np.ones((h.shape[0], 1)))
        return sparse.hstack([h, ones], format="csr", dtype=np.float64)
    return np.hstack([h, np.ones((h.shape[0], 1), dtype=h.dtype)])


# -------------------------------------------- full-parameter per-sample gradients
def _sample_losses(loss):
    """Per-sample loss of logits (1-D) as a torch function, for ``torch.func``."""

    def pseudo_label(logits, label):
        return torch.nn.functional.cross_entropy(logits, logits.argmax().detach())

    def given_label(logits, label):
        return torch.nn.functional.cross_entropy(logits, label)

    def entropy(logits, label):
        log_p = torch.log_softmax(logits, dim=-1)
        return -(log_p.exp() * log_p).sum()

    def expected_cross_entropy(logits, label):
        # Paper 003, Eq. 6: sum_i P(y_i|x) CE(x, y_i), P kept in the graph.
        log_p = torch.log_softmax(logits, dim=-1)
        return (log_p.exp() * -log_p).sum()

    return {
        "pseudo_label": pseudo_label,
        "label": given_label,
        "entropy": entropy,
        "expected_cross_entropy": expected_cross_entropy,
    }[loss]


GRADIENT_CHUNK_BYTES = 2**30  # per-sample gradients held at once (default chunks)


def _gradient_chunk_size(n_values, like):
    """Samples per chunk whose per-sample gradients fit in GRADIENT_CHUNK_BYTES."""
    per_sample = max(1, n_values * like.element_size())
    return int(
        np.clip(GRADIENT_CHUNK_BYTES // per_sample, 1, get_config()["chunk_size"])
    )


def per_sample_gradients(
    net, X, *, loss="pseudo_label", y=None, parameters=None, chunk_size=None
):
    """Yield per-sample gradients of all (or selected) parameters, chunk by chunk.

    Uses ``torch.func.vmap`` over ``torch.func.grad`` of the module run with
    ``functional_call`` in eval mode (dropout off, batch norm on running
    statistics), so there is no Python loop over samples.

    Parameters
    ----------
    net : fitted skorch net
    X : ndarray or CSR matrix of shape (N, ...)
    loss : {"pseudo_label", "label", "entropy", "expected_cross_entropy"}
    y : ndarray of shape (N,), default=None
        Class indices for ``loss="label"``.
    parameters : list of str, default=None
        Names (``module_.named_parameters()``) to differentiate; all by default.
    chunk_size : int, default=None
        Samples per chunk. By default, as many as keep the per-sample gradients
        of a chunk within about 1 GiB (each sample carries a full copy of the
        differentiated parameters: ~20 samples for ResNet-18, the configured
        ``chunk_size`` for small MLPs), at most ``skal.get_config()["chunk_size"]``.

    Yields
    ------
    rows : slice
        The samples of this chunk.
    grads : dict of str to torch.Tensor
        Per-sample gradients, each of shape (chunk, *parameter.shape).
    """
    module = net.module_
    all_params = dict(module.named_parameters())
    names = list(all_params) if parameters is None else list(parameters)
    unknown = sorted(set(names) - set(all_params))
    if unknown:
        raise ValueError(f"Unknown parameter names: {unknown}.")
    differentiated = {k: all_params[k].detach() for k in names}
    fixed = {k: v.detach() for k, v in all_params.items() if k not in differentiated}
    buffers = {k: v.detach() for k, v in module.named_buffers()}
    sample_loss = _sample_losses(loss)

    def loss_of(params, x, label):
        logits = functional_call(module, (params, fixed, buffers), (x.unsqueeze(0),))
        return sample_loss(logits[0], label)

    per_sample_grad = vmap(grad(loss_of), in_dims=(None, 0, 0))
    if chunk_size is None:
        n_values = sum(p.numel() for p in differentiated.values())
        chunk_size = _gradient_chunk_size(n_values, next(iter(differentiated.values())))
    labels = (
        torch.zeros(X.shape[0], dtype=torch.long) if y is None else torch.as_tensor(y)
    )
    with eval_mode(module):
        for rows in chunks(X.shape[0], chunk_size):
            x = rows_to_tensor(X, rows).to(net.device)
            yield rows, per_sample_grad(differentiated, x, labels[rows].to(net.device))


def per_sample_gradient_norms(
    net,
    X,
    *,
    loss="entropy",
    norm="global",
    y=None,
    parameters=None,
    chunk_size=None,
    method="auto",
):
    """Norm of each sample's gradient over all (or selected) parameters.

    Parameters
    ----------
    net : fitted skorch net
    X : ndarray or CSR matrix of shape (N, ...)
    loss : {"pseudo_label", "label", "entropy", "expected_cross_entropy"}
    norm : {"global", "per_tensor_sum"}, default="global"
        ``"global"``: the Euclidean norm of the whole gradient vector.
        ``"per_tensor_sum"``: the sum over parameter tensors of each tensor's
        norm (what paper 003's public code computes).
    y, parameters, chunk_size
        See :func:`per_sample_gradients`. With ``method="factored"`` the default
        chunks keep the activations of one backward pass within about 1 GiB
        (~100 images for ResNet-18 on 32x32 images).
    method : {"auto", "factored", "vmap"}, default="auto"
        ``"factored"``: when every selected parameter belongs to an ``nn.Linear``
        (one vector per sample), an ``nn.Conv2d`` or an ``nn.BatchNorm2d`` with
        running statistics (MLPs, LeNet, VGG, ResNet), one batched backward pass
        gives every layer's per-sample gradient norm in closed form, e.g.
        ``||delta_i|| ||x_i||`` for a linear weight (see :mod:`skal._layer_norms`),
        without forming per-sample gradients of the whole network: ~3.5x a
        forward pass on ResNet-18 (``benchmarks/resnet_norms.py``).
        ``"vmap"``: ``torch.func`` per-sample gradients (any architecture).
        ``"auto"`` picks the first that applies.

    Returns
    -------
    norms : ndarray of shape (N,), float64
    """
    if norm not in ("global", "per_tensor_sum"):
        raise ValueError(f'norm must be "global" or "per_tensor_sum", got {norm!r}.')
    if method not in ("auto", "factored", "vmap"):
        raise ValueError(
            f'method must be "auto", "factored" or "vmap", got {method!r}.'
        )
    owners = parameter_owners(net.module_, parameters)
    if method == "factored" and owners is None:
        raise ValueError(
            'method="factored" needs every selected parameter to belong to an '
            "nn.Linear, nn.Conv2d (groups=1) or nn.BatchNorm2d (running statistics)."
        )
    if method != "vmap" and owners is not None:
        try:
            return _factored_gradient_norms(net, X, loss, norm, y, owners, chunk_size)
        except UnsupportedLayer:
            if method == "factored":
                raise
    norms = np.empty(X.shape[0])
    for rows, grads in per_sample_gradients(
        net, X, loss=loss, y=y, parameters=parameters, chunk_size=chunk_size
    ):
        sq = torch.stack([g.flatten(1).double().pow(2).sum(1) for g in grads.values()])
        chunk = sq.sum(0).sqrt() if norm == "global" else sq.sqrt().sum(0)
        norms[rows] = chunk.cpu().numpy()
    return norms


def _batched_losses(logits, loss, labels):
    """Per-sample losses of a batch of logits (vector of length N)."""
    if loss in ("entropy", "expected_cross_entropy"):
        # Paper 003's Eq. 6 with P in the graph equals Eq. 7 (see ExpectedGradNorm).
        log_p = torch.log_softmax(logits, dim=1)
        return -(log_p.exp() * log_p).sum(1)
    if loss == "pseudo_label":
        labels = logits.argmax(1).detach()
    return torch.nn.functional.cross_entropy(logits, labels, reduction="none")


ACTIVATION_CHUNK_BYTES = 2**30  # activations kept for one chunk's backward pass
_FIRST_FACTORED_CHUNK = 16


def _factored_gradient_norms(net, X, loss, norm, y, owners, chunk_size):
    """Per-sample norms from one batched backward pass per chunk (_layer_norms).

    Without ``chunk_size``, the first chunk has 16 rows and the next ones as many
    as keep the activations autograd holds within ACTIVATION_CHUNK_BYTES, at
    most the configured ``chunk_size``. They are estimated as twice the captured
    layer inputs (ResNet-18 on 32x32 images: 5.1 MB per image captured, a peak
    of 8-9 MB per image measured). The speed hardly depends on the chunk size
    beyond ~32 images (``benchmarks/resnet_norms.py --batch``).
    """
    module = net.module_
    limit = get_config()["chunk_size"]
    size = chunk_size or min(_FIRST_FACTORED_CHUNK, limit)
    labels = None if y is None else torch.as_tensor(np.asarray(y))
    norms = np.empty(X.shape[0])
    # A sparse-input first layer takes the CSR rows as they are: densifying a
    # TF-IDF chunk (100k columns) made LPLgrad ~65x slower than entropy.
    keep_sparse = getattr(module, "accepts_sparse_input", False)
    with eval_mode(module):
        start = 0
        while start < X.shape[0]:  # chunk sizes adapt to the first chunk's memory
            rows = slice(start, min(start + size, X.shape[0]))
            with torch.enable_grad(), LayerCapture(owners) as capture:
                x = rows_to_tensor(X, rows, keep_sparse=keep_sparse)
                logits = module(x.to(net.device))
                chunk_labels = None if labels is None else labels[rows].to(net.device)
                total = _batched_losses(logits, loss, chunk_labels).sum()
                sq = capture.squared_norms(total)
            chunk = sq.sum(0).sqrt() if norm == "global" else sq.sqrt().sum(0)
            norms[rows] = chunk.cpu().numpy()
            if chunk_size is None:
                kept = max(1, 2 * capture.input_bytes_per_sample())
                size = int(np.clip(ACTIVATION_CHUNK_BYTES // kept, 1, limit))
            start = rows.stop
    return norms
