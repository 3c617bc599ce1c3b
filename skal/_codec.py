"""Tagged JSON for parameters and state: one table of tag -> (encode, decode).

Values that JSON holds as they are (None, bool, str, int, float, list) are written
as they are; everything else becomes a one-key document ``{"__tag__": ...}``
(plus the tag's own fields) written by the table row that claims the value and
read back by the same row. Arrays and tensors are collected on the side
(``Encoder.arrays``, ``Encoder.tensors``) for an ``.npz`` and a weights-only torch
file, or written inline for small documents (``inline_arrays=True``).

Nothing is ever unpickled: a class named in a document is imported only from
:data:`ALLOWED_MODULES`, and only estimators (and skorch callbacks) are
instantiated, from their constructor parameters.

Users: :mod:`skal.persistence` (learner files; it adds rows for fitted objects
and label stores) and :mod:`skal.label_store` (a session's learner parameters).
"""

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.base import BaseEstimator

# Modules whose classes a document may name. Classes are looked up, never unpickled.
ALLOWED_MODULES = (
    "skal",
    "sklearn",
    "skorch",
    "torch.nn",
    "torch.optim",
    "torch.utils.data",
)


class DocumentError(ValueError):
    """A document names something unsafe or unknown."""


@dataclass(frozen=True)
class Tag:
    """One row of the codec's table.

    Attributes
    ----------
    key : str
        The document's tag, e.g. ``"__tuple__"``.
    claims : callable
        ``claims(encoder, value, fitted) -> bool``: this row writes ``value``.
        Rows are tried in table order; the first that claims a value writes it.
    encode : callable
        ``encode(encoder, value, where, fitted) -> dict`` holding ``key``.
    decode : callable
        ``decode(decoder, document) -> value``.
    """

    key: str
    claims: Callable
    encode: Callable
    decode: Callable


class Encoder:
    """Turns parameters and state into JSON plus arrays and tensors.

    Parameters
    ----------
    table : sequence of Tag, default=TABLE
    inline_arrays : bool, default=False
        Write arrays into the JSON itself (for small documents such as the
        parameters kept by a label store) instead of collecting them.
    max_inline_size : int, default=None
        With ``inline_arrays``, the most values an array may have; a larger one
        raises TypeError (the value cannot be kept in this document). None: no
        limit.
    """

    def __init__(self, table=None, *, inline_arrays=False, max_inline_size=None):
        self.table = TABLE if table is None else tuple(table)
        self.inline_arrays = inline_arrays
        self.max_inline_size = max_inline_size
        # id(object) -> name of an object stored elsewhere in the document (rows
        # added by skal.persistence write references to it).
        self.shared = {}
        self.arrays = {}
        self.tensors = {}
        # A generator shared by two objects (a strategy's random_state and its
        # random_state_) must stay shared after loading: stored once, referenced.
        self.random_states = {}
        self._random_state_keys = {}
        self._alive = []  # keeps the ids of referenced objects from being reused

    def encode(self, value, where, fitted=False):
        """The JSON document of ``value``; ``where`` names it in error messages.

        ``fitted=True`` lets rows that keep fitted state claim the value (and the
        values inside it).
        """
        if value is None or isinstance(value, (bool, str)):
            return value
        if type(value) in (int, float):
            return value
        if isinstance(value, list):
            return [self.encode(v, where, fitted) for v in value]
        for tag in self.table:
            if tag.claims(self, value, fitted):
                return tag.encode(self, value, where, fitted)
        raise TypeError(
            f"{where}: a {type(value).__module__}.{type(value).__qualname__} cannot be "
            f"saved without pickle."
        )

    def add_array(self, value):
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return key

    def add_tensors(self, value):
        key = f"t{len(self.tensors)}"
        self.tensors[key] = value
        return key


class Decoder:
    """Inverse of :class:`Encoder`; imports classes from allowed modules only.

    Parameters
    ----------
    table : sequence of Tag, default=TABLE
    arrays, tensors : dict, default=None
        What the encoder collected on the side.
    path : str, default="<document>"
        Names the document in error messages.
    random_states : dict, default=None
        The encoder's ``random_states``.
    error : type, default=DocumentError
        The exception raised for an unsafe or unknown entry.
    """

    def __init__(
        self,
        table=None,
        *,
        arrays=None,
        tensors=None,
        path="<document>",
        random_states=None,
        error=DocumentError,
    ):
        self.tags = {tag.key: tag for tag in (TABLE if table is None else table)}
        self.arrays = arrays or {}
        self.tensors = tensors or {}
        self.path = path
        self.random_states = random_states or {}
        self.error = error
        self.generators = {}
        self.shared = {}

    def decode(self, document):
        if isinstance(document, list):
            return [self.decode(v) for v in document]
        if not isinstance(document, dict):
            return document
        for key in document:
            if key in self.tags:
                return self.tags[key].decode(self, document)
        raise self.error(f"{self.path}: unknown entry {sorted(document)[:3]}.")

    def resolve_class(self, path):
        """The class ``module:qualname``, from an allowed module only."""
        module_name, _, qualname = str(path).partition(":")
        if not any(in_module(module_name, m) for m in ALLOWED_MODULES):
            raise self.error(
                f"{self.path} refers to {path}, outside the modules skal rebuilds "
                f"objects from ({', '.join(ALLOWED_MODULES)}); refusing to load it."
            )
        try:
            obj = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise self.error(
                f"{self.path} refers to {path}, which this installation does not "
                f"have ({exc})."
            ) from exc
        if not isinstance(obj, type):
            raise self.error(f"{self.path}: {path} is not a class.")
        return obj


