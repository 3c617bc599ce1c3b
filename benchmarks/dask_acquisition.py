"""Acquisition on a Dask cluster: time and peak memory per worker, per strategy.

A synthetic pool (default 10 million rows x 32 float32 features) is generated
lazily on the workers of a ``LocalCluster`` (worker processes with a memory
limit, one thread each), so the client never holds it; every query reads it
again, as it would read a pool from storage. A small MLP is trained on 500
labeled rows; each strategy then queries a batch of ``n`` from the Dask pool.

Reported per strategy: the wall time, the time as a multiple of entropy's (the
forward pass over the pool), the peak resident memory of each worker during
the query (``VmHWM`` reset before each query: Linux) and the cluster's peak
process memory (``distributed.diagnostics.MemorySampler``).

Run ``python benchmarks/dask_acquisition.py`` (10^7 rows, 40 partitions, two
workers of 6 GiB: BADGE and K-center keep ~450 bytes per pool row on the
workers) or ``--rows 1000000 --block-rows 100000`` for a quick run;
``--address tcp://...`` uses an existing cluster instead. "peak/worker" is the
largest worker's resident peak during the query (it includes memory the
allocator kept from earlier queries); "+ over idle" is the query's own growth.
"""

import argparse
import os
import time

import numpy as np

# Worker processes inherit these: one BLAS/torch thread per worker thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import dask.array as da  # noqa: E402
import torch  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402
from distributed.diagnostics import MemorySampler  # noqa: E402

from skal.nets import MLPClassifier  # noqa: E402
from skal.strategies import get_strategy  # noqa: E402

STRATEGIES = [
    "entropy",
    "margin",
    "random",
    "grad",
    "egl",
    "bald",
    "badge",
    "kcenter",
    "grad_seq",
    "grad_kmeans",
]


def synthetic_pool(n_rows, n_features, block_rows, n_classes, seed=0):
    """Rows from ``n_classes`` Gaussian clusters (lazy: generated per block)."""
    rng = np.random.RandomState(seed)
    centers = 2.0 * rng.standard_normal((n_classes, n_features)).astype(np.float32)

    def block(block_id, rows):
        r = np.random.RandomState([seed, block_id])
        labels = r.randint(n_classes, size=rows)
        noise = r.standard_normal((rows, n_features)).astype(np.float32)
        return centers[labels] + noise, labels

    sizes = [block_rows] * (n_rows // block_rows)
    if n_rows % block_rows:
        sizes.append(n_rows % block_rows)
    blocks = [
        da.from_delayed(
            _delayed_block(block, i, rows), (rows, n_features), dtype=np.float32
        )
        for i, rows in enumerate(sizes)
    ]
    labeled, y = block(10**6, 500)  # a labeled set from the same distribution
    return da.concatenate(blocks), labeled, y


def _delayed_block(block, block_id, rows):
    from dask import delayed

    return delayed(lambda: block(block_id, rows)[0], pure=True)()


def _reset_peak():
    """Reset this process's peak resident set (Linux) and return the current one."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status("VmRSS")


def _status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return float("nan")


def _peak():
    return _status("VmHWM")


def _n_actors(dask_worker):
    return len(dask_worker.state.actors)


def _wait_for_released_actors(client, timeout=30):
    """The previous query's actors are released asynchronously: wait for it."""
    deadline = time.time() + timeout
    while any(client.run(_n_actors).values()) and time.time() < deadline:
        time.sleep(0.2)


def run(args):
    torch.set_num_threads(1)
    pool, X_labeled, y_labeled = synthetic_pool(
        args.rows, args.features, args.block_rows, args.classes
    )
    net = MLPClassifier(
        hidden_layer_sizes=(64, 32), dropout=0.1, max_epochs=10, random_state=0
    ).fit(X_labeled, y_labeled)
    if args.address:
        client = Client(args.address)
    else:
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=":0",
        )
        client = Client(cluster)
    client.run(torch.set_num_threads, 1)
    print(
        f"pool {args.rows:,} x {args.features} float32 in "
        f"{pool.numblocks[0]} blocks of <= {args.block_rows:,} rows; "
        f"{len(client.scheduler_info()['workers'])} workers x 1 thread, memory "
        f"limit {args.memory_limit}; MLP {args.features}-64-32-{args.classes}; "
        f"batch n={args.n}"
    )
    # Warm-up: every worker imports skal and torch and runs every code path once
    # (a strided slice has rows in every partition).
    sample = pool[:: max(1, args.rows // 5000)]
    for name in args.strategies:
        get_strategy(name).fit(X_labeled, y_labeled, estimator=net).query(sample, 5)
    sampler = MemorySampler()
    times = {}
    header = (
        f"{'strategy':12s} {'time s':>8s} {'x entropy':>9s} "
        f"{'peak/worker MB':>16s} {'+ over idle MB':>15s} {'cluster peak MB':>15s}"
    )
    print(header)
    for name in args.strategies:
        strategy = get_strategy(name)
        if "random_state" in strategy.get_params():
            strategy.set_params(random_state=0)
        strategy.fit(X_labeled, y_labeled, estimator=net)
        _wait_for_released_actors(client)
        idle = client.run(_reset_peak)
        with sampler.sample(name, interval=0.1):
            start = time.perf_counter()
            picks = strategy.query(pool, args.n)
            times[name] = time.perf_counter() - start
        peaks = client.run(_peak)
        assert len(set(picks.tolist())) == args.n
        ratio = times[name] / times["entropy"] if "entropy" in times else float("nan")
        per_worker = max(peaks.values()) / 2**20
        above = max(peaks[w] - idle[w] for w in peaks) / 2**20
        cluster_peak = sampler.to_pandas()[name].max() / 2**20
        print(
            f"{name:12s} {times[name]:8.1f} {ratio:9.2f} {per_worker:16.0f} "
            f"{above:15.0f} {cluster_peak:15.0f}",
            flush=True,
        )
    client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--block-rows", type=int, default=250_000)
    parser.add_argument("--n", type=int, default=100, help="batch size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="6GiB", help="per worker")
    parser.add_argument("--address", default=None, help="an existing scheduler")
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
