"""Query strategies: one module per family, each strategy registered by name."""

from ._registry import available_strategies, get_strategy, register
from .base import QueryStrategy, top_n
from .diversity import BADGE, KCenterGreedy
from .gradient import (
    EGL,
    EntropyGradNorm,
    ExpectedGradNorm,
    GradDiscrepancy,
    SequentialGradDiscrepancy,
)
from .npc import NPC
from .uncertainty import Entropy, LeastConfidence, Margin, RandomSampling

__all__ = [
    "BADGE",
    "EGL",
    "EntropyGradNorm",
    "ExpectedGradNorm",
    "GradDiscrepancy",
    "KCenterGreedy",
    "NPC",
    "SequentialGradDiscrepancy",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "QueryStrategy",
    "RandomSampling",
    "available_strategies",
    "get_strategy",
    "register",
    "top_n",
]