# --- the table ---------------------------------------------------------------------
def _claims_type(*types):
    return lambda encoder, value, fitted: isinstance(value, types)


def _encode_scalar(encoder, value, where, fitted):
    if value.dtype == object:
        raise TypeError(f"{where}: object scalars cannot be saved.")
    return {"__scalar__": value.item(), "dtype": value.dtype.str}


def _random_state_as_list(value):
    kind, keys, pos, has_gauss, gauss = value.get_state()
    return [kind, keys.tolist(), pos, has_gauss, gauss]


def _generator(state):
    kind, keys, pos, has_gauss, gauss = state
    rng = np.random.RandomState()
    rng.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    return rng


def _encode_random_state_ref(encoder, value, where, fitted):
    key = encoder._random_state_keys.setdefault(
        id(value), f"r{len(encoder._random_state_keys)}"
    )
    encoder.random_states[key] = _random_state_as_list(value)
    encoder._alive.append(value)
    return {"__random_state_ref__": key}


def _decode_random_state_ref(decoder, document):
    key = document["__random_state_ref__"]
    if key not in decoder.generators:
        decoder.generators[key] = _generator(decoder.random_states[key])
    return decoder.generators[key]


def _is_random_state(inline):
    return lambda encoder, value, fitted: (
        isinstance(value, np.random.RandomState) and encoder.inline_arrays == inline
    )


def _is_array(*, object_dtype, inline=None):
    def claims(encoder, value, fitted):
        if not isinstance(value, np.ndarray) or (value.dtype == object) != object_dtype:
            return False
        return inline is None or encoder.inline_arrays == inline

    return claims


def _encode_objarray(encoder, value, where, fitted):
    return {
        "__objarray__": [encoder.encode(v, where) for v in value.ravel().tolist()],
        "shape": list(value.shape),
    }


def _decode_objarray(decoder, document):
    items = [decoder.decode(v) for v in document["__objarray__"]]
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(document["shape"])


def _encode_inline_array(encoder, value, where, fitted):
    limit = encoder.max_inline_size
    if limit is not None and value.size > limit:
        raise TypeError(
            f"{where}: an array of {value.size} values is too large to keep inline "
            f"(at most {limit})."
        )
    return {
        "__inline_array__": value.tolist(),
        "dtype": value.dtype.str,
        "shape": list(value.shape),
    }


def _decode_inline_array(decoder, document):
    dtype = np.dtype(document["dtype"])
    return np.asarray(document["__inline_array__"], dtype=dtype).reshape(
        document["shape"]
    )


def _encode_csr(encoder, value, where, fitted):
    value = sparse.csr_matrix(value)
    parts = {name: getattr(value, name) for name in ("data", "indices", "indptr")}
    document = {name: encoder.encode(part, where) for name, part in parts.items()}
    return {"__csr__": {**document, "shape": list(value.shape)}}


def _decode_csr(decoder, document):
    parts = document["__csr__"]
    data, indices, indptr = (
        decoder.decode(parts[name]) for name in ("data", "indices", "indptr")
    )
    return sparse.csr_matrix((data, indices, indptr), shape=tuple(parts["shape"]))


def _encode_set(encoder, value, where, fitted):
    items = sorted(value, key=repr)  # deterministic files
    return {
        "__set__": [encoder.encode(v, where, fitted) for v in items],
        "frozen": isinstance(value, frozenset),
    }


def _decode_set(decoder, document):
    items = [_hashable(decoder.decode(v)) for v in document["__set__"]]
    return frozenset(items) if document.get("frozen") else set(items)


def _encode_dict(encoder, value, where, fitted):
    return {
        "__dict__": [
            [encoder.encode(k, where), encoder.encode(v, f"{where}[{k!r}]", fitted)]
            for k, v in value.items()
        ]
    }


def _decode_dict(decoder, document):
    return {
        _hashable(decoder.decode(k)): decoder.decode(v) for k, v in document["__dict__"]
    }


def _encode_dataframe(encoder, value, where, fitted):
    return {
        "__dataframe__": {
            "columns": [encoder.encode(c, where) for c in value.columns],
            "data": [
                encoder.encode(value[c].tolist(), f"{where}[{c!r}]", fitted)
                for c in value.columns
            ],
        }
    }


def _decode_dataframe(decoder, document):
    frame = document["__dataframe__"]
    columns = [decoder.decode(c) for c in frame["columns"]]
    data = {c: decoder.decode(d) for c, d in zip(columns, frame["data"])}
    return pd.DataFrame(data, columns=columns)


