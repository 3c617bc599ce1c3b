"""What a benchmark cell records besides its supervised accuracy.

``skal bench --evaluate ssl`` and ``--stopping`` add round callbacks
(:mod:`skal.callbacks`) to every cell's learner. They only watch: the
strategy, the models and the supervised accuracy of a cell are the same with
or without them (they draw from their own seeds, not the learner's).

- ``--evaluate ssl``: :class:`~skal.semi_supervised.SemiSupervisedScore`
  fits a semi-supervised learner on the pool after each round (paper 004's
  evaluation); columns ``ssl_accuracy`` and ``ssl_seconds``.
- ``--stopping``: stopping criteria among the callbacks record, without
  stopping, whether they would have stopped (:mod:`skal.stopping`): a
  boolean column ``stop_<criterion>`` each, and the criterion's statistic in
  ``stat_<criterion>``.
- ``--diagnostics``: :class:`RoundDiagnostics` records, per round, what the
  round figures of ``skal report`` draw (per-class test accuracy, the labeled
  set's class counts, max-probability histograms); not a cell column but a
  long table written next to the cell (``diagnostics/<cell>.csv``).

A cell without these options has none of these columns (its file is the same
as before they existed).
"""

import numpy as np
import pandas as pd
from sklearn.base import clone

from .. import embeddings
from ..callbacks import Callback
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
SSL_SECONDS = "ssl_seconds"  # the semi-supervised fit's cost per round
# A criterion's statistic per round (beside stop_<name>, whether it fired), so
# that other thresholds can be studied without rerunning the cells.
STATISTIC_PREFIX = "stat_"

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


# What RoundDiagnostics records (the "quantity" column of its table).
CLASS_ACCURACY = "class_accuracy"  # key: class; value: its recall on the test set
LABELED_COUNT = "labeled_count"  # key: class; value: labeled rows of that class
MAX_PROBA_LABELED = "max_proba_labeled"  # key: bin's left edge; value: rows in it
MAX_PROBA_UNLABELED = "max_proba_unlabeled"
DIAGNOSTIC_COLUMNS = ["round", "quantity", "key", "value"]
CONFIDENCE_BINS = 20


def is_monitor_column(name):
    """Whether a cell column was written by these callbacks."""
    return monitor_column_order(name) is not None


def monitor_column_order(name):
    """Sort key of a monitor column (ssl, then stop_*, then stat_*), else None."""
    name = str(name)
    for rank, prefix in enumerate((STOP_PREFIX, STATISTIC_PREFIX), start=1):
        if name.startswith(prefix):
            return (rank, name)
    ssl = (SSL_COLUMN, SSL_SECONDS)
    return (0, ssl.index(name)) if name in ssl else None


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


