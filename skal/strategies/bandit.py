"""Active learning by learning (ALBL): a bandit that learns which strategy to follow.

References
----------
Hsu, W.-N. & Lin, H.-T. (2015). Active Learning by Learning. AAAI.
Beygelzimer, A., Langford, J., Li, L., Reyzin, L. & Schapire, R. E. (2011).
Contextual Bandit Algorithms with Supervised Learning Guarantees. AISTATS (EXP4.P).
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from .. import embeddings
from .._arrays import stack_rows
from .._fingerprints import row_digests
from ._registry import get_strategy, register
from .base import QueryStrategy

DEFAULT_EXPERTS = ("least_confidence", "kcenter")
HISTORY_COLUMNS = ["batch", "expert", "probability", "n_candidates", "label"]
_MAX_SEED = np.iinfo(np.int32).max


@register("albl")
class ALBL(QueryStrategy):
    """Active Learning By Learning (``albl``): EXP4.P over query strategies.

    Each strategy of ``strategies`` is an expert that advises which pool point to
    query; a uniform sampler is one more expert unless ``uniform_sampler=False``.
    The bandit keeps a weight ``w_i`` per expert, queries from the mixture of the
    advice with the expert probabilities ``p_i = (1 - K p_min) w_i / sum w +
    p_min`` (``K`` experts), and is rewarded by the importance-weighted accuracy
    (IW-ACC) of the model trained after the query, on every point it has queried:

        r = (1/T) sum_tau [f(x_tau) = y_tau] / (M_tau q_tau),

    where ``q_tau`` is the probability with which ``x_tau`` was drawn from the
    ``M_tau`` candidates it was drawn from (Hsu & Lin's ``1/(nT) sum W_tau [.]``
    with ``W = 1/q``; one importance weight per candidate set, because skal's pool
    shrinks and may be subsampled from round to round). Each drawn point then
    updates the weights as EXP4.P does,

        w_i <- w_i exp(p_min / 2 (r xi_i(x) / q(x) + (1 / p_i) sqrt(ln(K/delta) / (K T)))),

    with ``xi_i(x)`` the advice of expert ``i`` for the drawn point. As in libact
    (the implementation by the authors' group), the experts are the arms: ``K``
    is the number of experts, ``p_min`` bounds the expert probabilities and the
    variance term is ``1/p_i``. The state (weights, query history, random
    stream) is created by the first ``fit`` and updated by every later one, so it
    persists across the rounds of an :class:`skal.ActiveLearner`; a clone starts
    afresh.

    **Batches.** The paper queries one point, retrains and updates. skal queries
    ``n`` points per retraining, so ``query`` runs ``n`` draws of the
    single-point algorithm with the weights of the round: every expert proposes
    ``n`` points once (its own ``query(X_pool, n)``, most informative first) and,
    at each draw, advises its best proposal not drawn yet, while the uniform
    expert advises every remaining point with probability ``1/M_k``. The draw
    picks an expert from ``p`` and takes its advice, which samples from the
    mixture ``q_k(x) = sum_i p_i xi_i(x)`` over the remaining points, without
    replacement. The next ``fit`` (after the labels came in and the model was
    retrained) computes one IW-ACC reward and applies the ``n`` EXP4.P updates of
    the batch with it: the single-point algorithm with the updates of a batch
    deferred until its labels have retrained the model, since only then is a
    reward observable. Drawing point by point (rather than letting one expert
    pick the whole batch) keeps one importance weight per queried point, which
    IW-ACC needs, and lets several experts contribute to one batch. Deviations, all forced by skal's protocol: experts are asked once per
    batch instead of after every point (K-center's later proposals ignore the
    earlier draws of the batch), points are drawn without replacement from the
    current pool (the paper draws with replacement from the whole data set and
    gets already-labeled points for free), and the reward is computed only for
    queried points whose label came back (a declined or never-labeled point is
    dropped from the history).

    Cost: ``query`` is the sum of the experts' query costs plus O(n (M + K))
    for the draws; ``fit`` fits the experts and predicts the query history once
    (at most the number of points queried). Memory: the queried rows.

    Parameters
    ----------
    strategies : list of str or QueryStrategy, default=None
        The experts, as registered names or instances (cloned). ``None`` means
        ``["least_confidence", "kcenter"]``, the two experts of ALBL in paper 004.
    uniform_sampler : bool, default=True
        Add the uniform sampler as an expert, as libact does by default. It gives
        every pool point a positive probability, which the IW-ACC reward needs to
        be unbiased; ``False`` gives paper 004's two-armed bandit.
    budget : int, default=None
        ``T``: the expected total number of points the bandit will query. It sets
        the default ``p_min``, the variance term and the IW-ACC normalization.
        ``None`` is an anytime variant that uses the number of points queried so
        far instead (at least 1): at query time for ``p_min`` and the variance
        term, at the update for IW-ACC, which is then the importance-weighted
        accuracy averaged over the queries.
    delta : float, default=0.1
        Confidence parameter of EXP4.P (libact's default), ``> 0``.
    p_min : float, default=None
        Minimum probability of an expert, in ``[0, 1/K]``. ``None`` means
        ``min(sqrt(ln K / (K T)), 1/K)``, libact's default (``1/K`` is uniform
        exploration, reached in the first round of the anytime variant).
    random_state : int, RandomState instance or None, default=None
        Source of the draws, and of the seeds of experts whose ``random_state``
        is None.

    Attributes
    ----------
    experts_ : list of QueryStrategy
        The fitted strategy experts (the uniform sampler has no object).
    expert_names_ : list of str
        Name of each expert, ``"uniform"`` last when ``uniform_sampler``.
    expert_probabilities_ : ndarray of shape (K,)
        Current probabilities ``p`` of the experts (those of the next query).
    log_weights_ : ndarray of shape (K,)
        ``log w`` of the experts, up to a common constant.
    p_min_ : float
        The ``p_min`` of the next query.
    rewards_ : list of float
        The IW-ACC reward of every update, oldest first.
    query_history_ : pandas.DataFrame
        One row per queried and labeled point: ``batch`` (1 for the first query),
        ``expert`` (the expert whose advice was taken), ``probability`` (``q``),
        ``n_candidates`` (``M``) and ``label``.
    queried_X_ : ndarray or sparse matrix
        The rows of ``query_history_`` (IW-ACC predicts them after every update).
    pending_queries_ : list
        Draws of the last ``query`` calls, rewarded by the next ``fit`` once their
        labels are in its labeled set.
    n_batches_ : int
        Number of ``query`` calls so far.

    References
    ----------
    Hsu, W.-N. & Lin, H.-T. (2015). Active Learning by Learning. AAAI.
    Beygelzimer, A., Langford, J., Li, L., Reyzin, L. & Schapire, R. E. (2011).
    Contextual Bandit Algorithms with Supervised Learning Guarantees. AISTATS.
    """

    _parameter_constraints = {
        "strategies": [list, tuple, None],
        "uniform_sampler": ["boolean"],
        "budget": [Interval(Integral, 1, None, closed="left"), None],
        "delta": [Interval(Real, 0, None, closed="neither")],
        "p_min": [Interval(Real, 0, 1, closed="both"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        strategies=None,
        uniform_sampler=True,
        budget=None,
        delta=0.1,
        p_min=None,
        random_state=None,
    ):
        self.strategies = strategies
        self.uniform_sampler = uniform_sampler
        self.budget = budget
        self.delta = delta
        self.p_min = p_min
        self.random_state = random_state

    # --- fit: start, or learn from the last batch --------------------------------
    def _fit(self, X, y):
        if not hasattr(self, "experts_"):
            self._start()
        elif self.pending_queries_ and X is not None:
            self._learn_from_batch(X, np.asarray(y))
        for expert in self.experts_:
            expert.fit(X, y, estimator=self.estimator_)
        self._update_expert_probabilities()

    def _start(self):
        self.random_state_ = check_random_state(self.random_state)
        names = DEFAULT_EXPERTS if self.strategies is None else self.strategies
        self.experts_, self.expert_names_ = [], []
        for strategy in names:
            expert = _make_expert(strategy)
            if expert.get_params().get("random_state", 0) is None:
                seed = int(self.random_state_.randint(_MAX_SEED))
                expert.set_params(random_state=np.random.RandomState(seed))
            self.experts_.append(expert)
            self.expert_names_.append(
                getattr(expert, "registered_name", type(expert).__name__)
            )
        if self.uniform_sampler:
            self.expert_names_.append("uniform")
        n_experts = len(self.expert_names_)
        if n_experts == 0:
            raise ValueError(
                "ALBL has no expert: give at least one strategy or keep "
                "uniform_sampler=True."
            )
        if self.p_min is not None and self.p_min > 1 / n_experts:
            raise ValueError(
                f"p_min must be at most 1/K = {1 / n_experts:.4g} for K = "
                f"{n_experts} experts, got {self.p_min!r}."
            )
        self.log_weights_ = np.zeros(n_experts)
        self.rewards_ = []
        self.pending_queries_ = []
        self.queried_X_ = None
        self.query_history_ = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.n_batches_ = 0

    def _horizon(self):
        """``T``: the budget, or (anytime) the number of points rewarded so far."""
        return (
            self.budget if self.budget is not None else max(len(self.query_history_), 1)
        )

    def _update_expert_probabilities(self):
        n_experts = len(self.log_weights_)
        self.p_min_ = (
            float(self.p_min)
            if self.p_min is not None
            else min(
                np.sqrt(np.log(n_experts) / (n_experts * self._horizon())),
                1 / n_experts,
            )
        )
        self.expert_probabilities_ = expert_probabilities(
            self.log_weights_, self.p_min_
        )

    def _learn_from_batch(self, X, y):
        """Reward the pending draws whose labels are in ``(X, y)``; update weights."""
        label_of = dict(zip(row_digests(X), y.tolist()))
        rows_kept, draws_kept = [], []
        for rows, draws in self.pending_queries_:
            for i, (key, draw) in enumerate(zip(row_digests(rows), draws)):
                if key in label_of:
                    rows_kept.append(rows[i : i + 1])
                    draws_kept.append({**draw, "label": label_of[key]})
        self.pending_queries_ = []
        if not draws_kept:
            return
        self.queried_X_ = stack_rows(self.queried_X_, *rows_kept)
        new = pd.DataFrame([{c: d[c] for c in HISTORY_COLUMNS} for d in draws_kept])
        self.query_history_ = (
            pd.concat([self.query_history_, new], ignore_index=True)
            if len(self.query_history_)
            else new
        )
        reward = iw_accuracy(
            self.estimator_.predict(self.queried_X_),
            self.query_history_["label"].to_numpy(),
            self.query_history_["probability"].to_numpy(),
            self.query_history_["n_candidates"].to_numpy(),
            self._horizon(),
        )
        self.rewards_.append(reward)
        for draw in draws_kept:
            self.log_weights_ = exp4p_update(
                self.log_weights_, draw, reward, self.delta
            )

    # --- query: n draws from the mixture of the experts' advice -----------------------
    def _select(self, X_pool, n):
        n_candidates = X_pool.shape[0]
        with embeddings.shared_forward_passes():  # one network pass for all experts
            proposals = [
                np.asarray(expert.query(X_pool, n)) for expert in self.experts_
            ]
        p = self.expert_probabilities_
        rng = self.random_state_
        self.n_batches_ += 1
        taken = np.zeros(n_candidates, dtype=bool)
        position = np.zeros(len(proposals), dtype=np.int64)
        picks, draws = [], []
        for k in range(n):
            advised = np.empty(len(proposals), dtype=np.int64)
            for i, proposal in enumerate(proposals):
                while taken[proposal[position[i]]]:
                    position[i] += 1
                advised[i] = proposal[position[i]]
            expert = int(rng.choice(len(p), p=p))
            if expert < len(proposals):
                pick = int(advised[expert])
            else:  # the uniform sampler
                pick = int(rng.choice(np.flatnonzero(~taken)))
            advice = (advised == pick).astype(np.float64)
            if self.uniform_sampler:
                advice = np.append(advice, 1.0 / (n_candidates - k))
            draws.append(
                {
                    "batch": self.n_batches_,
                    "expert": self.expert_names_[expert],
                    "probability": float(p @ advice),
                    "n_candidates": n_candidates - k,
                    "advice": advice,
                    "expert_probabilities": p.copy(),
                    "p_min": self.p_min_,
                    "horizon": self._horizon(),
                }
            )
            taken[pick] = True
            picks.append(pick)
        self.pending_queries_.append((X_pool[picks], draws))
        return np.asarray(picks)


def expert_probabilities(log_weights, p_min):
    """EXP4.P's expert probabilities ``(1 - K p_min) w / sum(w) + p_min``."""
    weights = np.exp(log_weights - np.max(log_weights))
    return (1 - len(weights) * p_min) * weights / weights.sum() + p_min


def exp4p_update(log_weights, draw, reward, delta):
    """``log w`` after one EXP4.P update for one drawn point.

    Parameters
    ----------
    log_weights : ndarray of shape (K,)
    draw : dict
        ``advice`` (``xi_i(x)`` of each expert for the drawn point),
        ``probability`` (``q(x)``), ``expert_probabilities`` (``p`` at the draw),
        ``p_min`` and ``horizon`` (``T``) at the draw.
    reward : float
    delta : float

    Returns
    -------
    log_weights : ndarray of shape (K,)
    """
    n_experts = len(log_weights)
    reward_estimate = reward * draw["advice"] / draw["probability"]
    variance_bound = 1.0 / draw["expert_probabilities"]
    confidence = np.sqrt(np.log(n_experts / delta) / (n_experts * draw["horizon"]))
    return log_weights + draw["p_min"] / 2 * (
        reward_estimate + variance_bound * confidence
    )


def iw_accuracy(predicted, labels, probabilities, n_candidates, horizon):
    """Importance-weighted accuracy ``(1/T) sum [f(x) = y] / (M q)``.

    Parameters
    ----------
    predicted, labels : ndarray of shape (n_queried,)
    probabilities : ndarray of shape (n_queried,)
        ``q``: the probability with which each point was drawn.
    n_candidates : ndarray of shape (n_queried,)
        ``M``: the number of candidates each point was drawn from.
    horizon : int
        ``T``.

    Returns
    -------
    reward : float
    """
    correct = np.asarray(predicted) == np.asarray(labels)
    return float(np.sum(correct / (np.asarray(n_candidates) * probabilities)) / horizon)


def _make_expert(strategy):
    if isinstance(strategy, str):
        return get_strategy(strategy)
    if isinstance(strategy, QueryStrategy):
        return clone(strategy)
    raise TypeError(
        f"ALBL's strategies must be registered names or QueryStrategy instances, "
        f"got {strategy!r}."
    )
