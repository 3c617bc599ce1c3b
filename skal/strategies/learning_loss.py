"""Strategies for networks trained with a loss-prediction module.

Both need an estimator fitted with ``loss_prediction=LossPrediction(...)`` (see
:mod:`skal.nets._loss_prediction`), i.e. trained jointly with the auxiliary module.
"""

from sklearn.utils._param_validation import StrOptions

from .. import gradients
from ..nets import LossPrediction
from ._registry import register
from .base import QueryStrategy
from .gradient import EntropyGradNorm

# Both strategies are defined with a network trained jointly with the module.
_WITH_LOSS_PREDICTION = {"loss_prediction": (None, LossPrediction())}


def _require_loss_prediction(strategy, estimator):
    if getattr(estimator, "loss_prediction", None) is None or not hasattr(
        estimator, "loss_module_"
    ):
        raise TypeError(
            f"{type(strategy).__name__} needs a network trained with a loss-prediction "
            f"module; {type(estimator).__name__} has none: use e.g. "
            f"MLPClassifier(loss_prediction=LossPrediction())."
        )


@register("learning_loss")
class LearningLoss(QueryStrategy):
    """Learning Loss (``learning_loss``): query the largest predicted losses.

    The auxiliary module, trained with the main network by Learning Loss's pairwise
    ranking loss, predicts each pool point's loss from the network's intermediate
    features; the top ``n`` are queried. Cost: one forward pass over the pool
    (main network + the small module); memory O(chunk + N).

    References
    ----------
    Yoo, D. & Kweon, I. S. (2019). Learning Loss for Active Learning. CVPR.
    """

    estimator_settings = _WITH_LOSS_PREDICTION

    def _fit(self, X, y):
        _require_loss_prediction(self, self.estimator_)

    def _score(self, X_pool):
        return self.estimator_.predict_loss(X_pool)


@register("lplgrad")
class LPLgrad(EntropyGradNorm):
    """LPLgrad (``lplgrad``, paper 002): entropy-gradient norm of a jointly trained net.

    The network is trained with the auxiliary loss-prediction module (training
    phase); queries rank the pool by the Frobenius norm of the gradient of the
    prediction entropy with respect to all parameters of the *main* network, not
    the auxiliary module (querying phase). Per-sample gradients come from
    :func:`skal.gradients.per_sample_gradient_norms`: one batched backward pass for
    networks of linear, conv and (eval-mode) batch-norm layers, in closed form per
    layer (``||delta_i|| ||x_i||`` for a linear weight; see
    :mod:`skal._layer_norms`), ``torch.func.vmap`` otherwise; never a Python loop
    over samples, never a per-sample copy of the whole gradient on the fast path.

    Parameters
    ----------
    norm : {"global", "per_tensor_sum"}, default="global"
        ``"global"`` is the paper's Frobenius norm over all parameters.

    References
    ----------
    LPLgrad: Optimizing Active Learning Through Gradient Norm Sample Selection and
    Auxiliary Model Training (paper 002), section III.
    """

    _parameter_constraints = {
        "norm": [StrOptions({"global", "per_tensor_sum"})],
    }

    def __init__(self, norm="global"):
        self.norm = norm

    last_layer = False
    estimator_settings = _WITH_LOSS_PREDICTION

    def _fit(self, X, y):
        super()._fit(X, y)
        _require_loss_prediction(self, self.estimator_)

    def _score(self, X_pool):
        # module_ holds the main network only; the loss module lives in loss_module_.
        return gradients.per_sample_gradient_norms(
            self.estimator_, X_pool, loss="entropy", norm=self.norm
        )
