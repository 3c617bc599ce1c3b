"""The active learner, split by concept.

- ``_learner``: :class:`ActiveLearner`'s public API (parameters, ``fit``,
  ``resume``, ``query``, ``teach``, predictions, state for persistence);
- ``_rounds``: the loop of ``fit`` (initial set, rounds, oracle, label store);
- ``_initial``: the first labeled set (random or ``initial_strategy``);
- ``_callbacks``: round callbacks and stopping criteria (``history_`` columns,
  ``stop_reason_``, the stop in the label store);
- ``_training``: each round's model (fresh clone or warm start, torch threads,
  plain skorch nets, seeds);
- ``_pool``: recognizing the fitted pool and its rows in ``query``/``teach``;
- ``_labels``: ``missing_label``, label cleaning, classes;
- ``_pipeline``: :class:`ActiveLearningPipeline`.
"""

from ._callbacks import HISTORY_COLUMNS
from ._learner import ActiveLearner
from ._pipeline import ActiveLearningPipeline
from ._training import torch_threads

__all__ = [
    "HISTORY_COLUMNS",
    "ActiveLearner",
    "ActiveLearningPipeline",
    "torch_threads",
]
