"""What a benchmark cell records besides its supervised accuracy.

``skal bench --evaluate ssl`` and ``--stopping`` add round callbacks
(:mod:`skal.callbacks`) to every cell's learner. They only watch: the
strategy, the models and the supervised accuracy of a cell are the same with
or without them (they draw from their own seeds, not the learner's).

- ``--evaluate ssl``: :class:`~skal.semi_supervised.SemiSupervisedScore`
  fits a semi-supervised learner on the pool after each round (paper 004's
  evaluation); column ``ssl_accuracy``.
- ``--stopping``: stopping criteria among the callbacks record, without
  stopping, whether they would have stopped (:mod:`skal.stopping`); one
  boolean column ``stop_<criterion>`` each.

A cell without these options has none of these columns (its file is the same
as before they existed).
"""

import numpy as np
from sklearn.base import clone

from ..nets import CNNClassifier
from ..semi_supervised import (
    FixMatchClassifier,
    SelfTrainingClassifier,
    SemiSupervisedScore,
    WeakAugment,
)
from ..stopping import (
    ClassificationChange,
    OverallUncertainty,
    StabilizingPredictions,
    StoppingCriterion,
)
from ._aggregate import STOP_PREFIX

#: Values of ``BenchmarkProtocol.evaluate``.
EVALUATIONS = ("ssl",)
SSL_COLUMN = "ssl_accuracy"

# FixMatch's learning rate (Sohn et al. 2020), which docs/results/assl measured
# on MNIST/LeNet; the bench's swept rate is tuned for supervised training.
FIXMATCH_LR = 0.03
# Datasets whose mirror images are images of the same class: FixMatch's weak
# augmentation flips only these (a mirrored digit is another shape).
FLIPPABLE_DATASETS = ("cifar10", "cifar10_test")

# Stopping criteria recorded by --stopping (thresholds: see stopping_criteria).
STOP_SET_SIZE = 1000
KAPPA_WINDOW = 3
KAPPA_THRESHOLD = 0.99
CHANGE_THRESHOLD = 0.005
UNCERTAINTY_THRESHOLD = 0.05


def is_monitor_column(name):
    """Whether a cell column was written by these callbacks."""
    return name == SSL_COLUMN or str(name).startswith(STOP_PREFIX)


def semi_supervised_learner(estimator, n_classes, dataset):
    """The learner that judges a cell's labels with the unlabeled pool.

    The same for every strategy: built from the benchmark's estimator, not the
    strategy's training setup (dropout, loss prediction), so that strategies
    are compared by their labels only.

    - a :class:`~skal.nets.CNNClassifier`: FixMatch (threshold 0.95, mu 7,
      lambda_u 1, lr 0.03, 10 passes over the unlabeled rows, mini-batches of
      the estimator's size) with DARP towards a uniform class distribution, as
      paper 004; weak augmentation flips only natural images;
    - any other classifier (the MLP): self-training with DARP towards uniform
      (:class:`~skal.semi_supervised.SelfTrainingClassifier`'s defaults).

    Parameters
    ----------
    estimator : classifier
        The benchmark's estimator (learning rate set).
    n_classes : int
        Classes of the pool; labels are coded ``0 .. n_classes - 1`` for the
        semi-supervised fit, so a skal net gets ``classes`` set to know every
        class when the labeled rows miss some.
    dataset : str
        The dataset's name (chooses FixMatch's flips).

    Returns
    -------
    learner : SelfTrainingClassifier or FixMatchClassifier
    """
    base = clone(estimator)
    if "classes" in base.get_params(deep=False):
        base.set_params(classes=np.arange(n_classes))
    if isinstance(base, CNNClassifier):
        return FixMatchClassifier(
            base.set_params(lr=FIXMATCH_LR),
            darp="uniform",
            weak_augment=WeakAugment(flip=dataset in FLIPPABLE_DATASETS),
        )
    return SelfTrainingClassifier(base, darp="uniform")


