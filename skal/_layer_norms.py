"""Per-sample squared gradient norms of layers, from one batched backward pass.

A layer's per-sample gradient only depends on that sample's layer input ``x_i``
and the gradient ``delta_i`` of the loss with respect to the layer's output
(eval mode: no batch statistics couple the samples). So forward hooks keep
``x``, one backward pass of the summed per-sample losses hands each layer its
``delta`` (:class:`LayerCapture`), and each layer type turns them into squared
norms at once:

- ``nn.Linear`` (one vector per sample): the weight gradient is ``delta_i x_i^T``,
  whose squared norm is ``||delta_i||^2 ||x_i||^2``; the bias's is ``||delta_i||^2``.
- ``nn.Conv2d``: the weight gradient is ``sum_p delta_i[:, p] patch_i[:, p]^T``
  over the output positions ``p``. Its squared norm has four exact forms:
  formed per sample by the convolution's own weight-gradient kernel, formed
  from unfolded patches, or from position Gram matrices, ``sum_pq (delta_p .
  delta_q)(patch_p . patch_q)`` (the "ghost norm", Bu et al., 2022), whose patch
  Gram is either unfolded or summed from the pixel Gram (no unfolding); each
  layer takes the cheapest for its shape under a cost model fitted on ResNet-18
  and LeNet (see ``conv_weight_costs``).
- ``nn.BatchNorm2d`` in eval mode (running statistics): ``d gamma_c = sum_p
  delta_c,p xhat_c,p`` and ``d beta_c = sum_p delta_c,p``.

Only norms are formed, never a per-sample copy of the parameters. On ResNet-18
(32x32 images, one core) the norms cost ~3.5x a forward pass, of which ~2.5x is
the forward and backward passes themselves (``benchmarks/resnet_norms.py``).
Anything else (other layer types, a layer applied twice in one forward pass,
a layer input changed in place) is reported so the caller can fall back to
``torch.func``.

References
----------
Z. Bu, J. Mao, S. Xu. Scalable and efficient training of large convolutional
neural networks with differential privacy. NeurIPS 2022.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .nets._sparse import SparseInputLinear

_LINEAR = (nn.Linear, SparseInputLinear)
SUPPORTED = (*_LINEAR, nn.Conv2d, nn.BatchNorm2d)


class UnsupportedLayer(ValueError):
    """The per-sample norm of some selected parameter cannot be computed here."""


def parameter_owners(module, parameters=None):
    """``{layer: [kind, ...]}`` for the selected parameters, or None if unsupported.

    Parameters
    ----------
    module : torch.nn.Module
    parameters : list of str, default=None
        Names from ``module.named_parameters()``; all by default.
    """
    layer_of = {}
    for layer in module.modules():
        if isinstance(layer, SUPPORTED) and _supported(layer):
            for kind, param in layer.named_parameters(recurse=False):
                layer_of[id(param)] = (layer, kind)
    owners = {}
    for name, param in module.named_parameters():
        if parameters is not None and name not in parameters:
            continue
        if id(param) not in layer_of:
            return None
        layer, kind = layer_of[id(param)]
        owners.setdefault(layer, []).append(kind)
    return owners


def _supported(layer):
    if isinstance(layer, nn.Conv2d):
        return (
            layer.groups == 1
            and layer.padding_mode == "zeros"
            and (layer.padding != "same" or _symmetric_same_padding(layer))
        )
    if isinstance(layer, nn.BatchNorm2d):
        return layer.track_running_stats and layer.running_mean is not None
    return True


def _symmetric_same_padding(layer):
    return all(d * (k - 1) % 2 == 0 for d, k in zip(layer.dilation, layer.kernel_size))


class LayerCapture:
    """Per-sample squared norms of the owners' gradients, computed during backward.

    Use as a context manager around the forward pass of one chunk, then call
    :meth:`squared_norms` with the summed loss. A forward hook keeps each owner's
    input ``x`` and puts a gradient hook on its output; one backward pass then
    hands every hook its layer's ``delta``, which is turned into norms at once
    (no output gradient is returned; autograd returns those of the inputs).

    The backward pass runs to each owner's input (it must pass through the
    owner's output to get there). A layer fed by the network's input (nothing to
    differentiate before it) is reached through its output instead, which is
    handed to the network as a copy so in-place operations after it
    (``ReLU(inplace=True)``) cannot change it. Other outputs are not copied: a
    gradient hook registered before an in-place operation receives the gradient
    with respect to the value before it (PyTorch's documented semantics).
    """

    def __init__(self, owners):
        self.owners = owners
        self.inputs = {}
        self.anchors = []
        self.rows = {}
        self.input_bytes = 0

    def _hook(self, layer):
        def hook(_layer, inputs, output):
            if layer in self.inputs:
                raise UnsupportedLayer(
                    f"{type(layer).__name__} is applied more than once per forward "
                    f"pass; per-sample norms need torch.func (method='vmap')."
                )
            x = inputs[0]
            if isinstance(layer, _LINEAR) and x.dim() != 2:
                raise UnsupportedLayer(
                    "a Linear layer sees more than one vector per sample"
                )
            self.inputs[layer] = (x, x._version)
            stored = x.values() if x.layout == torch.sparse_csr else x
            self.input_bytes += stored.numel() * x.element_size() // x.shape[0]
            output.register_hook(lambda delta: self._on_delta(layer, delta))
            if x.requires_grad:
                self.anchors.append(x)
                return None
            self.anchors.append(output)
            return output.clone()

        return hook

    def _on_delta(self, layer, delta):
        x, _ = self.inputs[layer]
        self.rows[layer] = layer_squared_norms(
            layer, self.owners[layer], x.detach(), delta
        )

    def __enter__(self):
        self.rows.clear()
        self.input_bytes = 0
        self.handles = [
            layer.register_forward_hook(self._hook(layer)) for layer in self.owners
        ]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        # The gradient hooks refer to self: holding tensors here would make a
        # cycle through autograd's graph that Python's collector cannot free.
        self.inputs.clear()
        self.anchors.clear()

    def squared_norms(self, total):
        """Per-sample squared norms ``(n_tensors, N)`` of the gradients of ``total``.

        A layer the loss does not depend on (never run, or unused) has norm 0.
        """
        if not self.inputs:
            raise UnsupportedLayer("none of the selected parameters' layers ran")
        for layer, (x, version) in self.inputs.items():
            if x._version != version:
                # Its norms would use the modified input, and the backward pass
                # to the modified tensor would not pass through the layer.
                raise UnsupportedLayer(
                    f"the input of a {type(layer).__name__} was modified in place "
                    f"after the layer; per-sample norms need torch.func "
                    f"(method='vmap')."
                )
        torch.autograd.grad(total, self.anchors, allow_unused=True)
        x, _ = next(iter(self.inputs.values()))
        zeros = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        rows = []
        for layer, kinds in self.owners.items():
            rows += self.rows.get(layer, [zeros] * len(kinds))
        return torch.stack(rows)

    def input_bytes_per_sample(self):
        """Bytes per sample of the inputs of the owners that ran (dense size)."""
        return self.input_bytes


def layer_squared_norms(layer, kinds, x, delta):
    """Per-sample squared norms of a layer's ``kinds`` ("weight", "bias") gradients."""
    if isinstance(layer, _LINEAR):
        delta_sq = delta.double().pow(2).sum(1)
        norms = {"weight": lambda: delta_sq * _row_squared_norms(x)}
        norms["bias"] = lambda: delta_sq
    elif isinstance(layer, nn.Conv2d):
        norms = {
            "weight": lambda: _conv_weight_sq_norms(layer, x, delta),
            "bias": lambda: delta.sum((2, 3)).double().pow(2).sum(1),
        }
    else:  # BatchNorm2d in eval mode
        norms = {
            "weight": lambda: _batch_norm_weight_sq_norms(layer, x, delta),
            "bias": lambda: delta.sum((2, 3)).double().pow(2).sum(1),
        }
    return [norms[kind]() for kind in kinds]


def _row_squared_norms(x):
    """``||x_i||^2`` per row, in float64; CSR rows (TF-IDF) from their stored values."""
    if x.layout != torch.sparse_csr:
        return x.double().pow(2).sum(1)
    counts = x.crow_indices().diff()
    rows = torch.repeat_interleave(torch.arange(x.shape[0], device=x.device), counts)
    squares = x.values().double().pow(2)
    return torch.zeros(x.shape[0], dtype=torch.float64, device=x.device).index_add_(
        0, rows, squares
    )


# ------------------------------------------------------------ Conv2d weights
# The squared norm of sample i's weight gradient G = sum_p delta_p patch_p^T (over
# the output positions p) has four exact forms; each layer uses the cheapest for
# its shape (``conv_weight_costs``):
#
# - "per_sample": G itself, from the convolution's own weight-gradient kernel
#   (oneDNN on CPU) called once per sample: C_out K P multiply-adds, as many as
#   the layer's forward pass, at the forward pass's speed on large maps
#   (ResNet's 32x32 stage), but ~0.15 ms per call.
# - "unfolded": G from the unfolded patches U (K x P) with one batched matmul,
#   D U^T: the same arithmetic, slower per multiply-add (U is a k^2 times larger
#   copy of the input) but without per-sample calls: for small layers (LeNet).
# - "patch_gram": <D^T D, U^T U> with D (C_out x P) the deltas, P^2 (C_out + K)
#   (the "ghost norm" of Bu et al., 2022).
# - "pixel_gram": the patch Gram without unfolding. The patch inner product
#   patch_p . patch_q is a sum over the k^2 kernel offsets o of pixel inner
#   products X[p + o] . X[q + o] (X the zero-padded input). In the row-major
#   flattening of the padded pixel Gram (M x M, M = padded pixels), moving both
#   positions by o moves the flat index by o (M + 1): every offset is one
#   contiguous window, so ||G||^2 = sum_o <F, window_o> with F the delta Gram
#   placed at the patches' corners. Cost: (HW)^2 C_in + P^2 C_out + k^2 M^2, about
#   k^2 times less than patch_gram in ResNet's 16x16, 8x8 and 4x4 stages.
#
# Costs in units of one multiply-add inside a large float32 matmul, set to match
# the CPU times of every form on every conv shape of ResNet-18 and LeNet (batch
# 128, one core, channels_last or not; ``benchmarks/resnet_norms.py --layers``
# prints them side by side): the per-sample kernel per multiply-add, per value
# of its output and per call; an unfolded value; a value streamed through memory
# (the windowed dot products). The picked form is the fastest measured, or
# within a few milliseconds per 128 images of it, on every one of those shapes.
_PER_SAMPLE_MAC = 0.8
_PER_SAMPLE_VALUE = 36.0
_KERNEL_CALL = 5e6
_UNFOLDED_MAC = 4.0
_UNFOLDED_VALUE = 150.0
_STREAMED_VALUE = 9.0
_CONV_FORMS = ("per_sample", "unfolded", "patch_gram", "pixel_gram")


def conv_weight_costs(layer, in_shape, out_shape):
    """Estimated per-sample cost of each form (see above) of a conv weight norm.

    Parameters
    ----------
    layer : torch.nn.Conv2d
    in_shape, out_shape : tuple of int
        ``(N, C_in, H, W)`` and ``(N, C_out, H_out, W_out)``.

    Returns
    -------
    costs : dict of str to float
        Keyed by the forms: ``"per_sample"``, ``"unfolded"``, ``"patch_gram"``,
        ``"pixel_gram"``.
    """
    _, c_in, h, w = in_shape
    _, c_out, h_out, w_out = out_shape
    kh, kw = layer.kernel_size
    (ph, pw), k, p = _padding(layer), c_in * kh * kw, h_out * w_out
    padded = (h + 2 * ph) * (w + 2 * pw)
    return {
        "per_sample": _PER_SAMPLE_MAC * c_out * k * p
        + _PER_SAMPLE_VALUE * c_out * k
        + _KERNEL_CALL,
        "unfolded": _UNFOLDED_MAC * c_out * k * p + _UNFOLDED_VALUE * k * p,
        "patch_gram": p * p * (c_out + k)
        + _UNFOLDED_VALUE * k * p
        + _STREAMED_VALUE * 3 * p * p,
        "pixel_gram": (h * w) ** 2 * c_in
        + p * p * c_out
        + _STREAMED_VALUE * (kh * kw + 3) * padded**2,
    }


def _conv_weight_sq_norms(layer, x, delta, form=None):
    """Per-sample squared norms of a Conv2d's weight gradient, float64 ``(N,)``.

    ``form`` (one of ``_CONV_FORMS``) forces a form; by default the cheapest.
    """
    if form is None:
        costs = conv_weight_costs(layer, x.shape, delta.shape)
        form = min(costs, key=costs.get)
    if form not in _CONV_FORMS:
        raise ValueError(f"form must be one of {_CONV_FORMS}, got {form!r}.")
    return {
        "per_sample": _per_sample_conv_sq_norms,
        "unfolded": _unfolded_conv_sq_norms,
        "patch_gram": _patch_gram_conv_sq_norms,
        "pixel_gram": _pixel_gram_conv_sq_norms,
    }[form](layer, x, delta)


def _padding(layer):
    """The layer's zero padding ``(ph, pw)`` on each side."""
    if layer.padding == "valid":
        return 0, 0
    if layer.padding == "same":  # symmetric (checked by _supported)
        return tuple(
            d * (k - 1) // 2 for d, k in zip(layer.dilation, layer.kernel_size)
        )
    return tuple(layer.padding)


def _per_sample_conv_sq_norms(layer, x, delta):
    # The aten op behind torch.nn.grad.conv2d_weight, given the real weight: its
    # memory format picks oneDNN's channels_last kernel (~15 % faster).
    weight = layer.weight.detach()
    options = (None, layer.stride, _padding(layer), layer.dilation, False, (0, 0), 1)
    wanted = (False, True, False)  # the weight gradient only
    sq = [
        torch.ops.aten.convolution_backward(
            delta[i : i + 1], x[i : i + 1], weight, *options, wanted
        )[1]
        .pow(2)
        .sum()
        for i in range(len(x))
    ]
    return torch.stack(sq).double()


def _unfold(layer, x):
    return F.unfold(
        x,
        layer.kernel_size,
        dilation=layer.dilation,
        padding=_padding(layer),
        stride=layer.stride,
    )  # (N, C_in k^2, P)


def _unfolded_conv_sq_norms(layer, x, delta):
    grad = delta.flatten(2) @ _unfold(layer, x).mT  # (N, C_out, C_in k^2)
    return grad.pow(2).sum((1, 2)).double()


def _patch_gram_conv_sq_norms(layer, x, delta):
    patches = _unfold(layer, x)
    delta = delta.flatten(2)  # (N, C_out, P)
    delta_gram = delta.mT @ delta
    patch_gram = patches.mT @ patches
    return (delta_gram * patch_gram).sum((1, 2)).double()


# Samples per block of pixel_gram: its two M x M matrices are read k^2 times, so
# a block should stay in the core's cache (~1 MiB); small maps take many samples.
_PIXEL_GRAM_BLOCK_VALUES = 2**17


def _pixel_gram_conv_sq_norms(layer, x, delta):
    n, _, h, w = x.shape
    h_out, w_out = delta.shape[2:]
    (ph, pw), (sh, sw), (dh, dw) = _padding(layer), layer.stride, layer.dilation
    kh, kw = layer.kernel_size
    hp, wp = h + 2 * ph, w + 2 * pw
    m = hp * wp
    # Flat index (in the M x M padded Gram) of the last pair of patch corners;
    # the windows of the kernel offsets start at row_shift * i + col_shift * j
    # and never run past M^2.
    length = (sh * (h_out - 1) * wp + sw * (w_out - 1)) * (m + 1) + 1
    row_shift, col_shift = dh * wp * (m + 1), dw * (m + 1)
    shifts = [i * row_shift + j * col_shift for i in range(kh) for j in range(kw)]
    interior = (slice(None),) + (slice(ph, ph + h), slice(pw, pw + w)) * 2
    corners = (slice(None),) + (
        slice(None, sh * (h_out - 1) + 1, sh),
        slice(None, sw * (w_out - 1) + 1, sw),
    ) * 2
    block = min(n, max(1, _PIXEL_GRAM_BLOCK_VALUES // (m * m)))
    # Written inside only, so their zero borders are set once per layer.
    pixel_gram = x.new_zeros(block, hp, wp, hp, wp)
    framed = x.new_zeros(block, hp, wp, hp, wp)
    sq = x.new_empty(n)
    for start in range(0, n, block):
        xs, ds = x[start : start + block], delta[start : start + block]
        b = len(xs)
        pixels, ds = xs.flatten(2), ds.flatten(2)  # (b, C, H W), (b, C_out, P)
        pixel_gram[:b][interior] = (pixels.mT @ pixels).view(b, h, w, h, w)
        framed[:b][corners] = (ds.mT @ ds).view(b, h_out, w_out, h_out, w_out)
        gram = pixel_gram[:b].view(b, m * m)
        delta_gram = framed[:b].view(b, m * m)[:, :length]
        if b == 1:  # one dot product per kernel offset
            sq[start] = sum(
                torch.dot(delta_gram[0], gram[0, s : s + length]) for s in shifts
            )
        else:  # a kernel row's windows as one (b, kw, length) strided view
            sq[start : start + b] = sum(
                torch.bmm(
                    gram.as_strided(
                        (b, kw, length),
                        (m * m, col_shift, 1),
                        gram.storage_offset() + i * row_shift,
                    ),
                    delta_gram.unsqueeze(2),
                ).sum((1, 2))
                for i in range(kh)
            )
    return sq.double()


# Values per block of samples in the batch norm form: its temporary then stays
# in cache and in memory the allocator reuses (a fresh 30 MB temporary per layer
# costs more in page faults than the arithmetic).
_BATCH_NORM_BLOCK_VALUES = 2**18


def _batch_norm_weight_sq_norms(layer, x, delta):
    # d gamma_c = sum_p delta_cp (x_cp - mean_c) / std_c
    mean = layer.running_mean.view(1, -1, 1, 1)
    inv_std = torch.rsqrt(layer.running_var + layer.eps)
    block = max(1, _BATCH_NORM_BLOCK_VALUES // x[0].numel())
    d_gamma = []
    for start in range(0, len(x), block):
        centered = x[start : start + block] - mean
        centered.mul_(delta[start : start + block])
        d_gamma.append(centered.sum((2, 3)))
    return (torch.cat(d_gamma) * inv_std).double().pow(2).sum(1)
