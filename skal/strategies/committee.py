"""Query by committee: disagreement of models trained on bootstrap resamples.

References
----------
Seung, H. S., Opper, M. & Sompolinsky, H. (1992). Query by Committee. COLT.
Abe, N. & Mamitsuka, H. (1998). Query Learning Strategies Using Boosting and
Bagging. ICML (committees of bootstrap resamples, "query by bagging").
"""

from numbers import Integral

import numpy as np
from scipy.special import entr
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from .. import embeddings
from ._registry import register
from .base import QueryStrategy

_MEASURES = ("vote_entropy", "kl")
_MAX_SEED = np.iinfo(np.int32).max


@register("qbc")
class QueryByCommittee(QueryStrategy):
    """Query by committee (``qbc``) with a bagged committee.

    ``fit`` trains the committee: each member is a clone of the fitted estimator
    (or of an estimator of ``committee``) trained on a bootstrap resample of the
    labeled set. ``query`` ranks the pool by the members' disagreement:

    - ``"vote_entropy"``: ``-sum_c (V_c / M) log(V_c / M)``, the entropy of the
      distribution of the ``M`` members' hard votes ``V_c`` (Dagan & Engelson 1995);
    - ``"kl"``: ``(1/M) sum_m KL(p_m || p_bar)``, the mean Kullback-Leibler
      divergence of the members' predictions to the consensus ``p_bar = mean_m
      p_m`` (McCallum & Nigam 1998). It equals ``H(p_bar) - mean_m H(p_m)``, the
      form used here (exact, and free of ``0 log 0`` issues).

    Members' probabilities are mapped into the order of the fitted estimator's
    ``classes_``; a class a member never saw gets probability 0. Members whose
    constructor takes ``classes`` (skal's nets) are given the full class list, so
    they keep every output even when their resample misses a class; for other
    members, a resample holding a single class (possible on tiny labeled sets) is
    redrawn, since most classifiers cannot be trained on one class.

    Cost: ``fit`` trains ``M`` models (``M`` times the training cost of the
    estimator, every round: this is what QBC is); ``query`` makes ``M`` forward
    passes over the pool, O(M N C) after them. Memory O(N C): the members'
    predictions are reduced one member at a time.

    Parameters
    ----------
    n_members : int, default=5
        Committee size ``M`` when the committee is made of clones of the
        fitted estimator (ignored when ``committee`` is given).
    committee : list of estimators, default=None
        Unfitted estimators to train as the committee, one bootstrap resample each;
        ``None`` means ``n_members`` clones of the fitted estimator.
    measure : {"vote_entropy", "kl"}, default="vote_entropy"
        Disagreement measure.
    random_state : int, RandomState instance or None, default=None
        Draws, for each member in turn, a seed and then its bootstrap resample.
        Clones of the fitted estimator get that seed as their ``random_state``
        (all members would otherwise start from the same weights); estimators of
        ``committee`` get it only where their ``random_state`` is None.

    Attributes
    ----------
    members_ : list of fitted estimators
        The committee.
    bootstrap_indices_ : list of ndarray
        Rows of the labeled set each member was trained on.

    References
    ----------
    Seung, H. S., Opper, M. & Sompolinsky, H. (1992). Query by Committee. COLT.
    Dagan, I. & Engelson, S. P. (1995). Committee-Based Sampling for Training
    Probabilistic Classifiers. ICML.
    McCallum, A. & Nigam, K. (1998). Employing EM and Pool-Based Active Learning
    for Text Classification. ICML.
    """

    _parameter_constraints = {
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "committee": [list, tuple, None],
        "measure": [StrOptions(set(_MEASURES))],
        "random_state": ["random_state"],
    }

    def __init__(
        self, n_members=5, committee=None, measure="vote_entropy", random_state=None
    ):
        self.n_members = n_members
        self.committee = committee
        self.measure = measure
        self.random_state = random_state

    def _fit(self, X, y):
        self._check_params()
        if X is None or X.shape[0] == 0:
            raise ValueError(
                "QueryByCommittee trains its committee on the labeled set: call "
                "fit(X_labeled, y_labeled, estimator=...) with at least one sample."
            )
        if not hasattr(self.estimator_, "classes_"):
            raise TypeError(
                f"QueryByCommittee maps the members' votes to the classes of the "
                f"estimator, but {type(self.estimator_).__name__} has no classes_."
            )
        if self.committee is None:
            templates, reseed_all = [self.estimator_] * self.n_members, True
        else:
            templates, reseed_all = list(self.committee), False
        rng = check_random_state(self.random_state)
        y = np.asarray(y)
        self.members_, self.bootstrap_indices_ = [], []
        for template in templates:
            member = clone(template)
            seed = int(rng.randint(_MAX_SEED))
            _set_random_states(member, seed, reseed_all)
            params = member.get_params(deep=False)
            takes_classes = "classes" in params
            if takes_classes and params["classes"] is None:
                member.set_params(classes=self.estimator_.classes_)
            rows = _bootstrap(rng, y, need_two_classes=not takes_classes)
            member.fit(X[rows], y[rows])
            self.members_.append(member)
            self.bootstrap_indices_.append(rows)

    def _check_params(self):
        if self.committee is not None and len(self.committee) == 0:
            raise ValueError("committee is empty: give at least one estimator.")

    def _score(self, X_pool):
        classes = np.asarray(self.estimator_.classes_)
        n_rows, n_classes = X_pool.shape[0], len(classes)
        votes = np.zeros((n_rows, n_classes))
        mean_proba = np.zeros((n_rows, n_classes))
        mean_entropy = np.zeros(n_rows)
        for member in self.members_:
            proba = member_proba(member, X_pool, classes)
            votes[np.arange(n_rows), proba.argmax(axis=1)] += 1
            mean_proba += proba
            mean_entropy += entr(proba).sum(axis=1)
        n_members = len(self.members_)
        if self.measure == "vote_entropy":
            return entr(votes / n_members).sum(axis=1)
        return entr(mean_proba / n_members).sum(axis=1) - mean_entropy / n_members


