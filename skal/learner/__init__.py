"""The active learner, split by concept.

- ``_learner``: :class:`ActiveLearner`'s public API (parameters, ``fit``,
  ``resume``, ``query``, ``teach``, predictions, state for persistence);
- ``_rounds``: the loop of ``fit`` (initial set, rounds, oracle, label store);
- ``_training``: each round's model (fresh clone or warm start, torch threads,
  plain skorch nets, seeds);
- ``_pool``: recognizing the fitted pool and its rows in ``query``/``teach``;
- ``_labels``: ``missing_label``, label cleaning, classes;
- ``_pipeline``: :class:`ActiveLearningPipeline`.
"""

from ._learner import ActiveLearner
from ._pipeline import ActiveLearningPipeline
from ._rounds import HISTORY_COLUMNS
from ._training import torch_threads

__all__ = [
    "HISTORY_COLUMNS",
    "ActiveLearner",
    "ActiveLearningPipeline",
    "torch_threads",
]
