"""NPC against a brute-force Gram matrix built from per-sample autograd gradients.

The reference follows the documented rule literally: the last-layer output-gradient
Gram matrix of labeled set + batch (class blocks traced, paper 004 section 3.4) from
materialized float64 gradient vectors, ``eigvalsh``, and the key (rank, smallest
non-zero eigenvalue) with an eigenvalue counted as non-zero above
``largest * m * eps * 1e3``.
"""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner, gradients
from skal.strategies import NPC
from skal.strategies import npc as npc_module
from skal.strategies.npc import npc_criterion

from ..conftest import tiny_mlp


def output_gradients(net, X):
    """d z_k / d [W, b] of the output layer per sample and class: (N, C, P), float64."""
    module = net.module_.eval()
    layer = module.output_layer
    out = []
    for x in X:
        logits = module(torch.as_tensor(x[None]))[0]
        per_class = []
        for k in range(len(logits)):
            gW, gb = torch.autograd.grad(
                logits[k], (layer.weight, layer.bias), retain_graph=True
            )
            per_class.append(torch.cat([gW.flatten(), gb]).double().numpy())
        out.append(per_class)
    return np.array(out)


def input_gradients(X):
    """The same for a linear model (z = W x + b): d z_k / d [W, b] = e_k [x, 1]."""
    X = np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)
    h = np.hstack([X, np.ones((len(X), 1))])
    return h[:, None, :]  # one class block is enough up to the factor C


def traced_gram(gradients):
    """Paper 004's Gram matrix with each C x C class block replaced by its trace."""
    m, C, P = gradients.shape
    full = gradients.reshape(m * C, P) @ gradients.reshape(m * C, P).T
    return full.reshape(m, C, m, C).trace(axis1=1, axis2=3)


def brute_force_key(gradients):
    """(rank, smallest non-zero eigenvalue, largest eigenvalue) of the traced Gram.

    Rank and value follow the documented rule; the largest eigenvalue sets the
    tolerance of comparisons (see ``close``).
    """
    eigenvalues = np.linalg.eigvalsh(traced_gram(gradients))
    m = len(gradients)
    cut = eigenvalues[-1] * m * np.finfo(np.float64).eps * 1e3
    # The fixture must not sit on the tolerance: every eigenvalue is far from it.
    assert not np.any((eigenvalues > cut / 100) & (eigenvalues < cut * 100))
    nonzero = eigenvalues[eigenvalues > cut]
    value = float(nonzero.min()) if len(nonzero) else 0.0
    return len(nonzero), value, float(eigenvalues[-1])


def close(value, reference, largest):
    """Equal up to the float32 rounding of the features (autograd's single-sample
    forward passes and NPC's batched one round differently): eigenvalues move by
    up to ~1e-7 of the largest one."""
    return abs(value - reference) <= 1e-6 * largest


def candidate_keys(strategy, g_labeled, g_pool):
    return [
        brute_force_key(np.concatenate([g_labeled, g_pool[batch]]))
        for batch in strategy.candidate_batches_
    ]


def assert_picks_the_best_candidate(strategy, picks, keys, scale=1.0):
    """The chosen batch has the best key (or one tied within the tolerance)."""
    best_rank, best_value, largest = max(keys)
    chosen = [
        i for i, b in enumerate(strategy.candidate_batches_) if np.array_equal(b, picks)
    ]
    assert chosen, "the returned batch is not one of the candidates"
    rank, value, _ = keys[chosen[0]]
    assert rank == best_rank and (
        value >= best_value or close(value, best_value, largest)
    ), f"NPC chose {(rank, value)}, the best candidate is {(best_rank, best_value)}"
    assert strategy.best_rank_ == rank
    assert close(strategy.best_value_ / scale, value, largest)


def assert_a_real_choice(keys):
    """Candidates differ by far more than the tolerance: picking one is a decision."""
    ranks, values, largest = np.array(keys).T
    top = values[ranks == ranks.max()]
    assert top.max() - np.median(top) > 10 * 1e-6 * largest.max()


def kill_units(net, units):
    """Zero the weights and bias of some units of the last hidden layer: dead ReLUs."""
    linear = [m for m in net.module_.hidden if hasattr(m, "weight")][-1]
    with torch.no_grad():
        if isinstance(linear, torch.nn.Linear):
            linear.weight[units] = 0.0
        else:  # SparseInputLinear stores its weight transposed
            linear.weight[:, units] = 0.0
        linear.bias[units] = 0.0
    return net


def features(net, X):
    return gradients.last_layer_factors(net, X)[0].h


