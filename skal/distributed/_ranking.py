"""Ranking strategies on a Dask pool: scores per block, an exact top-n merge.

In memory, ``query`` returns :func:`skal.strategies.top_n` of the pool's scores:
the ``n`` largest, ties to the lower row. Every row of that answer is among its
own block's top ``n`` under the same order, so each block returns only its top
``n`` (scores and global rows) and the client keeps the top ``n`` of those,
sorted by (score descending, row ascending): the in-memory answer, with at most
``n`` scores per block leaving a worker.
"""

import numpy as np

from .._config import get_config
from ..strategies.base import top_n
from ..strategies.bayesian import draw_torch_seed


def ranking_query(query, n):
    """Top ``n`` of a strategy that scores rows independently (``_score``)."""
    return merge_top_n(query.map_blocks(_block_top_n, n), n)


def _block_top_n(strategy, block, offset, n):
    return _top_of(strategy._chunked_scores(block, None), offset, n)


def _top_of(scores, offset, n):
    rows = top_n(scores, min(n, len(scores)))
    return scores[rows], rows + offset


def merge_top_n(block_tops, n):
    """The ``n`` largest of the blocks' (scores, global rows), ties to the lower row."""
    scores = np.concatenate([scores for scores, _ in block_tops])
    rows = np.concatenate([rows for _, rows in block_tops])
    order = np.lexsort((rows, -scores))[:n]
    return rows[order].astype(np.int64)


def mc_dropout_query(query, n):
    """MC-dropout strategies: the masks of pool chunk ``k`` come from the query's
    torch seed and ``k`` (:func:`skal.strategies.bayesian.chunk_seed`), so blocks
    that start on a chunk boundary draw the in-memory masks. The pool is
    re-partitioned onto the chunk grid first (data moves between workers once).
    """
    seed = draw_torch_seed(query.strategy.random_state_)  # as _score does
    query.pool = query.pool.aligned_to(query.chunk_size)
    return merge_top_n(query.map_blocks(_mc_block_top_n, seed, n), n)


def _mc_block_top_n(strategy, block, offset, seed, n):
    chunk_size = get_config()["chunk_size"]
    scores = strategy._checked_scores(
        strategy.seeded_scores(block, seed, first_chunk=offset // chunk_size)
    )
    return _top_of(scores, offset, n)


def random_query(query, n):
    """Uniform sampling: the in-memory scores are ``random_sample(N)`` in row order,
    one stream; the client draws it in steps (memory O(step + n)) and keeps the
    top ``n``. The workers only check the blocks, as ``query`` would."""
    query.map_blocks(_check_only)
    random_state = query.strategy.random_state_
    n_rows = query.pool.n_rows
    scores, rows = np.empty(0), np.empty(0, dtype=np.int64)
    step = max(2**20, n)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        scores = np.concatenate([scores, random_state.random_sample(stop - start)])
        rows = np.concatenate([rows, np.arange(start, stop)])
        # Kept in row order, so that top_n's ties (by position) go to the lower row.
        kept = np.sort(top_n(scores, min(n, len(scores))))
        scores, rows = scores[kept], rows[kept]
    return rows[top_n(scores, n)]


def _check_only(strategy, block, offset):
    return None
