"""ALBL: EXP4.P against a hand computation, determinism, state across rounds."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner
from skal.strategies import ALBL, Entropy, KCenterGreedy, get_strategy
from skal.strategies.bandit import exp4p_update, expert_probabilities

from ..conftest import tiny_mlp


def hand_exp4p(weights, draws, reward, delta):
    """EXP4.P (Beygelzimer et al. 2011, Algorithm 1) written over the pool points
    as arms, with the experts' probabilities as ALBL's arms (libact's variant)."""
    K = len(weights)
    weights = np.array(weights, dtype=float)
    for draw in draws:
        advice_matrix = draw["advice_matrix"]  # (K, M): xi_i(x) for every point
        p = draw["p"]
        q = p @ advice_matrix
        reward_per_point = np.zeros(advice_matrix.shape[1])
        reward_per_point[draw["drawn"]] = reward / q[draw["drawn"]]
        y_hat = advice_matrix @ reward_per_point
        v_hat = 1 / p
        c = np.sqrt(np.log(K / delta) / (K * draw["T"]))
        weights = weights * np.exp(draw["p_min"] / 2 * (y_hat + v_hat * c))
    return weights


def test_exp4p_update_for_scripted_rewards_matches_hand_computation():
    rng = np.random.RandomState(0)
    K, M, delta = 3, 6, 0.1
    log_weights, weights = np.zeros(K), np.ones(K)
    for reward in [0.2, 0.9, 0.0, 0.5]:
        T, p_min = 8, 0.15
        p = expert_probabilities(log_weights, p_min)
        w = weights / weights.sum()
        np.testing.assert_allclose(p, (1 - K * p_min) * w + p_min)
        draws = []
        for _ in range(2):
            advice_matrix = np.zeros((K, M))
            advice_matrix[0, rng.randint(M)] = 1
            advice_matrix[1, rng.randint(M)] = 1
            advice_matrix[2] = 1 / M  # the uniform expert
            drawn = rng.randint(M)
            draws.append(
                dict(advice_matrix=advice_matrix, p=p, drawn=drawn, T=T, p_min=p_min)
            )
        weights = hand_exp4p(weights, draws, reward, delta)
        for draw in draws:
            advice = draw["advice_matrix"][:, draw["drawn"]]
            log_weights = exp4p_update(
                log_weights,
                {
                    "advice": advice,
                    "probability": p @ advice,
                    "expert_probabilities": p,
                    "p_min": p_min,
                    "horizon": T,
                },
                reward,
                delta,
            )
        np.testing.assert_allclose(np.exp(log_weights), weights, rtol=1e-12)
    assert not np.allclose(weights, weights[0])


def replay_batch(albl, proposals, picks, n_pool):
    """The documented draws of one batch: each expert advises its best proposal
    not drawn yet, the uniform sampler every remaining point."""
    p = albl.expert_probabilities_.copy()
    draws = []
    for k, pick in enumerate(picks):
        heads = [next(i for i in prop if i not in picks[:k]) for prop in proposals]
        advice = np.array([float(h == pick) for h in heads] + [1 / (n_pool - k)])
        draws.append(
            {
                "advice": advice,
                "probability": p @ advice,
                "expert_probabilities": p,
                "p_min": albl.p_min_,
                "horizon": max(len(albl.query_history_), 1),
                "n_candidates": n_pool - k,
            }
        )
    return draws


def test_rounds_match_hand_computed_iw_accuracy_and_weights(blobs):
    X, y = blobs
    X, y, delta = X[:160], y[:160], 0.1
    labeled = list(range(10))
    albl = ALBL(strategies=["least_confidence", KCenterGreedy(space="input")])
    albl.set_params(random_state=0)
    model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
    albl.fit(X[labeled], y[labeled], estimator=model)
    np.testing.assert_allclose(albl.expert_probabilities_, 1 / 3)  # T = 1: uniform
    log_weights = np.zeros(3)
    history = []  # (row, probability, n_candidates)
    for _ in range(3):
        pool = np.setdiff1d(np.arange(len(y)), labeled)
        picks = list(albl.query(X[pool], 8))
        proposals = [list(e.query(X[pool], 8)) for e in albl.experts_]
        draws = replay_batch(albl, proposals, picks, len(pool))
        history += [
            (pool[i], d["probability"], d["n_candidates"]) for i, d in zip(picks, draws)
        ]
        labeled += [pool[i] for i in picks]
        model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
        albl.fit(X[labeled], y[labeled], estimator=model)
        rows = np.array([h[0] for h in history])
        weights_iw = np.array([1 / (h[1] * h[2]) for h in history])
        reward = np.sum((model.predict(X[rows]) == y[rows]) * weights_iw) / len(history)
        assert albl.rewards_[-1] == pytest.approx(reward, rel=1e-12)
        for draw in draws:
            log_weights = exp4p_update(log_weights, draw, reward, delta)
        T = len(history)
        p_min = min(np.sqrt(np.log(3) / (3 * T)), 1 / 3)
        w = np.exp(log_weights)
        np.testing.assert_allclose(
            albl.expert_probabilities_, (1 - 3 * p_min) * w / w.sum() + p_min
        )
        np.testing.assert_array_equal(albl.query_history_["label"], y[rows])
        np.testing.assert_allclose(
            albl.query_history_["probability"], [h[1] for h in history]
        )
    assert albl.query_history_["batch"].tolist() == [1] * 8 + [2] * 8 + [3] * 8
    assert albl.p_min_ == pytest.approx(np.sqrt(np.log(3) / (3 * 24)))


def run_rounds(albl, X, y, n_rounds=3, n=6):
    labeled = list(range(8))
    picks = []
    for _ in range(n_rounds + 1):
        model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
        albl.fit(X[labeled], y[labeled], estimator=model)
        if len(picks) == n_rounds:
            break
        pool = np.setdiff1d(np.arange(len(y)), labeled)
        picked = pool[albl.query(X[pool], n)]
        picks.append(picked)
        labeled += picked.tolist()
    return picks


def test_reproducible_with_random_state(blobs):
    X, y = blobs
    X, y = X[:120], y[:120]
    first = run_rounds(ALBL(random_state=1), X, y)
    again = run_rounds(ALBL(random_state=1), X, y)
    other = run_rounds(ALBL(random_state=2), X, y)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_declined_points_are_not_rewarded(blobs):
    X, y = blobs
    albl = ALBL(random_state=0)
    model = LogisticRegression(max_iter=300).fit(X[:10], y[:10])
    picks = 10 + albl.fit(X[:10], y[:10], estimator=model).query(X[10:100], 5)
    labeled = np.r_[np.arange(10), picks[:3]]  # the last two were never labeled
    model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
    albl.fit(X[labeled], y[labeled], estimator=model)
    assert len(albl.query_history_) == 3 and len(albl.rewards_) == 1
    assert albl.pending_queries_ == []


def test_state_persists_across_rounds_of_active_learner(blobs):
    X, y = blobs
    learner = ActiveLearner(
        tiny_mlp(dropout=0.2), "albl", batch_size=5, n_rounds=3, random_state=0
    ).fit(X[:200], y[:200])
    albl = learner.strategy_
    assert albl.expert_names_ == ["least_confidence", "kcenter", "uniform"]
    assert albl.query_history_["batch"].tolist() == [1] * 5 + [2] * 5 + [3] * 5
    np.testing.assert_array_equal(
        albl.query_history_["label"], y[learner.labeled_indices_[5:]]
    )
    assert len(albl.rewards_) == 3
    assert albl.expert_probabilities_.sum() == pytest.approx(1)
    assert not np.allclose(albl.expert_probabilities_, 1 / 3)  # it learned something


def test_without_uniform_sampler_only_experts_are_followed(blobs):
    X, y = blobs
    model = LogisticRegression(max_iter=300).fit(X[:20], y[:20])
    albl = ALBL(strategies=["margin", "entropy"], uniform_sampler=False, random_state=0)
    picks = albl.fit(X[:20], y[:20], estimator=model).query(X[20:], 6)
    proposed = set(albl.experts_[0].query(X[20:], 6)) | set(
        albl.experts_[1].query(X[20:], 6)
    )
    assert set(picks) <= proposed
    assert albl.expert_names_ == ["margin", "entropy"]


def test_params_clone_and_validation(blobs):
    X, y = blobs
    albl = ALBL(strategies=["margin", Entropy()], budget=50, delta=0.2)
    assert clone(albl).get_params()["strategies"][0] == "margin"
    assert isinstance(clone(albl).get_params()["strategies"][1], Entropy)
    assert get_strategy("albl", p_min=0.1).get_params()["p_min"] == 0.1
    albl.set_params(delta=0.3, strategies=["margin"])
    assert albl.get_params()["delta"] == 0.3
    model = LogisticRegression(max_iter=300).fit(X[:30], y[:30])
    albl = ALBL(budget=100).fit(X[:30], y[:30], estimator=model)
    assert albl.p_min_ == pytest.approx(np.sqrt(np.log(3) / 300))
    for params, error, message in [
        ({"p_min": 0.5}, ValueError, "p_min must be at most 1/K"),
        ({"budget": 0}, ValueError, "'budget' parameter of ALBL must be"),
        ({"delta": 0}, ValueError, "'delta' parameter of ALBL must be"),
        ({"strategies": "margin"}, TypeError, "'strategies' parameter of ALBL"),
        ({"strategies": [3]}, TypeError, "registered names or QueryStrategy"),
        ({"strategies": [], "uniform_sampler": False}, ValueError, "no expert"),
    ]:
        with pytest.raises(error, match=message):
            ALBL(**params).fit(X[:30], y[:30], estimator=model)


def test_experts_share_one_forward_pass(blobs, fitted_mlp, forward_pass_calls):
    X, y = blobs
    albl = ALBL(random_state=0).fit(X[:40], y[:40], estimator=fitted_mlp)
    forward_pass_calls.clear()  # fit may embed the labeled set (K-center)
    albl.query(X[200:300], 5)
    assert forward_pass_calls == [100]  # least confidence and K-center: one pass