def feature_rank(g):
    return np.linalg.matrix_rank(g[:, 0, :])


# ----------------------------------------------------------------- the criterion
def test_criterion_equals_paper_when_the_gram_is_nonsingular(blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(32, 24)).fit(X, y)  # D + 1 = 25
    labeled, batch = X[:3], X[100:104]  # 7 rows: full row rank
    paper = np.linalg.eigvalsh(
        traced_gram(output_gradients(net, np.vstack([labeled, batch])))
    )[0]
    assert paper > 1e-6
    rank, value = npc_criterion(features(net, labeled), features(net, batch), 4)
    assert rank == 7
    np.testing.assert_allclose(value, paper, rtol=1e-4)


def test_criterion_is_the_smallest_nonzero_eigenvalue_past_the_span(blobs):
    X, y = blobs
    net = kill_units(tiny_mlp(hidden_layer_sizes=(8,)).fit(X, y), [0, 1, 2])
    rows = list(range(10)) + list(range(100, 105))  # 15 rows, features span 6 dims
    g = output_gradients(net, X[rows])
    assert feature_rank(g) == 6
    paper = np.linalg.eigvalsh(traced_gram(g))
    assert abs(paper[0]) < 1e-6 * paper[-1]  # the paper's value is 0 for any batch
    rank, value = npc_criterion(features(net, X[:10]), features(net, X[100:105]), 4)
    assert rank == 6
    np.testing.assert_allclose(value, paper[-6], rtol=1e-4)  # 6th largest of 15


# ------------------------------------------------------- the search, rank-deficient
def dead_units_more_rows_than_rank(X, y):
    """n_L + n = 8 > r = 6: 3 of 8 last hidden units dead, so r = 5 + bias."""
    net = kill_units(tiny_mlp().fit(X, y), [1, 4, 6])
    return net, np.arange(4), np.arange(200, 240), 4, 30


def labeled_rank_short_of_the_span_by_more_than_n(X, y):
    """r - rank(H_L) = 7 - 3 > n = 2: the labeled set repeats 3 samples twice."""
    net = kill_units(tiny_mlp().fit(X, y), [2, 5])
    return net, np.array([0, 1, 2, 0, 1, 2]), np.arange(200, 240), 2, 30


def labeled_set_spans_everything(X, y):
    """n_L = 60 > r = 33 (8 of 40 units dead), n = 3: the interlacing bounds prune."""
    net = kill_units(tiny_mlp(hidden_layer_sizes=(40,)).fit(X, y), np.arange(0, 40, 5))
    return net, np.arange(60), np.arange(200, 260), 3, 40


@pytest.mark.parametrize(
    "fixture",
    [
        dead_units_more_rows_than_rank,
        labeled_rank_short_of_the_span_by_more_than_n,
        labeled_set_spans_everything,
    ],
)
def test_search_picks_the_best_batch_under_the_brute_force_rule(fixture, blobs):
    X, y = blobs
    net, labeled, pool_rows, n, n_candidates = fixture(X, y)
    pool = X[pool_rows]
    g_labeled, g_pool = output_gradients(net, X[labeled]), output_gradients(net, pool)
    r = feature_rank(np.concatenate([g_labeled, g_pool]))
    width = g_pool.shape[2] // len(net.classes_)  # D + 1
    assert r < width  # dead units
    assert len(labeled) + n > r or r - feature_rank(g_labeled) > n
    strategy = NPC(n_candidates=n_candidates, random_state=0).fit(
        X[labeled], y[labeled], estimator=net
    )
    picks = strategy.query(pool, n)
    keys = candidate_keys(strategy, g_labeled, g_pool)
    assert_a_real_choice(keys)
    assert_picks_the_best_candidate(strategy, picks, keys)
    if fixture is labeled_set_spans_everything:
        assert strategy.n_evaluated_ < n_candidates // 2


@pytest.mark.parametrize("n_labeled", [0, 4, 40])
def test_search_on_full_rank_features(n_labeled, blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(32, 24)).fit(X, y)  # D + 1 = 25
    strategy = NPC(n_candidates=25, random_state=0).fit(
        X[:n_labeled] if n_labeled else None, y[:n_labeled], estimator=net
    )
    pool = X[200:260]
    picks = strategy.query(pool, 5)
    g_pool = output_gradients(net, pool)
    g_labeled = output_gradients(net, X[:n_labeled]).reshape(-1, *g_pool.shape[1:])
    keys = candidate_keys(strategy, g_labeled, g_pool)
    assert_picks_the_best_candidate(strategy, picks, keys)


