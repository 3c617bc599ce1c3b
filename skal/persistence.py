"""Save and load a fitted :class:`~skal.ActiveLearner` without pickle.

Loading a pickle runs whatever code the file names, so a learner file received from
someone else could execute anything. :func:`save` writes a zip archive with three
members instead:

- ``learner.json``: the learner's parameters, its fitted attributes (history,
  labeled indices, classes, random generator states) and those of its strategy
  and estimator, as tagged JSON; it also holds the SHA-256 of the two other
  members;
- ``arrays.npz``: every numpy array, read back with ``allow_pickle=False``;
- ``tensors.pt``: torch state dicts (network weights, optimizer state), read back
  with ``torch.load(..., weights_only=True)``.

Objects are rebuilt from their class and constructor parameters, never from
pickled code. A class named in the file is imported only if it comes from
``skal``, ``sklearn``, ``skorch``, ``torch.nn``, ``torch.optim`` or
``torch.utils.data``, only estimators (and skorch callbacks) are instantiated, and
only attributes named like fitted state (``name_``) are set. What can be saved:

- fitted estimators: skal's nets (any :class:`skal.nets.SkalNetClassifier`: its
  parameters, fitted attributes and the state dicts of its torch modules and
  optimizer) and scikit-learn's linear models (``sklearn.linear_model``, whose
  fitted state is arrays); anything else raises :class:`TypeError` at
  :func:`save`, naming it;
- strategies: any skal strategy whose fitted attributes are arrays, tensors,
  scalars, strings, bytes, sets, DataFrames, random generators, or again fitted
  estimators and strategies (a committee's members, a bandit's experts). The
  learner's estimator, which the strategy references, is stored once; so is a
  random generator shared by two attributes;
- the learner's ``oracle`` (code) is not saved: a loaded learner has
  ``oracle=None``; a ``label_store`` is saved as its path.

A corrupted, truncated or tampered file raises :class:`LearnerFileError` (a
``ValueError``) naming the file and the problem.

Examples
--------
>>> from sklearn.datasets import load_digits
>>> from sklearn.linear_model import LogisticRegression
>>> from skal import ActiveLearner
>>> from skal.persistence import load, save
>>> X, y = load_digits(return_X_y=True)
>>> learner = ActiveLearner(LogisticRegression(max_iter=200), "margin",
...                         batch_size=20, n_rounds=1, random_state=0).fit(X / 16, y)
>>> save(learner, "learner.skal")  # doctest: +SKIP
>>> same = load("learner.skal")    # doctest: +SKIP
"""

import hashlib
import importlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.base import BaseEstimator

from .label_store import SQLiteLabelStore

FORMAT = "skal-active-learner"
FORMAT_VERSION = 1

# Modules whose classes a file may name. Classes are looked up, never unpickled.
_ALLOWED_MODULES = (
    "skal",
    "sklearn",
    "skorch",
    "torch.nn",
    "torch.optim",
    "torch.utils.data",
)
# Scikit-learn estimators whose whole fitted state is in public array attributes.
_SKLEARN_ESTIMATORS = ("sklearn.linear_model",)
# skorch's own bookkeeping, rebuilt by ``initialize()``: setting it beforehand
# breaks the initialization.
_SKORCH_STATE = (
    "initialized_",
    "init_context_",
    "prefixes_",
    "cuda_dependent_attributes_",
    "virtual_params_",
    "history_",
    "callbacks_",
)
# Learner attributes saved besides the public fitted ones.
_LEARNER_PRIVATE_STATE = (
    "_labeled_X",
    "_labeled_y",
    "_model_rng",
    "_rng",
    "_pool",
    "_pool_rows",
)


class LearnerFileError(ValueError):
    """A learner file is corrupted, truncated, of another format, or unsafe."""