def _encode_class(encoder, value, where, fitted):
    path = class_path(value)
    if not any(in_module(path, m) for m in ALLOWED_MODULES):
        raise TypeError(
            f"{where}: the class {path} cannot be saved; only classes from "
            f"{', '.join(ALLOWED_MODULES)} are rebuilt on load."
        )
    return {"__class__": path}


def _encode_object(encoder, value, where, fitted):
    path = class_path(type(value))
    if not any(in_module(path, m) for m in ALLOWED_MODULES):
        raise TypeError(
            f"{where}: {path} cannot be saved without pickle; only objects from "
            f"{', '.join(ALLOWED_MODULES)} are rebuilt from their parameters on load."
        )
    params = {k: v for k, v in value.get_params(deep=False).items() if k[:1] != "_"}
    return {
        "__object__": path,
        "params": encoder.encode(params, f"{where} ({type(value).__name__})"),
    }


def _decode_object(decoder, document):
    cls = decoder.resolve_class(document["__object__"])
    if not _has_params(cls):
        raise decoder.error(
            f"{decoder.path}: {document['__object__']} is not an estimator; refusing "
            f"to instantiate it."
        )
    return cls(**decoder.decode(document["params"]))


def _is_plain_object(encoder, value, fitted):
    return _has_params(value) and not isinstance(value, type)


TABLE = (
    Tag(
        "__scalar__",
        _claims_type(np.generic),
        _encode_scalar,
        lambda d, doc: np.dtype(doc["dtype"]).type(doc["__scalar__"]),
    ),
    Tag(
        "__random_state__",
        _is_random_state(inline=True),
        lambda e, value, w, f: {"__random_state__": _random_state_as_list(value)},
        lambda d, doc: _generator(doc["__random_state__"]),
    ),
    Tag(
        "__random_state_ref__",
        _is_random_state(inline=False),
        _encode_random_state_ref,
        _decode_random_state_ref,
    ),
    Tag(
        "__objarray__",
        _is_array(object_dtype=True),
        _encode_objarray,
        _decode_objarray,
    ),
    Tag(
        "__inline_array__",
        _is_array(object_dtype=False, inline=True),
        _encode_inline_array,
        _decode_inline_array,
    ),
    Tag(
        "__array__",
        _is_array(object_dtype=False, inline=False),
        lambda encoder, value, w, f: {"__array__": encoder.add_array(value)},
        lambda decoder, doc: decoder.arrays[doc["__array__"]],
    ),
    Tag(
        "__csr__",
        lambda encoder, value, fitted: sparse.issparse(value),
        _encode_csr,
        _decode_csr,
    ),
    Tag(
        "__tensor__",
        _claims_type(torch.Tensor),
        lambda e, value, w, f: {"__tensor__": e.add_tensors(value.detach().cpu())},
        lambda decoder, doc: decoder.tensors[doc["__tensor__"]],
    ),
    Tag(
        "__tuple__",
        _claims_type(tuple),
        lambda e, value, w, f: {"__tuple__": [e.encode(v, w, f) for v in value]},
        lambda d, doc: tuple(d.decode(v) for v in doc["__tuple__"]),
    ),
    Tag("__set__", _claims_type(set, frozenset), _encode_set, _decode_set),
    Tag(
        "__bytes__",
        _claims_type(bytes),
        lambda e, value, w, f: {"__bytes__": value.hex()},
        lambda d, doc: bytes.fromhex(doc["__bytes__"]),
    ),
    Tag("__dict__", _claims_type(dict), _encode_dict, _decode_dict),
    Tag(
        "__dataframe__",
        _claims_type(pd.DataFrame),
        _encode_dataframe,
        _decode_dataframe,
    ),
    Tag(
        "__class__",
        _claims_type(type),
        _encode_class,
        lambda decoder, doc: decoder.resolve_class(doc["__class__"]),
    ),
    Tag("__object__", _is_plain_object, _encode_object, _decode_object),
    Tag(
        "__path__",
        _claims_type(os.PathLike),
        lambda e, value, w, f: {"__path__": os.fspath(value)},
        lambda d, doc: Path(doc["__path__"]),
    ),
)


# --- helpers -------------------------------------------------------------------------
def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def _has_params(obj):
    """Estimators and skorch callbacks: rebuilt as ``cls(**get_params())``."""
    cls = obj if isinstance(obj, type) else type(obj)
    if issubclass(cls, BaseEstimator):
        return True
    try:
        from skorch.callbacks import Callback
    except ImportError:  # pragma: no cover - skorch is a dependency
        return False
    return issubclass(cls, Callback)


def is_fitted_object(obj):
    """True for an estimator (or callback) holding fitted state.

    scikit-learn's ``__sklearn_is_fitted__`` decides where a class defines it: a
    fitted ``Pipeline`` keeps its state in its steps, not in ``name_``
    attributes of its own.
    """
    if not _has_params(obj) or isinstance(obj, type):
        return False
    if hasattr(obj, "__sklearn_is_fitted__"):
        return bool(obj.__sklearn_is_fitted__())
    return any(k.endswith("_") and not k.startswith("_") for k in vars(obj))


def class_path(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def in_module(path, root):
    module = str(path).partition(":")[0]
    return module == root or module.startswith(root + ".")
