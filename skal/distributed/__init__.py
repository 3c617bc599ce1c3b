"""Acquisition on a Dask cluster, for pools larger than one machine.

``strategy.query(X_pool, n)`` accepts a ``dask.array.Array`` (or a Dask
DataFrame, converted with ``to_dask_array(lengths=True)``) for the strategies
of :func:`supported_strategies`, on the current ``dask.distributed`` client
(``Client()`` for a local cluster, ``Client("tcp://scheduler:8786")`` for an
existing one). The answer is the in-memory answer: the same rows in the same
order, the same random draws for the same seed.

- The fitted strategy and its estimator are pickled once and scattered to
  every worker once; each worker thread unpickles its own copy.
- Ranking strategies score each partition in chunks and return its top ``n``;
  the client merges them (ties to the lower row, as in memory).
- MC-dropout strategies do the same on partitions aligned with the chunk grid
  (their masks are seeded per chunk).
- BADGE and grad_kmeans seed k-means++ with per-partition actors holding the
  gradient factors and D^2 masses; the draws use integer masses, whose sums do
  not depend on the partitioning (:class:`skal._kmeanspp.D2Sampler`).
- K-center and grad_seq keep per-partition actors and make one global
  reduction per pick.

A worker holds its partitions, their factors or features (O(rows x (C + D)))
and a few vectors per row; the client receives O(n) per partition and round.
Other strategies refuse a Dask pool with a message naming the supported ones.
"""

__all__ = ["query_dask_pool", "supported_strategies"]


# The implementation imports dask and the strategies: loaded on first use, so
# that `import skal` needs neither dask nor a particular import order.
def query_dask_pool(strategy, X_pool, n, candidates=None):
    """``strategy.query(X_pool, n, candidates)`` for a Dask array or DataFrame pool.

    Runs on the current ``dask.distributed`` client; the answer is the one
    ``query`` gives on the pool in memory (same rows, same order, same random
    draws).

    Parameters
    ----------
    strategy : fitted QueryStrategy
    X_pool : dask.array.Array or dask.dataframe.DataFrame of shape (n_pool, ...)
    n : int
    candidates : array-like of int, default=None

    Returns
    -------
    indices : ndarray of shape (n,), dtype int64
    """
    from ._dispatch import query_dask_pool

    return query_dask_pool(strategy, X_pool, n, candidates)


def supported_strategies():
    """Registered names of the strategies that query Dask pools.

    Returns
    -------
    names : list of str
    """
    from ._dispatch import supported_strategies

    return supported_strategies()