# --- public API ------------------------------------------------------------------
def save(learner, path):
    """Write a fitted ActiveLearner to ``path`` (a zip archive, no pickle).

    The file is written to a temporary name and then renamed, so an interrupted
    save never leaves a half-written file under ``path``.

    Parameters
    ----------
    learner : ActiveLearner
        A fitted learner.
    path : str or path-like
        Destination file (conventionally ``*.skal``).

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``learner`` is not fitted.
    TypeError
        If the estimator, strategy or a parameter cannot be saved without pickle
        (the message names it).
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(learner)
    encoder = _Encoder()
    estimator = encoder.encode_fitted(learner.estimator_, "estimator_")
    # The strategy's estimator_ is the learner's: stored once, referenced after.
    encoder.shared[id(learner.estimator_)] = "learner_estimator"
    params = dict(learner.get_params(deep=False))
    params["oracle"] = None  # code: never saved
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "skal_version": _skal_version(),
        "class": _class_path(type(learner)),
        "params": encoder.encode(params, "ActiveLearner parameters"),
        "oracle_was_set": learner.oracle is not None,
        "estimator": estimator,
        "state": encoder.encode_fitted(_learner_state(learner), "ActiveLearner state"),
        "strategy": encoder.encode_fitted(learner.strategy_, "strategy_"),
    }
    manifest["random_states"] = encoder.random_states
    arrays = io.BytesIO()
    np.savez(arrays, **encoder.arrays)
    tensors = io.BytesIO()
    torch.save(encoder.tensors, tensors)
    members = {"arrays.npz": arrays.getvalue(), "tensors.pt": tensors.getvalue()}
    manifest["sha256"] = {
        name: hashlib.sha256(data).hexdigest() for name, data in members.items()
    }
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("learner.json", json.dumps(manifest))
                for name, data in members.items():
                    zf.writestr(name, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path):
    """Read an ActiveLearner written by :func:`save`, without executing its content.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    learner : ActiveLearner
        Fitted, with ``oracle=None``; ready for ``predict``, ``query`` and
        ``teach``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    LearnerFileError
        If the file is corrupted, truncated, not a skal learner file, of an
        unsupported version, or names a class outside the allowed modules.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No skal learner file at {str(path)!r}.")
    manifest, arrays, tensors = _read_members(path)
    decoder = _Decoder(arrays, tensors, path, manifest.get("random_states"))
    try:
        return _rebuild_learner(manifest, decoder)
    except LearnerFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise LearnerFileError(
            f"{str(path)!r} is not a consistent skal learner file: {exc}"
        ) from exc


# --- learner <-> document ------------------------------------------------------------
def _learner_state(learner):
    state = {
        name: value
        for name, value in vars(learner).items()
        if name.endswith("_")
        and not name.startswith("_")
        and name not in ("estimator_", "strategy_")
    }
    for name in _LEARNER_PRIVATE_STATE:
        if hasattr(learner, name):
            state[name] = getattr(learner, name)
    return state


def _rebuild_learner(manifest, decoder):
    learner_class = decoder.resolve_class(manifest["class"])
    from .learner import ActiveLearner

    if not (
        isinstance(learner_class, type) and issubclass(learner_class, ActiveLearner)
    ):
        raise LearnerFileError(
            f"{manifest['class']} is not an ActiveLearner; {decoder.path} cannot "
            f"be loaded as one."
        )
    learner = learner_class(**decoder.decode(manifest["params"]))
    learner.estimator_ = decoder.decode(manifest["estimator"])
    decoder.shared["learner_estimator"] = learner.estimator_
    for name, value in decoder.decode(manifest["state"]).items():
        if name not in _LEARNER_PRIVATE_STATE:
            decoder.check_attribute_name(name)
        setattr(learner, name, value)
    learner.strategy_ = decoder.decode(manifest["strategy"])
    return learner


def _fitted_kind(obj):
    """How a fitted object is saved: its class decides, never the file."""
    from .nets import SkalNetClassifier
    from .strategies import QueryStrategy

    if isinstance(obj, SkalNetClassifier):
        return "skal_net"
    if isinstance(obj, QueryStrategy):
        return "strategy"
    if any(_in_module(_class_path(type(obj)), m) for m in _SKLEARN_ESTIMATORS):
        return "sklearn"
    return None


def _is_fitted(obj):
    return any(k.endswith("_") and not k.startswith("_") for k in vars(obj))


