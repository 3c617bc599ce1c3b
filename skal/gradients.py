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
- :func:`kmeans_plus_plus` seeds k-means++ (BADGE) from factored distances;
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
from ._config import get_config
from ._layer_norms import LayerCapture, UnsupportedLayer, parameter_owners
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
        return _row_sq_norms(self.a) * _row_sq_norms(self.h)

    def inner_with(self, a_other, h_other):
        """``<g_i, a_other (x) h_other>`` for every sample, shape (N,)."""
        return (self.a @ a_other) * _dense(self.h @ h_other)

    def mean_matrix(self):
        """The mean gradient as a C x (D+1) matrix ``M = mean_i a_i h~_i^T``."""
        return _dense(self.h.T @ self.a).T / len(self)

    def inner_with_matrix(self, M):
        """``<g_i, vec(M)> = a_i^T M h~_i`` for every sample, shape (N,)."""
        return np.einsum("nc,nc->n", _dense(self.h @ M.T), self.a)

    def sq_distances_to(self, M):
        """``||g_i - vec(M)||^2`` for every sample (clipped at 0), shape (N,)."""
        distances = np.sum(M * M) - 2 * self.inner_with_matrix(M) + self.sq_norms()
        return np.maximum(distances, 0.0)

    def sq_distances_to_sample(self, j, sq_norms=None):
        """``||g_i - g_j||^2`` for every sample i, shape (N,)."""
        sq_norms = self.sq_norms() if sq_norms is None else sq_norms
        a_j, h_j = self.a[j], _dense(self.h[j]).ravel()
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
        y_index = _class_indices(estimator, y)
    a = logit_gradients(out.proba, out.logits, loss, y_index)
    h = _append_bias_column(out.features, include_bias and _has_bias(estimator))
    dtype = np.float64 if sparse.issparse(h) else out.features.dtype
    return GradientFactors(a.astype(dtype), h), out.proba


def _class_indices(estimator, y):
    classes = np.asarray(estimator.classes_)
    y = np.asarray(y)
    indices = np.searchsorted(classes, y)
    indices = np.clip(indices, 0, len(classes) - 1)
    if np.any(classes[indices] != y):
        unknown = np.unique(y[classes[indices] != y]).tolist()
        raise ValueError(f"Labels {unknown} are not among the model's classes.")
    return indices


def _has_bias(estimator):
    if embeddings.is_torch_net(estimator):
        return embeddings.output_layer(estimator.module_).bias is not None
    return bool(getattr(estimator, "fit_intercept", True))


def _append_bias_column(h, bias):
    if not bias:
        return h
    if sparse.issparse(h):
        ones = sparse.csr_matrix(np.ones((h.shape[0], 1)))
        return sparse.hstack([h, ones], format="csr", dtype=np.float64)
    return np.hstack([h, np.ones((h.shape[0], 1), dtype=h.dtype)])


