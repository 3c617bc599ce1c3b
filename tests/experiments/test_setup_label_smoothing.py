"""The bench's MLP keeps paper 001's plain cross-entropy."""

from skal.experiments._setup import make_model


def test_bench_mlp_has_no_label_smoothing():
    net = make_model("mlp", lr=0.01, max_epochs=1, sgd_batch_size=8, dropout=0.0)
    assert net.get_params()["criterion__label_smoothing"] == 0.0
