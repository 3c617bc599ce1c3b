"""skorch classifiers whose modules expose what skal's strategies need.

Each module has ``output_layer`` (the final ``nn.Linear``) and ``features(X)`` (the
penultimate representation); see :mod:`skal.embeddings`.
"""

from ._base import SkalNetClassifier
from ._batches import BatchSlicer
from ._mlp import MLPClassifier, MLPModule

__all__ = ["BatchSlicer", "MLPClassifier", "MLPModule", "SkalNetClassifier"]