def stopping_criteria(seed):
    """The criteria ``--stopping`` records (not ValidationPlateau: see below).

    - :class:`~skal.stopping.StabilizingPredictions`: a stop set of 1,000
      unlabeled rows (all of them if fewer), window 3, kappa >= 0.99
      (Bloodgood & Vijay-Shanker's values);
    - :class:`~skal.stopping.ClassificationChange` on the whole unlabeled pool,
      threshold 0.005, not the paper's 0: each round's network is trained from
      scratch with a new seed, so borderline rows change label even when the
      new labels add nothing, and "no row changed" almost never happens on
      thousands of rows (on digits 1-4 % still changed at 0.95 accuracy); 0
      would record a criterion that never fires;
    - :class:`~skal.stopping.OverallUncertainty`: mean least confidence
      ``1 - max p`` over the unlabeled pool below 0.05. For a calibrated
      model the mean least confidence is its expected error rate on the pool,
      so the criterion fires when the model expects fewer than 5 % errors
      there (an overconfident network gets there sooner). On digits the MLP's
      mean least confidence was 0.06 at 0.96 test accuracy.

    ValidationPlateau is left out: the bench's eval_set is the test set, and a
    criterion must not look at test labels.

    Parameters
    ----------
    seed : int
        The cell's seed: draws the stop set (the same rows for every strategy
        of a seed, since they share the initial set).

    Returns
    -------
    criteria : list of StoppingCriterion
    """
    return [
        StabilizingPredictions(
            stop_set_size=STOP_SET_SIZE,
            window=KAPPA_WINDOW,
            threshold=KAPPA_THRESHOLD,
            random_state=seed,
        ),
        ClassificationChange(threshold=CHANGE_THRESHOLD),
        OverallUncertainty(threshold=UNCERTAINTY_THRESHOLD, aggregate="mean"),
    ]


def monitoring_callbacks(
    *, evaluate=(), ssl_every=1, stopping=False, seed, estimator, n_classes, dataset
):
    """The round callbacks of a cell for the protocol's ``evaluate``/``stopping``.

    Parameters
    ----------
    evaluate : tuple of str, default=()
        ``("ssl",)`` adds a :class:`~skal.semi_supervised.SemiSupervisedScore`
        (:func:`semi_supervised_learner`) evaluated every ``ssl_every`` rounds.
    ssl_every : int, default=1
    stopping : bool, default=False
        Add :func:`stopping_criteria`.
    seed : int
        The cell's seed. The semi-supervised learner of round ``r`` gets the
        same seed for every strategy of a seed, so that strategies differ only
        by their labels.
    estimator : classifier
    n_classes : int
    dataset : str

    Returns
    -------
    callbacks : list of Callback
    """
    callbacks = []
    if "ssl" in evaluate:
        learner = semi_supervised_learner(estimator, n_classes, dataset)
        callbacks.append(
            SemiSupervisedScore(learner, every=ssl_every, random_state=seed)
        )
    if stopping:
        callbacks += stopping_criteria(seed)
    return callbacks


def monitor_columns(callbacks):
    """The cell columns of fitted callbacks (a learner's ``callbacks_``).

    Returns
    -------
    columns : dict
        ``ssl_accuracy`` (NaN on rounds not evaluated) for a
        SemiSupervisedScore, ``stop_<name>`` (bool: fired at that round) for
        each stopping criterion; one value per round. Other callbacks add
        nothing.
    """
    columns = {}
    for callback in callbacks:
        if isinstance(callback, SemiSupervisedScore):
            name = SSL_COLUMN
            values = [entry["statistic"] for entry in callback.history_]
        elif isinstance(callback, StoppingCriterion):
            name = STOP_PREFIX + callback.name
            values = [bool(entry["fired"]) for entry in callback.history_]
        else:
            continue
        if name in columns:
            raise ValueError(
                f"Two callbacks write the cell column {name!r}; give at most one "
                f"SemiSupervisedScore and one criterion of each class."
            )
        columns[name] = values
    return columns
