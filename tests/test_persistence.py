"""Saving and loading a fitted ActiveLearner without pickle."""

import hashlib
import io
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skal import ActiveLearner
from skal.persistence import LearnerFileError, load, save
from skal.strategies import Entropy, available_strategies, get_strategy

from .conftest import tiny_mlp


def fitted(estimator, strategy="margin", X=None, y=None, **params):
    defaults = dict(batch_size=5, n_rounds=2, random_state=0)
    return ActiveLearner(estimator, strategy, **{**defaults, **params}).fit(X, y)


def comparable(params):
    return {
        k: repr(v.get_state()) if isinstance(v, np.random.RandomState) else v
        for k, v in params.items()
    }


def assert_same_learner(a, b, X):
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.labeled_indices_, b.labeled_indices_)
    np.testing.assert_array_equal(a.classes_, b.classes_)
    pd.testing.assert_frame_equal(a.history_, b.history_)
    assert repr(a.estimator_) == repr(b.estimator_)
    assert comparable(a.strategy_.get_params()) == comparable(b.strategy_.get_params())
    np.testing.assert_array_equal(a.query(X, 7), b.query(X, 7))


def net_variants():
    """Tiny nets with what some strategies need (dropout, a loss-prediction head)."""
    yield tiny_mlp(hidden_layer_sizes=(8,), max_epochs=2)
    yield tiny_mlp(hidden_layer_sizes=(8,), max_epochs=2, dropout=0.2)
    try:
        from skal.nets import LossPrediction
    except ImportError:
        return
    yield tiny_mlp(
        hidden_layer_sizes=(8,), max_epochs=2, loss_prediction=LossPrediction()
    )


def fitted_with_some_net(name, X, y):
    refusals = []
    for net in net_variants():
        try:
            return fitted(net, get_strategy(name), X, y, n_rounds=1)
        except TypeError as error:  # the strategy needs another kind of network
            refusals.append(str(error))
    pytest.skip(f"no test network suits {name}: {refusals}")


@pytest.mark.parametrize("name", available_strategies())
def test_round_trip_with_every_strategy(name, blobs, tmp_path):
    X, y = blobs
    learner = fitted_with_some_net(name, X, y)
    loaded = load(save(learner, tmp_path / "learner.skal"))
    assert loaded.strategy_.estimator_ is loaded.estimator_
    assert_same_learner(learner, loaded, X)


@pytest.mark.parametrize("name", ["random", "margin"])
def test_loaded_learner_continues_like_the_original(name, blobs, tmp_path):
    X, y = blobs
    learner = fitted(tiny_mlp(), name, X, y)
    loaded = load(save(learner, tmp_path / "learner.skal"))
    # The model's and the strategy's random streams are restored too.
    for _ in range(2):
        learner.teach(X[:3], y[:3])
        loaded.teach(X[:3], y[:3])
        np.testing.assert_allclose(learner.predict_proba(X), loaded.predict_proba(X))
        np.testing.assert_array_equal(learner.query(X, 9), loaded.query(X, 9))


def test_round_trip_logistic_regression_sparse_and_string_labels(sparse_text, tmp_path):
    X, y = sparse_text
    names = np.array(["cat", "dog", "eel"], dtype=object)[y]
    learner = fitted(LogisticRegression(max_iter=300), "entropy", X, names)
    assert learner.classes_.dtype == object
    loaded = load(save(learner, tmp_path / "learner.skal"))
    assert_same_learner(learner, loaded, X)
    assert loaded.classes_.dtype == object
    assert type(loaded._labeled_X) is type(learner._labeled_X)
    learner.teach(X[:2], names[:2])
    loaded.teach(X[:2], names[:2])
    np.testing.assert_allclose(learner.predict_proba(X), loaded.predict_proba(X))


@pytest.mark.parametrize("missing_label", [None, np.nan, "?"])
def test_round_trip_of_label_conventions_frames_and_the_fitted_pool(
    missing_label, blobs, tmp_path
):
    X, y = blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    y_partial = y.astype(object)
    y_partial[40:] = missing_label
    learner = fitted(
        LogisticRegression(max_iter=300),
        "margin",
        frame,
        y_partial,
        missing_label=missing_label,
        warm_start=True,
        n_threads=1,
    )
    picks = learner.query(frame, 5)
    learner.teach(frame.iloc[picks], y[picks])
    loaded = load(save(learner, tmp_path / "learner.skal"))
    params = loaded.get_params(deep=False)
    assert params["warm_start"] is True and params["n_threads"] == 1
    assert params["missing_label"] is missing_label or np.isnan(params["missing_label"])
    np.testing.assert_array_equal(loaded.feature_names_in_, frame.columns)
    assert_same_learner(learner, loaded, frame)
    # The loaded learner still knows which rows of the pool are labeled.
    picks = loaded.query(frame, 10)
    assert not np.isin(picks, learner.labeled_indices_).any()
    loaded.teach(frame.iloc[picks], y[picks])
    assert len(loaded.labeled_indices_) == 55


