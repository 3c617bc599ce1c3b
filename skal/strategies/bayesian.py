"""Bayesian uncertainty by Monte-Carlo dropout: BALD, MC-dropout entropy, variation ratios.

A network trained with dropout is read as an approximate Bayesian posterior over
its weights (Gal & Ghahramani, 2016): keeping dropout active at prediction time and
averaging ``T`` stochastic forward passes samples that posterior. All three
strategies here share one pass, :func:`mc_dropout_statistics`, which streams the
pool in chunks and keeps only running sums over the ``T`` passes (mean
probabilities, mean entropy, votes of the predicted classes), so memory is
O(N C) whatever ``T`` is.

During the passes only the dropout layers are in training mode; everything else,
batch normalization in particular, is in evaluation mode, so the running
statistics are used and never updated. The masks are drawn from torch's generator
inside :func:`torch.random.fork_rng`, seeded per chunk from ``random_state``
(:func:`chunk_seed`): the global torch random state is left as it was, and a
partitioned pool (:mod:`skal.distributed`) gets the same masks.

Cost: ``T`` forward passes over the pool, of which only the part from the first
dropout layer on is random. Where the network is a chain of ``nn.Sequential``
blocks ending in its output layer (skal's MLP, whose first layer dominates on
TF-IDF input, and CNNs, whose backbone dominates), the deterministic prefix runs
once per chunk and only that tail ``T`` times; the result is identical to ``T``
full passes (the shortcut is checked against a full pass on the first chunk and
not used when they differ). Measured on the 617-512-256-26 MLP with ``T = 20``:
about 12-14 times one plain forward pass, against about 26 for ``T`` full passes;
drawing the dropout masks costs about as much as the tail's matrix products.
Memory: O(N C) plus one chunk's activations.

References
----------
Gal, Y. & Ghahramani, Z. (2016). Dropout as a Bayesian Approximation: Representing
Model Uncertainty in Deep Learning. ICML.
Gal, Y., Islam, R. & Ghahramani, Z. (2017). Deep Bayesian Active Learning with
Image Data. ICML.
"""

import threading
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from scipy.special import entr
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from torch import nn

from .. import embeddings
from .._torch import eval_mode
from ..nets._batches import rows_to_tensor
from ._registry import register
from .base import QueryStrategy


@dataclass
class MCDropoutStatistics:
    """Running reductions over ``T`` stochastic forward passes.

    Attributes
    ----------
    mean_proba : ndarray of shape (n_samples, n_classes)
        ``mean_t p_t``: the MC-dropout predictive distribution (float64).
    mean_entropy : ndarray of shape (n_samples,)
        ``mean_t H(p_t)``: expected entropy of the sampled predictions.
    votes : ndarray of shape (n_samples, n_classes)
        How many of the ``T`` passes predicted each class (argmax, ties to the
        lower class index).
    n_samples : int
        ``T``.
    """

    mean_proba: np.ndarray
    mean_entropy: np.ndarray
    votes: np.ndarray
    n_samples: int


def dropout_layers(module):
    """The dropout layers of a module with a non-zero drop probability."""
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
    ]


def check_dropout_net(estimator, owner="Monte-Carlo dropout"):
    """Raise a TypeError unless ``estimator`` is a torch net with active dropout."""
    name = type(estimator).__name__
    if not embeddings.is_torch_net(estimator):
        raise TypeError(
            f"{owner} needs a torch network with dropout layers, but {name} is not "
            f"a skorch net (it has no torch module_); use e.g. "
            f"skal.nets.MLPClassifier(dropout=0.2)."
        )
    if not dropout_layers(estimator.module_):
        raise TypeError(
            f"{owner} needs a network with dropout layers, but the module of {name} "
            f"({type(estimator.module_).__name__}) has none with p > 0; train it "
            f"with dropout, e.g. skal.nets.MLPClassifier(dropout=0.2)."
        )


def mc_dropout_statistics(net, X, n_samples=20, random_state=None, *, chunk_size=None):
    """Mean probabilities, mean entropy and class votes over ``T`` dropout passes.

    Parameters
    ----------
    net : fitted skorch net whose module has dropout layers
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        A validated pool.
    n_samples : int, default=20
        Number ``T`` of stochastic forward passes.
    random_state : int, RandomState instance or None, default=None
        Draws the torch seed of the dropout masks (torch's global random state is
        not touched).
    chunk_size : int, default=None
        Rows per chunk; default from :func:`skal.get_config`. The masks depend on
        the chunking: the ``T`` passes of chunk ``k`` draw their masks from the
        torch seed :func:`chunk_seed` ``(seed, k)``, so a chunk's masks do not
        depend on where (on which machine or Dask partition) it is scored.

    Returns
    -------
    MCDropoutStatistics
    """
    seed = draw_torch_seed(random_state)
    return seeded_mc_dropout_statistics(net, X, n_samples, seed, chunk_size=chunk_size)


# Dropout draws its masks from torch's process-wide generator: two threads
# seeding and drawing at once (Dask workers in one process) would mix streams.
_TORCH_RNG_LOCK = threading.Lock()


