"""Query by committee against a committee trained and scored by hand."""

import numpy as np
import pytest
from scipy.special import rel_entr
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from skal import ActiveLearner
from skal.strategies import QueryByCommittee, top_n

from ..conftest import tiny_mlp


def hand_committee(estimator, X, y, n_members, seed):
    """Members trained as documented: per member, a seed, then a bootstrap."""
    rng = np.random.RandomState(seed)
    members, bootstraps = [], []
    for _ in range(n_members):
        member_seed = rng.randint(np.iinfo(np.int32).max)
        rows = rng.randint(len(y), size=len(y))
        members.append(
            clone(estimator).set_params(random_state=member_seed).fit(X[rows], y[rows])
        )
        bootstraps.append(rows)
    return members, bootstraps


def full_proba(member, X, classes):
    proba = np.zeros((len(X), len(classes)))
    for j, label in enumerate(member.classes_):
        proba[:, list(classes).index(label)] = member.predict_proba(X)[:, j]
    return proba


def vote_entropy(probas):
    votes = np.stack([p.argmax(axis=1) for p in probas], axis=1)  # (N, M)
    scores = []
    for row in votes:
        shares = np.bincount(row) / len(row)
        shares = shares[shares > 0]
        scores.append(-np.sum(shares * np.log(shares)))
    return np.array(scores)


def mean_kl_to_consensus(probas):
    consensus = np.mean(probas, axis=0)
    return np.mean([rel_entr(p, consensus).sum(axis=1) for p in probas], axis=0)


@pytest.mark.parametrize("measure", ["vote_entropy", "kl"])
def test_scores_equal_a_hand_trained_committee(measure, blobs):
    X, y = blobs
    # Class 3 is rare in the labeled set, so some resamples miss it.
    labeled = np.r_[np.flatnonzero(y[:150] != 3)[:58], np.flatnonzero(y == 3)[:2]]
    X_lab, y_lab, pool = X[labeled], y[labeled], X[200:]
    model = LogisticRegression(max_iter=500).fit(X_lab, y_lab)
    strategy = QueryByCommittee(n_members=6, measure=measure, random_state=3).fit(
        X_lab, y_lab, estimator=model
    )
    members, bootstraps = hand_committee(model, X_lab, y_lab, 6, seed=3)
    for ours, rows in zip(strategy.bootstrap_indices_, bootstraps):
        np.testing.assert_array_equal(ours, rows)
    assert any(len(m.classes_) < 4 for m in members)  # the mapping is exercised
    probas = [full_proba(m, pool, model.classes_) for m in members]
    expected = (
        vote_entropy(probas)
        if measure == "vote_entropy"
        else mean_kl_to_consensus(probas)
    )
    np.testing.assert_allclose(strategy.score(pool), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(strategy.query(pool, 12), top_n(expected, 12))


def test_given_committee_and_class_list(blobs):
    X, y = blobs
    X_lab, y_lab = X[:40][y[:40] != 2], y[:40][y[:40] != 2]  # class 2 unseen
    model = tiny_mlp(classes=np.arange(4)).fit(X_lab, y_lab)
    committee = [tiny_mlp(random_state=None), GaussianNB(), LogisticRegression()]
    strategy = QueryByCommittee(committee=committee, measure="kl", random_state=0).fit(
        X_lab, y_lab, estimator=model
    )
    net, bayes, logreg = strategy.members_
    np.testing.assert_array_equal(net.classes_, np.arange(4))  # told the classes
    assert net.random_state is not None  # seeded because it was None
    assert committee[0].random_state is None  # the given estimators are untouched
    np.testing.assert_array_equal(bayes.classes_, [0, 1, 3])
    scores = strategy.score(X[200:])
    assert scores.shape == (200,) and np.all(scores >= -1e-12)
    # Only the network gives class 2 any probability.
    consensus = np.mean(
        [full_proba(m, X[200:], np.arange(4)) for m in strategy.members_], axis=0
    )
    np.testing.assert_allclose(
        consensus[:, 2], full_proba(net, X[200:], np.arange(4))[:, 2] / 3, rtol=1e-5
    )


def test_clones_of_the_estimator_get_distinct_seeds(blobs):
    X, y = blobs
    model = tiny_mlp().fit(X[:60], y[:60])
    strategy = QueryByCommittee(n_members=3, random_state=0).fit(
        X[:60], y[:60], estimator=model
    )
    seeds = [m.random_state for m in strategy.members_]
    assert len(set(seeds)) == 3 and model.random_state == 0


def test_bad_parameters(blobs):
    X, y = blobs
    model = LogisticRegression(max_iter=300).fit(X[:50], y[:50])
    for params, message in [
        ({"measure": "jsd"}, "'measure' parameter of QueryByCommittee must be"),
        ({"n_members": 0}, "'n_members' parameter of QueryByCommittee must be"),
        ({"committee": []}, "committee is empty"),
    ]:
        with pytest.raises(ValueError, match=message):
            QueryByCommittee(**params).fit(X[:50], y[:50], estimator=model)


def test_runs_inside_active_learner(blobs):
    X, y = blobs
    learner = ActiveLearner(
        tiny_mlp(dropout=0.2),
        QueryByCommittee(n_members=3, measure="kl"),
        batch_size=5,
        n_rounds=2,
        random_state=0,
    ).fit(X[:200], y[:200])
    assert learner.history_["n_labeled"].tolist() == [5, 10, 15]
    assert len(learner.strategy_.members_) == 3
    assert all(len(rows) == 15 for rows in learner.strategy_.bootstrap_indices_)