class RoundDiagnostics(Callback):
    """Records, per round, what the round figures of ``skal report`` draw.

    It only reads: no random draw, no change to the model (predictions only),
    so a learner's rounds and scores are the same with or without it. Per
    round, one row ``(round, quantity, key, value)`` per

    - ``class_accuracy``: each class of ``eval_set`` (key) and the fraction of
      its rows the round's model predicts right (its recall; ``predict``, as
      the learner's ``eval_score``). Not recorded without an ``eval_set``;
    - ``labeled_count``: each class (key) and its labeled rows this round;
    - ``max_proba_labeled`` / ``max_proba_unlabeled``: a histogram of the
      model's largest class probability on the labeled rows and on the
      unlabeled rows of the pool, ``bins`` equal bins on [0, 1] (key: a bin's
      left edge; the last bin holds 1.0). Not recorded for a model without
      ``predict_proba`` or a ``teach`` without the pool.

    Penultimate features are not recorded (N x D per round): use
    :class:`skal.callbacks.RoundRecorder` for t-SNE figures.

    Parameters
    ----------
    classes : array-like, default=None
        The classes whose labeled counts are recorded (0 included), in order;
        None: the classes of ``eval_set`` (then any other label seen).
    bins : int, default=20
        Histogram bins on [0, 1].

    Attributes
    ----------
    rows_ : list of tuple
        ``(round, quantity, key, value)``, keys as strings (as a CSV reads
        them back).
    """

    def __init__(self, classes=None, bins=CONFIDENCE_BINS):
        self.classes = classes
        self.bins = bins

    def on_fit_begin(self, learner, *, eval_set=None, **kwargs):
        if not (isinstance(self.bins, (int, np.integer)) and self.bins >= 1):
            raise ValueError(f"bins must be an integer >= 1, got {self.bins!r}.")
        self._eval_set = eval_set  # validated by the learner; not a result
        self.rows_ = []

    def on_round_end(
        self,
        learner,
        *,
        round_,
        labeled_indices,
        labels,
        estimator,
        X=None,
        unlabeled_indices=None,
        **kwargs,
    ):
        round_ = int(round_)
        if self._eval_set is not None:
            self._add(round_, CLASS_ACCURACY, self._class_accuracy(estimator))
        self._add(round_, LABELED_COUNT, self._class_counts(labels))
        pool_known = X is not None and unlabeled_indices is not None
        if pool_known and hasattr(estimator, "predict_proba"):
            confidence = embeddings.predict_proba(estimator, X).max(axis=1)
            for quantity, rows in (
                (MAX_PROBA_LABELED, labeled_indices),
                (MAX_PROBA_UNLABELED, unlabeled_indices),
            ):
                self._add(round_, quantity, self._histogram(confidence[rows]))

    def to_frame(self):
        """The recorded rows as a DataFrame (columns ``DIAGNOSTIC_COLUMNS``)."""
        return pd.DataFrame(self.rows_, columns=DIAGNOSTIC_COLUMNS)

    def _add(self, round_, quantity, values):
        self.rows_ += [(round_, quantity, key, value) for key, value in values]

    def _class_accuracy(self, estimator):
        X_eval, y_eval = self._eval_set
        y_eval = np.asarray(y_eval)
        correct = np.asarray(estimator.predict(X_eval)) == y_eval
        return [(str(c), float(correct[y_eval == c].mean())) for c in np.unique(y_eval)]

    def _class_counts(self, labels):
        labels = np.asarray(labels)
        if self.classes is not None:
            classes = list(np.asarray(self.classes))
        elif self._eval_set is not None:
            classes = list(np.unique(self._eval_set[1]))
        else:
            classes = []
        classes += [c for c in np.unique(labels) if c not in classes]
        return [(str(c), float(np.sum(labels == c))) for c in classes]

    def _histogram(self, values):
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        counts, _ = np.histogram(values, bins=edges)
        return [(f"{edge:.6g}", float(n)) for edge, n in zip(edges[:-1], counts)]


def monitoring_callbacks(
    *,
    evaluate=(),
    ssl_every=1,
    stopping=False,
    diagnostics=False,
    seed,
    estimator,
    n_classes,
    dataset,
    classes=None,
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
    diagnostics : bool, default=False
        Add a :class:`RoundDiagnostics` (counting ``classes``).
    seed : int
        The cell's seed. The semi-supervised learner of round ``r`` gets the
        same seed for every strategy of a seed, so that strategies differ only
        by their labels.
    estimator : classifier
    n_classes : int
    dataset : str
    classes : array-like, default=None
        The pool's classes (the labeled counts of ``diagnostics``).

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
    if diagnostics:
        callbacks.append(RoundDiagnostics(classes=classes))
    return callbacks


def monitor_columns(callbacks):
    """The cell columns of fitted callbacks (a learner's ``callbacks_``).

    Returns
    -------
    columns : dict
        ``ssl_accuracy`` (NaN on rounds not evaluated) and ``ssl_seconds``
        (0 there) for a SemiSupervisedScore, ``stop_<name>`` (bool: fired at that round) and
        ``stat_<name>`` (its statistic, NaN where undefined) for each stopping
        criterion; one value per round. Other callbacks add nothing.
    """
    columns, statistics = {}, {}
    for callback in callbacks:
        if isinstance(callback, SemiSupervisedScore):
            name = SSL_COLUMN
            values = [entry["statistic"] for entry in callback.history_]
            statistics[SSL_SECONDS] = [entry["seconds"] for entry in callback.history_]
        elif isinstance(callback, StoppingCriterion):
            name = STOP_PREFIX + callback.name
            values = [bool(entry["fired"]) for entry in callback.history_]
            statistics[STATISTIC_PREFIX + callback.name] = [
                float(entry["statistic"]) for entry in callback.history_
            ]
        else:
            continue
        if name in columns:
            raise ValueError(
                f"Two callbacks write the cell column {name!r}; give at most one "
                f"SemiSupervisedScore and one criterion of each class."
            )
        columns[name] = values
    merged = {**columns, **statistics}
    # ssl, then stop_*, then stat_* columns, each group in the callbacks' order.
    order = sorted(merged, key=lambda name: monitor_column_order(name)[0])
    return {name: merged[name] for name in order}


def monitor_diagnostics(callbacks):
    """The table of the :class:`RoundDiagnostics` among fitted callbacks, or None."""
    found = [c for c in callbacks if isinstance(c, RoundDiagnostics)]
    if len(found) > 1:
        raise ValueError(
            "Two RoundDiagnostics callbacks write the cell's diagnostics table; "
            "give at most one."
        )
    return found[0].to_frame() if found else None
