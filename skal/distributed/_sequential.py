"""grad_seq over a Dask pool: one pick at a time against the running mean.

Each block's actor keeps a :class:`skal.strategies.gradient._LazyDiscrepancy`
over its rows (exact sums for the picks a row was compared with, Cauchy-Schwarz
intervals for the rest). One round per pick: every block folds the last pick
into its reference and returns its exact best row (largest key, lowest row on
ties) with the row's factors; the client keeps the best of those, ties to the
lower block: the in-memory pick. The ``[0, b]`` interval for non-negative
features is used only if every block's features are non-negative.
"""

import numpy as np

from .. import gradients
from ..strategies.gradient import _has_no_negative_entry, _LazyDiscrepancy
from ._cluster import raising_numerical_errors


def grad_seq_query(query, n):
    strategy = query.strategy
    states = query.persist_blocks(_block_factors)
    non_negative = all(
        future.result()
        for future in [query.client.submit(_non_negative, s) for s in states]
    )
    size = len(states)
    blocks = query.actors(
        _SequentialBlock,
        states,
        [strategy.reference_gradient_] * size,
        [strategy.n_labeled_] * size,
        [n] * size,
        [non_negative] * size,
    )
    query.release(states)  # the actors hold the factors
    offsets = query.pool.offsets
    best = blocks.call("best")
    picks = []
    for _ in range(n):
        b = max(
            (i for i in range(size) if best[i] is not None),
            key=lambda i: (best[i][0], -i),
        )
        _, local, picked = best[b]
        picks.append(offsets[b] + local)
        best = blocks.call_each(
            "fold", [(picked, local if i == b else None) for i in range(size)]
        )
    return np.asarray(picks, dtype=np.int64)


def _block_factors(strategy, block, offset):
    factors, _ = gradients.last_layer_factors(strategy.estimator_, block)
    return factors


def _non_negative(factors):
    return _has_no_negative_entry(factors.h)


class _SequentialBlock:
    """One block's lazy discrepancies (an actor)."""

    @raising_numerical_errors
    def __init__(self, factors, M, n_reference, n, non_negative):
        self.state = _LazyDiscrepancy(factors, M, n_reference, n, non_negative)
        self.n_left = len(factors)

    @raising_numerical_errors
    def best(self):
        """(exact key, row, the row's factors) of this block's best row, or None."""
        if self.n_left == 0:
            return None
        local = self.state._exact_argmax()
        return float(self.state.key[local]), local, self.state.picked_row(local)

    @raising_numerical_errors
    def fold(self, picked, own):
        if own is not None:
            self.state.key[own] = -np.inf
            self.n_left -= 1
        self.state.fold(*picked)
        return self.best()