def draw_torch_seed(random_state):
    """The query's torch seed, one draw from ``random_state``."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def chunk_seed(seed, chunk_index):
    """Torch seed of the masks of chunk ``chunk_index`` (rows ``k * chunk_size`` on)."""
    return int(np.random.SeedSequence([seed, chunk_index]).generate_state(1)[0])


def seeded_mc_dropout_statistics(
    net, X, n_samples, seed, *, chunk_size=None, first_chunk=0
):
    """:func:`mc_dropout_statistics` with the torch seed given; ``X``'s first chunk
    is the pool's chunk ``first_chunk`` (a partition starting at a chunk boundary).
    """
    check_dropout_net(net)
    module = net.module_
    n_classes = len(net.classes_)
    layer = embeddings.output_layer(module, n_classes=n_classes)
    dropouts = dropout_layers(module)
    split = _split_at_dropout(module, layer, dropouts)
    captured = {}

    def keep_logits(_layer, _inputs, output):
        captured["logits"] = output

    def keep_tail_input(_module, inputs):
        captured["tail_input"] = inputs[0] if len(inputs) == 1 else None

    hooks = [layer.register_forward_hook(keep_logits)]
    if split is not None:
        hooks.append(split[0].register_forward_pre_hook(keep_tail_input))
    n_rows = X.shape[0]
    total_proba = np.empty((n_rows, n_classes))
    total_entropy = np.empty(n_rows)
    votes = np.empty((n_rows, n_classes), dtype=np.int64)
    keep_sparse = getattr(module, "accepts_sparse_input", False)
    device = torch.device(net.device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with (
            _TORCH_RNG_LOCK,
            torch.random.fork_rng(devices=fork_devices),
            torch.inference_mode(),
            eval_mode(module),  # the dropouts are switched on below
        ):
            tail = None
            for index, rows in enumerate(embeddings.chunks(n_rows, chunk_size)):
                batch = rows_to_tensor(X, rows, keep_sparse=keep_sparse).to(device)
                if rows.start == 0:
                    if split is not None:
                        # With dropout still off, the shortcut must give the logits
                        # of the full forward pass; otherwise it is not used.
                        tail = _verified_tail(module, batch, split[1], captured)
                    for m in dropouts:
                        m.train()
                torch.manual_seed(chunk_seed(seed, first_chunk + index))
                sums = _PassSums(batch.shape[0], n_classes, device)
                for t in range(n_samples):
                    if t == 0 or tail is None:
                        module(batch)
                    else:
                        tail(captured["tail_input"])
                    sums.add(captured["logits"])
                total_proba[rows], total_entropy[rows], votes[rows] = sums.numpy()
    finally:
        for hook in hooks:
            hook.remove()
    return MCDropoutStatistics(
        mean_proba=total_proba / n_samples,
        mean_entropy=total_entropy / n_samples,
        votes=votes,
        n_samples=n_samples,
    )


class _PassSums:
    """Sums over passes of p_t, H(p_t) and one-hot argmax p_t for one chunk."""

    def __init__(self, n_rows, n_classes, device):
        self.proba = torch.zeros(n_rows, n_classes, dtype=torch.float64, device=device)
        self.entropy = torch.zeros(n_rows, dtype=torch.float64, device=device)
        self.votes = torch.zeros(n_rows, n_classes, dtype=torch.int64, device=device)

    def add(self, logits):
        log_proba = logits.double().log_softmax(dim=1)
        proba = log_proba.exp()
        self.proba += proba
        self.entropy -= (proba * log_proba).sum(dim=1)
        rows = torch.arange(len(proba), device=proba.device)
        self.votes[rows, proba.argmax(dim=1)] += 1

    def numpy(self):
        return (t.cpu().numpy() for t in (self.proba, self.entropy, self.votes))


def _split_at_dropout(module, output_layer, dropouts):
    """``(entry, tail)`` with every dropout layer inside ``tail`` and, if the
    module is built as it appears, ``tail(u)`` giving the logits of ``module(x)``
    where ``u`` is the input of ``entry``; ``None`` when no split is apparent.

    Descends through ``nn.Sequential`` containers to the first child holding a
    dropout layer. A non-sequential root is assumed to compute
    ``output_layer(child(.))`` of its only child holding dropout (skal's nets);
    :func:`_verified_tail` checks the assumption before the split is used.
    """
    ids = {id(d) for d in dropouts}

    def holds_dropout(m):
        return any(id(sub) in ids for sub in m.modules())

    def descend(sequential, to_logits):
        i = next(i for i, child in enumerate(sequential) if holds_dropout(child))
        child, after = sequential[i], sequential[i + 1 :]
        if isinstance(child, nn.Sequential):
            return descend(child, lambda v: to_logits(after(v)))
        return child, lambda u: to_logits(after(child(u)))

    if isinstance(module, nn.Sequential):
        return descend(module, lambda v: v)
    inside = [child for child in module.children() if holds_dropout(child)]
    if len(inside) != 1 or inside[0] is output_layer:
        return None
    child = inside[0]  # it holds every dropout layer
    if isinstance(child, nn.Sequential):
        return descend(child, output_layer)
    return child, lambda u: output_layer(child(u))


def _verified_tail(module, batch, tail, captured):
    """``tail`` if, with dropout off, it gives the logits of the full forward."""
    module(batch)
    full, tail_input = captured["logits"], captured.get("tail_input")
    if tail_input is None:
        return None
    tail(tail_input)
    same = full.shape == captured["logits"].shape and torch.allclose(
        full, captured["logits"], rtol=1e-5, atol=1e-6
    )
    return tail if same else None


class _MCDropoutStrategy(QueryStrategy):
    estimator_settings = {"dropout": (0.0, 0.1)}  # MC dropout needs dropout layers
    scores_in_one_call = True  # the dropout masks are drawn per call

    """Ranks the pool by a function of :class:`MCDropoutStatistics`."""

    _parameter_constraints = {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_samples=20, random_state=None):
        self.n_samples = n_samples
        self.random_state = random_state

    def _fit(self, X, y):
        self.random_state_ = check_random_state(self.random_state)

    def _score(self, X_pool):
        return self.seeded_scores(X_pool, draw_torch_seed(self.random_state_))

    def seeded_scores(self, X_pool, seed, first_chunk=0):
        """Scores with the query's torch seed (:func:`seeded_mc_dropout_statistics`)."""
        # Checked here rather than in fit, so that a bad pool is reported first.
        check_dropout_net(self.estimator_, owner=type(self).__name__)
        return self.acquisition(
            seeded_mc_dropout_statistics(
                self.estimator_, X_pool, self.n_samples, seed, first_chunk=first_chunk
            )
        )

    @staticmethod
    def acquisition(stats):
        raise NotImplementedError


_PARAMETERS = """
    Parameters
    ----------
    n_samples : int, default=20
        Number ``T`` of stochastic forward passes.
    random_state : int, RandomState instance or None, default=None
        Seeds the dropout masks; each ``query`` draws a new torch seed from it
        (torch's global random state is not touched).
"""


@register("bald")
class BALD(_MCDropoutStrategy):
    __doc__ = f"""Bayesian Active Learning by Disagreement (``bald``).

    Scores ``I[y; w | x] = H(mean_t p_t) - mean_t H(p_t)``: the mutual information
    between the label and the weights, estimated from ``T`` MC-dropout passes. It
    is high where the passes are individually confident but disagree, and low for
    points that are ambiguous under every pass (aleatoric noise). Cost: ``T``
    forward passes over the pool (see :mod:`skal.strategies.bayesian`), O(T N C)
    after them; memory O(N C). The batch is the top ``n`` scores (as in Gal et
    al. 2017), not BatchBALD's joint selection.
    {_PARAMETERS}
    References
    ----------
    Houlsby, N., Huszar, F., Ghahramani, Z. & Lengyel, M. (2011). Bayesian Active
    Learning for Classification and Preference Learning. arXiv:1112.5745.
    Gal, Y., Islam, R. & Ghahramani, Z. (2017). Deep Bayesian Active Learning with
    Image Data. ICML.
    """

    @staticmethod
    def acquisition(stats):
        return entr(stats.mean_proba).sum(axis=1) - stats.mean_entropy


@register("mc_entropy")
class MCDropoutEntropy(_MCDropoutStrategy):
    __doc__ = f"""Max-entropy of the MC-dropout predictive distribution (``mc_entropy``).

    Scores ``H(mean_t p_t)``, the entropy of the average of ``T`` dropout passes
    (the "Max Entropy" acquisition of Gal et al. 2017, the "MC-dropout" baseline
    of paper 003). Cost: ``T`` forward passes, O(T N C) after them; memory O(N C).
    {_PARAMETERS}
    References
    ----------
    Gal, Y., Islam, R. & Ghahramani, Z. (2017). Deep Bayesian Active Learning with
    Image Data. ICML.
    """

    @staticmethod
    def acquisition(stats):
        return entr(stats.mean_proba).sum(axis=1)


@register("variation_ratios")
class VariationRatios(_MCDropoutStrategy):
    __doc__ = f"""Variation ratios over MC-dropout passes (``variation_ratios``).

    Scores ``1 - (number of passes predicting the modal class) / T``: how often
    the ``T`` dropout passes disagree with their majority vote. The scores take
    only ``T`` distinct values, so ties are common; they go to the lower pool
    index (see :func:`skal.strategies.top_n`). Cost: ``T`` forward passes, O(T N C)
    after them; memory O(N C).
    {_PARAMETERS}
    References
    ----------
    Freeman, L. C. (1965). Elementary Applied Statistics. Wiley.
    Gal, Y., Islam, R. & Ghahramani, Z. (2017). Deep Bayesian Active Learning with
    Image Data. ICML.
    """

    @staticmethod
    def acquisition(stats):
        return 1.0 - stats.votes.max(axis=1) / stats.n_samples