# --- reading the archive ---------------------------------------------------------------
def _read_members(path):
    def corrupted(problem, exc=None):
        error = LearnerFileError(
            f"Cannot load {str(path)!r}: {problem}. The file is corrupted, truncated "
            f"or not a skal learner file (written by skal.persistence.save)."
        )
        if exc is not None:
            raise error from exc
        raise error

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = {"learner.json", "arrays.npz", "tensors.pt"} - names
            if missing:
                corrupted(f"members {sorted(missing)} are missing")
            raw = {name: zf.read(name) for name in sorted(names)}
    except LearnerFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        corrupted(f"it is not a readable zip archive ({exc})", exc)
    except Exception as exc:  # zlib.error and friends on damaged members
        corrupted(f"a member could not be decompressed ({exc})", exc)
    try:
        manifest = json.loads(raw["learner.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        corrupted(f"learner.json is not valid JSON ({exc})", exc)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        corrupted("learner.json does not describe a skal learner")
    if manifest.get("version") != FORMAT_VERSION:
        raise LearnerFileError(
            f"{str(path)!r} has format version {manifest.get('version')!r}; this "
            f"skal reads version {FORMAT_VERSION}."
        )
    checksums = manifest.get("sha256")
    if not isinstance(checksums, dict) or set(checksums) != {
        "arrays.npz",
        "tensors.pt",
    }:
        corrupted("learner.json lacks the checksums of its members")
    for name, digest in checksums.items():
        if hashlib.sha256(raw[name]).hexdigest() != digest:
            corrupted(f"the checksum of {name} does not match")
    try:
        with np.load(io.BytesIO(raw["arrays.npz"]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        tensors = torch.load(
            io.BytesIO(raw["tensors.pt"]), map_location="cpu", weights_only=True
        )
    except Exception as exc:  # numpy/torch raise many types on bad bytes
        corrupted(f"its arrays or tensors cannot be read safely ({_brief(exc)})", exc)
    return manifest, arrays, tensors


# --- tagged JSON -------------------------------------------------------------------------
class _Encoder:
    """Turns parameters and fitted state into JSON plus arrays and tensors.

    Parameters
    ----------
    inline_arrays : bool, default=False
        Write arrays into the JSON itself (for small documents such as the
        parameters kept by a label store) instead of collecting them.
    """

    def __init__(self, inline_arrays=False, shared=None):
        self.inline_arrays = inline_arrays
        self.shared = shared or {}  # id(object) -> name of an object stored elsewhere
        self.arrays = {}
        self.tensors = {}
        # A generator shared by two objects (a strategy's random_state and its
        # random_state_) must stay shared after loading: stored once, referenced.
        self.random_states = {}
        self._random_state_keys = {}
        self._alive = []

    def add_tensors(self, value):
        key = f"t{len(self.tensors)}"
        self.tensors[key] = value
        return key

    def encode_fitted(self, value, where):
        """Like :meth:`encode`, but estimators and strategies keep their fitted state.

        Fitted state is saved for skal's nets (attributes plus torch state dicts),
        scikit-learn linear models (array attributes) and skal strategies (their
        attributes, recursively: a committee's members, a bandit's experts).
        """
        return self.encode(value, where, fitted=True)

    def _fitted_object(self, value, where):
        kind = _fitted_kind(value)
        if kind is None:
            raise TypeError(
                f"{where}: cannot save a fitted {_class_path(type(value))}: only "
                f"skal's nets (skal.nets), scikit-learn linear models "
                f"(sklearn.linear_model) and skal strategies are rebuilt safely from "
                f"their parameters and arrays, without pickle."
            )
        attributes, torch_state = {}, {}
        for name, attribute in vars(value).items():
            if not name.endswith("_") or name.startswith("_"):
                continue
            if kind == "skal_net" and name in _SKORCH_STATE:
                continue
            if isinstance(attribute, (torch.nn.Module, torch.optim.Optimizer)):
                torch_state[name] = attribute.state_dict()
                continue
            attributes[name] = self.encode(attribute, f"{where}.{name}", fitted=True)
        return {
            "__fitted__": kind,
            "spec": self.encode(value, where),
            "attributes": attributes,
            "torch": self.add_tensors(torch_state) if torch_state else None,
        }

    def encode(self, value, where, fitted=False):
        if fitted and id(value) in self.shared:
            return {"__shared__": self.shared[id(value)]}
        if fitted and _has_params(value) and not isinstance(value, type):
            if _is_fitted(value):
                return self._fitted_object(value, where)
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and type(value) in (int, float):
            return value
        if isinstance(value, np.generic):
            if value.dtype == object:
                raise TypeError(f"{where}: object scalars cannot be saved.")
            return {"__scalar__": value.item(), "dtype": value.dtype.str}
        if isinstance(value, np.random.RandomState):
            kind, keys, pos, has_gauss, gauss = value.get_state()
            state = [kind, keys.tolist(), pos, has_gauss, gauss]
            if self.inline_arrays:
                return {"__random_state__": state}
            key = self._random_state_keys.setdefault(
                id(value), f"r{len(self._random_state_keys)}"
            )
            self.random_states[key] = state
            self._alive.append(value)  # keeps id(value) from being reused
            return {"__random_state_ref__": key}
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if sparse.issparse(value):
            value = sparse.csr_matrix(value)
            return {
                "__csr__": {
                    "data": self._array(value.data, where),
                    "indices": self._array(value.indices, where),
                    "indptr": self._array(value.indptr, where),
                    "shape": list(value.shape),
                }
            }
        if isinstance(value, torch.Tensor):
            return {"__tensor__": self.add_tensors(value.detach().cpu())}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, where, fitted) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, where, fitted) for v in value]
        if isinstance(value, (set, frozenset)):
            items = sorted(value, key=repr)  # deterministic files
            return {
                "__set__": [self.encode(v, where, fitted) for v in items],
                "frozen": isinstance(value, frozenset),
            }
        if isinstance(value, bytes):
            return {"__bytes__": value.hex()}
        if isinstance(value, dict):
            return {
                "__dict__": [
                    [self.encode(k, where), self.encode(v, f"{where}[{k!r}]", fitted)]
                    for k, v in value.items()
                ]
            }
        if isinstance(value, pd.DataFrame):
            return {
                "__dataframe__": {
                    "columns": [self.encode(c, where) for c in value.columns],
                    "data": [
                        self.encode(value[c].tolist(), f"{where}[{c!r}]", fitted)
                        for c in value.columns
                    ],
                }
            }
        if isinstance(value, type):
            path = _class_path(value)
            if not any(_in_module(path, m) for m in _ALLOWED_MODULES):
                raise TypeError(
                    f"{where}: the class {path} cannot be saved; only classes from "
                    f"{', '.join(_ALLOWED_MODULES)} are rebuilt on load."
                )
            return {"__class__": path}
        if _has_params(value):
            path = _class_path(type(value))
            if not any(_in_module(path, m) for m in _ALLOWED_MODULES):
                raise TypeError(
                    f"{where}: {path} cannot be saved without pickle; only objects "
                    f"from {', '.join(_ALLOWED_MODULES)} are rebuilt from their "
                    f"parameters on load."
                )
            params = {
                k: v for k, v in value.get_params(deep=False).items() if k[:1] != "_"
            }
            return {
                "__object__": path,
                "params": self.encode(params, f"{where} ({type(value).__name__})"),
            }
        if isinstance(value, SQLiteLabelStore):
            return {"__sqlite_label_store__": os.fspath(value.path)}
        if isinstance(value, os.PathLike):
            return {"__path__": os.fspath(value)}
        raise TypeError(
            f"{where}: a {type(value).__module__}.{type(value).__qualname__} cannot be "
            f"saved without pickle."
        )

    def _array(self, value, where):
        if value.dtype == object:
            return {
                "__objarray__": [self.encode(v, where) for v in value.ravel().tolist()],
                "shape": list(value.shape),
            }
        if self.inline_arrays:
            return {
                "__inline_array__": value.tolist(),
                "dtype": value.dtype.str,
                "shape": list(value.shape),
            }
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return {"__array__": key}


class _Decoder:
    """Inverse of :class:`_Encoder`; imports classes from allowed modules only."""

    def __init__(
        self, arrays=None, tensors=None, path="<document>", random_states=None
    ):
        self.arrays = arrays or {}
        self.tensors = tensors or {}
        self.path = path
        self.random_states = random_states or {}
        self._generators = {}
        self.shared = {}

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__fitted__" in value:
            return self._fitted_object(value)
        if "__shared__" in value:
            return self.shared[value["__shared__"]]
        if "__set__" in value:
            items = [_hashable(self.decode(v)) for v in value["__set__"]]
            return frozenset(items) if value.get("frozen") else set(items)
        if "__bytes__" in value:
            return bytes.fromhex(value["__bytes__"])
        if "__scalar__" in value:
            return np.dtype(value["dtype"]).type(value["__scalar__"])
        if "__random_state__" in value:
            return _generator(value["__random_state__"])
        if "__random_state_ref__" in value:
            key = value["__random_state_ref__"]
            if key not in self._generators:
                self._generators[key] = _generator(self.random_states[key])
            return self._generators[key]
        if "__array__" in value:
            return self.arrays[value["__array__"]]
        if "__inline_array__" in value:
            return np.asarray(
                value["__inline_array__"], dtype=np.dtype(value["dtype"])
            ).reshape(value["shape"])
        if "__objarray__" in value:
            items = [self.decode(v) for v in value["__objarray__"]]
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(value["shape"])
        if "__csr__" in value:
            parts = value["__csr__"]
            return sparse.csr_matrix(
                (
                    self.decode(parts["data"]),
                    self.decode(parts["indices"]),
                    self.decode(parts["indptr"]),
                ),
                shape=tuple(parts["shape"]),
            )
        if "__tensor__" in value:
            return self.tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {
                _hashable(self.decode(k)): self.decode(v) for k, v in value["__dict__"]
            }
        if "__dataframe__" in value:
            frame = value["__dataframe__"]
            columns = [self.decode(c) for c in frame["columns"]]
            data = {c: self.decode(d) for c, d in zip(columns, frame["data"])}
            return pd.DataFrame(data, columns=columns)
        if "__class__" in value:
            return self.resolve_class(value["__class__"])
        if "__object__" in value:
            cls = self.resolve_class(value["__object__"])
            if not _has_params(cls):
                raise LearnerFileError(
                    f"{self.path}: {value['__object__']} is not an estimator; refusing "
                    f"to instantiate it."
                )
            return cls(**self.decode(value["params"]))
        if "__sqlite_label_store__" in value:
            return SQLiteLabelStore(value["__sqlite_label_store__"])
        if "__path__" in value:
            return Path(value["__path__"])
        raise LearnerFileError(f"{self.path}: unknown entry {sorted(value)[:3]}.")

    def _fitted_object(self, document):
        obj = self.decode(document["spec"])
        kind = _fitted_kind(obj)
        if kind != document["__fitted__"]:
            raise LearnerFileError(
                f"{self.path}: {type(obj).__name__} is not a {document['__fitted__']}."
            )
        attributes = {
            self.check_attribute_name(name): self.decode(value)
            for name, value in document["attributes"].items()
        }
        for name, value in attributes.items():
            setattr(obj, name, value)
        if kind == "skal_net":
            # initialize() builds the torch modules (and draws random weights:
            # keep the global torch RNG untouched); then the saved weights go in.
            # What it sets itself (e.g. the dict its forward hooks fill) wins over
            # the saved copy.
            with torch.random.fork_rng(devices=[]):
                obj.initialize()
            states = self.tensors[document["torch"]] if document["torch"] else {}
            for name, state in states.items():
                target = getattr(obj, self.check_attribute_name(name), None)
                if not isinstance(target, (torch.nn.Module, torch.optim.Optimizer)):
                    raise LearnerFileError(
                        f"{self.path}: {type(obj).__name__}.{name} is not a torch "
                        f"module or optimizer after initialization."
                    )
                target.load_state_dict(state)
        return obj

    def check_attribute_name(self, name):
        """Only fitted-state names (``name_``) may be set from a file."""
        if not (
            isinstance(name, str)
            and name.endswith("_")
            and not name.startswith("_")
            and name.isidentifier()
        ):
            raise LearnerFileError(
                f"{self.path}: refusing to set the attribute {name!r}, which is not "
                f"fitted state."
            )
        return name

    def resolve_class(self, path):
        module_name, _, qualname = str(path).partition(":")
        if not any(_in_module(module_name, m) for m in _ALLOWED_MODULES):
            raise LearnerFileError(
                f"{self.path} refers to {path}, outside the modules skal rebuilds "
                f"objects from ({', '.join(_ALLOWED_MODULES)}); refusing to load it."
            )
        try:
            obj = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise LearnerFileError(
                f"{self.path} refers to {path}, which this installation does not "
                f"have ({exc})."
            ) from exc
        if not isinstance(obj, type):
            raise LearnerFileError(f"{self.path}: {path} is not a class.")
        return obj


def _brief(exc):
    """The informative line of an error (torch's weights-only errors are long)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("WeightsUnpickler error:"):
            return line
    return (lines[0] if lines else type(exc).__name__)[:300]


def _generator(state):
    kind, keys, pos, has_gauss, gauss = state
    rng = np.random.RandomState()
    rng.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    return rng


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


def _class_path(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _in_module(path, root):
    module = str(path).partition(":")[0]
    return module == root or module.startswith(root + ".")


def _skal_version():
    from . import __version__

    return __version__
