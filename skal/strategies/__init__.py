"""Query strategies: one module per family, each strategy registered by name."""

from ..distributed import query_dask_pool
from ._registry import available_strategies, get_strategy, register
from .bandit import ALBL
from .base import QueryStrategy, prepare_estimator, top_n
from .bayesian import BALD, MCDropoutEntropy, VariationRatios
from .committee import QueryByCommittee
from .diverse_gradient import GradKMeans
from .diversity import BADGE, KCenterGreedy
from .gradient import (
    EGL,
    EntropyGradNorm,
    ExpectedGradNorm,
    GradDiscrepancy,
    SequentialGradDiscrepancy,
)
from .learning_loss import LearningLoss, LPLgrad
from .npc import NPC
from .probcover import ProbCover
from .typiclust import TypiClust
from .uncertainty import Entropy, LeastConfidence, Margin, RandomSampling

# Dask pools go to skal.distributed (which imports dask only when used).
QueryStrategy._dask_query = staticmethod(query_dask_pool)

__all__ = [
    "ALBL",
    "BALD",
    "BADGE",
    "EGL",
    "EntropyGradNorm",
    "ExpectedGradNorm",
    "GradDiscrepancy",
    "GradKMeans",
    "KCenterGreedy",
    "LearningLoss",
    "LPLgrad",
    "MCDropoutEntropy",
    "NPC",
    "ProbCover",
    "TypiClust",
    "SequentialGradDiscrepancy",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "QueryByCommittee",
    "QueryStrategy",
    "RandomSampling",
    "VariationRatios",
    "available_strategies",
    "get_strategy",
    "register",
    "prepare_estimator",
    "top_n",
]
