"""k-means++ seeding (BADGE, grad_kmeans) over a Dask pool, draw for draw.

Each block's actor keeps its rows' gradient factors, their squared distance to
the nearest center and their D^2 masses (:class:`skal._kmeanspp.D2Sampler`
with the pool's row count). One pick takes three rounds:

1. every block lowers its distances to the new center (Cauchy-Schwarz-pruned,
   as in memory) and reports its largest mass;
2. with ``E`` the exponent of the largest mass of the pool, every block
   reports the sum of its integer masses ``floor(p 2^(K-E))``;
3. the client draws ``t = randint(total)`` from the strategy's random state,
   finds the block whose cumulative integer mass passes ``t``, and that block
   returns its row (and the row's factors, the next center).

Integer sums are exact, so block sums add up to the in-memory sums and ``t``
lands on the same row as in :func:`skal._kmeanspp.kmeans_plus_plus`: with the
same seed the picks are the in-memory picks. (A distance computed by a
different BLAS kernel may differ in its last float32 bit; a pick can change only
if ``t`` falls within that rounding of a row's boundary, about 1e-7 of a draw.)
"""

import numpy as np

from .. import gradients
from .._kmeanspp import D2Sampler, NearestCenters, mass_exponent
from ..strategies.base import top_n
from ._cluster import raising_numerical_errors
from ._ranking import merge_top_n


def badge_query(query, n):
    """BADGE: k-means++ on the pseudo-label weight gradients of the whole pool."""
    include_bias = query.strategy.include_bias
    states = query.persist_blocks(_pool_factors, include_bias)
    blocks = query.actors(_SeedingBlock, states, [query.pool.n_rows] * len(states))
    query.release(states)  # the actors hold the factors
    return kmeans_plus_plus(blocks, n, query.strategy.random_state_)


def _pool_factors(strategy, block, offset, include_bias):
    factors, _ = gradients.last_layer_factors(
        strategy.estimator_, block, include_bias=include_bias
    )
    rows = offset + np.arange(block.shape[0])
    return factors, None, None, rows


def grad_kmeans_query(query, n):
    """grad_kmeans: the tilted seeding among the pool's top discrepancy scores.

    The candidates are the global top ``ceil(candidate_factor n)`` scores (ties
    to the lower row, as :func:`skal.strategies.diverse_gradient.top_candidates`);
    each block keeps the factors of its candidates only.
    """
    strategy = query.strategy
    states = query.persist_blocks(_discrepancy_factors)
    m = query.pool.n_rows
    if strategy.candidate_factor is not None:
        m = min(m, int(np.ceil(strategy.candidate_factor * n)))
    offsets = query.pool.offsets
    if m < query.pool.n_rows:
        tops = query.client.gather(
            [query.client.submit(_top_scores, state, m) for state in states]
        )
        candidates = np.sort(merge_top_n(tops, m))
        rows_per_block = np.split(
            candidates, np.searchsorted(candidates, offsets[1:-1])
        )
        largest = max(scores.max() for scores, _ in tops if len(scores))
    else:  # every row is a candidate: only the largest score leaves the workers
        rows_per_block = [np.arange(a, b) for a, b in zip(offsets[:-1], offsets[1:])]
        largest = max(
            query.client.gather(
                [query.client.submit(_largest_score, state) for state in states]
            )
        )
    keep = [b for b, rows in enumerate(rows_per_block) if len(rows)]
    subsets = [
        query.client.submit(
            _candidate_factors,
            states[b],
            rows_per_block[b],
            max(largest, 1e-300),
            strategy.score_power,
        )
        for b in keep
    ]
    blocks = query.actors(_SeedingBlock, subsets, [m] * len(keep))
    query.release(states + subsets)  # the actors hold the candidates' factors
    return kmeans_plus_plus(blocks, n, strategy.random_state_)


def _discrepancy_factors(strategy, block, offset):
    factors, _ = gradients.last_layer_factors(strategy.estimator_, block)
    sq_distances = factors.sq_distances_to(strategy.reference_gradient_)
    scores = np.sqrt(sq_distances).astype(np.float64)
    return factors, scores, offset


