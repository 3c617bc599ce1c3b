"""CNN speed on this CPU: training and pool-inference throughput, strategy costs.

1. For each backbone (LeNet, VGG-16, ResNet-18; 32x32x3 uint8 images, the papers'
   (512, 256) head), with and without ``channels_last``:
   - training throughput (images/s): one epoch of ``CNNClassifier.fit`` with SGD,
     batch 8 (paper 001), on ``--train-images`` images;
   - pool-inference throughput (images/s): :func:`skal.embeddings.forward_pass`
     (probabilities + penultimate features, chunked, ``torch.inference_mode``).
2. The acquisition time of every registered strategy on a ``--pool``-image pool
   with ResNet-18, as a ratio to one forward pass over that pool (the floor of any
   model-based strategy). ``fit`` (labeled-set statistics) and ``query`` are
   timed separately. Learning Loss and LPLgrad use the same net trained with a
   loss-prediction module (``skal.strategies.prepare_estimator``).

Random pixels: throughput does not depend on image content. Torch uses
``--threads`` threads (2 by default, the machine's cores). Medians and ranges are
printed, since shared machines are noisy.

    python benchmarks/cnn.py                          # paper scale: slow on a CPU
    python benchmarks/cnn.py --quick                  # a few minutes
    python benchmarks/cnn.py --pool 2000 --strategies grad badge kcenter
"""

import argparse
import time

import numpy as np
import torch

from skal import config_context, embeddings
from skal.nets import CNNClassifier
from skal.strategies import available_strategies, get_strategy, prepare_estimator


def images(n, seed=0, size=32, channels=3, n_classes=10):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 256, (n, size, size, channels)).astype(np.uint8)
    return X, rng.randint(0, n_classes, n)


def timed(fn, repeats):
    """Seconds of ``repeats`` calls of ``fn`` (after one untimed warm-up call)."""
    fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return np.array(seconds)


def rate(n, seconds):
    """'median [min-max]' of n / seconds."""
    r = n / seconds
    return f"{np.median(r):8.1f} [{r.min():.1f}-{r.max():.1f}]"


def throughput(args):
    X_train, y_train = images(args.train_images)
    X_pool, _ = images(args.infer_images, seed=1)
    print(
        f"\n## Throughput, images/s: median [min-max] of {args.repeats} runs "
        f"(train: {args.train_images} images, batch {args.batch_size}, 1 epoch; "
        f"inference: {args.infer_images} images, chunk {args.chunk_size})\n"
    )
    print(f"{'backbone':10} {'channels_last':>13} {'train':>24} {'inference':>24}")
    for backbone in args.backbones:
        for channels_last in (False, True):
            net = CNNClassifier(
                backbone,
                width=args.width,
                max_epochs=1,
                batch_size=args.batch_size,
                channels_last=channels_last,
                random_state=0,
            )
            train = timed(lambda net=net: net.fit(X_train, y_train), args.repeats)
            infer = timed(
                lambda net=net: embeddings.forward_pass(net, X_pool), args.repeats
            )
            print(
                f"{backbone:10} {channels_last!s:>13} "
                f"{rate(args.train_images, train):>24} "
                f"{rate(args.infer_images, infer):>24}",
                flush=True,
            )


def strategy_costs(args):
    X_pool, _ = images(args.pool, seed=2)
    X_lab, y_lab = images(args.labeled, seed=3)
    net = CNNClassifier(
        "resnet18",
        width=args.width,
        dropout=0.1,  # BALD-style strategies need dropout in the head
        max_epochs=1,
        batch_size=32,
        channels_last=args.channels_last,
        random_state=0,
    ).fit(X_lab, y_lab)
    forward = timed(lambda: embeddings.forward_pass(net, X_pool), args.repeats)
    floor = np.median(forward)
    print(
        f"\n## Acquisition on a {args.pool}-image pool, ResNet-18 (width "
        f"{args.width}, channels_last={args.channels_last}), {args.labeled} labeled, "
        f"query {args.n_query}\n"
    )
    print(
        f"forward pass over the pool: {floor:.2f} s median "
        f"[{forward.min():.2f}-{forward.max():.2f}] "
        f"({args.pool / floor:.1f} images/s)\n"
    )
    print(f"{'strategy':20} {'fit s':>8} {'query s':>20} {'query / forward':>16}")
    names = args.strategies or available_strategies()
    prepared = {}  # nets trained with a strategy's setup (loss prediction), by setup
    for name in names:
        strategy = get_strategy(name)
        if "random_state" in strategy.get_params():
            strategy.set_params(random_state=0)
        model = prepare_estimator(net, strategy)
        if model is not net:
            key = repr(sorted(type(strategy).estimator_settings))
            if key not in prepared:
                prepared[key] = model.fit(X_lab, y_lab)
            model = prepared[key]
        start = time.perf_counter()
        strategy.fit(X_lab, y_lab, estimator=model)
        fit_seconds = time.perf_counter() - start
        seconds = []
        for _ in range(args.strategy_repeats):
            start = time.perf_counter()
            strategy.query(X_pool, args.n_query)
            seconds.append(time.perf_counter() - start)
        seconds = np.array(seconds)
        spread = (
            f"[{seconds.min():.2f}-{seconds.max():.2f}]" if len(seconds) > 1 else ""
        )
        print(
            f"{name:20} {fit_seconds:8.2f} {np.median(seconds):9.2f} {spread:>10} "
            f"{np.median(seconds) / floor:16.2f}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--backbones", nargs="+", default=["lenet", "vgg16", "resnet18"]
    )
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    parser.add_argument("--train-images", type=int, default=512)
    parser.add_argument("--infer-images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=8, help="training batch")
    parser.add_argument("--chunk-size", type=int, default=256, help="inference chunk")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pool", type=int, default=25_000)
    parser.add_argument("--labeled", type=int, default=200)
    parser.add_argument("--n-query", type=int, default=100)
    parser.add_argument("--strategies", nargs="+", default=None)
    parser.add_argument("--strategy-repeats", type=int, default=1)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-strategies", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes: 128 train, 512 inference, 1000-image pool, 2 repeats",
    )
    if parser.parse_known_args()[0].quick:  # explicit flags still win
        parser.set_defaults(
            train_images=128, infer_images=512, pool=1000, labeled=100, repeats=2
        )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"mkldnn={torch.backends.mkldnn.is_available()}"
    )
    with config_context(chunk_size=args.chunk_size):
        if not args.skip_throughput:
            throughput(args)
        if not args.skip_strategies:
            strategy_costs(args)


if __name__ == "__main__":
    main()
