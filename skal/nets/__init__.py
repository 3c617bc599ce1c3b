"""skorch classifiers whose modules expose what skal's strategies need.

Each module has ``output_layer`` (the final ``nn.Linear``) and ``features(X)`` (the
penultimate representation); see :mod:`skal.embeddings`.
"""

from ._backbones import VGG16, LeNet, ResNet18
from ._base import SkalNetClassifier
from ._batches import BatchSlicer
from ._cnn import CNNClassifier, CNNModule, ImageInput, RandomCropFlip
from ._loss_prediction import LossPrediction, LossPredictionModule
from ._mlp import MLPClassifier, MLPModule

__all__ = ["BatchSlicer", "MLPClassifier", "MLPModule", "SkalNetClassifier"]
__all__ += ["CNNClassifier", "CNNModule", "ImageInput", "RandomCropFlip"]
__all__ += ["LeNet", "ResNet18", "VGG16"]
__all__ += ["LossPrediction", "LossPredictionModule"]
