"""Query strategies: one module per family, each strategy registered by name."""

from ._registry import available_strategies, get_strategy, register
from .base import QueryStrategy, top_n
from .uncertainty import Entropy, LeastConfidence, Margin, RandomSampling

__all__ = [
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
