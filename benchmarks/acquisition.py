"""Acquisition time and memory of every strategy, as ratios (paper 001, Table 2 setting).

Trains the 512-256 MLP once on a synthetic pool (N x D_in, C classes), then, for
each strategy in a fresh subprocess (so peak memory is its own), times
``strategy.fit(labeled) + strategy.query(pool, n)`` over repeats and reports

- median and range of the acquisition seconds,
- the ratio to the forward pass over the pool (the ``entropy`` row: every
  model-based strategy needs at least that pass),
- the ratio to a naive reference implementation (materialized N x C(D+1)
  gradient embeddings, or a per-sample autograd loop, timed on a subset of the
  pool and scaled linearly where the full run would take minutes),
- the peak resident memory added by the acquisition (ru_maxrss delta).

    python benchmarks/acquisition.py                       # N=25000, D_in=617, C=26, n=500
    python benchmarks/acquisition.py --n-pool 100000 --classes 20 --strategies badge
    python benchmarks/acquisition.py --quick                # small N, for a smoke run

Machines are noisy: read ratios and ranges, not single numbers.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

NAIVE_SUBSET = 2000  # pool rows used by the per-sample naive references


def make_problem(args, workdir):
    """Pool, labeled set and a trained MLP, saved for the worker processes."""
    from sklearn.datasets import make_classification

    from skal.nets import MLPClassifier

    X, y = make_classification(
        n_samples=args.n_pool + args.n_labeled,
        n_features=args.features,
        n_informative=min(args.features, 40),
        n_classes=args.classes,
        n_clusters_per_class=1,
        random_state=0,
    )
    X = X.astype(np.float32)
    net = MLPClassifier(max_epochs=3, batch_size=64, random_state=0)
    net.fit(X[: args.n_labeled], y[: args.n_labeled])
    np.save(workdir / "X.npy", X)
    np.save(workdir / "y.npy", y)
    torch.save(net.module_.state_dict(), workdir / "module.pt")


def load_problem(args, workdir):
    from skal.nets import MLPClassifier

    X = np.load(workdir / "X.npy")
    y = np.load(workdir / "y.npy")
    net = MLPClassifier(max_epochs=0, random_state=0)
    net.fit(X[: args.n_labeled], y[: args.n_labeled])  # builds the module, 0 epochs
    net.module_.load_state_dict(torch.load(workdir / "module.pt", weights_only=True))
    return net, X[: args.n_labeled], y[: args.n_labeled], X[args.n_labeled :]


# ------------------------------------------------------------- naive references
def _materialized(net, X, loss="pseudo_label", y=None):
    """The N x C(D+1) embedding matrix, the way a straightforward code builds it."""
    from skal import gradients

    factors, _ = gradients.last_layer_factors(net, X, loss=loss, y=y)
    return np.einsum("nc,nd->ncd", factors.a, factors.h).reshape(len(X), -1)


def naive_grad(net, X_l, y_l, pool, n):
    reference = _materialized(net, X_l, "label", y_l).mean(0)
    distances = np.linalg.norm(_materialized(net, pool) - reference, axis=1)
    return np.argsort(-distances)[:n]


def naive_grad_seq(net, X_l, y_l, pool, n):
    labeled = _materialized(net, X_l, "label", y_l)
    G = _materialized(net, pool)
    total, count, picks = labeled.sum(0), len(labeled), []
    for _ in range(n):
        distances = np.linalg.norm(G - total / count, axis=1)
        distances[picks] = -np.inf
        picks.append(int(np.argmax(distances)))
        total, count = total + G[picks[-1]], count + 1
    return picks


def naive_badge(net, X_l, y_l, pool, n):
    G = _materialized(net, pool)
    rng = np.random.RandomState(0)
    centers = [int(np.argmax((G * G).sum(1)))]
    nearest = ((G - G[centers[0]]) ** 2).sum(1)
    while len(centers) < n:
        centers.append(int(rng.choice(len(G), p=nearest / nearest.sum())))
        nearest = np.minimum(nearest, ((G - G[centers[-1]]) ** 2).sum(1))
    return centers


def naive_egl(net, X_l, y_l, pool, n):
    proba = net.predict_proba(pool)
    scores = np.zeros(len(pool))
    for label in range(proba.shape[1]):
        G = _materialized(net, pool, "label", np.full(len(pool), net.classes_[label]))
        scores += proba[:, label] * np.linalg.norm(G, axis=1)
    return np.argsort(-scores)[:n]


def naive_kcenter(net, X_l, y_l, pool, n):
    from scipy.spatial.distance import cdist

    from skal import embeddings

    points = embeddings.forward_pass(net, pool).features
    nearest = cdist(points, embeddings.forward_pass(net, X_l).features).min(1)
    picks = []
    for _ in range(n):
        picks.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, cdist(points, points[picks[-1:]]).ravel())
    return picks


def naive_gradnorm_loop(net, X_l, y_l, pool, n):
    """Per-sample autograd in a Python loop, over all parameters."""
    module = net.module_.eval()
    scores = []
    for row in pool:
        module.zero_grad()
        log_p = torch.log_softmax(module(torch.as_tensor(row[None])), 1)
        (-(log_p.exp() * log_p).sum()).backward()
        scores.append(
            sum(p.grad.pow(2).sum() for p in module.parameters()).sqrt().item()
        )
    return np.argsort(-np.array(scores))[:n]


def naive_npc(net, X_l, y_l, pool, n, n_candidates=1000, timed=10):
    """NPC's rule literally: per candidate, the full (n_L + n)^2 Gram and eigvalsh.

    Rank with skal's tolerance, then the smallest non-zero eigenvalue (paper 004's
    smallest eigenvalue when that is non-zero). Times ``timed`` candidates and
    scales to ``n_candidates``.
    """
    from skal import gradients
    from skal._arrays import dense
    from skal.strategies.npc import zero_eigenvalue_cut

    def features(X):
        return dense(gradients.last_layer_factors(net, X)[0].h).astype(float)

    h_l, h_pool = features(X_l), features(pool)
    rng = np.random.RandomState(0)
    keys = []
    start = time.perf_counter()
    for _ in range(timed):
        H = np.vstack([h_l, h_pool[rng.choice(len(pool), n, replace=False)]])
        eigenvalues = np.linalg.eigvalsh(len(net.classes_) * H @ H.T)
        nonzero = eigenvalues[
            eigenvalues > zero_eigenvalue_cut(eigenvalues[-1], len(H))
        ]
        keys.append((len(nonzero), nonzero[0]))
    return (time.perf_counter() - start) * n_candidates / timed


NAIVE = {
    "grad": (naive_grad, None),
    "grad_seq": (naive_grad_seq, None),
    "badge": (naive_badge, None),
    "egl": (naive_egl, None),
    "kcenter": (naive_kcenter, None),
    "entropy_gradnorm": (naive_gradnorm_loop, NAIVE_SUBSET),
    "expected_gradnorm": (naive_gradnorm_loop, NAIVE_SUBSET),
    "npc": (naive_npc, "timed"),
}


# ------------------------------------------------------------------- the worker
def measure(args, workdir, name):
    """Run in a fresh process: time one strategy (and its naive reference)."""
    from skal.strategies import get_strategy

    torch.set_num_threads(args.threads)
    net, X_l, y_l, pool = load_problem(args, workdir)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = (
        {"random_state": 0} if "random_state" in get_strategy(name).get_params() else {}
    )
    n = args.npc_batch if name == "npc" else args.n
    if name == "npc":
        params["n_candidates"] = args.npc_candidates
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        strategy = get_strategy(name, **params).fit(X_l, y_l, estimator=net)
        strategy.query(pool, n)
        times.append(time.perf_counter() - start)
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024
    result = {"name": name, "times": times, "peak_mb": peak_mb, "naive": None}
    if hasattr(strategy, "n_evaluated_"):  # NPC: candidates evaluated exactly
        result["evaluated"] = strategy.n_evaluated_
    if name in NAIVE and not args.no_naive:
        naive, subset = NAIVE[name]
        if subset == "timed":  # the function times and scales itself
            result["naive"] = naive(
                net, X_l, y_l, pool, n, n_candidates=args.npc_candidates
            )
            result["naive_scaled"] = True
            return result
        rows = len(pool) if subset is None else min(subset, len(pool))
        start = time.perf_counter()
        naive(net, X_l, y_l, pool[:rows], min(n, rows))
        result["naive"] = (time.perf_counter() - start) * len(pool) / rows
        result["naive_scaled"] = rows < len(pool)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pool", type=int, default=25000)
    parser.add_argument("--n-labeled", type=int, default=1000)
    parser.add_argument("--features", type=int, default=617)
    parser.add_argument("--classes", type=int, default=26)
    parser.add_argument("--n", type=int, default=500, help="batch size queried")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--npc-batch", type=int, default=100, help="NPC's batch (issue 4)"
    )
    parser.add_argument("--npc-candidates", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=None)
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--quick", action="store_true", help="N=3000, n=100")
    parser.add_argument(
        "--worker", nargs=2, metavar=("WORKDIR", "NAME"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.quick:
        args.n_pool, args.n = 3000, 100
    if args.worker:
        print(json.dumps(measure(args, Path(args.worker[0]), args.worker[1])))
        return
    from skal.strategies import available_strategies

    names = args.strategies or ["entropy"] + [
        s for s in available_strategies() if s != "entropy"
    ]
    if "entropy" not in names:
        names = ["entropy"] + names
    forwarded = [a for a in sys.argv[1:] if a != "--strategies" and a not in names]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        make_problem(args, workdir)
        results = []
        for name in names:
            out = subprocess.run(
                [sys.executable, __file__, *forwarded, "--worker", str(workdir), name],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    forward = np.median(results[0]["times"])
    print(
        f"pool N={args.n_pool}, input {args.features}, C={args.classes}, MLP 512-256 "
        f"(D=256), batch n={args.n}, labeled {args.n_labeled}, {args.repeats} repeats, "
        f"{args.threads} threads"
    )
    print(
        f"{'strategy':18s} {'median s':>9s} {'range s':>15s} {'x forward':>9s} "
        f"{'naive s':>9s} {'naive/ours':>10s} {'peak MB':>8s}"
    )
    for r in results:
        t = np.array(r["times"])
        naive = r["naive"]
        naive_txt = (
            ""
            if naive is None
            else f"{naive:9.2f}" + ("*" if r.get("naive_scaled") else "")
        )
        ratio = "" if naive is None else f"{naive / np.median(t):10.1f}"
        print(
            f"{r['name']:18s} {np.median(t):9.3f} [{t.min():6.3f},{t.max():6.3f}] "
            f"{np.median(t) / forward:9.2f} {naive_txt:>9s} {ratio:>10s} {r['peak_mb']:8.0f}"
        )
    evaluated = [r["evaluated"] for r in results if "evaluated" in r]
    print(
        f"* naive time measured on {NAIVE_SUBSET} pool rows (NPC: 10 candidates) and "
        f"scaled linearly. NPC queries batches of {args.npc_batch} from "
        f"{args.npc_candidates} candidates"
        + (f", {evaluated[0]} evaluated exactly." if evaluated else ".")
    )


if __name__ == "__main__":
    main()
