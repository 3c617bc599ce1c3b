"""Per-sample gradient norms over all parameters on TF-IDF rows: sparse vs densified.

LPLgrad, expected- and entropy-gradnorm rank the pool by the norm of a
per-sample gradient over every parameter of the network
(``skal.gradients.per_sample_gradient_norms``, factored method). Until session 8
each chunk of CSR rows was densified before the forward pass (101,322 columns on
20 Newsgroups): in paper001_full, LPLgrad's acquisition took 15.5 s a round
against entropy's 0.15 s. Now a sparse-input first layer takes the CSR rows as
they are. This times, in one run, on a synthetic TF-IDF-like pool (one thread):

- entropy: the forward pass over the pool (``skal.embeddings.predict_proba``,
  what entropy's query runs), the floor;
- sparse: per_sample_gradient_norms as skal runs it now;
- densified: the same call with the module told it cannot take sparse input
  (the old path).

    OMP_NUM_THREADS=1 python benchmarks/sparse_gradnorms.py
    OMP_NUM_THREADS=1 python benchmarks/sparse_gradnorms.py --n-pool 2000 --features 20000

Session 8 (10,000 x 101,322 rows, 0.07 % non-zeros, 20 classes, MLP 512-256):
sparse 1.5x the forward pass, densified 70x (48x faster, same norms to 1e-4);
end to end, one ``ActiveLearner`` round on that pool: LPLgrad acquisition
14 s -> 0.32 s, entropy 0.22 s.
"""

import argparse
import time

import numpy as np
import torch
from scipy import sparse

from skal import embeddings, gradients
from skal.experiments._setup import make_mlp


def best_of(repeats, function):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pool", type=int, default=10000)
    parser.add_argument("--features", type=int, default=101322)
    parser.add_argument("--density", type=float, default=0.0007)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = sparse.random(
        args.n_pool,
        args.features,
        density=args.density,
        format="csr",
        random_state=0,
        dtype=np.float32,
    )
    y = rng.integers(0, args.classes, args.n_pool)
    net = make_mlp(max_epochs=2).fit(X[:500], y[:500])
    module = net.module_

    def norms():
        return gradients.per_sample_gradient_norms(net, X, loss="entropy")

    embeddings.predict_proba(net, X[:100])  # warm-up
    forward = best_of(args.repeats, lambda: embeddings.predict_proba(net, X))
    fast = best_of(args.repeats, norms)
    reference = norms()
    module.accepts_sparse_input = False  # the old, densifying path
    try:
        slow = best_of(args.repeats, norms)
        np.testing.assert_allclose(norms(), reference, rtol=1e-4)
    finally:
        module.accepts_sparse_input = True
    print(
        f"pool {args.n_pool} x {args.features}, {X.nnz / args.n_pool:.0f} non-zeros a row"
    )
    print(f"forward pass (entropy)   {forward:8.3f} s   1.00x")
    print(f"gradient norms, sparse   {fast:8.3f} s   {fast / forward:5.2f}x forward")
    print(f"gradient norms, dense    {slow:8.3f} s   {slow / forward:5.2f}x forward")
    print(f"sparse speed-up          {slow / fast:8.1f}x")


if __name__ == "__main__":
    main()