@pytest.mark.parametrize("n_labeled", [3, 40])
def test_proposition_1_no_duplicates_while_distinct_batches_exist(n_labeled, blobs):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(16, 12)).fit(X, y)
    unique = X[300:306]
    pool = np.vstack(
        [unique, unique, unique, X[:2]]
    )  # each row three times + 2 labeled rows
    strategy = NPC(n_candidates=200, random_state=1).fit(
        X[:n_labeled], y[:n_labeled], estimator=net
    )
    picks = strategy.query(pool, 4)
    chosen = {tuple(pool[i]) for i in picks}
    assert len(chosen) == 4
    assert not chosen & {tuple(row) for row in X[:n_labeled]}


def test_duplicate_check_hashes_only_the_rows_of_leading_batches(blobs, monkeypatch):
    X, y = blobs
    net = tiny_mlp(hidden_layer_sizes=(40,)).fit(X, y)
    hashed = []
    real = npc_module.row_digests

    def counting(X, rows=None):
        digests = real(X, rows)
        hashed.extend(digests)
        return digests

    monkeypatch.setattr(npc_module, "row_digests", counting)
    strategy = NPC(n_candidates=100, random_state=0).fit(X[:60], y[:60], estimator=net)
    hashed.clear()
    strategy.query(X[100:], 3)
    assert len(hashed) <= 3 * strategy.n_evaluated_ < 300


# --------------------------------------------------------------------- sparse input
def wide_sparse_text(n_samples, n_features, seed):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, size=n_samples)
    X = sparse.random(
        n_samples, n_features, density=0.01, format="csr", random_state=rng
    )
    X = X + sparse.csr_matrix(
        (np.ones(n_samples), (np.arange(n_samples), y * 3)),
        shape=(n_samples, n_features),
    )
    return sparse.csr_matrix(X, dtype=np.float64), y


@pytest.fixture
def no_densifying(monkeypatch):
    """Make densifying a sparse matrix with ``rows`` x ``width`` or more an error."""

    def guard(rows, width):
        for name in ("toarray", "todense"):
            real = getattr(sparse.csr_matrix, name)

            def refuse(self, *args, _real=real, **kwargs):
                if self.shape[0] >= rows and self.shape[1] >= width:
                    raise AssertionError(f"densified a {self.shape} sparse matrix")
                return _real(self, *args, **kwargs)

            monkeypatch.setattr(sparse.csr_matrix, name, refuse)

    return guard


@pytest.mark.parametrize(
    "n_features, n_samples, refused_rows",
    [
        # Column space: a 401 x 401 Gram matrix, but no pool-sized array.
        (400, 1200, 500),
        # Row space: nothing as wide as the features is densified; with 200
        # samples the candidates do not cover the pool, with 140 they do (the
        # pool's products with the labeled rows are then computed once).
        (3000, 200, 2),
        (3000, 140, 2),
    ],
)
def test_sparse_pool_stays_sparse_and_matches_dense(
    n_features, n_samples, refused_rows, no_densifying
):
    X, y = wide_sparse_text(n_samples, n_features, seed=0)
    model = LogisticRegression(max_iter=300).fit(X[:40], y[:40])
    pool = X[40:]
    dense_pool = pool.toarray()

    def npc():
        return NPC(n_candidates=30, random_state=0).fit(X[:40], y[:40], estimator=model)

    dense = npc()
    dense_picks = dense.query(dense_pool, 4)
    keys = candidate_keys(dense, input_gradients(X[:40]), input_gradients(dense_pool))
    no_densifying(refused_rows, n_features)
    sparse_strategy = npc()
    sparse_picks = sparse_strategy.query(pool, 4)
    np.testing.assert_array_equal(
        sparse_strategy.candidate_batches_, dense.candidate_batches_
    )
    np.testing.assert_array_equal(sparse_picks, dense_picks)
    assert sparse_strategy.best_rank_ == dense.best_rank_ == 44
    np.testing.assert_allclose(
        sparse_strategy.best_value_, dense.best_value_, rtol=1e-8
    )
    # Both are the best candidate under the brute-force rule (C = 3 classes).
    assert_picks_the_best_candidate(sparse_strategy, sparse_picks, keys, scale=3.0)


def test_default_number_of_candidates_and_learner(blobs):
    X, y = blobs
    learner = ActiveLearner(
        tiny_mlp(), NPC(max_candidates=30), batch_size=5, n_rounds=2, random_state=0
    )
    learner.fit(X, y)
    assert learner.history_["n_labeled"].tolist() == [5, 10, 15]
    assert np.isfinite(learner.strategy_.best_value_)
    assert learner.strategy_.candidate_batches_.shape == (30, 5)
