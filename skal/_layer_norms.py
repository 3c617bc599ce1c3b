"""Per-sample squared gradient norms of layers, from one batched backward pass.

A layer's per-sample gradient only depends on that sample's layer input ``x_i``
and the gradient ``delta_i`` of the loss with respect to the layer's output
(eval mode: no batch statistics couple the samples). So forward hooks keep
``x`` and the output, one ``autograd.grad`` of the summed per-sample losses gives
every ``delta``, and each layer type turns them into squared norms:

- ``nn.Linear`` (one vector per sample): the weight gradient is ``delta_i x_i^T``,
  whose squared norm is ``||delta_i||^2 ||x_i||^2``; the bias's is ``||delta_i||^2``.
- ``nn.Conv2d``: the weight gradient is ``sum_p delta_i[:, p] patch_i[:, p]^T``
  over the output positions ``p`` (patches from ``unfold``). Either it is formed
  (``C_out x C_in k^2`` per sample), or its squared norm is computed from the two
  position Gram matrices, ``sum_pq (delta_p . delta_q)(patch_p . patch_q)`` (the
  "ghost norm"): whichever costs fewer operations for that layer (Bu et al., 2022;
  the Gram form wins in deep layers with few positions).
- ``nn.BatchNorm2d`` in eval mode (running statistics): ``d gamma_c = sum_p
  delta_c,p xhat_c,p`` and ``d beta_c = sum_p delta_c,p``.

Only norms are formed, never a per-sample copy of the parameters; memory is a few
activations per chunk. Anything else (other layer types, a layer applied twice
in one forward pass) is reported so the caller can fall back to ``torch.func``.
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
        return layer.groups == 1 and layer.padding_mode == "zeros"
    if isinstance(layer, nn.BatchNorm2d):
        return layer.track_running_stats and layer.running_mean is not None
    return True


class LayerCapture:
    """Forward hooks keeping each owner's input and (detached-from-in-place) output.

    Use as a context manager around the forward pass of one chunk; the hook hands
    the rest of the network a copy of the output, so in-place operations after the
    layer (``ReLU(inplace=True)``) cannot change the tensor we differentiate by.
    """

    def __init__(self, owners):
        self.owners = owners
        self.seen = {}

    def _hook(self, layer):
        def hook(_layer, inputs, output):
            if layer in self.seen:
                raise UnsupportedLayer(
                    f"{type(layer).__name__} is applied more than once per forward "
                    f"pass; per-sample norms need torch.func (method='vmap')."
                )
            if isinstance(layer, _LINEAR) and inputs[0].dim() != 2:
                raise UnsupportedLayer(
                    "a Linear layer sees more than one vector per sample"
                )
            self.seen[layer] = (inputs[0], output)
            return output.clone()

        return hook

    def __enter__(self):
        self.seen.clear()
        self.handles = [
            layer.register_forward_hook(self._hook(layer)) for layer in self.owners
        ]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()

    def squared_norms(self, total):
        """Per-sample squared norms ``(n_tensors, N)`` of the gradients of ``total``."""
        layers = list(self.owners)
        outputs = [self.seen[layer][1] for layer in layers]
        deltas = torch.autograd.grad(total, outputs)
        rows = []
        for layer, delta in zip(layers, deltas):
            x = self.seen[layer][0].detach()
            rows += layer_squared_norms(layer, self.owners[layer], x, delta)
        return torch.stack(rows)


def layer_squared_norms(layer, kinds, x, delta):
    """Per-sample squared norms of a layer's ``kinds`` ("weight", "bias") gradients."""
    if isinstance(layer, _LINEAR):
        delta_sq = delta.double().pow(2).sum(1)
        norms = {"weight": lambda: delta_sq * x.double().pow(2).sum(1)}
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


def _conv_weight_sq_norms(layer, x, delta):
    patches = F.unfold(
        x,
        layer.kernel_size,
        dilation=layer.dilation,
        padding=layer.padding,
        stride=layer.stride,
    )  # (N, C_in k^2, P)
    delta = delta.flatten(2)  # (N, C_out, P)
    (k, p), c_out = patches.shape[1:], delta.shape[1]
    if p * (c_out + k) < c_out * k:
        # Gram ("ghost") form: O(P^2 (C_out + K)) per sample. The Gram matrices in
        # float32 (the costly part), their products summed in float64.
        delta_gram = delta.transpose(1, 2) @ delta
        patch_gram = patches.transpose(1, 2) @ patches
        return (delta_gram.double() * patch_gram.double()).sum((1, 2))
    grad = delta @ patches.transpose(1, 2)  # (N, C_out, K): O(C_out K P)
    return grad.double().pow(2).sum((1, 2))


def _batch_norm_weight_sq_norms(layer, x, delta):
    shape = (1, -1, 1, 1)
    mean = layer.running_mean.view(shape)
    std = torch.sqrt(layer.running_var.view(shape) + layer.eps)
    per_channel = (delta * ((x - mean) / std)).sum((2, 3))  # d gamma, float32
    return per_channel.double().pow(2).sum(1)
