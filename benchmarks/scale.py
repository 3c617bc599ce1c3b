"""Scale: query a 1,000,000-row pool stored as a numpy memmap with every strategy.

The pool (ISOLET-sized rows: 617 float32 features, 26 classes; Gaussian class
clusters) is written once to a temporary directory as a raw memmap, 2.5 GB on disk.
The papers' 512-256 MLP is trained briefly on a few thousand rows and saved with
:mod:`skal.persistence`. Then each strategy runs in a fresh subprocess, which maps
the pool read-only, loads the model, fits the strategy on the training rows and
queries ``--n`` points from the whole pool under ``skal.config_context(chunk_size)``.

Per strategy it reports the query time and memory:

- ``peak anon``: the peak of the process's anonymous resident memory (RssAnon,
  sampled every 5 ms from /proc/self/status) above its level before the query:
  what skal allocates. It must be bounded by ``chunk_size`` and the ``N x (C + D)``
  outputs of the forward pass (here 1M x (26 + 256) float32 = 1.13 GB per copy),
  never by ``N x C x D`` (26.6 GB);
- ``maxrss delta``: the ``resource.getrusage`` ``ru_maxrss`` increase, which also
  counts the memmap's file-backed pages (page cache, reclaimable: reading the pool
  once maps all 2.5 GB of it).

It also checks that validation does not copy the memmap and times the pool
fingerprint a label store computes at the start of a session. Full-parameter
gradient norms (``entropy_gradnorm``/``expected_gradnorm`` with their default
``last_layer=False``) cost N x 450k parameters of per-sample gradients and MC-dropout
strategies need a network trained with dropout: pass them with ``--strategies``
explicitly (or query a ``subsample``).

    python benchmarks/scale.py                        # 1M rows, default strategies
    python benchmarks/scale.py --rows 100000 --chunk-size 1024 --strategies entropy
"""

import argparse
import gc
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

DEFAULT_STRATEGIES = [
    "random",
    "entropy",
    "margin",
    "least_confidence",
    "egl",
    "grad",
    "grad_seq",
    "grad_kmeans",
    "badge",
    "kcenter",
    "npc",
    "qbc",
    "albl",
    "learner:entropy",  # a whole ActiveLearner.fit round on the memmap
    "learner:badge",
]


# --- the parent: data, model, one subprocess per strategy ------------------------------
def write_pool(path, n_rows, n_features, n_classes, block=50_000, seed=0):
    """Gaussian class clusters written block by block (memory: one block)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.15, size=(n_classes, n_features)).astype(np.float32)
    labels = np.empty(n_rows, dtype=np.int64)
    pool = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, n_features))
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        y = rng.integers(0, n_classes, stop - start)
        noise = rng.standard_normal((stop - start, n_features), dtype=np.float32)
        pool[start:stop] = centers[y] + noise
        labels[start:stop] = y
    pool.flush()
    del pool
    return labels


def train_model(directory, pool, labels, n_train, epochs):
    from skal import ActiveLearner
    from skal.nets import MLPClassifier
    from skal.persistence import save

    X_train = np.asarray(pool[:n_train])
    net = MLPClassifier(
        hidden_layer_sizes=(512, 256),
        max_epochs=epochs,
        batch_size=64,
        classes=np.arange(labels.max() + 1),
        random_state=0,
    )
    # n_rounds=0: trains once on the n_train revealed rows; saved without pickle.
    learner = ActiveLearner(
        net, "random", n_initial=n_train, n_rounds=0, random_state=0
    ).fit(X_train, labels[:n_train])
    save(learner, directory / "model.skal")
    return learner.estimator_.score(
        np.asarray(pool[n_train : 2 * n_train]), labels[n_train : 2 * n_train]
    )


def run_worker(args, name):
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--dir",
        str(args.dir),
        "--rows",
        str(args.rows),
        "--features",
        str(args.features),
        "--train-rows",
        str(args.train_rows),
        "--chunk-size",
        str(args.chunk_size),
        "--n",
        str(args.n),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"name": name, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(args):
    from skal.strategies import available_strategies

    names = args.strategies or [
        s
        for s in DEFAULT_STRATEGIES
        if s.removeprefix("learner:") in available_strategies()
    ]
    cleanup = args.dir is None
    args.dir = Path(args.dir or tempfile.mkdtemp(prefix="skal-scale-"))
    args.dir.mkdir(parents=True, exist_ok=True)
    pool_path = args.dir / "pool.f32"
    expected_size = args.rows * args.features * 4
    try:
        start = time.perf_counter()
        if not pool_path.exists() or pool_path.stat().st_size != expected_size:
            labels = write_pool(pool_path, args.rows, args.features, args.classes)
            np.save(args.dir / "labels.npy", labels)
        labels = np.load(args.dir / "labels.npy")
        print(
            f"pool: {args.rows:,} x {args.features} float32 memmap "
            f"({expected_size / 1e9:.2f} GB) in {args.dir} "
            f"[{time.perf_counter() - start:.1f} s]"
        )
        pool = np.memmap(
            pool_path, dtype=np.float32, mode="r", shape=(args.rows, args.features)
        )
        start = time.perf_counter()
        accuracy = train_model(args.dir, pool, labels, args.train_rows, args.epochs)
        print(
            f"512-256 MLP trained on {args.train_rows:,} rows, {args.epochs} epochs "
            f"[{time.perf_counter() - start:.1f} s], held-out accuracy {accuracy:.3f}"
        )
        factors_gb = args.rows * (args.classes + 256) * 4 / 1e9
        print(
            f"chunk_size={args.chunk_size}, n={args.n}; one N x (C + D) float32 copy = "
            f"{factors_gb:.2f} GB; N x C x D would be "
            f"{args.rows * args.classes * 256 * 4 / 1e9:.1f} GB\n"
        )
        header = f"{'strategy':<18}{'seconds':>9}{'peak anon GB':>14}{'x N(C+D)':>10}{'maxrss delta GB':>17}"
        print(header)
        print("-" * len(header))
        for name in ["pool_fingerprint", *names]:
            result = run_worker(args, name)
            if "error" in result:
                print(f"{name:<18}  failed: {result['error']}")
                continue
            print(
                f"{name:<18}{result['seconds']:>9.1f}{result['peak_anon_gb']:>14.2f}"
                f"{result['peak_anon_gb'] / factors_gb:>10.2f}"
                f"{result['maxrss_delta_gb']:>17.2f}"
                + (f"   {result['note']}" if result.get("note") else "")
            )
    finally:
        if cleanup and not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)


# --- the worker: one strategy in a fresh process ----------------------------------------
def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakSampler:
    """Peak RssAnon (kB) while running, sampled from /proc/self/status."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = _status_kb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _status_kb("RssAnon"))
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kb("RssAnon"))


