"""Semi-supervised learners, to judge active learning by what unlabeled data adds.

Paper 004 evaluates an active-learning strategy by the accuracy of a
semi-supervised learner trained on the labeled *and* unlabeled pool after each
round (FixMatch with DARP towards a uniform class distribution). These estimators
follow scikit-learn's semi-supervised convention: ``fit(X, y)`` with ``y = -1`` on
the unlabeled rows, then ``predict``, ``predict_proba``, ``score``, ``classes_``.

- :func:`darp` refines soft pseudo-labels towards a target class distribution
  (Kim et al., 2020);
- :class:`SelfTrainingClassifier` self-trains any skal net or scikit-learn
  classifier, optionally with DARP;
- :class:`SemiSupervisedScore` is a round callback for :class:`skal.ActiveLearner`
  recording such a learner's accuracy after every round (paper 004's ASSL);
- :class:`FixMatchClassifier` trains a :class:`skal.nets.CNNClassifier` with
  FixMatch (Sohn et al., 2020), optionally with DARP; :class:`WeakAugment` and
  :class:`StrongAugment` are its augmentations, :func:`fixmatch_loss` its loss.
"""

from ._augment import RANDAUGMENT_OPS, StrongAugment, WeakAugment, cutout
from ._darp import apply_column_duals, darp, entropy_weights, target_class_counts
from ._evaluation import SemiSupervisedScore
from ._fixmatch import FixMatchClassifier, FixMatchLoss, fixmatch_loss
from ._self_training import SelfTrainingClassifier

__all__ = [
    "FixMatchClassifier",
    "FixMatchLoss",
    "RANDAUGMENT_OPS",
    "SelfTrainingClassifier",
    "SemiSupervisedScore",
    "StrongAugment",
    "WeakAugment",
    "apply_column_duals",
    "cutout",
    "darp",
    "entropy_weights",
    "fixmatch_loss",
    "target_class_counts",
]
