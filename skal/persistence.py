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
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import _codec
from ._codec import Decoder, Encoder, Tag, class_path, in_module, is_fitted_object
from ._version import __version__
from .label_store import SQLiteLabelStore
from .learner import ActiveLearner

FORMAT = "skal-active-learner"
FORMAT_VERSION = 1

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
    state = learner._get_state()  # raises NotFittedError
    encoder = Encoder(_TABLE)
    estimator = state.pop("estimator_")
    strategy = state.pop("strategy_")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "skal_version": __version__,
        "class": class_path(type(learner)),
        "params": encoder.encode(_savable_params(learner), "ActiveLearner parameters"),
        "oracle_was_set": learner.oracle is not None,
        "estimator": encoder.encode(estimator, "estimator_", fitted=True),
    }
    # The strategy's estimator_ is the learner's: stored once, referenced after.
    encoder.shared[id(estimator)] = "learner_estimator"
    manifest["state"] = encoder.encode(state, "ActiveLearner state", fitted=True)
    manifest["strategy"] = encoder.encode(strategy, "strategy_", fitted=True)
    manifest["random_states"] = encoder.random_states
    arrays = io.BytesIO()
    np.savez(arrays, **encoder.arrays)
    tensors = io.BytesIO()
    torch.save(encoder.tensors, tensors)
    members = {"arrays.npz": arrays.getvalue(), "tensors.pt": tensors.getvalue()}
    manifest["sha256"] = {
        name: hashlib.sha256(data).hexdigest() for name, data in members.items()
    }
    members = {"learner.json": json.dumps(manifest).encode(), **members}
    return _write_atomically(Path(path), members)


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
    decoder = Decoder(
        _TABLE,
        arrays=arrays,
        tensors=tensors,
        path=path,
        random_states=manifest.get("random_states"),
        error=LearnerFileError,
    )
    try:
        return _rebuild_learner(manifest, decoder)
    except LearnerFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise LearnerFileError(
            f"{str(path)!r} is not a consistent skal learner file: {exc}"
        ) from exc


# --- learner <-> document ------------------------------------------------------------
def _savable_params(learner):
    params = dict(learner.get_params(deep=False))
    params["oracle"] = None  # code: never saved
    return params


def _rebuild_learner(manifest, decoder):
    learner_class = decoder.resolve_class(manifest["class"])
    if not (
        isinstance(learner_class, type) and issubclass(learner_class, ActiveLearner)
    ):
        raise LearnerFileError(
            f"{manifest['class']} is not an ActiveLearner; {decoder.path} cannot "
            f"be loaded as one."
        )
    learner = learner_class(**decoder.decode(manifest["params"]))
    estimator = decoder.decode(manifest["estimator"])
    decoder.shared["learner_estimator"] = estimator
    state = decoder.decode(manifest["state"])
    strategy = decoder.decode(manifest["strategy"])
    return learner._set_state({**state, "estimator_": estimator, "strategy_": strategy})


def _write_atomically(path, members):
    """Write a zip of ``members`` to a temporary file, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
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


# --- fitted objects: the rows persistence adds to the codec's table ------------------
def _fitted_kind(obj):
    """How a fitted object is saved: its class decides, never the file."""
    from .callbacks import Callback
    from .nets import SkalNetClassifier
    from .strategies import QueryStrategy

    if isinstance(obj, SkalNetClassifier):
        return "skal_net"
    if isinstance(obj, QueryStrategy):
        return "strategy"
    if isinstance(obj, Callback):  # round callbacks and stopping criteria
        return "callback"
    if any(in_module(class_path(type(obj)), m) for m in _SKLEARN_ESTIMATORS):
        return "sklearn"
    return None


def _encode_fitted(encoder, value, where, fitted):
    """Parameters, ``name_`` attributes and torch state dicts of a fitted object.

    Fitted state is saved for skal's nets (attributes plus torch state dicts),
    scikit-learn linear models (array attributes) and skal strategies (their
    attributes, recursively: a committee's members, a bandit's experts).
    """
    kind = _fitted_kind(value)
    if kind is None:
        # A Pipeline passes this check although its own vars() hold no fitted
        # state (its steps do): saved as parameters, it would load unfitted.
        raise TypeError(
            f"{where}: cannot save a fitted {class_path(type(value))}: only "
            f"skal's nets (skal.nets), scikit-learn linear models "
            f"(sklearn.linear_model) and skal strategies are rebuilt safely from "
            f"their parameters and arrays, without pickle."
            + (
                " A Pipeline's fitted state is in its steps: give the learner its "
                "final estimator and X transformed beforehand (e.g. by a "
                "StandardScaler fitted on the pool)."
                if hasattr(value, "steps")
                else ""
            )
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
        attributes[name] = encoder.encode(attribute, f"{where}.{name}", fitted=True)
    return {
        "__fitted__": kind,
        "spec": encoder.encode(value, where),
        "attributes": attributes,
        "torch": encoder.add_tensors(torch_state) if torch_state else None,
    }


def _decode_fitted(decoder, document):
    obj = decoder.decode(document["spec"])
    kind = _fitted_kind(obj)
    if kind != document["__fitted__"]:
        raise LearnerFileError(
            f"{decoder.path}: {type(obj).__name__} is not a {document['__fitted__']}."
        )
    for name, value in document["attributes"].items():
        setattr(obj, _checked_attribute(decoder, name), decoder.decode(value))
    if kind == "skal_net":
        # initialize() builds the torch modules (and draws random weights: keep
        # the global torch RNG untouched); then the saved weights go in. What it
        # sets itself (e.g. the dict its forward hooks fill) wins over the saved
        # copy.
        with torch.random.fork_rng(devices=[]):
            obj.initialize()
        states = decoder.tensors[document["torch"]] if document["torch"] else {}
        for name, state in states.items():
            target = getattr(obj, _checked_attribute(decoder, name), None)
            if not isinstance(target, (torch.nn.Module, torch.optim.Optimizer)):
                raise LearnerFileError(
                    f"{decoder.path}: {type(obj).__name__}.{name} is not a torch "
                    f"module or optimizer after initialization."
                )
            target.load_state_dict(state)
    return obj


def _checked_attribute(decoder, name):
    """Only fitted-state names (``name_``) may be set from a file."""
    if not (
        isinstance(name, str)
        and name.endswith("_")
        and not name.startswith("_")
        and name.isidentifier()
    ):
        raise LearnerFileError(
            f"{decoder.path}: refusing to set the attribute {name!r}, which is not "
            f"fitted state."
        )
    return name


_TABLE = (
    Tag(
        "__shared__",
        lambda encoder, value, fitted: fitted and id(value) in encoder.shared,
        lambda encoder, value, where, fitted: {"__shared__": encoder.shared[id(value)]},
        lambda decoder, document: decoder.shared[document["__shared__"]],
    ),
    Tag(
        "__fitted__",
        lambda encoder, value, fitted: fitted and is_fitted_object(value),
        _encode_fitted,
        _decode_fitted,
    ),
    *_codec.TABLE,
    Tag(
        "__sqlite_label_store__",
        lambda encoder, value, fitted: isinstance(value, SQLiteLabelStore),
        lambda e, value, w, f: {"__sqlite_label_store__": os.fspath(value.path)},
        lambda decoder, document: SQLiteLabelStore(document["__sqlite_label_store__"]),
    ),
)


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


def _brief(exc):
    """The informative line of an error (torch's weights-only errors are long)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("WeightsUnpickler error:"):
            return line
    return (lines[0] if lines else type(exc).__name__)[:300]