def worker(args, name):
    from sklearn.base import clone

    import skal
    from skal import ActiveLearner
    from skal._validation import check_pool
    from skal.label_store import pool_fingerprint
    from skal.persistence import load
    from skal.strategies import get_strategy

    pool = np.memmap(
        args.dir / "pool.f32",
        dtype=np.float32,
        mode="r",
        shape=(args.rows, args.features),
    )
    labels = np.load(args.dir / "labels.npy")
    estimator = load(args.dir / "model.skal").estimator_
    X_labeled = np.asarray(pool[: args.train_rows])
    note = ""
    if name == "pool_fingerprint":
        run = lambda: pool_fingerprint(pool)  # noqa: E731
        note = "label store: hash of the whole pool"
    elif name.startswith("learner:"):
        # One whole round of ActiveLearner.fit on the memmap: validation, training
        # on the labeled rows, acquisition over ~1M candidates, training again.
        strategy_name = name.split(":", 1)[1]
        y_partial = np.full(args.rows, -1)
        y_partial[: args.train_rows] = labels[: args.train_rows]
        learner = ActiveLearner(
            clone(estimator),
            strategy_name,
            batch_size=args.n,
            n_rounds=1,
            oracle=lambda rows: labels[rows],
            random_state=0,
        )

        def run():
            with skal.config_context(chunk_size=args.chunk_size):
                learner.fit(pool, y_partial)

        note = "fit: 2 trainings + 1 acquisition round"
    else:
        strategy = get_strategy(name)
        if "random_state" in strategy.get_params():
            strategy.set_params(random_state=0)
        with skal.config_context(chunk_size=args.chunk_size):
            strategy.fit(X_labeled, labels[: args.train_rows], estimator=estimator)

        def run():
            with skal.config_context(chunk_size=args.chunk_size):
                picks = strategy.query(pool, args.n)
            assert len(set(picks.tolist())) == args.n
            return picks

        validated = check_pool(pool)
        note = "" if np.shares_memory(validated, pool) else "check_pool COPIED the pool"
        del validated
    gc.collect()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with PeakSampler() as sampler:
        baseline = _status_kb("RssAnon")
        run()
    seconds = time.perf_counter() - start
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "name": name,
                "seconds": seconds,
                "peak_anon_gb": (sampler.peak - baseline) * 1024 / 1e9,
                "maxrss_delta_gb": (maxrss_after - maxrss_before) * 1024 / 1e9,
                "note": note,
            }
        )
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=617)
    parser.add_argument("--classes", type=int, default=26)
    parser.add_argument("--train-rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--n", type=int, default=10, help="points queried")
    parser.add_argument("--strategies", type=lambda s: s.split(","), default=None)
    parser.add_argument("--dir", type=Path, default=None, help="reuse a pool here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker:
        worker(arguments, arguments.worker)
    else:
        main(arguments)
