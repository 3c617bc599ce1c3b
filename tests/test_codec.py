"""The tagged-JSON codec: every row of its table writes and reads back its values."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from skal._codec import TABLE, Decoder, DocumentError, Encoder
from skal.strategies import Entropy


def examples():
    """At least one value for every row of the table."""
    shared_rng = np.random.RandomState(3)
    return {
        "plain": [None, True, "text", 3, 2.5, [1, "a"]],
        "scalar": np.float32(1.5),
        "bool scalar": np.bool_(True),
        "random state": shared_rng,
        "same random state again": shared_rng,
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "object array": np.array(["a", 1, None], dtype=object),
        "csr": sparse.random(4, 5, density=0.4, format="csr", random_state=0),
        "tensor": torch.arange(4.0),
        "tuple": (1, (2, "x")),
        "set": {3, 1, 2},
        "frozenset": frozenset({"a"}),
        "bytes": b"\x00\xff",
        "dict": {(1, 2): "tuple key", "k": {"nested": 1}},
        "dataframe": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
        "class": LogisticRegression,
        "object": Entropy(),
        "estimator": LogisticRegression(C=0.5),
        "path": Path("some/where.db"),
    }


def assert_same(a, b):
    if isinstance(a, np.random.RandomState):
        assert isinstance(b, np.random.RandomState)
        assert repr(a.get_state()) == repr(b.get_state())
    elif isinstance(a, (np.ndarray, torch.Tensor)) or sparse.issparse(a):
        assert type(a) is type(b)
        a_dense = a.toarray() if sparse.issparse(a) else np.asarray(a, dtype=object)
        b_dense = b.toarray() if sparse.issparse(b) else np.asarray(b, dtype=object)
        assert a_dense.shape == b_dense.shape and (a_dense == b_dense).all()
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif hasattr(a, "get_params") and not isinstance(a, type):
        assert type(a) is type(b) and a.get_params() == b.get_params()
    else:
        assert type(a) is type(b) and a == b


def used_tags(document):
    if isinstance(document, list):
        return set().union(*map(used_tags, document)) if document else set()
    if not isinstance(document, dict):
        return set()
    own = {key for key in document if key.startswith("__")}
    return own.union(*map(used_tags, document.values()))


@pytest.mark.parametrize("inline_arrays", [False, True])
def test_every_value_survives_a_json_round_trip(inline_arrays):
    values = examples()
    encoder = Encoder(inline_arrays=inline_arrays)
    document = json.loads(json.dumps(encoder.encode(values, "examples")))
    decoded = Decoder(
        arrays=encoder.arrays,
        tensors=encoder.tensors,
        random_states=encoder.random_states,
    ).decode(document)
    assert list(decoded) == list(values)
    for name, value in values.items():
        assert_same(value, decoded[name])
    if not inline_arrays:  # one generator stays one generator
        assert decoded["random state"] is decoded["same random state again"]


def test_the_examples_exercise_every_row_of_the_table():
    tags = set()
    for inline_arrays in (False, True):
        tags |= used_tags(Encoder(inline_arrays=inline_arrays).encode(examples(), ""))
    assert tags == {tag.key for tag in TABLE}


def test_decoding_refuses_unknown_entries_and_classes_outside_skal():
    decoder = Decoder(path="doc")
    with pytest.raises(DocumentError, match="doc: unknown entry"):
        decoder.decode({"__pickle__": "..."})
    with pytest.raises(DocumentError, match="refers to os:system, outside the modules"):
        decoder.decode({"__object__": "os:system", "params": {"__dict__": []}})
    with pytest.raises(DocumentError, match="is not an estimator"):
        decoder.decode(
            {"__object__": "skal.label_store:SQLiteLabelStore", "params": {}}
        )


def test_what_the_codec_cannot_write_is_named():
    with pytest.raises(TypeError, match=r"where: a builtins.object cannot be saved"):
        Encoder().encode(object(), "where")
    with pytest.raises(TypeError, match="the class builtins.dict cannot be saved"):
        Encoder().encode(dict, "where")
