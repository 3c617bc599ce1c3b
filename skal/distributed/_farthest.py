"""K-center greedy (farthest-first traversal) over a Dask pool.

Each block's actor keeps its points and their squared distance to the nearest
center (the labeled set, then the picks): a
:class:`skal.strategies.diversity.NearestDistances`, pruned by the block's own
principal directions. One round per pick: every block lowers its distances to
the last pick and returns its farthest point (largest distance, lowest row on
ties) with the point itself; the client keeps the farthest of those, ties to
the lower block. That is ``argmax`` over the pool, as in memory.
"""

import numpy as np

from ..strategies.diversity import NearestDistances, nearest_sq_distances
from ._cluster import raising_numerical_errors


def kcenter_query(query, n):
    states = query.persist_blocks(_block_points)
    blocks = query.actors(_FarthestBlock, states)
    query.release(states)  # the actors hold the points
    random_state = query.strategy.random_state_
    offsets = query.pool.offsets
    farthest = blocks.call("farthest")
    picks = []
    for _ in range(n):
        if all(all_inf for all_inf, *_ in farthest):  # nothing labeled or picked
            row = int(random_state.randint(query.pool.n_rows))
            b = int(np.searchsorted(offsets, row, side="right")) - 1
            local = row - offsets[b]
            center = blocks.call_one(b, "center", local)
        else:
            b = max(range(len(blocks)), key=lambda i: (farthest[i][1], -i))
            _, _, local, center = farthest[b]
        picks.append(offsets[b] + local)
        farthest = blocks.call_each(
            "add_center",
            [(center, local if i == b else None) for i in range(len(blocks))],
        )
    return np.asarray(picks, dtype=np.int64)


def _block_points(strategy, block, offset):
    points = strategy._represent(block)
    if strategy.labeled_points_ is None:
        return points, np.full(points.shape[0], np.inf)
    return points, nearest_sq_distances(points, strategy.labeled_points_)


class _FarthestBlock:
    """One block's points and nearest distances (an actor)."""

    @raising_numerical_errors
    def __init__(self, state):
        self.distances = NearestDistances(*state)

    def center(self, local):
        return self.distances.center(local)

    def farthest(self):
        """(all distances infinite, largest distance, its row, (point, sq norm))."""
        nearest = self.distances.nearest
        local = int(np.argmax(nearest))
        all_inf = bool(np.isinf(nearest).all())
        return all_inf, float(nearest[local]), local, self.distances.center(local)

    @raising_numerical_errors
    def add_center(self, center, own):
        self.distances.add_center(*center, row=own)
        return self.farthest()