def _top_scores(state, m):
    _, scores, offset = state
    rows = top_n(scores, min(m, len(scores)))
    return scores[rows], rows + offset


def _largest_score(state):
    return float(state[1].max())


def _candidate_factors(state, rows, largest, power):
    factors, scores, offset = state
    local = rows - offset
    tilt = (scores[local] / largest) ** power
    return factors.take(local), scores[local], tilt, rows


def kmeans_plus_plus(blocks, n, random_state):
    """:func:`skal._kmeanspp.kmeans_plus_plus` over the blocks' actors, in global rows.

    The first center is the largest first key (gradient norm, or grad_kmeans's
    score), ties to the lower row; the next ``n - 1`` are drawn as described in
    the module docstring.
    """
    firsts = blocks.call("first")
    b = max(range(len(blocks)), key=lambda i: (firsts[i][0], -i))
    local = firsts[b][1]
    picks = [(b, local)]
    center = blocks.call_one(b, "center", local)
    largest = max(blocks.call_each("start", _owner_args(center, b, local, len(blocks))))
    while len(picks) < n:
        totals = blocks.call("total", mass_exponent(largest))
        masses = [total for total, _ in totals]  # Python integers: exact sums
        if sum(masses) > 0:
            b, target = _block_of(masses, random_state.randint(sum(masses)))
            local, center = blocks.call_one(b, "locate", target)
        else:  # only duplicates of the centers left: uniform among the others
            available = [count for _, count in totals]
            b, j = _block_of(available, random_state.randint(sum(available)))
            local, center = blocks.call_one(b, "nth_available", j)
        picks.append((b, local))
        args = _owner_args(center, b, local, len(blocks))
        largest = max(blocks.call_each("add_center", args))
    rows = blocks.call("rows")
    return np.array([rows[b][local] for b, local in picks], dtype=np.int64)


def _block_of(counts, target):
    """The block whose cumulative count passes ``target``, and ``target`` in it."""
    for b, count in enumerate(counts):
        if target < count:
            return b, target
        target -= count
    raise AssertionError("target beyond the total")


def _owner_args(center, owner, local, n_blocks):
    return [(center, local if b == owner else None) for b in range(n_blocks)]


class _SeedingBlock:
    """One block's share of the seeding (an actor on the worker holding it)."""

    def __init__(self, state, n_rows_drawn_from):
        factors, first_key, weights, self.global_rows = state
        self.nearest = NearestCenters(factors)
        self.first_key = (
            self.nearest.sq_norms_by_row if first_key is None else first_key
        )
        self.weights = weights
        self.n_rows_drawn_from = n_rows_drawn_from
        self.available = np.ones(len(factors), dtype=bool)
        self.sampler = None

    def rows(self):
        return self.global_rows

    def first(self):
        local = int(np.argmax(self.first_key))
        return float(self.first_key[local]), local

    def center(self, local):
        return self.nearest.center(local)

    @raising_numerical_errors
    def start(self, center, own):
        """Distances to the first center; ``own``: it is this block's row."""
        self.sampler = D2Sampler(
            self.nearest.initial_distances(center),
            self.weights,
            own,
            n_rows_drawn_from=self.n_rows_drawn_from,
        )
        if own is not None:
            self.available[own] = False
        return self.sampler.largest_mass()

    def total(self, exponent):
        return self.sampler.total(exponent), int(self.available.sum())

    def locate(self, target):
        local = self.sampler.locate(target)
        return local, self.nearest.center(local)

    def nth_available(self, j):
        local = int(np.flatnonzero(self.available)[j])
        return local, self.nearest.center(local)

    @raising_numerical_errors
    def add_center(self, center, own):
        """As :func:`skal._kmeanspp.kmeans_plus_plus` after a draw."""
        if own is not None:
            self.available[own] = False
            self.sampler.remove(own)
        rows, distances = self.nearest.closer_to(center)
        keep = self.available[rows]  # a chosen row is never drawn again
        self.sampler.lower(rows[keep], distances[keep])
        return self.sampler.largest_mass()
