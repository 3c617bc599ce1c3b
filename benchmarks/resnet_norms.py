"""Per-sample full-network gradient norms on ResNet-18, as multiples of a forward pass.

The quantity entropy/expected gradnorm, EGL and LPLgrad rank by: each pool
image's gradient norm over all ~11M parameters of ResNet-18 (32x32x3 images,
the papers' (512, 256) head), computed by ``skal.gradients.
per_sample_gradient_norms(method="factored")`` (closed forms per layer,
:mod:`skal._layer_norms`). Timed in one run, after a warm-up, each as a ratio to
the forward pass over the same pool (``skal.embeddings.forward_pass``):

- ``norms``: the per-sample norms;
- ``fwd+bwd to layer outputs``: the forward pass with the capture hooks and the
  backward pass that gives every layer's output gradient (what the closed forms
  start from; the norms cannot be cheaper);
- ``fwd+bwd summed loss``: a plain forward and ``loss.sum().backward()`` with
  all parameter gradients (a training step's cost);
- ``vmap`` (``--vmap``, slow): ``torch.func`` per-sample gradients.

``--layers`` adds the time of each layer type's closed form, and, per conv
shape, the measured time of each form (``per_sample``, ``unfolded``,
``patch_gram``, ``pixel_gram``) next to the cost model's estimate, which checks
the constants in :mod:`skal._layer_norms` (``--backbone lenet`` or ``vgg16``
for their shapes).

    OMP_NUM_THREADS=1 python benchmarks/resnet_norms.py
    OMP_NUM_THREADS=1 python benchmarks/resnet_norms.py --layers --pool 128

Random pixels (the cost does not depend on the content); machines are noisy, so
every measurement is repeated, interleaved, and the median and range printed.

Measured (session 4, 2-core Xeon VM, one thread, pool 256, chunks of 128, CPU-time
ratios; ``--pool 256 --repeats 5``): channels_last (CNNClassifier's default for
ResNet-18) norms 3.56x [3.48-3.67], the backward floor 2.47x, a training step's
forward+backward 3.35x; ``--channels-last false`` 3.84x, floor 2.74x. The
closed forms themselves take ~0.9x a forward pass (``--layers``: convolutions
0.78 s, batch norm 0.13 s per 128 images, forward 1.01 s), 0.43x of it the
per-sample weight gradients of the seven convolutions reading 32x32 maps
(1.1-1.6x their forward convolutions: the floor of that form). The previous
implementation (a copy of every layer output, all output gradients held, convs
formed by unfold + bmm or an unfolded Gram) took 6.4x; ``torch.func`` 21x
(``--pool 64 --batch 64 --vmap``).
"""

import argparse
import time
from collections import defaultdict
from functools import partial

import numpy as np
import torch

from skal import _layer_norms, config_context, embeddings, gradients
from skal.nets import CNNClassifier
from skal.nets._batches import rows_to_tensor


def images(n, seed):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (n, 32, 32, 3)).astype(np.uint8), rng.randint(0, 10, n)


def trained_net(args):
    """The network after one short epoch, so batch norm has running statistics."""
    X, y = images(64, seed=0)
    return CNNClassifier(
        args.backbone,
        width=args.width,
        channels_last=args.channels_last,
        max_epochs=1,
        batch_size=32,
        random_state=0,
    ).fit(X, y)


def chunks(X, size):
    for start in range(0, len(X), size):
        yield rows_to_tensor(X, slice(start, start + size))


class BackwardThroughLayers:
    """Forward hooks that make one backward pass reach every parametrized layer.

    The backward pass runs to each layer's input (or, for a layer fed by the
    network's input, its output), as in ``skal._layer_norms.LayerCapture``;
    ``deltas`` optionally keeps each layer's (input, output gradient).
    """

    def __init__(self, module, keep_deltas=False):
        self.owners = _layer_norms.parameter_owners(module)
        self.keep_deltas = keep_deltas
        self.anchors, self.deltas = [], {}

    def hook(self, layer, inputs, output):
        x = inputs[0]
        self.anchors.append(x if x.requires_grad else output)
        if self.keep_deltas:
            self.deltas[layer] = [x.detach(), None]
            output.register_hook(lambda d: self.deltas[layer].__setitem__(1, d))
        if not x.requires_grad:
            return output.clone()  # the anchor must not be changed in place

    def __enter__(self):
        self.handles = [la.register_forward_hook(self.hook) for la in self.owners]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()

    def backward(self, total):
        torch.autograd.grad(total, self.anchors)
        self.anchors.clear()  # the gradient hooks refer to self: no cycle


def backward_through_every_layer(net, X, args):
    """The forward pass and a backward pass giving every layer's output gradient."""
    module = net.module_.eval()
    for x in chunks(X, args.batch):
        with torch.enable_grad(), BackwardThroughLayers(module) as layers:
            layers.backward(gradients._batched_losses(module(x), "entropy", None).sum())


def backward_of_summed_loss(net, X, args):
    """A plain forward and ``loss.sum().backward()`` with all parameter gradients."""
    module = net.module_.eval()
    for x in chunks(X, args.batch):
        module.zero_grad(set_to_none=True)
        with torch.enable_grad():
            gradients._batched_losses(module(x), "entropy", None).sum().backward()
    module.zero_grad(set_to_none=True)


