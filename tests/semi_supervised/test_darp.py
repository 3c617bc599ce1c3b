import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning

from skal.semi_supervised import (
    apply_column_duals,
    darp,
    entropy_weights,
    target_class_counts,
)


def random_proba(n, k, seed=0, skew=2.0):
    """Softmax rows of random logits, biased towards the last classes."""
    rng = np.random.RandomState(seed)
    logits = rng.randn(n, k) + np.linspace(0, skew, k)
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


def weighted_kl(X, proba, weights):
    return float(np.sum(weights[:, None] * xlogy(X, X / proba)))


def slsqp_reference(proba, counts, weights):
    """DARP's problem solved by a generic constrained solver (independent reference)."""
    n, k = proba.shape

    def objective(x):
        return weighted_kl(x.reshape(n, k), proba, weights)

    def gradient(x):
        X = np.maximum(x.reshape(n, k), 1e-300)
        return (weights[:, None] * (np.log(X / proba) + 1)).ravel()

    constraints = [
        {"type": "eq", "fun": lambda x: x.reshape(n, k).sum(axis=1) - 1},
        # The last column sum follows from the others and the row sums.
        {"type": "eq", "fun": lambda x: x.reshape(n, k).sum(axis=0)[:-1] - counts[:-1]},
    ]
    start = np.tile(counts / n, (n, 1)).ravel()  # feasible
    result = minimize(
        objective,
        start,
        jac=gradient,
        method="SLSQP",
        bounds=[(1e-12, 1)] * (n * k),
        constraints=constraints,
        options={"ftol": 1e-15, "maxiter": 2000},
    )
    assert result.success, result.message
    return result.x.reshape(n, k)


@pytest.mark.parametrize(
    "target, weighting",
    [
        ("uniform", "entropy"),
        (np.array([0.5, 0.3, 0.2]), None),
        (np.array([1.0, 2.0, 3.0]), "explicit"),
    ],
)
def test_darp_solves_its_constrained_problem(target, weighting):
    proba = random_proba(6, 3, seed=1)
    if isinstance(weighting, str) and weighting == "explicit":
        weighting = np.array([0.5, 1.0, 2.0, 4.0, 1.5, 3.0])
    counts = target_class_counts(target, 6, 3)
    if weighting is None:
        weights = np.ones(6)
    elif isinstance(weighting, str):
        # DARP's weights, computed here independently: 1 / entropy.
        weights = 1 / -(proba * np.log(proba)).sum(axis=1)
    else:
        weights = weighting

    refined = darp(proba, target, weighting=weighting, tol=1e-10)
    reference = slsqp_reference(proba, counts, weights)

    np.testing.assert_allclose(refined.sum(axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(refined.sum(axis=0), counts, atol=1e-8)
    np.testing.assert_allclose(refined, reference, atol=2e-5)
    assert weighted_kl(refined, proba, weights) <= (
        weighted_kl(reference, proba, weights) + 1e-9
    )


def test_counts_as_target_equal_proportions():
    proba = random_proba(20, 4)
    np.testing.assert_allclose(
        darp(proba, [1, 2, 3, 4]), darp(proba, [10, 20, 30, 40]), atol=1e-12
    )


def test_solution_has_the_stationarity_structure_at_scale():
    # KKT: w_m (log(x_mk / p_mk) + 1) = -(lambda_m + nu_k) is additive in (m, k),
    # so it vanishes after removing row and column means.
    proba = random_proba(300, 5, seed=3, skew=3.0)
    refined = darp(proba, tol=1e-10)
    weights = entropy_weights(proba)
    lagrange = weights[:, None] * (np.log(refined / proba) + 1)
    centered = (
        lagrange
        - lagrange.mean(axis=1, keepdims=True)
        - lagrange.mean(axis=0, keepdims=True)
        + lagrange.mean()
    )
    assert np.abs(centered).max() < 1e-8
    np.testing.assert_allclose(refined.sum(axis=0), 60, atol=1e-6)


def test_entropy_weights_move_uncertain_rows_more():
    proba = np.array([[0.98, 0.02], [0.9, 0.1], [0.55, 0.45], [0.5, 0.5]])
    refined = darp(proba)
    change = np.abs(refined - proba).sum(axis=1)
    assert change[0] < change[1] < change[2]
    assert refined.argmax(axis=1).tolist() == [0, 0, 1, 1]


def test_already_aligned_labels_are_unchanged():
    proba = np.array([[0.7, 0.3], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6]])
    np.testing.assert_allclose(darp(proba), proba, atol=1e-12)


def test_zero_target_class_is_emptied_and_the_rest_solved():
    proba = random_proba(30, 3, seed=4)
    refined = darp(proba, [0.5, 0.5, 0.0], tol=1e-10)
    assert np.all(refined[:, 2] == 0)
    # With row sums 1 on the two classes, the KL objective equals, up to a
    # constant per row, that of the rows renormalized over them (same weights).
    kept = proba[:, :2] / proba[:, :2].sum(axis=1, keepdims=True)
    expected = darp(kept, weighting=entropy_weights(proba), tol=1e-10)
    np.testing.assert_allclose(refined[:, :2], expected, atol=1e-8)


def test_duals_reproduce_the_solution_and_warm_start():
    proba = random_proba(100, 4, seed=5)
    refined, duals = darp(proba, [0.1, 0.2, 0.3, 0.4], tol=1e-10, return_duals=True)
    np.testing.assert_allclose(apply_column_duals(proba, duals), refined, atol=1e-12)
    # Starting at the solution, one sweep confirms it.
    again = darp(proba, [0.1, 0.2, 0.3, 0.4], tol=1e-10, column_duals=duals, max_iter=1)
    np.testing.assert_allclose(again, refined, atol=1e-10)


def test_unconverged_solve_warns():
    proba = random_proba(50, 4, seed=6, skew=4.0)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        darp(proba, max_iter=1)


def test_target_class_counts():
    np.testing.assert_allclose(target_class_counts("uniform", 12, 4), [3, 3, 3, 3])
    np.testing.assert_allclose(target_class_counts([1, 0, 3], 8, 3), [2, 0, 6])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(target=[0.5, 0.5]), "one proportion per class"),
        (dict(target=[0.5, -0.1, 0.6]), "non-negative"),
        (dict(target="balanced"), "'uniform'"),
        (dict(weighting="inverse"), "weighting must be"),
        (dict(weighting=np.ones(3)), "one weight per row"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        darp(random_proba(5, 3), **kwargs)


def test_bad_probabilities_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        darp(np.array([[0.5, np.nan], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="zero probability in every row"):
        darp(np.array([[1.0, 0.0], [0.9, 0.0]]))
