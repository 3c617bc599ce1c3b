"""Label conventions users bring (issue 17, item 1) and the labeling loop (item 2)."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skal import ActiveLearner
from skal.strategies import RandomSampling

from .conftest import tiny_mlp


def logreg():
    return LogisticRegression(max_iter=300)


def partial(y, n_labeled, missing=-1, dtype=None):
    """``y`` with only its first ``n_labeled`` rows labeled."""
    out = np.array(y, dtype=dtype if dtype is not None else np.asarray(y).dtype)
    out = out.astype(object) if missing is None else out
    out[n_labeled:] = missing
    return out


# --- item 1: missing_label ---------------------------------------------------------
@pytest.mark.parametrize("estimator", [tiny_mlp, logreg])
def test_binary_minus_one_plus_one_labels_are_refused_with_the_fix(blobs, estimator):
    # The user's steps: ActiveLearner(MLPClassifier(), "margin").fit(X, y in {-1,+1}).
    X, y = blobs
    y_pm = np.where(y == 1, 1, -1)
    with pytest.raises(ValueError, match="ambiguous") as error:
        ActiveLearner(estimator(), "margin", random_state=0).fit(X, y_pm)
    assert "missing_label=None" in str(error.value)
    assert "single class 1" in str(error.value)
    # With the fix the message names, both classes are learned.
    learner = ActiveLearner(
        estimator(), "margin", n_rounds=3, missing_label=None, random_state=0
    ).fit(X, y_pm)
    np.testing.assert_array_equal(learner.classes_, [-1, 1])
    assert set(learner.predict(X)) == {-1, 1}
    assert learner.history_["n_labeled"].tolist() == [10, 20, 30, 40]  # simulation


def test_nan_and_none_mark_unlabeled_rows_like_minus_one(blobs):
    X, y = blobs
    reference = ActiveLearner(logreg(), "margin").fit(X, partial(y, 40))
    as_nan = ActiveLearner(logreg(), "margin", missing_label=np.nan).fit(
        X, partial(y, 40, missing=np.nan, dtype=float)
    )
    as_none = ActiveLearner(logreg(), "margin", missing_label=None).fit(
        X, partial(y, 40, missing=None)
    )
    for learner in (as_nan, as_none):
        np.testing.assert_array_equal(learner.labeled_indices_, np.arange(40))
        np.testing.assert_allclose(learner.predict_proba(X), reference.predict_proba(X))
        np.testing.assert_array_equal(learner.query(X, 5), reference.query(X, 5))
    np.testing.assert_array_equal(as_none.classes_, [0, 1, 2, 3])
    assert as_none.classes_.dtype.kind == "i"  # None did not turn labels into objects


def test_nan_or_none_without_missing_label_names_the_parameter(blobs):
    X, y = blobs
    for y_partial in (partial(y, 40, np.nan, float), partial(y, 40, None)):
        with pytest.raises(ValueError, match="pass missing_label=None"):
            ActiveLearner(logreg()).fit(X, y_partial)


def test_string_labels_with_a_string_missing_label(blobs):
    X, y = blobs
    names = np.array(["ant", "bee", "cat", "dog"])[y]
    y_partial = names.copy()
    y_partial[40:] = "-1"
    # "-1" as a string is not the number -1: refused, not learned as a class.
    with pytest.raises(ValueError, match="missing_label='-1'"):
        ActiveLearner(logreg(), "margin").fit(X, y_partial)
    learner = ActiveLearner(logreg(), "margin", missing_label="-1").fit(X, y_partial)
    np.testing.assert_array_equal(learner.classes_, ["ant", "bee", "cat", "dog"])
    np.testing.assert_array_equal(learner.labeled_indices_, np.arange(40))
    picks = learner.query(X, 6)
    assert not np.isin(picks, np.arange(40)).any()
    learner.teach(X[picks], names[picks])
    assert set(learner.predict(X)) <= set(names)
    # Unlabeled rows of string labels may also be None in an object array.
    with_none = names.astype(object)
    with_none[40:] = None
    other = ActiveLearner(logreg(), "margin", missing_label=None).fit(X, with_none)
    np.testing.assert_array_equal(other.predict(X), learner_predict_40(X, names))


def learner_predict_40(X, names):
    return logreg().fit(X[:40], names[:40]).predict(X)


def test_other_ambiguous_or_contradictory_label_choices(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="contains missing_label=-1"):
        ActiveLearner(logreg(), classes=[-1, 0, 1, 2]).fit(X, partial(y, 40))
    mixed = y.astype(object)
    mixed[0] = "zero"
    with pytest.raises(ValueError, match="mixes string and numeric"):
        ActiveLearner(logreg()).fit(X, mixed)
    with pytest.raises(TypeError, match="missing_label.* must be"):
        ActiveLearner(logreg(), missing_label=[-1]).fit(X, y)
    # A single labeled class is fine once the label set is given.
    one_class = np.where(np.arange(len(y)) < 10, 0, -1)
    learner = ActiveLearner(tiny_mlp(), classes=[0, 1, 2, 3]).fit(X, one_class)
    assert learner.estimator_.module_.output_layer.out_features == 4


def test_oracle_declines_with_the_missing_label(blobs):
    X, y = blobs
    asked = []

    def oracle(rows):
        asked.extend(rows)
        return [None if i % 3 == 0 else int(y[i]) for i in rows]

    learner = ActiveLearner(
        logreg(),
        "margin",
        batch_size=6,
        n_rounds=2,
        oracle=oracle,
        missing_label=None,
        random_state=0,
    ).fit(X, partial(y, 20, missing=None))
    declined = [i for i in asked if i % 3 == 0]
    assert not np.isin(declined, learner.labeled_indices_).any()
    assert len(learner.labeled_indices_) == 20 + len(asked) - len(declined)
    # Declined rows are never proposed again either.
    assert not np.isin(learner.query(X, 300), declined).any()


def test_teach_refuses_missing_labels(blobs):
    X, y = blobs
    learner = ActiveLearner(logreg(), missing_label=None).fit(X, partial(y, 40, None))
    with pytest.raises(ValueError, match="missing_label=None"):
        learner.teach(X[:2], np.array([None, 1], dtype=object))


# --- item 2: the labeling loop -------------------------------------------------------
def test_query_teach_loop_never_proposes_a_labeled_row(blobs):
    # The user's steps: fit on a partial y, then query(X, 10) and teach, repeatedly.
    X, y = blobs
    learner = ActiveLearner(logreg(), "margin", random_state=0).fit(X, partial(y, 40))
    proposed = []
    for round_ in range(5):
        picks = learner.query(X, 10)
        assert not np.isin(picks, learner.labeled_indices_).any()
        proposed.extend(picks)
        learner.teach(X[picks], y[picks])
        assert len(learner.labeled_indices_) == 40 + 10 * (round_ + 1)
    assert len(set(proposed)) == 50
    np.testing.assert_array_equal(
        learner.labeled_indices_, np.concatenate([np.arange(40), proposed])
    )
    assert learner.history_["queried"].iloc[-1].tolist() == proposed[-10:]
    # The learned state is the labeled rows, and the model was trained on them.
    rows = learner.labeled_indices_
    reference = logreg().fit(X[rows], y[rows])
    np.testing.assert_allclose(learner.predict_proba(X), reference.predict_proba(X))


def test_query_of_every_unlabeled_row_returns_exactly_them(blobs):
    X, y = blobs
    learner = ActiveLearner(logreg(), RandomSampling(random_state=0)).fit(
        X, partial(y, 40)
    )
    picks = learner.query(X, 360)
    np.testing.assert_array_equal(np.sort(picks), np.arange(40, 400))
    with pytest.raises(ValueError, match="360 unlabeled rows left"):
        learner.query(X, 361)


def test_simulation_then_query_skips_revealed_rows(blobs):
    X, y = blobs
    learner = ActiveLearner(
        logreg(), RandomSampling(), batch_size=20, n_rounds=3, random_state=0
    ).fit(X, y)
    picks = learner.query(X, 400 - 80)
    assert not np.isin(picks, learner.labeled_indices_).any()


def test_a_new_pool_is_scored_whole(blobs):
    X, y = blobs
    learner = ActiveLearner(logreg(), RandomSampling(random_state=0)).fit(
        X, partial(y, 40)
    )
    # Another pool: a sub-pool, or the same rows in another order.
    assert len(learner.query(X[10:60], 50)) == 50
    shuffled = X[np.random.RandomState(0).permutation(len(X))]
    assert len(learner.query(shuffled, 400)) == 400
    # Rows taught from a new pool are new data: labeled_indices_ is unchanged.
    learner.teach(X[40:45] + 10.0, y[40:45])
    assert len(learner.labeled_indices_) == 40
    assert learner.history_["n_labeled"].iloc[-1] == 45


def test_sparse_pool_query_teach(sparse_text):
    X, y = sparse_text
    learner = ActiveLearner(logreg(), RandomSampling(random_state=0)).fit(
        X, partial(y, 30)
    )
    picks = learner.query(X, 20)
    learner.teach(X[picks], y[picks])
    rest = learner.query(X, 300 - 50)
    np.testing.assert_array_equal(np.sort(np.r_[picks, rest]), np.arange(30, 300))


def test_regression_and_multilabel_targets_say_skal_does_classification(blobs):
    # Issue 17, item 9: sklearn's messages alone do not say what skal supports.
    X, y = blobs
    with pytest.raises(ValueError, match="Unknown label type.*does classification"):
        ActiveLearner(logreg()).fit(X, X[:, 0] * 1.5)
    multilabel = np.stack([y == 0, y == 1, y == 2], axis=1).astype(int)
    with pytest.raises(ValueError, match="single-label classification"):
        ActiveLearner(logreg()).fit(X, multilabel)
