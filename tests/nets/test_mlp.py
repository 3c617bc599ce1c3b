import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from skal.nets import BatchSlicer, MLPClassifier, MLPModule

from ..conftest import tiny_mlp


def test_fits_and_predicts_with_inferred_sizes(blobs):
    X, y = blobs
    net = tiny_mlp(max_epochs=30).fit(X[:300], y[:300])
    assert net.n_features_in_ == 10
    assert net.module_.hidden[0].in_features == 10
    assert net.module_.output_layer.out_features == 4
    assert net.score(X[300:], y[300:]) > 0.6
    proba = net.predict_proba(X[300:])
    assert proba.shape == (100, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_paper_defaults():
    net = MLPClassifier()
    assert net.hidden_layer_sizes == (512, 256)
    assert net.optimizer is torch.optim.SGD
    assert net.optimizer__momentum == 0.9
    assert net.train_split is None


def test_random_state_makes_training_reproducible_and_keeps_global_rng(blobs):
    X, y = blobs
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = tiny_mlp(random_state=7).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), before)
    second = clone(tiny_mlp(random_state=7)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    other = tiny_mlp(random_state=8).fit(X, y).predict_proba(X)
    assert not np.allclose(first, other)


def test_dense_dataframe_and_sparse_inputs_train_identically(blobs):
    X, y = blobs
    dense = tiny_mlp().fit(X, y).predict_proba(X)
    frame = tiny_mlp().fit(pd.DataFrame(X), y).predict_proba(pd.DataFrame(X))
    csr = tiny_mlp().fit(sparse.csr_matrix(X), y).predict_proba(sparse.csr_matrix(X))
    np.testing.assert_allclose(frame, dense, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(csr, dense, rtol=1e-5, atol=1e-6)


def test_sparse_input_is_densified_one_batch_at_a_time(sparse_text, monkeypatch):
    X, y = sparse_text
    densified_rows = []
    original = sparse.csr_matrix.toarray

    def recording_toarray(self, *args, **kwargs):
        densified_rows.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sparse.csr_matrix, "toarray", recording_toarray)
    net = tiny_mlp(batch_size=16).fit(X, y)
    net.predict_proba(X)
    assert max(densified_rows, default=0) <= 16  # the lazy sparse path densifies none


def test_string_labels_and_fixed_classes(blobs):
    X, y = blobs
    names = np.array(["a", "b", "c", "d"])[y]
    net = tiny_mlp().fit(X, names)
    assert set(net.predict(X)) <= set("abcd")
    # A labeled set that has seen only two classes still gets four outputs.
    net = tiny_mlp(classes=["a", "b", "c", "d"]).fit(
        X[:50][names[:50] < "c"], names[:50][names[:50] < "c"]
    )
    assert net.predict_proba(X).shape == (400, 4)
    with pytest.raises(ValueError, match=r"labels \['z'\] that are not in classes"):
        tiny_mlp(classes=["a", "b"]).fit(X[:2], ["a", "z"])


def test_partial_fit_keeps_the_label_set(blobs):
    X, y = blobs
    net = tiny_mlp().fit(X[:100], y[:100])
    weights = net.module_.output_layer.weight.detach().clone()
    net.partial_fit(X[100:200], y[100:200])
    assert not torch.equal(weights, net.module_.output_layer.weight)
    with pytest.raises(ValueError, match="not in classes"):
        net.partial_fit(X[:2], [0, 9])


def test_bad_input(blobs):
    X, y = blobs
    with pytest.raises(NotFittedError):
        tiny_mlp().predict_proba(X)
    with_nan = X.copy()
    with_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_mlp().fit(with_nan, y)
    net = tiny_mlp().fit(X, y)
    with pytest.raises(ValueError, match="has 3 features"):
        net.predict(X[:, :3])
    with pytest.raises(ValueError, match="400 samples but y has 3"):
        tiny_mlp().fit(X, y[:3])
    with pytest.raises(ValueError, match="empty"):
        tiny_mlp().fit(X[:0], y[:0])


def test_dropout_and_no_hidden_layers():
    module = MLPModule(5, 3, hidden_layer_sizes=(4,), dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) for m in module.modules())
    linear = MLPModule(5, 3, hidden_layer_sizes=())
    assert linear.features(torch.ones(2, 5)).shape == (2, 5)


def test_batch_slicer_covers_every_row_once():
    class Data:
        X = np.arange(10, dtype=np.float32).reshape(10, 1)
        y = np.arange(10)

    torch.manual_seed(0)
    batches = list(BatchSlicer(Data(), batch_size=4, shuffle=True))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    assert len(BatchSlicer(Data(), batch_size=4, drop_last=True)) == 2
    assert len(list(BatchSlicer(Data(), batch_size=4, drop_last=True))) == 2


def test_other_optimizers_ignore_the_sgd_momentum_default(blobs):
    X, y = blobs
    net = tiny_mlp(optimizer=torch.optim.Adam, lr=0.01).fit(X, y)
    assert isinstance(net.optimizer_, torch.optim.Adam)
    assert tiny_mlp().fit(X, y).optimizer_.param_groups[0]["momentum"] == 0.9
    assert (
        tiny_mlp(optimizer__momentum=0.5)
        .fit(X, y)
        .optimizer_.param_groups[0]["momentum"]
        == 0.5
    )


def test_read_only_input_is_copied_not_shared_with_torch(tmp_path):
    import warnings

    from skal.nets._batches import rows_to_tensor

    X = np.lib.format.open_memmap(
        tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(6, 3)
    )
    X[:] = np.arange(18, dtype=np.float32).reshape(6, 3)
    X.flush()
    readonly = np.load(tmp_path / "X.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "not writable" warning would raise
        tensor = rows_to_tensor(readonly)
    tensor += 1  # an in-place op on the batch must not reach the file
    np.testing.assert_array_equal(readonly, np.arange(18).reshape(6, 3))