def test_oracle_is_not_saved_but_parameters_are(blobs, tmp_path):
    X, y = blobs
    y_partial = np.where(np.arange(len(y)) < 30, y, -1)
    learner = fitted(
        LogisticRegression(max_iter=300),
        Entropy(),
        X,
        y_partial,
        oracle=lambda rows: y[rows],
        classes=np.arange(4),
        subsample=50,
        label_store=tmp_path / "labels.db",
    )
    loaded = load(save(learner, tmp_path / "learner.skal"))
    params = loaded.get_params(deep=False)
    assert params["oracle"] is None
    assert str(params["label_store"]) == str(tmp_path / "labels.db")
    assert params["subsample"] == 50 and list(params["classes"]) == [0, 1, 2, 3]
    assert_same_learner(learner, loaded, X)


def test_loading_in_another_process(blobs, tmp_path):
    X, y = blobs
    learner = fitted(tiny_mlp(), "entropy", X, y)
    path = save(learner, tmp_path / "learner.skal")
    np.save(tmp_path / "X.npy", X)
    code = (
        "import numpy as np, sys; from skal.persistence import load; "
        f"learner = load({str(path)!r}); X = np.load({str(tmp_path / 'X.npy')!r}); "
        f"np.save({str(tmp_path / 'proba.npy')!r}, learner.predict_proba(X)); "
        f"np.save({str(tmp_path / 'picks.npy')!r}, learner.query(X, 5))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=180)
    np.testing.assert_allclose(
        np.load(tmp_path / "proba.npy"), learner.predict_proba(X)
    )
    np.testing.assert_array_equal(np.load(tmp_path / "picks.npy"), learner.query(X, 5))


# --- unsafe, corrupted and unsupported files ---------------------------------------------
def rewrite(path, **members):
    """Replace archive members, keeping the manifest's checksums consistent."""
    with zipfile.ZipFile(path) as zf:
        content = {name: zf.read(name) for name in zf.namelist()}
    content.update(members)
    if "learner.json" not in members:
        manifest = json.loads(content["learner.json"])
        for name in ("arrays.npz", "tensors.pt"):
            manifest["sha256"][name] = hashlib.sha256(content[name]).hexdigest()
        content["learner.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in content.items():
            zf.writestr(name, data)


@pytest.fixture
def saved(blobs, tmp_path):
    X, y = blobs
    return save(fitted(tiny_mlp(), "margin", X, y), tmp_path / "learner.skal")


class _Exploit:
    """Unpickling this creates a file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_runs_code_from_the_file(saved, tmp_path):
    original = saved.read_bytes()
    marker = tmp_path / "exploit"
    buffer = io.BytesIO()
    torch.save({"t0": _Exploit(marker)}, buffer)  # a pickle that would create a file
    rewrite(saved, **{"tensors.pt": buffer.getvalue()})
    with pytest.raises(LearnerFileError, match="cannot be read safely"):
        load(saved)
    assert not marker.exists()

    saved.write_bytes(original)
    with zipfile.ZipFile(saved) as zf:
        manifest = json.loads(zf.read("learner.json"))
    attributes = manifest["estimator"]["attributes"]
    attributes["predict_proba"] = attributes.pop("n_features_in_")  # not fitted state
    rewrite(saved, **{"learner.json": json.dumps(manifest).encode()})
    with pytest.raises(LearnerFileError, match="refusing to set the attribute"):
        load(saved)
    attributes["n_features_in_"] = attributes.pop("predict_proba")
    manifest["estimator"]["spec"]["__object__"] = "os:system"
    rewrite(saved, **{"learner.json": json.dumps(manifest).encode()})
    with pytest.raises(
        LearnerFileError, match="refers to os:system, outside the modules"
    ):
        load(saved)


def test_arrays_are_read_without_pickle(saved, tmp_path):
    marker = tmp_path / "exploit"
    buffer = io.BytesIO()
    np.savez(buffer, a0=np.array([_Exploit(marker)], dtype=object))
    rewrite(saved, **{"arrays.npz": buffer.getvalue()})
    with pytest.raises(LearnerFileError, match="cannot be read safely"):
        load(saved)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "not a readable zip archive"),
        (lambda data: data[:100], "not a readable zip archive"),
        (lambda data: b"", "not a readable zip archive"),
        (lambda data: b"garbage" * 50, "not a readable zip archive"),
        (lambda data: pickle.dumps({"not": "a learner"}), "not a readable zip archive"),
    ],
)
def test_corrupted_or_truncated_files(saved, damage, message):
    saved.write_bytes(damage(saved.read_bytes()))
    with pytest.raises(LearnerFileError, match=message) as error:
        load(saved)
    assert "corrupted, truncated" in str(error.value)
    assert str(saved) in str(error.value)


def test_flipped_bytes_inside_a_member(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("tensors.pt")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    data[middle] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(LearnerFileError, match="corrupted, truncated"):
        load(saved)


def test_tampered_members_and_versions(saved):
    with zipfile.ZipFile(saved) as zf:
        content = {name: zf.read(name) for name in zf.namelist()}
    with zipfile.ZipFile(saved, "w") as zf:  # checksums left stale
        zf.writestr("learner.json", content["learner.json"])
        zf.writestr("arrays.npz", content["arrays.npz"])
        zf.writestr("tensors.pt", content["tensors.pt"][:-10])
    with pytest.raises(LearnerFileError, match="checksum of tensors.pt does not match"):
        load(saved)
    manifest = json.loads(content["learner.json"])
    for edit, message in [
        ({"version": 99}, "format version 99; this skal reads version 1"),
        ({"format": "other"}, "does not describe a skal learner"),
    ]:
        rewrite(saved, **{"learner.json": json.dumps({**manifest, **edit}).encode()})
        with pytest.raises(LearnerFileError, match=message):
            load(saved)
    rewrite(saved, **{"learner.json": b"{not json"})
    with pytest.raises(LearnerFileError, match="learner.json is not valid JSON"):
        load(saved)
    with zipfile.ZipFile(saved, "w") as zf:
        zf.writestr("learner.json", content["learner.json"])
    with pytest.raises(
        LearnerFileError, match=r"members \['arrays.npz', 'tensors.pt'\]"
    ):
        load(saved)


def test_what_cannot_be_saved(blobs, tmp_path):
    X, y = blobs
    path = tmp_path / "learner.skal"
    with pytest.raises(NotFittedError):
        save(ActiveLearner(), path)
    forest = fitted(RandomForestClassifier(n_estimators=3), "entropy", X, y)
    with pytest.raises(
        TypeError,
        match="cannot save a fitted .*RandomForestClassifier: only skal's nets",
    ):
        save(forest, path)
    learner = fitted(LogisticRegression(max_iter=300), "margin", X, y)
    learner.strategy_.cache_ = object()
    with pytest.raises(
        TypeError,
        match=r"strategy_.cache_: a builtins.object cannot be saved without pickle",
    ):
        save(learner, path)
    assert not path.exists()  # nothing half-written
    with pytest.raises(FileNotFoundError, match="No skal learner file"):
        load(tmp_path / "missing.skal")


def test_a_fitted_pipeline_is_refused_not_saved_unfitted(blobs, tmp_path):
    # A Pipeline keeps its fitted state in its steps, none in attributes of its
    # own: saved as parameters, it used to load unfitted without any error.
    X, y = blobs
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    learner = fitted(pipeline, "margin", X, y)
    with pytest.raises(TypeError, match="fitted sklearn.pipeline:Pipeline.*steps"):
        save(learner, tmp_path / "learner.skal")
    assert not (tmp_path / "learner.skal").exists()


def test_persistence_is_reachable_from_the_package(blobs, tmp_path):
    import skal  # as the README writes it: skal.persistence.save(learner, path)

    X, y = blobs
    learner = fitted(LogisticRegression(max_iter=300), "margin", X, y)
    loaded = skal.persistence.load(skal.persistence.save(learner, tmp_path / "a"))
    assert_same_learner(learner, loaded, X)


def test_the_learner_refuses_state_it_does_not_own(blobs):
    X, y = blobs
    learner = fitted(LogisticRegression(max_iter=300), "margin", X, y)
    state = learner._get_state()
    assert {"estimator_", "strategy_", "_labeled_X", "_pool"} <= set(state)
    with pytest.raises(ValueError, match="refusing to set the attribute 'fit'"):
        ActiveLearner()._set_state({**state, "fit": print})
    with pytest.raises(NotFittedError):
        ActiveLearner()._get_state()
