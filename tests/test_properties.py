"""Property-based tests of every registered strategy (hypothesis).

Valid inputs: random small pools (dense, CSR, DataFrame; float32 and float64;
duplicate rows; labeled sets with a single class; any n from 1 to the pool size),
with a logistic regression or a tiny skal MLP. ``query`` must return n distinct
in-range integer indices, the same for the same ``random_state``, leave its inputs
unmodified, or raise a documented exception with a clear message.

Bad inputs: NaN/inf, wrong feature count, empty or malformed pools, n out of range
or not an integer, unfitted strategies and estimators. Each must raise the
documented exception type with a message naming the problem. The last test counts
the bad inputs tried and the distinct error cases covered, and reports them.
"""

import functools
import re
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner, config_context
from skal._validation import check_pool
from skal.nets import MLPClassifier
from skal.strategies import available_strategies, get_strategy

# What a strategy may raise on valid input, as documented in skal.strategies.base:
# FloatingPointError when the model's outputs are not finite (huge inputs overflow
# float32), TypeError when the estimator lacks what the strategy needs. Any other
# error on valid input is a bug.
DOCUMENTED_ERRORS = {
    FloatingPointError: r"(NaN or infinity|not finite)",
    TypeError: r"(needs|exposes no|has no)",
}

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def make_strategy(name, random_state=0):
    strategy = get_strategy(name)
    if "random_state" in strategy.get_params():
        strategy.set_params(random_state=random_state)
    return strategy


try:  # a loss-prediction head, for Learning Loss and LPLgrad
    from skal.nets import LossPrediction
except ImportError:  # pragma: no cover - not every version of skal has it
    LossPrediction = None

# The tiny MLP, plain and with what some strategies need.
MLP_HEADS = ["plain", "dropout"] + (["loss_prediction"] if LossPrediction else [])


def make_estimator(kind, n_classes, head="plain"):
    if kind == "logreg":
        return LogisticRegression(max_iter=200)
    extra = {}
    if head == "dropout":
        extra["dropout"] = 0.2  # MC-dropout strategies need some
    elif head == "loss_prediction":
        extra["loss_prediction"] = LossPrediction()
    return MLPClassifier(
        hidden_layer_sizes=(8,),
        max_epochs=2,
        random_state=0,
        classes=np.arange(n_classes),
        **extra,
    )


def as_format(X, fmt):
    if fmt == "csr":
        return sparse.csr_matrix(X)
    if fmt == "dataframe":
        return pd.DataFrame(X)
    return X


def snapshot(X):
    """A deep copy to check that nothing was modified in place."""
    if sparse.issparse(X):
        return (X.data.copy(), X.indices.copy(), X.indptr.copy(), X.dtype)
    if isinstance(X, pd.DataFrame):
        return X.copy(deep=True)
    return np.array(X, copy=True)


def assert_unchanged(X, before):
    if sparse.issparse(X):
        data, indices, indptr, dtype = before
        assert X.dtype == dtype
        np.testing.assert_array_equal(X.data, data)
        np.testing.assert_array_equal(X.indices, indices)
        np.testing.assert_array_equal(X.indptr, indptr)
    elif isinstance(X, pd.DataFrame):
        pd.testing.assert_frame_equal(X, before)
    else:
        assert X.dtype == before.dtype
        np.testing.assert_array_equal(X, before)


def assert_clear_message(error):
    message = str(error)
    # A sentence, not a bare key or number.
    assert len(message) >= 20 and re.search(r"[a-z]{3,} [a-z]{2,}", message), message


# --- valid inputs ---------------------------------------------------------------
values = st.one_of(
    st.just(0.0),  # sparse-ish rows and exact zeros
    st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32),
)
# Any finite value, up to float32's or float64's largest: valid input, which a
# network may overflow on (then FloatingPointError is the documented outcome).
extreme_values = {
    np.float32: st.floats(allow_nan=False, allow_infinity=False, width=32),
    np.float64: st.floats(allow_nan=False, allow_infinity=False),
}


def layout(X, kind):
    """The same values with another memory layout."""
    if kind == "fortran":
        return np.asfortranarray(X)
    if kind == "strided":
        wide = np.zeros((X.shape[0] * 2, X.shape[1] * 2), dtype=X.dtype)
        wide[::2, ::2] = X
        return wide[::2, ::2]
    return X


