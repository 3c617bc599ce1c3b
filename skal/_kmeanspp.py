"""k-means++ seeding (D^2 sampling) among last-layer gradients, from their factors.

BADGE seeds k-means++ on the pool's gradient embeddings ``g_i = a_i (x) h~_i``
(:class:`skal.gradients.GradientFactors`); grad_kmeans tilts the same draw by a
score. Distances come from the factors (``||g_i - g_c||^2 = ||g_i||^2 + ||g_c||^2
- 2 (a_i.a_c)(h~_i.h~_c)``), never from the embeddings:

- :func:`kmeans_plus_plus` picks the centers;
- :class:`NearestCenters` keeps each row's squared distance to its nearest
  center, updated only where a Cauchy-Schwarz bound says it may fall;
- :class:`D2Sampler` draws the next center from integer D^2 masses
  (:func:`mass_bits`, :func:`mass_exponent`, :func:`quantized_masses`), so that
  :mod:`skal.distributed` draws the same rows from a partitioned pool
  (:class:`Center` carries a center from one partition to the others).

Brute-force twins (plain k-means++ on materialized embeddings, a Python-integer
D^2 draw) are in ``tests/test_kmeanspp.py``.
"""

from dataclasses import dataclass

import numpy as np

from ._arrays import dense, row_sq_norms


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
    the sign pattern of ``a`` (:class:`NearestCenters`): the rows to update are
    then contiguous runs, multiplied in place instead of gathered (a gather
    costs ~4x the product). The draws are those of plain k-means++ on
    materialized embeddings, rounding aside, with :class:`D2Sampler`'s rule
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
    pool = NearestCenters(factors)
    center = int(np.argmax(pool.sq_norms_by_row)) if first is None else int(first)
    chosen = [center]
    available = np.ones(len(factors), dtype=bool)
    available[center] = False
    sampler = D2Sampler(pool.initial_distances(center), weights, center)
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


class NearestCenters:
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
        self.h_norms = np.sqrt(row_sq_norms(self.h)).astype(np.float64)
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
            dense(self.h[c]).ravel(),
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
        h_dot = dense(self.h[rows] @ center.h).ravel()
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


class D2Sampler:
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