def member_proba(member, X, classes):
    """Probabilities of ``member`` over ``classes`` (0 for classes it never saw).

    Parameters
    ----------
    member : fitted classifier with ``predict_proba`` and ``classes_``
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    classes : ndarray of shape (n_classes,)
        The target class order.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes), float64
    """
    proba = embeddings.predict_proba(member, X)
    member_classes = np.asarray(member.classes_)
    if len(member_classes) == len(classes) and np.array_equal(member_classes, classes):
        return proba
    position = {label: i for i, label in enumerate(classes.tolist())}
    try:
        columns = [position[label] for label in member_classes.tolist()]
    except KeyError as exc:
        raise ValueError(
            f"A committee member predicts the class {exc.args[0]!r}, which the "
            f"estimator does not know (its classes are {classes.tolist()})."
        ) from None
    full = np.zeros((proba.shape[0], len(classes)))
    full[:, columns] = proba
    return full


def _bootstrap(rng, y, need_two_classes, max_draws=100):
    """Rows of a bootstrap resample of ``y``.

    With ``need_two_classes`` (members that cannot be told the class list), a
    resample holding a single class is redrawn, up to ``max_draws`` times, when
    ``y`` has two or more: most classifiers cannot be trained on one class.
    """
    need_two_classes = need_two_classes and len(np.unique(y)) > 1
    for _ in range(max_draws):
        rows = rng.randint(len(y), size=len(y))
        if not need_two_classes or len(np.unique(y[rows])) > 1:
            break
    return rows


def _set_random_states(estimator, seed, overwrite):
    """Set every ``random_state`` parameter (only the None ones unless ``overwrite``)."""
    params = estimator.get_params(deep=True)
    keys = {
        key: seed
        for key, value in params.items()
        if (key == "random_state" or key.endswith("__random_state"))
        and (overwrite or value is None)
    }
    if keys:
        estimator.set_params(**keys)
