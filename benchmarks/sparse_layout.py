"""Would interleaving the weight and velocity rows speed up the sparse step?

The lazy-momentum sparse step (skal/nets/_sparse.py) gathers the weight and the
velocity rows of a batch's features from two (101,322 x 512) tables and writes
both back: about half of a 20 Newsgroups step (issue 15). This measures that
traffic for the two layouts, in one run, interleaved trials, one thread:

- separate: weight and velocity in two tables (skal today);
- interleaved: one (N x 2D) table, a row = [weight | velocity].

    OMP_NUM_THREADS=1 python benchmarks/sparse_layout.py

Session 5 (loaded machine, three runs): 1.27-1.46x faster gather/scatter interleaved for
300-1,200 unique rows, i.e. a projected sparse step of ~2.6x the dense one
(from 3.0x), not yet the issue's 2.5x.

An implementation was tried (session 5) and reverted because its end-to-end gain
could not be measured on the loaded machine (benchmarks/training.py ratios moved
by 2x between identical runs). What it needs, for whoever retries: the optimizer
allocates an (N, 2D) table at the first sparse step and sets ``param.data`` to
its left half, the velocity buffer to its right half (re-interleave whenever
``load_state_dict`` or a device move breaks the sharing: compare data pointers);
``F.embedding_bag`` COPIES a strided weight (412 ms instead of 2.5 ms per call
on the 101,322 x 512 layer), so the CSR forward must gather the batch's rows with
``F.embedding(rows, weight, sparse=True)`` first, and the gathered leaf must be a
contiguous clone; ``state_dict`` of the layer and of the optimizer must save
contiguous copies (else each carries the whole table). Pickle and deepcopy keep
the views (tests/nets/test_sparse.py has a pickled-net regression test).
"""

import statistics
import time

import torch

N_FEATURES, WIDTH = 101_322, 512


def main(trials=300, warmup=50):
    torch.set_num_threads(1)
    weight = torch.randn(N_FEATURES, WIDTH)
    velocity = torch.randn(N_FEATURES, WIDTH)
    both = torch.randn(N_FEATURES, 2 * WIDTH)

    def separate(rows):
        w, v = weight.index_select(0, rows), velocity.index_select(0, rows)
        w.add_(v)
        weight.index_copy_(0, rows, w)
        velocity.index_copy_(0, rows, v)

    def interleaved(rows):
        wv = both.index_select(0, rows)
        wv[:, :WIDTH].add_(wv[:, WIDTH:])
        both.index_copy_(0, rows, wv)

    generator = torch.Generator().manual_seed(0)
    for n_rows in (300, 600, 1200):  # unique features of a batch of 8 documents
        times = {"separate": [], "interleaved": []}
        for trial in range(trials):
            rows = torch.unique(
                torch.randint(0, N_FEATURES, (n_rows,), generator=generator)
            )
            order = [("separate", separate), ("interleaved", interleaved)]
            for name, step in order if trial % 2 else order[::-1]:
                start = time.perf_counter()
                step(rows)
                times[name].append(time.perf_counter() - start)
        a, b = (1e3 * statistics.median(times[n][warmup:]) for n in times)
        print(
            f"{n_rows:5d} rows: separate {a:.3f} ms, interleaved {b:.3f} ms, ratio {a / b:.2f}"
        )


if __name__ == "__main__":
    main()