def measure(tasks, repeats):
    """{name: (wall seconds, CPU seconds) per repeat}, interleaved, warmed up once."""
    for task in tasks.values():
        task()
    seconds = defaultdict(list)
    for _ in range(repeats):
        for name, task in tasks.items():
            wall, cpu = time.perf_counter(), time.process_time()
            task()
            seconds[name].append(
                (time.perf_counter() - wall, time.process_time() - cpu)
            )
    return {name: np.array(s) for name, s in seconds.items()}


def ratio_table(net, X, args):
    with config_context(chunk_size=args.batch):
        tasks = {
            "forward": lambda: embeddings.forward_pass(net, X),
            "norms": lambda: gradients.per_sample_gradient_norms(
                net, X, loss="entropy", method="factored", chunk_size=args.batch
            ),
            "fwd+bwd to layer outputs": lambda: backward_through_every_layer(
                net, X, args
            ),
            "fwd+bwd summed loss": lambda: backward_of_summed_loss(net, X, args),
        }
        if args.vmap:
            tasks["vmap"] = lambda: gradients.per_sample_gradient_norms(
                net, X, loss="entropy", method="vmap"
            )
        seconds = measure(tasks, args.repeats)
    # Ratios within each repeat (the tasks of one repeat ran back to back). The
    # CPU time of this process is what to read on a shared machine: with one
    # thread, waiting for a core does not count, memory contention still does.
    forward = seconds["forward"]
    print(
        f"\n{'':26} {'wall s':>7} {'x forward [range]':>20} "
        f"{'CPU s':>7} {'x forward [range]':>20}"
    )
    for name, s in seconds.items():
        ratio = s / forward
        cells = [
            f"{np.median(s[:, c]):7.2f} {np.median(ratio[:, c]):7.2f} "
            f"[{ratio[:, c].min():.2f}-{ratio[:, c].max():.2f}]"
            for c in (0, 1)
        ]
        print(f"{name:26} {cells[0]:>28} {cells[1]:>28}")


def captured_layers(net, x):
    """Each parametrized layer's (input, output gradient) for one chunk."""
    module = net.module_.eval()
    with torch.enable_grad(), BackwardThroughLayers(module, keep_deltas=True) as lay:
        lay.backward(gradients._batched_losses(module(x), "entropy", None).sum())
    deltas, lay.deltas = lay.deltas, {}
    return deltas, lay.owners


def seconds_of(fn, repeats):
    """Least CPU seconds of ``repeats`` calls, after a warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def layer_table(net, X, args):
    x = next(chunks(X, args.batch))
    captured, owners = captured_layers(net, x)
    by_type = defaultdict(float)
    shapes = {}
    for layer, (inputs, delta) in captured.items():
        kinds = owners[layer]
        by_type[type(layer).__name__] += seconds_of(
            partial(_layer_norms.layer_squared_norms, layer, kinds, inputs, delta),
            args.repeats,
        )
        if isinstance(layer, torch.nn.Conv2d):
            key = (tuple(inputs.shape[1:]), tuple(delta.shape[1:]), layer.kernel_size)
            shapes.setdefault(key, (layer, inputs, delta))
    print(
        f"\nclosed forms per layer type, one chunk of {len(x)} (CPU s, min of repeats):"
    )
    for name, seconds in by_type.items():
        print(f"  {name:12} {seconds:7.3f} s")
    print("\nconv forms (CPU s for the chunk; the cost model's estimate in 1e9 units):")
    forms = _layer_norms._CONV_FORMS
    header = " ".join(f"{form:>17}" for form in forms)
    print(f"  {'input -> output, kernel':34} {header}  model / fastest")
    for (c_in, c_out, kernel), (layer, inputs, delta) in shapes.items():
        costs = _layer_norms.conv_weight_costs(layer, inputs.shape, delta.shape)
        measured = {}
        for form in forms:
            if costs[form] > 30 * min(costs.values()):
                measured[form] = np.nan  # hopeless, and may need gigabytes
                continue
            measured[form] = seconds_of(
                partial(_layer_norms._conv_weight_sq_norms, layer, inputs, delta, form),
                args.repeats,
            )
        cells = [f"{measured[f]:7.3f} ({costs[f] * len(x) / 1e9:6.2f})" for f in forms]
        picked = min(costs, key=costs.get)
        fastest = min(measured, key=lambda f: np.nan_to_num(measured[f], nan=np.inf))
        shape = f"{c_in} -> {c_out}, {kernel[0]}x{kernel[1]}"
        print(
            f"  {shape:34} {' '.join(f'{c:>17}' for c in cells)}  {picked} / {fastest}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=512, help="pool images")
    parser.add_argument("--batch", type=int, default=128, help="images per chunk")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    parser.add_argument(
        "--backbone",
        default="resnet18",
        choices=["resnet18", "vgg16", "lenet"],
        help="other backbones check the conv cost model on their shapes",
    )
    parser.add_argument(
        "--channels-last",
        default="auto",
        type=lambda v: v if v == "auto" else v == "true",
        help="auto (CNNClassifier's default: on for ResNet-18), true or false",
    )
    parser.add_argument("--vmap", action="store_true", help="also time torch.func")
    parser.add_argument("--layers", action="store_true", help="per-layer breakdown")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net = trained_net(args)
    X, _ = images(args.pool, seed=1)
    print(
        f"{args.backbone} (width {args.width}, channels_last="
        f"{net.module_.input.channels_last}), pool {args.pool} images 32x32x3, chunks "
        f"of {args.batch}, {torch.get_num_threads()} thread(s), torch {torch.__version__}"
    )
    ratio_table(net, X, args)
    if args.layers:
        layer_table(net, X, args)


if __name__ == "__main__":
    main()
