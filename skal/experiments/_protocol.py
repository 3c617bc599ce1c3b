"""The benchmark's parameters: one frozen dataclass, its flags and its record.

Every parameter of :func:`run_benchmark` and ``skal bench`` is one field of
:class:`BenchmarkProtocol`, declared with ``_options.option``: its default, a
one-line help, its command-line flag (with how to parse it) and where
``config.json`` records it. The command line builds its arguments from these
fields (:func:`skal.cli._add_bench`), :func:`run_benchmark` takes them as
keywords and ``config.json`` records them: a new parameter is one new field
(and its use).

``config.json`` records a protocol in two places:

- ``"protocol"`` (fields with ``saved="protocol"``): what decides the numbers of
  a cell besides its dataset, strategy and seed; a resumed run refuses another
  one. Its keys are the ones every earlier skal wrote: ``model`` is the model's
  name in the results and ``estimator`` describes the whole estimator (so the
  training fields ``max_epochs``, ``sgd_batch_size`` and ``dropout`` are
  compared through it).
- ``"runs"`` (``saved="run"``): one entry per call: the cells asked for (adding
  datasets, strategies or seeds to a results directory is allowed) and how
  they ran.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, fields

from ..strategies import available_strategies, get_strategy
from . import _options as opt
from ._monitors import EVALUATIONS
from ._setup import MODELS, available_datasets, make_model
from ._sweep import LR_GRID

__all__ = ["BenchmarkProtocol"]

INITIAL_SET = "one batch, uniform at random"
# Model-free strategies that may choose the initial set (ActiveLearner's
# initial_strategy; names mean space="input"). "random" is the default, None.
INITIAL_STRATEGIES = ("random", "typiclust", "probcover", "kcenter")


def _initial_strategy(value):
    """A name of INITIAL_STRATEGIES; "random" is the default, None."""
    value = opt.optional(opt.one_of(INITIAL_STRATEGIES))(value)
    return None if value == "random" else value


def _data(default, help, **kwargs):
    return opt.option(default, help, group="data", **kwargs)


def _protocol(default, help, **kwargs):
    return opt.option(default, help, group="protocol", **kwargs)


def _execution(default, help, **kwargs):
    return opt.option(default, help, group="execution", saved="run", **kwargs)


@dataclass(frozen=True, kw_only=True)
class BenchmarkProtocol:
    """Every parameter of the benchmark (:func:`run_benchmark`, ``skal bench``).

    Values are checked and normalized when the protocol is made (sequences
    become tuples, ``seeds=3`` becomes ``(0, 1, 2)``, ``strategies=None`` every
    registered strategy). :meth:`to_config` and :meth:`from_config` convert
    to and from ``config.json``.
    """

    # --- data -----------------------------------------------------------------
    datasets: tuple[str, ...] = _data(
        ("digits",),
        "dataset names (available_datasets())",
        saved="run",
        convert=opt.names,
        nargs="+",
        choices=available_datasets,
    )
    model: str | None = _data(
        None,
        "'mlp' (the default: 512-256, images as rows of pixels) or a CNN with "
        "that head (image datasets only); with a given estimator, its name in the "
        "results (default: its class name)",
        saved="protocol",
        convert=opt.optional(opt.single_name),
        choices=list(MODELS),
    )
    data_home: str | None = _data(
        None,
        "folder with the dataset files (default: $SKAL_DATA or ~/skal_data)",
        saved="run",
        convert=opt.optional(opt.path),
    )
    # --- protocol ---------------------------------------------------------------
    strategies: tuple[str, ...] | None = _protocol(
        None,
        "registered strategy names (default: every registered strategy)",
        saved="run",
        convert=opt.strategy_names,
        nargs="+",
        choices=available_strategies,
    )
    seeds: tuple[int, ...] = _protocol(
        3,
        "seeds: N means 0..N-1; also A:B or A,B,C (a list in Python)",
        saved="run",
        convert=opt.seeds,
        type=opt.seeds_text,
        cli_default=5,
    )
    n_rounds: int = _protocol(
        39,
        "acquisition rounds after the initial set",
        saved="protocol",
        convert=opt.count,
        flag="--rounds",
        type=int,
    )
    batch_size: int = _protocol(
        100,
        "points acquired per round; the initial set has the same size",
        saved="protocol",
        convert=opt.count,
        type=int,
    )
    max_epochs: int = _protocol(
        30,
        "epochs per training of the built model",
        saved="run",
        convert=opt.count,
        flag="--epochs",
        type=int,
    )
    sgd_batch_size: int = _protocol(
        8,
        "SGD mini-batch size of the built model",
        saved="run",
        convert=opt.count,
        type=int,
    )
    dropout: float = _protocol(
        0.0,
        "dropout of the MLP (CNNs: of the head) for every strategy; the paper's "
        "MLP has none, the Monte-Carlo dropout strategies are skipped without it",
        saved="run",
        convert=opt.dropout,
        type=float,
    )
    lr: float | None = _protocol(
        None,
        "learning rate for every dataset (skips the sweep)",
        saved="protocol",
        convert=opt.optional(opt.positive_number),
        type=float,
        exclusive="rate",
    )
    lr_grid: tuple[float, ...] = _protocol(
        LR_GRID,
        "rates of the one-time learning-rate sweep (the paper's grid)",
        saved="protocol",
        convert=opt.tuple_of(opt.positive_number, "numbers > 0"),
        type=float,
        nargs="+",
        exclusive="rate",
    )
    sweep_sizes: tuple[int, ...] | None = _protocol(
        None,
        "labeled-set sizes of the sweep (default: the initial set and the final "
        "budget)",
        saved="protocol",
        convert=opt.optional(opt.tuple_of(opt.count, "integers >= 1")),
        type=int,
        nargs="+",
    )
    # --- (the fields saved in "protocol" come in the order earlier skal wrote them)
    validation_size: float | int = _data(
        0.1,
        "stratified validation split excluded from the pool, a fraction or a count",
        saved="protocol",
        convert=opt.validation_size,
        type=opt.size_text,
    )
    pool_size: int | None = _data(
        None,
        "subsample the unlabeled pool to this many rows (fixed per dataset)",
        saved="protocol",
        convert=opt.optional(opt.count),
        type=int,
    )
    max_features: int | None = _data(
        None,
        "TF-IDF vocabulary size (20newsgroups)",
        saved="protocol",
        convert=opt.optional(opt.count),
        type=int,
    )
    data_seed: int = _data(
        0,
        "seed of the validation split, the pool subsample and the sweep subsets",
        saved="protocol",
        convert=opt.non_negative,
        type=int,
    )
    strategy_params: dict | None = _protocol(
        None,
        "non-default strategy parameters, e.g. npc:max_candidates=100 "
        "(Python: {'npc': {'max_candidates': 100}})",
        saved="protocol",
        convert=opt.strategy_params,
        type=opt.strategy_param_text,
        nargs="+",
        metavar="STRATEGY:PARAM=VALUE",
        action=opt.CollectStrategyParams,
    )
    evaluate: tuple[str, ...] = _protocol(
        (),
        "scores besides the supervised test accuracy: 'ssl' also fits a "
        "semi-supervised learner on each round's labels and the unlabeled pool "
        "(paper 004; column ssl_accuracy, reported with an ssl_ prefix): "
        "self-training with DARP (uniform) for the MLP and given estimators, "
        "FixMatch with DARP for CNNs. Per evaluated round it costs up to 11 "
        "trainings on the pool (self-training) or 10 FixMatch passes over the pool "
        "(~1 min on a CPU core for MNIST's 4,500-image pool); see --ssl-every",
        saved="protocol",
        convert=opt.choices_of(EVALUATIONS),
        nargs="+",
        choices=list(EVALUATIONS),
    )
    ssl_every: int = _protocol(
        1,
        "with --evaluate ssl: evaluate rounds 0, k, 2k, ... and the last one "
        "(the others are NaN)",
        saved="protocol",
        convert=opt.count,
        type=int,
    )
    stopping: bool = _protocol(
        False,
        "record per round whether stopping criteria would stop (columns "
        "stop_<criterion>, and stat_<criterion> with the statistic compared "
        "with the threshold; stopping.csv in the report); no cell is stopped: "
        "stabilizing predictions (1,000-row stop set, window 3, kappa >= 0.99), "
        "classification change (<= 0.005 of the unlabeled pool changes), overall "
        "uncertainty (mean 1 - max p < 0.05). No validation plateau: the "
        "bench's eval_set is the test set",
        saved="protocol",
        convert=opt.boolean,
        action=argparse.BooleanOptionalAction,
    )
    warm_start: bool = _protocol(
        False,
        "continue training the previous round's model each round (papers 002 "
        "and 003, Algorithm 1) instead of retraining a fresh one (paper 001's "
        "protocol); the initial set's model starts from a fresh initialization",
        saved="protocol",
        convert=opt.boolean,
        action=argparse.BooleanOptionalAction,
    )
    diagnostics: bool = _protocol(
        False,
        "record per round what the round figures of skal report need, in "
        "diagnostics/<cell>.csv next to each cell file: the test accuracy of each "
        "class, the labeled set's class counts and 20-bin histograms of the "
        "model's max class probability on the labeled and the unlabeled rows (one "
        "more prediction over the pool and the test set per round; the cells' "
        "numbers do not change). Penultimate features (t-SNE) are not recorded: "
        "too big per round; use skal.callbacks.RoundRecorder and "
        "skal.diagnostics.plot_feature_embeddings",
        saved="protocol",
        convert=opt.boolean,
        action=argparse.BooleanOptionalAction,
    )
    initial_strategy: str | None = _protocol(
        None,
        "how the initial set (one batch) is chosen: uniformly at random (the "
        "default; paper 001) or by a model-free strategy on the input features "
        "(ActiveLearner's initial_strategy); the same rows for every strategy of "
        "a seed",
        saved="protocol",
        convert=_initial_strategy,
        choices=list(INITIAL_STRATEGIES),
    )
    # --- execution --------------------------------------------------------------
    output_dir: str = _execution("skal-bench", "results directory", convert=opt.path)
    n_jobs: int = _execution(
        1,
        "parallel cells (joblib processes; with --dask local, the number of "
        "workers); -1: one per core, each with one torch thread",
        convert=opt.n_jobs,
        type=int,
        cli_default=-1,
    )
    dask: str | None = _execution(
        None,
        "run on a Dask cluster: a scheduler address or 'local' (or, in Python, "
        "a distributed.Client)",
        convert=opt.dask,
        metavar="SCHEDULER_ADDRESS",
    )
    torch_threads: int | None = _execution(
        None,
        "torch threads per cell (default: cores / n-jobs in worker processes); 1 "
        "is best on a machine shared with other jobs",
        convert=opt.optional(opt.count),
        type=int,
    )
    resume: bool = _execution(
        True,
        "keep finished cells and the recorded sweep; --no-resume starts over",
        convert=opt.boolean,
        action=argparse.BooleanOptionalAction,
    )
    progress: bool = _execution(
        True,
        "progress bars",
        convert=opt.boolean,
        action=argparse.BooleanOptionalAction,
    )

    def __post_init__(self):
        for f, option in options():
            value = getattr(self, f.name)
            try:
                value = option.convert(value)
            except opt.Expected as exc:
                raise ValueError(
                    f"{f.name} must be {exc} (command line: {flag_of(f)}); got "
                    f"{value!r}."
                ) from None
            object.__setattr__(self, f.name, value)  # frozen: normalize once here
        self._check_strategies()

    def _check_strategies(self):
        unknown = [s for s in self.strategies if s not in available_strategies()]
        if unknown:
            raise ValueError(
                f"Unknown strategies {unknown}; available: {available_strategies()}."
            )
        for name, params in self.strategy_params.items():
            try:
                # Unknown names or parameters, and invalid values, fail here, not
                # after hours of other cells.
                get_strategy(name, **params)._validate_params()
            except TypeError as exc:
                if isinstance(exc, ValueError):  # sklearn's InvalidParameterError
                    raise ValueError(f"strategy_params[{name!r}]: {exc}") from None
                raise TypeError(
                    f"strategy_params[{name!r}]: {exc}. Give only parameters of "
                    f"{name} (command line: --strategy-params {name}:PARAM=VALUE)."
                ) from None

    # --- derived -------------------------------------------------------------
    @property
    def budget(self):
        """Labels of a finished cell: the initial set (one batch) and every round."""
        return self.batch_size * (self.n_rounds + 1)

    def make_estimator(self):
        """The model this protocol builds when no estimator is given."""
        return make_model(
            self.model or "mlp",
            max_epochs=self.max_epochs,
            sgd_batch_size=self.sgd_batch_size,
            dropout=self.dropout,
        )

    def model_name(self, estimator=None):
        """The model's name in cell files, results and ``config.json``.

        ``estimator`` is the estimator given by the user; None means the one
        this protocol builds (:meth:`make_estimator`).
        """
        if estimator is None:
            return MODELS[self.model or "mlp"]
        return self.model or type(estimator).__name__

    # --- config.json -----------------------------------------------------------
    def to_config(self, estimator=None):
        """This protocol as ``config.json`` records it.

        Parameters
        ----------
        estimator : classifier, default=None
            The estimator given by the user; None means :meth:`make_estimator`.

        Returns
        -------
        config : dict
            ``"protocol"``: the dict a resumed run must find unchanged;
            ``"run"``: this run's entry of the run log. JSON types only, so
            they compare equal to what ``config.json`` reads back.
        """
        built = self.make_estimator() if estimator is None else estimator
        protocol = {
            "model": self.model_name(estimator),
            "estimator": _describe(built),
            "initial_set": INITIAL_SET
            if self.initial_strategy is None
            else f"one batch, chosen by {self.initial_strategy} on the input",
        }
        protocol.update(self._saved("protocol"))
        run = self._saved("run")
        if self.dask is not None and not isinstance(self.dask, str):
            run["dask"] = "client"  # a Client object cannot be recorded
        return json.loads(json.dumps({"protocol": protocol, "run": run}))

    def _saved(self, section):
        # "model" is recorded by its name in the results (see to_config).
        return {
            f.name: getattr(self, f.name)
            for f, option in options()
            if option.saved == section and f.name != "model"
        }

    @classmethod
    def recorded_defaults(cls):
        """The ``"protocol"`` entries of the default values, as JSON.

        A results directory written before a field existed lacks its key; the
        resume check reads the missing key as this default, so adding a field
        keeps older directories resumable (at the field's default).
        """
        return json.loads(json.dumps(cls()._saved("protocol")))

    @classmethod
    def from_config(cls, config, run=-1):
        """The protocol recorded in a ``config.json``.

        Parameters
        ----------
        config : dict
            The parsed ``config.json`` (or :meth:`to_config`'s ``"protocol"``
            and ``"run"`` as ``{"protocol": ..., "runs": [run]}``).
        run : int, default=-1
            The run of the log whose run fields (datasets, strategies, seeds,
            execution) are read. Fields a run did not record (older skal
            versions did not record ``max_epochs``, ``sgd_batch_size``,
            ``dropout`` and the execution fields) take their defaults.
            The built MLP (``model=None``) is read back as ``model="mlp"``, a
            given estimator's class name as ``model``.

        Returns
        -------
        protocol : BenchmarkProtocol
        """
        sections = {"protocol": config["protocol"], "run": config["runs"][run]}
        values = {
            f.name: sections[option.saved][f.name]
            for f, option in options()
            if f.name in sections[option.saved] and f.name != "model"
        }
        keys = {name: key for key, name in MODELS.items()}
        model = config["protocol"]["model"]
        values["model"] = keys.get(model, model)
        if values.get("dask") == "client":
            values["dask"] = None  # the run used a Client; it cannot be reopened
        return cls(**values)


def options():
    """``(field, Option)`` of every protocol field, in declaration order."""
    return [(f, f.metadata["option"]) for f in fields(BenchmarkProtocol)]


def flag_of(f):
    """The command-line flag of a protocol field."""
    return f.metadata["option"].flag or "--" + f.name.replace("_", "-")


def _describe(estimator):
    """Class and parameters of an estimator (skorch's repr omits the parameters)."""
    params = estimator.get_params(deep=False)
    text = ", ".join(
        f"{k}={v!r}" for k, v in sorted(params.items()) if not k.startswith("_")
    )
    text = f"{type(estimator).__name__}({text})"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # addresses change every run


def _parameters_section():
    """numpydoc ``Parameters`` of the class, from the fields' help (one source)."""
    lines = ["", "Parameters", "----------"]
    for f, option in options():
        lines += [f"{f.name} : {f.type}, default={f.default!r}", f"    {option.help}"]
    return "\n".join("    " + line if line else line for line in lines)


BenchmarkProtocol.__doc__ += _parameters_section()
