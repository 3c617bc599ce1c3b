"""Queries on Dask pools (skal.distributed) give the in-memory answers."""

import cloudpickle
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from distributed.diagnostics.plugin import SchedulerPlugin  # noqa: E402

from skal import config_context  # noqa: E402
from skal.distributed import _cluster, supported_strategies  # noqa: E402
from skal.nets import LossPrediction  # noqa: E402
from skal.strategies import get_strategy  # noqa: E402

from .conftest import tiny_mlp  # noqa: E402

# 300 pool rows in partitions of unequal sizes; chunks of 32 rows inside them.
BLOCKS = (70, 45, 100, 25, 60)
CHUNK_SIZE = 32


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def problem(blobs):
    """Labeled rows, an in-memory pool, the same pool on Dask, a net every
    strategy accepts (dropout and a loss-prediction module)."""
    X, y = blobs
    net = tiny_mlp(dropout=0.2, loss_prediction=LossPrediction()).fit(X[:200], y[:200])
    pool = X[100:400]
    return X[:40], y[:40], pool, da.from_array(pool, chunks=(BLOCKS, -1)), net


def seeded(name, **params):
    strategy = get_strategy(name, **params)
    if "random_state" in strategy.get_params():
        strategy.set_params(random_state=3)
    return strategy


def both_picks(problem, name, n, candidates=None, **params):
    X_l, y_l, pool, dask_pool, net = problem
    with config_context(chunk_size=CHUNK_SIZE):
        in_memory = (
            seeded(name, **params)
            .fit(X_l, y_l, estimator=net)
            .query(pool, n, candidates=candidates)
        )
        on_dask = (
            seeded(name, **params)
            .fit(X_l, y_l, estimator=net)
            .query(dask_pool, n, candidates=candidates)
        )
    return in_memory, on_dask


@pytest.mark.parametrize("name", supported_strategies())
def test_a_dask_pool_gets_the_in_memory_picks(name, client, problem):
    in_memory, on_dask = both_picks(problem, name, 12)
    assert on_dask.dtype == np.int64
    np.testing.assert_array_equal(on_dask, in_memory)


def test_every_strategy_but_the_joint_non_distributed_ones_is_supported():
    assert {"badge", "kcenter", "grad_seq", "grad_kmeans", "bald", "random"} <= set(
        supported_strategies()
    )
    assert not {"npc", "typiclust", "probcover", "albl"} & set(supported_strategies())


@pytest.mark.parametrize("name", ["entropy", "badge", "kcenter", "grad_seq"])
def test_candidates_in_any_order(name, client, problem):
    candidates = np.random.RandomState(0).permutation(300)[:150]
    in_memory, on_dask = both_picks(problem, name, 10, candidates=candidates)
    np.testing.assert_array_equal(on_dask, in_memory)
    assert set(on_dask) <= set(candidates)


@pytest.mark.parametrize("factor", [None, 1.0])
def test_grad_kmeans_over_the_whole_pool_or_exactly_n_candidates(
    factor, client, problem
):
    in_memory, on_dask = both_picks(problem, "grad_kmeans", 10, candidate_factor=factor)
    np.testing.assert_array_equal(on_dask, in_memory)


def test_every_partition_exhausted_and_an_empty_one(client, problem):
    X_l, y_l, pool, _, net = problem
    small = pool[:40]
    for name in ("grad_seq", "margin", "badge"):
        picks = [
            seeded(name).fit(X_l, y_l, estimator=net).query(p, 40)
            for p in (small, da.from_array(small, chunks=((3, 0, 17, 20), -1)))
        ]
        np.testing.assert_array_equal(picks[1], picks[0])


def test_kcenter_without_labeled_set_draws_its_first_point_alike(client, problem):
    _, _, pool, dask_pool, net = problem
    picks = [
        get_strategy("kcenter", space="input", random_state=4)
        .fit(None, None, estimator=net)
        .query(p, 10)
        for p in (pool, dask_pool)
    ]
    np.testing.assert_array_equal(picks[1], picks[0])


def test_badge_on_duplicates_falls_back_to_uniform_draws_alike(client, problem):
    # 5 distinct rows, 4 copies each: after 5 picks every D^2 mass is 0.
    X_l, y_l, pool, _, net = problem
    duplicates = np.repeat(pool[:5], 4, axis=0)
    picks = [
        get_strategy("badge", random_state=2).fit(X_l, y_l, estimator=net).query(p, 12)
        for p in (duplicates, da.from_array(duplicates, chunks=((7, 6, 7), -1)))
    ]
    np.testing.assert_array_equal(picks[1], picks[0])
    assert len(set(picks[1])) == 12


