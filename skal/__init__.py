"""skal: scikit-learn compatible active learning for PyTorch networks (skorch).

The pieces:

- :class:`ActiveLearner` runs the active-learning loop and is itself a classifier
  (:class:`ActiveLearningPipeline` puts it behind a vectorizer, with ``query`` and
  ``teach`` on raw input);
- :mod:`skal.strategies` holds the query strategies (``fit`` then ``query``);
- :mod:`skal.callbacks` notifies objects every round
  (:class:`~skal.callbacks.RoundRecorder` keeps what the diagnostics draw);
- :mod:`skal.stopping` decides when labeling more stops paying off;
- :mod:`skal.embeddings` streams what strategies need from a model;
- :mod:`skal.nets` provides skorch classifiers (the papers' MLP, ...);
- :mod:`skal.persistence` saves and loads a fitted learner without pickle.
"""

from . import callbacks, persistence, stopping
from ._config import config_context, get_config, set_config
from ._version import __version__
from .learner import ActiveLearner, ActiveLearningPipeline

__all__ = [
    "ActiveLearner",
    "ActiveLearningPipeline",
    "callbacks",
    "config_context",
    "persistence",
    "get_config",
    "set_config",
    "stopping",
    "__version__",
]
