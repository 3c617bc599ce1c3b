"""Which strategies run on a Dask pool, and how."""

from .._validation import check_n_queries
from ..strategies._registry import available_strategies, get_strategy
from ..strategies.base import QueryStrategy, _check_candidates, _numerical_errors_raise
from ..strategies.bayesian import _MCDropoutStrategy
from ..strategies.diverse_gradient import GradKMeans
from ..strategies.diversity import BADGE, KCenterGreedy
from ..strategies.gradient import SequentialGradDiscrepancy
from ..strategies.uncertainty import RandomSampling
from ._cluster import ClusterQuery, as_dask_pool
from ._farthest import kcenter_query
from ._ranking import mc_dropout_query, random_query, ranking_query
from ._seeding import badge_query, grad_kmeans_query
from ._sequential import grad_seq_query

# Joint selections run exactly on a cluster, keyed by the `_select` they replace
# (a subclass that overrides `_select` is not assumed to select alike).
_JOINT = {
    BADGE._select: badge_query,
    KCenterGreedy._select: kcenter_query,
    SequentialGradDiscrepancy._select: grad_seq_query,
    GradKMeans._select: grad_kmeans_query,
}


def distributed_query(strategy):
    """The function that runs ``strategy.query`` on a Dask pool, or None."""
    cls = type(strategy)
    if cls._select in _JOINT:
        return _JOINT[cls._select]
    if cls._select is not QueryStrategy._select:
        return None
    if cls._score is RandomSampling._score:
        return random_query  # scores drawn from the strategy's random state
    if cls._score is _MCDropoutStrategy._score:
        return mc_dropout_query
    if strategy._ranks_in_chunks():
        return ranking_query
    return None


def supported_strategies():
    """Registered names of the strategies that query Dask pools."""
    return [
        name
        for name in available_strategies()
        if distributed_query(get_strategy(name)) is not None
    ]


def query_dask_pool(strategy, X_pool, n, candidates=None):
    """See :func:`skal.distributed.query_dask_pool`."""
    strategy._check_fitted()
    run = distributed_query(strategy)
    if run is None:
        raise TypeError(
            f"{type(strategy).__name__} cannot query a Dask pool: its selection is "
            f"not distributed. Strategies that query Dask pools: "
            f"{', '.join(supported_strategies())}. If the pool fits in memory, "
            f"pass X_pool.compute() instead."
        )
    pool = as_dask_pool(X_pool, strategy.n_features_in_, type(strategy).__name__)
    candidates = _check_candidates(candidates, pool.n_rows)
    if candidates is not None:
        pool = as_dask_pool(pool.array[candidates], None, None)
    n = check_n_queries(n, pool.n_rows)
    with ClusterQuery(strategy, pool) as query, _numerical_errors_raise(strategy):
        picks = run(query, n)
    return picks if candidates is None else candidates[picks]