def test_a_dask_dataframe_pool(client, problem):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X_l, y_l, pool, _, net = problem
    frame = pd.DataFrame(pool.astype(np.float64))
    for name in ("margin", "badge"):
        picks = [
            seeded(name).fit(X_l, y_l, estimator=net).query(p, 10)
            for p in (frame, dd.from_pandas(frame, npartitions=4))
        ]
        np.testing.assert_array_equal(picks[1], picks[0])


def test_the_strategy_is_sent_once_and_unpickled_once_per_worker_thread(
    client, problem, monkeypatch
):
    X_l, y_l, _, dask_pool, net = problem
    dumps, loads = [], []
    real_dumps, real_loads = cloudpickle.dumps, cloudpickle.loads
    monkeypatch.setattr(
        _cluster.cloudpickle, "dumps", lambda obj: dumps.append(1) or real_dumps(obj)
    )
    monkeypatch.setattr(
        _cluster.cloudpickle, "loads", lambda data: loads.append(1) or real_loads(data)
    )
    get_strategy("entropy").fit(X_l, y_l, estimator=net).query(dask_pool, 5)
    assert len(dumps) == 1
    assert 1 <= len(loads) <= 2  # two worker threads, five partitions
    assert not _cluster._copies  # released after the query


class ResultSizes(SchedulerPlugin):
    """Bytes of every task result the scheduler sees."""

    name = "result-sizes"

    def __init__(self):
        self.sizes = {}

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "memory" and key in self.scheduler.tasks:
            self.sizes[key] = self.scheduler.tasks[key].nbytes


@pytest.mark.parametrize("name", ["entropy", "bald", "badge", "kcenter", "grad_seq"])
def test_no_task_result_is_larger_than_a_partition(name, client, problem):
    # 15 partitions of 20 rows; the bound is below one float64 per pool row
    # (2,400 bytes), so a task that gathers anything pool-wide fails it.
    X_l, y_l, pool, _, net = problem
    dask_pool = da.from_array(pool, chunks=(20, -1))
    client.register_plugin(ResultSizes())
    with config_context(chunk_size=20):
        seeded(name).fit(X_l, y_l, estimator=net).query(dask_pool, 5)
    sizes = client.run_on_scheduler(
        lambda dask_scheduler: dask_scheduler.plugins["result-sizes"].sizes
    )
    client.unregister_scheduler_plugin("result-sizes")
    # Per row: its features and its C-vector in float64 (gradient factors, C + D
    # float32, and the features' float32 copies fit in it).
    per_row = 8 * (pool.shape[1] + len(net.classes_))
    results = {k: v for k, v in sizes.items() if not str(k).startswith("_Payload")}
    assert results and max(results.values()) <= 20 * per_row < 8 * len(pool)


def test_other_strategies_refuse_a_dask_pool(client, problem):
    X_l, y_l, _, dask_pool, net = problem
    for name in ("npc", "typiclust", "probcover", "albl"):
        strategy = get_strategy(name).fit(X_l, y_l, estimator=net)
        with pytest.raises(TypeError, match="cannot query a Dask pool") as error:
            strategy.query(dask_pool, 5)
        assert "badge" in str(error.value) and "X_pool.compute()" in str(error.value)
    with pytest.raises(TypeError, match="does not take a Dask pool"):
        get_strategy("entropy").fit(X_l, y_l, estimator=net).score(dask_pool)


def test_bad_dask_pools(client, problem):
    X_l, y_l, pool, dask_pool, net = problem
    strategy = get_strategy("entropy").fit(X_l, y_l, estimator=net)
    with pytest.raises(ValueError, match="X_pool has 5 features, but Entropy"):
        strategy.query(dask_pool[:, :5], 3)
    unknown = dask_pool[dask_pool[:, 0] > 0]  # rows per partition unknown
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        strategy.query(unknown, 3)
    with pytest.raises(ValueError, match="larger than the pool"):
        strategy.query(dask_pool, 301)
    with_nan = da.from_array(np.where(np.arange(300)[:, None] == 7, np.nan, pool))
    with pytest.raises(ValueError, match="NaN"):
        strategy.query(with_nan, 3)
    with pytest.raises(Exception, match="not fitted"):
        get_strategy("entropy").query(dask_pool, 3)
