"""``set_params`` with nested ``strategy__``, ``initial_strategy__`` and ``stopping__``."""

from ..stopping import StoppingCriterion
from ..strategies import QueryStrategy, get_strategy


class _NestedParams:
    """Lets ``GridSearchCV`` search strategy names together with their parameters."""

    def set_params(self, **params):
        """Set parameters; ``strategy__<param>`` also works for a strategy name.

        A strategy given by name becomes that strategy's instance (with the
        given parameters), so that ``GridSearchCV`` can search strategy names
        together with their parameters; likewise ``initial_strategy__<param>``.
        ``stopping__<param>`` sets a parameter of a single criterion (a list of
        criteria is replaced whole: ``set_params(stopping=[...])``).

        Returns
        -------
        self : object
        """
        nested = {
            name: _pop_prefixed(params, f"{name}__")
            for name in ("strategy", "initial_strategy", "stopping")
        }
        if nested["stopping"] and isinstance(
            params.get("stopping", self.stopping), (list, tuple)
        ):
            raise ValueError(
                f"stopping__ parameters ({sorted(nested['stopping'])}) need a single "
                f"criterion, but stopping is a list, whose members these names "
                f"cannot tell apart. Search over whole lists instead, e.g. "
                f"{{'stopping': [[StabilizingPredictions(threshold=0.95), "
                f"LabelBudget(200)], [StabilizingPredictions(threshold=0.99), "
                f"LabelBudget(200)]]}}."
            )
        super().set_params(**params)
        if nested["stopping"]:
            if not isinstance(self.stopping, StoppingCriterion):
                raise ValueError(
                    f"stopping__ parameters ({sorted(nested['stopping'])}) need a "
                    f"stopping criterion, got stopping={self.stopping!r}."
                )
            super().set_params(
                **{f"stopping__{k}": v for k, v in nested["stopping"].items()}
            )
        if nested["strategy"]:
            self.strategy = _named_to_instance(self.strategy, "strategy")
            self.strategy.set_params(**nested["strategy"])
        if nested["initial_strategy"]:
            self.initial_strategy = _named_to_instance(
                self.initial_strategy, "initial_strategy"
            )
            self.initial_strategy.set_params(**nested["initial_strategy"])
        return self


def _pop_prefixed(params, prefix):
    """Remove and return the ``prefix``-ed entries of ``params`` (prefix cut)."""
    return {
        key[len(prefix) :]: params.pop(key)
        for key in list(params)
        if key.startswith(prefix)
    }


def _named_to_instance(value, name):
    """A strategy given by name as an instance, so its parameters can be set.

    An initial strategy's name means the model-free variant (``space="input"``),
    as in ``fit``.
    """
    if isinstance(value, str):
        if name == "initial_strategy" and value == "random":
            raise ValueError(
                "initial_strategy__ parameters need a strategy, but "
                "initial_strategy='random' is the learner's own uniform draw; use "
                "initial_strategy=RandomSampling(...) to set its parameters."
            )
        value = get_strategy(value)
        if name == "initial_strategy" and "space" in value.get_params(deep=False):
            value.set_params(space="input")
    if not isinstance(value, QueryStrategy):
        raise TypeError(
            f"{name}__ parameters need a strategy (an instance or a registered "
            f"name), got {name}={value!r}."
        )
    return value