def _row_sq_norms(M):
    if sparse.issparse(M):
        return np.asarray(M.multiply(M).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", M, M)


def _dense(M):
    return M.toarray() if sparse.issparse(M) else np.asarray(M)


# ------------------------------------------------------------------- k-means++
def kmeans_plus_plus(factors, n, random_state, *, weights=None, first=None):
    """k-means++ seeding of ``n`` centers among the gradients, from factors only.

    As in BADGE's reference code: the first center is the sample of largest
    gradient norm, each next one is drawn with probability proportional to its
    squared distance to the nearest center (D^2 sampling). If every remaining
    distance is zero (duplicates), the next center is drawn uniformly among the
    samples not chosen yet. Cost O(n N C) plus O(D) for each sample whose
    nearest center may change (at most O(n N (C + D))); memory O(N (C + D)).

    The C-dimensional factor is cheap; the (D+1)-dimensional one is bounded by
    Cauchy-Schwarz, ``(a_i.a_c)(h_i.h_c) <= max(a_i.a_c, 0) ||h_i|| ||h_c||``, and
    exact distances are computed only where that bound says the nearest center
    can change (about an eighth of the pool per draw at N = 25,000, nearly all
    of them sharing the center's pseudo-label). So the samples are grouped by
    the sign pattern of ``a`` (:class:`_NearestCenters`): the rows to update are
    then contiguous runs, multiplied in place instead of gathered (a gather
    costs ~4x the product). The draws are those of plain k-means++ on
    materialized embeddings, rounding aside, with :class:`_D2Sampler`'s rule
    (integer masses, so that :mod:`skal.distributed` draws the same rows from a
    partitioned pool).

    Rejected after measurement: a triangle-inequality prune on center-to-center
    distances, as in Elkan's k-means (removed almost nothing the Cauchy-Schwarz
    bound keeps); a principal-directions + residual bound on ``h~`` as in
    K-center (32 directions cut the exact rows by a quarter only, for an
    O(N 32) bound per draw: within a pseudo-label the features are too alike).

    Parameters
    ----------
    factors : GradientFactors
    n : int
        Number of centers.
    random_state : RandomState
        Source of the D^2 draws.
    weights : ndarray of shape (N,), default=None
        Non-negative per-sample weights: draws are proportional to ``weights *
        D^2`` (None: plain D^2 sampling).
    first : int, default=None
        The first center (None: the sample of largest gradient norm).

    Returns
    -------
    centers : ndarray of shape (n,)
        Distinct sample indices in the order chosen.
    """
    pool = _NearestCenters(factors)
    center = int(np.argmax(pool.sq_norms_by_row)) if first is None else int(first)
    chosen = [center]
    available = np.ones(len(factors), dtype=bool)
    available[center] = False
    sampler = _D2Sampler(pool.initial_distances(center), weights, center)
    while len(chosen) < n:
        center = sampler.draw(random_state, available)
        chosen.append(center)
        available[center] = False
        sampler.remove(center)
        rows, distances = pool.closer_to(center)
        # A chosen row's distance to itself may round above 0: never redraw it.
        keep = available[rows]
        sampler.lower(rows[keep], distances[keep])
    return np.asarray(chosen, dtype=np.int64)


@dataclass
class Center:
    """One center's factors: ``a`` (C,), ``h`` (dense, D+1), ``||g||^2``, ``||h~||``."""

    a: np.ndarray
    h: np.ndarray
    sq_norm: float
    h_norm: float


class _NearestCenters:
    """Squared distance of every sample to its nearest center, updated per center.

    Rows are kept sorted by the index of the most negative entry of ``a`` (the
    pseudo-label for cross-entropy, the predicted class for the entropy loss):
    samples whose ``a`` factors have a large positive inner product, the only
    ones the Cauchy-Schwarz bound cannot rule out, are then neighbours, and
    blocks of ``_RUN`` rows that are mostly to be updated are multiplied as
    contiguous slices. The grouping only affects speed, never the result.
    A center may be one of the rows (:meth:`center`) or come from elsewhere (a
    :class:`Center` from another partition of the pool).
    """

    _RUN = 256  # rows per block; a block is updated whole if a quarter needs it

    def __init__(self, factors):
        a, h = factors.a, factors.h
        self.order = np.argsort(np.argmin(a, axis=1), kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))
        self.a_t = np.ascontiguousarray(a[self.order].T)  # a row-vector product: 2x
        self.h = h[self.order]
        self.sq_norms_by_row = factors.sq_norms().astype(np.float64)
        self.sq_norms = self.sq_norms_by_row[self.order]
        self.h_norms = np.sqrt(_row_sq_norms(self.h)).astype(np.float64)
        n_blocks = -(-len(self.order) // self._RUN)
        self.mask = np.zeros(n_blocks * self._RUN, dtype=bool)
        self.nearest = None
        # ||g_i||^2 and (a_i.a_c)(h~_i.h~_c) are each within (C + D + 1) eps of
        # their value, so a distance below this fraction of ||g_i||^2 + ||g_c||^2
        # is rounding: it is set to 0 (a duplicate of a center then weighs nothing,
        # however and wherever, e.g. on which Dask partition, it is computed).
        dtype = np.result_type(a.dtype, h.dtype, np.float32)
        self.noise = (2 * (a.shape[1] + h.shape[1]) + 4) * np.finfo(dtype).eps

    def center(self, row):
        """Row ``row`` (caller's order) as a :class:`Center`."""
        c = self.position[row]
        return Center(
            self.a_t[:, c].copy(),
            _dense(self.h[c]).ravel(),
            self.sq_norms[c],
            self.h_norms[c],
        )

    def initial_distances(self, center):
        """Distances to the first center (a row or a :class:`Center`), caller's order."""
        center = self.center(center) if not isinstance(center, Center) else center
        self.nearest = np.maximum(self._distances(center, slice(None)), 0.0)
        return self.nearest[self.position]

    def _distances(self, center, rows, a_dot=None):
        a_dot = self.a_t[:, rows].T @ center.a if a_dot is None else a_dot
        h_dot = _dense(self.h[rows] @ center.h).ravel()
        sq_sums = self.sq_norms[rows] + center.sq_norm
        distances = sq_sums - 2 * a_dot * h_dot
        distances[distances <= self.noise * sq_sums] = 0.0
        return distances

    def closer_to(self, center):
        """Update for a new center (a row or a :class:`Center`); return (caller
        rows, new distances) that fell."""
        center = self.center(center) if not isinstance(center, Center) else center
        a_dot = center.a @ self.a_t
        # The bound, in place: sq_i + sq_c - 2 max(a_dot, 0) ||h_i|| ||h_c||.
        bound = np.maximum(a_dot, 0, dtype=np.float64)
        bound *= self.h_norms
        bound *= -2 * center.h_norm
        bound += self.sq_norms
        bound += center.sq_norm
        np.less(bound, self.nearest * (1 + 1e-6), out=self.mask[: len(bound)])
        changed = [
            self._update(center, rows, a_dot[rows])
            for rows in self._runs_and_rest(self.mask)
        ]
        positions = np.concatenate([p for p, _ in changed])
        return self.order[positions], np.concatenate([d for _, d in changed])

    def _runs_and_rest(self, mask):
        """Slices covering the dense blocks of ``mask`` (whole blocks), the rest."""
        n_rows = len(self.order)
        per_block = mask.reshape(-1, self._RUN).sum(axis=1)
        dense = np.concatenate([[0], per_block * 4 >= self._RUN, [0]])
        edges = np.flatnonzero(np.diff(dense.astype(np.int8))) * self._RUN
        for start, stop in zip(edges[::2], edges[1::2]):
            mask[start:stop] = False
            yield slice(start, min(stop, n_rows))
        yield np.flatnonzero(mask[:n_rows])

    def _update(self, center, rows, a_dot):
        distances = np.maximum(self._distances(center, rows, a_dot), 0.0)
        closer = distances < self.nearest[rows]
        if isinstance(rows, slice):
            positions = rows.start + np.flatnonzero(closer)
        else:
            positions = rows[closer]
        self.nearest[positions] = distances[closer]
        return positions, distances[closer]


def mass_bits(n_rows):
    """Bits ``K`` of the integer D^2 masses of ``n_rows`` rows: any sum of them
    stays below 2^52, so float64 holds every partial sum exactly."""
    return 52 - max(1, (int(n_rows) - 1).bit_length())


def mass_exponent(largest):
    """The ``E`` with ``2^(E-1) <= largest < 2^E`` (None when ``largest`` is 0)."""
    return int(np.frexp(largest)[1]) if largest > 0 else None


def quantized_masses(masses, bits, exponent):
    """``floor(masses * 2^(bits - exponent))``: exact (a power-of-two scaling and
    a floor), integers below ``2^bits`` held in float64."""
    if exponent is None:
        return np.zeros(len(masses))
    scale = 2.0 ** (bits - exponent) if abs(bits - exponent) < 1000 else None
    scaled = masses * scale if scale is not None else np.ldexp(masses, bits - exponent)
    return np.floor(scaled, out=scaled)


class _D2Sampler:
    """D^2 draws from integer masses, so that any split of the rows draws alike.

    The draw rule (the same on one machine and across Dask partitions,
    :mod:`skal.distributed`): with ``E`` the exponent of the largest mass
    (``2^(E-1) <= max p < 2^E``) and ``K = mass_bits(N)``, each row's mass
    ``p_i`` is truncated to the integer ``q_i = floor(p_i 2^(K-E))`` (exact
    float operations: a power-of-two scaling, then a floor); a uniform integer
    ``t = random_state.randint(sum q)`` selects the first row whose cumulative
    ``q`` exceeds ``t``. Sums of these integers stay below 2^52, so every sum
    is exact in float64 whatever the order: the pick does not depend on how the
    rows are grouped into blocks, machines or partitions (a float cumulative
    sum, as in ``RandomState.choice``, does, by rounding). Truncation moves
    each row's mass by less than ``2^-K`` of twice the largest mass (2^-37 at
    25,000 rows, 2^-28 at 10^7), about float64's own rounding of a cumulative
    sum over the pool (``N eps`` of the total). When every mass is 0 (only
    duplicates of the centers remain) the row is uniform among the available
    ones: the ``randint(n_available)``-th in row order.

    The rows are kept in ``sqrt(N)`` blocks: one draw sums the blocks and scans
    one block; ``q`` is recomputed in full only when ``E`` changes (a few
    times per batch).
    """

    def __init__(self, distances, weights, chosen=None, *, n_rows_drawn_from=None):
        n_rows = len(distances)
        self.weights = None if weights is None else np.asarray(weights, np.float64)
        self.bits = mass_bits(
            n_rows if n_rows_drawn_from is None else n_rows_drawn_from
        )
        self.block = max(1, int(np.sqrt(n_rows)))
        n_blocks = -(-n_rows // self.block)
        self.padded = np.zeros(n_blocks * self.block)
        self.padded_q = np.zeros(n_blocks * self.block)
        self.p = self.padded[:n_rows]
        self.q = self.padded_q[:n_rows]
        self.exponent = None
        self.cumulative = None
        self.lower(np.arange(n_rows), distances)
        if chosen is not None:
            self.remove(chosen)

    def lower(self, rows, distances):
        """Set the distances of ``rows`` (the D^2 mass is ``weights * distance``)."""
        masses = distances if self.weights is None else distances * self.weights[rows]
        self.p[rows] = masses
        self.q[rows] = quantized_masses(masses, self.bits, self.exponent)
        self.cumulative = None

    def remove(self, row):
        self.p[row] = 0.0
        self.q[row] = 0.0
        self.cumulative = None

    def largest_mass(self):
        return float(self.p.max()) if self.p.size else 0.0

    def total(self, exponent):
        """Sum of the integer masses at ``exponent`` (see the class docstring)."""
        if exponent != self.exponent:
            self.exponent = exponent
            self.q[:] = quantized_masses(self.p, self.bits, exponent)
        self.cumulative = np.cumsum(self.padded_q.reshape(-1, self.block).sum(axis=1))
        return int(self.cumulative[-1])  # exact: integers below 2^52

    def locate(self, target):
        """The first row whose cumulative integer mass exceeds ``target``."""
        b = int(self.cumulative.searchsorted(target, side="right"))
        base = self.cumulative[b - 1] if b else 0
        local = np.cumsum(self.padded_q[b * self.block : (b + 1) * self.block])
        return b * self.block + int(local.searchsorted(target - base, side="right"))

    def draw(self, random_state, available):
        total = self.total(mass_exponent(self.largest_mass()))
        if total == 0:
            rows = np.flatnonzero(available)
            return int(rows[random_state.randint(len(rows))])
        return self.locate(random_state.randint(total))


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
    was_training = module.training
    module.eval()
    try:
        for start in range(0, X.shape[0], chunk_size):
            rows = slice(start, min(start + chunk_size, X.shape[0]))
            x = rows_to_tensor(X, rows).to(net.device)
            yield rows, per_sample_grad(differentiated, x, labels[rows].to(net.device))
    finally:
        module.train(was_training)


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
    was_training = module.training
    module.eval()
    try:
        start = 0
        while start < X.shape[0]:
            rows = slice(start, min(start + size, X.shape[0]))
            with torch.enable_grad(), LayerCapture(owners) as capture:
                logits = module(rows_to_tensor(X, rows).to(net.device))
                chunk_labels = None if labels is None else labels[rows].to(net.device)
                total = _batched_losses(logits, loss, chunk_labels).sum()
                sq = capture.squared_norms(total)
            chunk = sq.sum(0).sqrt() if norm == "global" else sq.sqrt().sum(0)
            norms[rows] = chunk.cpu().numpy()
            if chunk_size is None:
                kept = max(1, 2 * capture.input_bytes_per_sample())
                size = int(np.clip(ACTIVATION_CHUNK_BYTES // kept, 1, limit))
            start = rows.stop
    finally:
        module.train(was_training)
    return norms