@st.composite
def problems(draw):
    n_features = draw(st.integers(1, 5))
    n_classes = draw(st.integers(2, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n_labeled = draw(st.integers(2, 12))
    X_labeled = draw(arrays(dtype, (n_labeled, n_features), elements=values))
    single_class = draw(st.booleans())
    if single_class:
        y_labeled = np.full(n_labeled, draw(st.integers(0, n_classes - 1)))
    else:
        y_labeled = draw(
            arrays(np.int64, n_labeled, elements=st.integers(0, n_classes - 1))
        )
    n_pool = draw(st.integers(1, 25))
    pool_values = draw(st.sampled_from([values, values, extreme_values[dtype]]))
    if draw(st.booleans()):  # duplicate rows: a few distinct rows, repeated
        distinct = draw(
            arrays(dtype, (draw(st.integers(1, 3)), n_features), elements=pool_values)
        )
        rows = draw(
            arrays(np.int64, n_pool, elements=st.integers(0, len(distinct) - 1))
        )
        X_pool = distinct[rows]
    else:
        X_pool = draw(arrays(dtype, (n_pool, n_features), elements=pool_values))
    X_pool = layout(X_pool, draw(st.sampled_from(["c", "fortran", "strided"])))
    # LogisticRegression needs two classes; skal's nets take `classes` instead.
    kinds = ["mlp"] if len(np.unique(y_labeled)) < 2 else ["logreg", "mlp"]
    return dict(
        X_labeled=X_labeled,
        y_labeled=y_labeled,
        X_pool=X_pool,
        fmt=draw(st.sampled_from(["dense", "csr", "dataframe"])),
        n=draw(st.integers(1, n_pool)),
        estimator=draw(st.sampled_from(kinds)),
        n_classes=n_classes,
        head=draw(st.sampled_from(MLP_HEADS)),
    )


VALID_OUTCOMES = Counter()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@SETTINGS
@given(problem=problems())
def test_query_properties_on_random_pools(problem):
    X_labeled = as_format(problem["X_labeled"], problem["fmt"])
    X_pool = as_format(problem["X_pool"], problem["fmt"])
    y_labeled, n = problem["y_labeled"], problem["n"]
    estimator = make_estimator(
        problem["estimator"], problem["n_classes"], problem["head"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(problem["X_labeled"], y_labeled)
    before = [snapshot(X_labeled), snapshot(y_labeled), snapshot(X_pool)]
    for name in available_strategies():
        try:
            picks = (
                make_strategy(name)
                .fit(X_labeled, y_labeled, estimator=estimator)
                .query(X_pool, n)
            )
        except Exception as error:
            assert type(error) in DOCUMENTED_ERRORS, (name, repr(error))
            pattern = DOCUMENTED_ERRORS[type(error)]
            assert re.search(pattern, str(error)), (name, str(error))
            VALID_OUTCOMES[(name, problem["estimator"], type(error).__name__)] += 1
            continue
        VALID_OUTCOMES[(name, problem["estimator"], "ok")] += 1
        assert isinstance(picks, np.ndarray) and picks.dtype.kind == "i", picks
        assert picks.shape == (n,)
        assert len(set(picks.tolist())) == n, f"{name} returned duplicates {picks}"
        assert picks.min() >= 0 and picks.max() < X_pool.shape[0]
        again = make_strategy(name).fit(X_labeled, y_labeled, estimator=estimator)
        np.testing.assert_array_equal(again.query(X_pool, n), picks, err_msg=name)
        for X, copy in zip([X_labeled, y_labeled, X_pool], before):
            assert_unchanged(X, copy)


# --- bad inputs -----------------------------------------------------------------
N_FEATURES = 4


@functools.cache
def fitted_estimators():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, N_FEATURES))
    y = np.arange(40) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimators = {"logreg": LogisticRegression(max_iter=200).fit(X, y)}
        for head in MLP_HEADS:
            estimators[f"mlp {head}"] = make_estimator("mlp", 3, head).fit(X, y)
        return X, y, estimators


@functools.cache
def accepted_estimators(name):
    """The fitted estimators a strategy works with on valid input."""
    X, y, estimators = fitted_estimators()
    accepted = []
    for kind, estimator in estimators.items():
        try:
            make_strategy(name).fit(X, y, estimator=estimator).query(X, 2)
        except TypeError:  # documented: the strategy needs another model
            continue
        accepted.append(kind)
    assert accepted, f"{name} accepts none of {list(estimators)}"
    return accepted


def with_value(X, fmt, value, row, column):
    X = np.array(X, dtype=np.float64)
    X[row % len(X), column % X.shape[1]] = value
    return as_format(X, fmt)


# Each case: what is wrong, the exception, a regex the message must match.
BAD_CASES = {
    "nan in the pool": (ValueError, r"NaN"),
    "+inf in the pool": (ValueError, r"infinity"),
    "-inf in the pool": (ValueError, r"infinity"),
    "too few features": (
        ValueError,
        r"has \d+ features, but \w+ is expecting 4 features",
    ),
    "too many features": (
        ValueError,
        r"has \d+ features, but \w+ is expecting 4 features",
    ),
    "empty pool": (ValueError, r"empty"),
    "pool without features": (ValueError, r"0 feature\(s\)"),
    "1-D pool": (ValueError, r"Expected 2D array"),
    "text in the pool": (ValueError, r"could not convert string to float"),
    "complex pool": (ValueError, r"[Cc]omplex data not supported"),
    "n = 0": (ValueError, r"n must be at least 1, got n=0"),
    "n < 0": (ValueError, r"n must be at least 1, got n=-\d+"),
    "n > pool size": (ValueError, r"n=\d+ is larger than the pool, which has only \d+"),
    "n a float": (TypeError, r"n must be an integer, got .* of type float"),
    "n a bool": (TypeError, r"n must be an integer, got True of type bool"),
    "n a string": (TypeError, r"n must be an integer, got '\d+' of type str"),
    "n None": (TypeError, r"n must be an integer, got None of type NoneType"),
    "unfitted strategy": (NotFittedError, r"is not fitted yet: call fit"),
    "unfitted estimator": (NotFittedError, r"estimator \w+ is not fitted yet"),
    "no estimator": (ValueError, r"No estimator was given"),
}
BAD_INPUTS = Counter()  # case -> inputs tried
ERRORS_SEEN = Counter()  # (case, exception type) -> times raised


@st.composite
def bad_inputs(draw, case):
    fmt = draw(st.sampled_from(["dense", "csr", "dataframe"]))
    n_pool = draw(st.integers(1, 20))
    pool = draw(arrays(np.float64, (n_pool, N_FEATURES), elements=values))
    row, column = draw(st.integers(0, 100)), draw(st.integers(0, 100))
    n = draw(st.integers(1, n_pool))
    estimator = draw(st.integers(0, 3))  # among those the strategy accepts
    if case == "nan in the pool":
        pool = with_value(pool, fmt, np.nan, row, column)
    elif case in ("+inf in the pool", "-inf in the pool"):
        pool = with_value(pool, fmt, np.inf if case[0] == "+" else -np.inf, row, column)
    elif case == "too few features":
        pool = as_format(pool[:, : draw(st.integers(1, N_FEATURES - 1))], fmt)
    elif case == "too many features":
        extra = draw(
            arrays(np.float64, (n_pool, draw(st.integers(1, 3))), elements=values)
        )
        pool = as_format(np.hstack([pool, extra]), fmt)
    elif case == "empty pool":
        pool, n = as_format(pool[:0], fmt), 1
    elif case == "pool without features":
        pool = pool[:, :0] if fmt != "csr" else sparse.csr_matrix((n_pool, 0))
    elif case == "1-D pool":
        pool = pool[:, 0]
    elif case == "text in the pool":
        pool = pool.astype(str)
        pool[row % n_pool, column % N_FEATURES] = draw(
            st.sampled_from(["a", "x1", "?"])
        )
    elif case == "complex pool":
        pool = pool + 1j
    else:
        pool = as_format(pool, fmt)
    if case == "n = 0":
        n = 0
    elif case == "n < 0":
        n = -draw(st.integers(1, 10**6))
    elif case == "n > pool size":
        n = n_pool + draw(st.integers(1, 100))
    elif case == "n a float":
        n = draw(st.sampled_from([float(n), n + 0.5, np.float64(n)]))
    elif case == "n a bool":
        n = True
    elif case == "n a string":
        n = str(n)
    elif case == "n None":
        n = None
    return pool, n, estimator


def run_bad_input(name, case, pool, n, estimator_kind):
    """Call the strategy the way the case breaks it; return the raised error."""
    X, y, estimators = fitted_estimators()
    accepted = accepted_estimators(name)
    estimator_kind = accepted[estimator_kind % len(accepted)]
    strategy = make_strategy(name)
    if case == "unfitted estimator":
        strategy.fit(X, y, estimator=clone(estimators[estimator_kind]))
    elif case == "no estimator":
        strategy.fit(X, y)
    elif case != "unfitted strategy":
        strategy.fit(X, y, estimator=estimators[estimator_kind])
    strategy.query(pool, n)


def check_bad_case(case):
    expected, pattern = BAD_CASES[case]

    @settings(SETTINGS, max_examples=3)
    @given(bad=bad_inputs(case))
    def run(bad):
        pool, n, estimator_kind = bad
        for name in available_strategies():
            if (
                case in ("unfitted estimator", "no estimator")
                and not get_strategy(name).needs_estimator
            ):
                continue  # random sampling needs no model: nothing to report
            BAD_INPUTS[case] += 1
            with pytest.raises(Exception) as caught:  # noqa: B017 - checked below
                run_bad_input(name, case, pool, n, estimator_kind)
            error = caught.value
            assert isinstance(error, expected), (name, case, repr(error))
            assert re.search(pattern, str(error)), (name, case, str(error))
            assert_clear_message(error)
            ERRORS_SEEN[(case, type(error).__name__)] += 1

    run()


def test_bad_inputs_raise_documented_errors_naming_the_problem(capsys):
    for case in BAD_CASES:
        check_bad_case(case)
    assert set(BAD_INPUTS) == set(BAD_CASES)
    assert {case for case, _ in ERRORS_SEEN} == set(BAD_CASES)
    report = [
        f"bad inputs tried: {sum(BAD_INPUTS.values())} over "
        f"{len(available_strategies())} strategies; distinct error cases covered: "
        f"{len(ERRORS_SEEN)}",
        *(
            f"  {case}: {count} -> {BAD_CASES[case][0].__name__}"
            for case, count in BAD_INPUTS.items()
        ),
    ]
    if VALID_OUTCOMES:
        refused = {k: v for k, v in VALID_OUTCOMES.items() if k[2] != "ok"}
        report.append(
            f"valid problems: {sum(VALID_OUTCOMES.values())} queries, documented "
            f"refusals: {refused or 'none'}"
        )
    with capsys.disabled():
        print("\n" + "\n".join(report))


# --- the learner's chunked scoring of large pools ------------------------------------
# Strategies whose picks the learner computes from chunked scores.
RANKING = [
    name for name in available_strategies() if get_strategy(name)._ranks_in_chunks()
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@settings(SETTINGS, max_examples=6)
@given(
    n_pool=st.integers(2, 60),
    chunk_size=st.integers(1, 70),
    fmt=st.sampled_from(["dense", "csr"]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_learner_picks_do_not_depend_on_the_chunk_size(
    n_pool, chunk_size, fmt, seed, data
):
    """ActiveLearner scores large pools chunk by chunk; the picks must not change."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(40 + n_pool, 3)).round(1)  # ties happen
    y = np.full(len(X), -1)
    y[:40] = np.arange(40) % 3
    X = as_format(X, fmt)
    n = data.draw(st.integers(1, n_pool))
    for name in RANKING:
        kind, _, head = accepted_estimators(name)[0].partition(" ")
        learner = ActiveLearner(
            make_estimator(kind, 3, head or "plain"),
            make_strategy(name),
            random_state=seed,
        )
        with config_context(chunk_size=10**6):
            reference = clone(learner).fit(X, y)
            expected = reference.query(X[40:], n)
        with config_context(chunk_size=chunk_size):
            chunked = clone(learner).fit(X, y)
            picks = chunked.query(X[40:], n)
        np.testing.assert_array_equal(picks, expected, err_msg=name)


def test_memmap_pools_are_not_copied(tmp_path):
    X = np.lib.format.open_memmap(
        tmp_path / "pool.npy", mode="w+", dtype=np.float32, shape=(3000, 5)
    )
    X[:] = np.random.RandomState(0).normal(size=X.shape)
    X.flush()
    pool = np.load(tmp_path / "pool.npy", mmap_mode="r")
    assert np.shares_memory(check_pool(pool), pool)
    y = np.full(len(pool), -1)
    y[:30] = np.arange(30) % 3
    with config_context(chunk_size=256):
        learner = ActiveLearner(
            LogisticRegression(max_iter=100),
            "entropy",
            batch_size=5,
            n_rounds=2,
            oracle=lambda rows: rows % 3,
            random_state=0,
        ).fit(pool, y)
        assert len(set(learner.query(pool, 50).tolist())) == 50
    assert learner.history_["n_labeled"].tolist() == [30, 35, 40]
