"""How a field of :class:`BenchmarkProtocol` is declared, checked and parsed.

- :func:`option` declares a field: its default, help, command-line flag and
  ``config.json`` section (an :class:`Option` in the field's metadata);
- the checks (``count``, ``seeds``, ...) turn a Python value into the field's
  normalized value or raise :class:`Expected` with what the value must be;
- the parsers (``seeds_text``, ...) turn a command-line string into a value
  the checks accept.
"""

import argparse
import ast
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from ..strategies import available_strategies

GROUPS = ("data", "protocol", "execution")  # the argument groups of `skal bench`
SAME_DEFAULT = object()  # a flag whose default is the field's


class Expected(ValueError):
    """What a field's value must be; the protocol adds the field's name and flag."""


# ------------------------------------------------------- values from the Python API
def count(value, minimum=1):
    # bool is an Integral, but True is no batch size.
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise Expected(f"an integer >= {minimum}")
    return int(value)


def non_negative(value):
    return count(value, minimum=0)


def positive_number(value):
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise Expected("a number > 0")
    return float(value)


def optional(convert):
    def optional(value):
        if value is None:
            return None
        try:
            return convert(value)
        except Expected as exc:
            raise Expected(f"{exc} or None") from None

    return optional


def tuple_of(convert, what):
    """A non-empty tuple of distinct converted items (one string counts as one)."""

    def tuple_of(value):
        if isinstance(value, str) or not isinstance(value, Iterable):
            value = (value,)
        try:
            items = tuple(convert(item) for item in value)
        except Expected:
            items = ()
        if not items or len(set(items)) < len(items):
            raise Expected(f"a non-empty list of distinct {what}")
        return items

    return tuple_of


def single_name(value):
    if not isinstance(value, str) or not value:
        raise Expected("a name")
    return value


names = tuple_of(single_name, "names")


def seeds(value):
    """An int ``n`` means seeds ``0 .. n-1``."""
    try:
        if isinstance(value, Integral) and not isinstance(value, bool):
            value = range(count(value))
        return tuple_of(non_negative, "seeds")(value)
    except Expected:
        raise Expected(
            "a number of seeds n >= 1 (seeds 0..n-1) or a list of distinct seeds >= 0"
        ) from None


def one_of(allowed):
    """A single name from ``allowed``."""

    def chosen(value):
        if not isinstance(value, str) or value not in allowed:
            raise Expected(f"one of {list(allowed)}")
        return value

    return chosen


def choices_of(allowed):
    """A tuple of distinct names from ``allowed``; None or empty: no name."""

    def chosen(value):
        if value is None or (isinstance(value, list | tuple) and not value):
            return ()
        try:
            value = names(value)
        except Expected:
            value = None
        if value is None or not set(value) <= set(allowed):
            raise Expected(f"a list of distinct names among {list(allowed)}")
        return value

    return chosen


def strategy_names(value):
    return tuple(available_strategies()) if value is None else names(value)


def strategy_params(value):
    """``{strategy: {param: value}}``, sorted by strategy (registry checked later)."""
    value = {} if value is None else value
    if not isinstance(value, Mapping) or not all(
        isinstance(p, Mapping) for p in value.values()
    ):
        raise Expected("a dict {strategy name: {parameter: value}}")
    return {str(name): dict(params) for name, params in sorted(value.items())}


def validation_size(value):
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    if isinstance(value, Real) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    raise Expected("a fraction in (0, 1) or a row count >= 1")


def dropout(value):
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise Expected("a probability in [0, 1)")
    return float(value)


def path(value):
    if not isinstance(value, str | os.PathLike):
        raise Expected("a path")
    return os.fspath(value)


def boolean(value):
    if not isinstance(value, bool | np.bool_):
        raise Expected("True or False")
    return bool(value)


def n_jobs(value):
    if isinstance(value, bool) or not isinstance(value, Integral) or value == 0:
        raise Expected("a non-zero integer (-1: one per core)")
    return int(value)


def dask(value):
    if value is None or hasattr(value, "submit"):  # a distributed.Client
        return value
    if not isinstance(value, str) or not value:
        raise Expected("None, 'local', a scheduler address or a distributed.Client")
    return value


# ---------------------------------------------------- strings from the command line
def seeds_text(text):
    """``N`` (seeds 0..N-1), ``A:B`` (seeds A..B-1) or ``A,B,C``."""
    try:
        if "," in text:
            chosen = [int(s) for s in text.split(",") if s.strip()]
        elif ":" in text:
            start, stop = (int(s) for s in text.split(":"))
            chosen = list(range(start, stop))
        else:
            chosen = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be N, A:B or A,B,C (integers), got {text!r}"
        ) from None
    if chosen == []:
        raise argparse.ArgumentTypeError(f"{text!r} selects no seed")
    return chosen


def size_text(text):
    """A fraction in (0, 1) or a row count."""
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def strategy_param_text(text):
    """``NAME:PARAM=VALUE`` -> (name, param, value); VALUE as a Python literal."""
    try:
        name, assignment = text.split(":", 1)
        param, value = assignment.split("=", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected STRATEGY:PARAM=VALUE (e.g. npc:max_candidates=100), got {text!r}"
        ) from None
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a bare word stays a string
    return name.strip(), param.strip(), value


class CollectStrategyParams(argparse.Action):
    """``--strategy-params a:x=1 b:y=2`` -> ``{"a": {"x": 1}, "b": {"y": 2}}``."""

    def __call__(self, parser, namespace, values, option_string=None):
        params = {}
        for name, param, value in values:
            params.setdefault(name, {})[param] = value
        setattr(namespace, self.dest, params)


# ----------------------------------------------------------------------- options
@dataclass(frozen=True)
class Option:
    """How a protocol field is checked, shown on the command line and recorded."""

    help: str
    group: str  # one of GROUPS
    saved: str  # "protocol" or "run": the section of config.json
    convert: object  # Python value -> normalized value; raises Expected
    flag: str | None = None  # default: --field-name
    cli_default: object = SAME_DEFAULT  # when the command line's differs
    exclusive: str | None = None  # name of a mutually exclusive group of flags
    cli: dict = field(default_factory=dict)  # argparse's type, nargs, choices...


def option(default, help, *, group, saved, convert, **cli):
    option_fields = {"flag", "cli_default", "exclusive"}
    option = Option(
        help,
        group,
        saved,
        convert,
        **{k: v for k, v in cli.items() if k in option_fields},
        cli={k: v for k, v in cli.items() if k not in option_fields},
    )
    return field(default=default, metadata={"option": option})
