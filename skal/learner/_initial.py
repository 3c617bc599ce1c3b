"""The first labeled set: random (the default) or a model-free strategy."""

import numpy as np
from sklearn.base import clone

from ..strategies import QueryStrategy, RandomSampling, get_strategy
from ._training import _new_seed


def _is_random(spec):
    return spec is None or (isinstance(spec, str) and spec == "random")


class _InitialSet:
    """``initial_strategy``: which rows are labeled before any model exists."""

    def _initial_strategy_instance(self):
        """A fresh, unfitted initial strategy, or None for the random draw.

        A registered name gets ``space="input"`` where the strategy has a
        ``space`` (``typiclust``, ``probcover``, ``kcenter``): no model exists
        yet to give features. Strategies that need a model are refused.
        """
        spec = self.initial_strategy
        if _is_random(spec):
            return None
        if isinstance(spec, str):
            strategy = get_strategy(spec)
            if "space" in strategy.get_params(deep=False):
                strategy.set_params(space="input")
        elif isinstance(spec, QueryStrategy):
            strategy = clone(spec)
        else:
            raise TypeError(
                f"initial_strategy must be None, 'random', a registered strategy "
                f"name or a QueryStrategy, got {spec!r}."
            )
        if strategy.needs_estimator:
            raise ValueError(
                f"initial_strategy={spec!r} needs a trained model "
                f"({type(strategy).__name__}.needs_estimator is True), but the "
                f"initial set is chosen before any model exists. Use 'random', "
                f"'typiclust', 'probcover' or 'kcenter' (on the input), or an "
                f"instance with space='input' or an embedding (e.g. "
                f"TypiClust(space='input'))."
            )
        return strategy

    def _fit_initial_strategy(self, strategy, rng):
        """Seed and fit ``strategy`` without a labeled set; kept as
        ``initial_strategy_``.

        One seed is drawn from ``rng`` whether the strategy uses it or not, so
        the later streams do not depend on its ``random_state``. (The random
        default draws nothing here: its picks come from ``rng`` directly, as
        before ``initial_strategy`` existed.)
        """
        seed = _new_seed(rng)
        if strategy.get_params().get("random_state", 0) is None:
            strategy.set_params(random_state=seed)
        strategy.fit(None, None)
        self.initial_strategy_ = strategy
        return strategy

    def _cold_start_strategy(self, rng):
        """The strategy ``query`` uses while nothing is labeled and no oracle is
        given (random sampling for ``initial_strategy='random'``)."""
        strategy = self._initial_strategy_instance()
        if strategy is None:
            strategy = RandomSampling()
        return self._fit_initial_strategy(strategy, rng)

    def _initial_picks(self, X, n):
        """``n`` rows of the whole pool from the fitted initial strategy, in the
        order it picks them (a resumed session skips those already asked)."""
        return np.asarray(self.initial_strategy_.query(X, n), dtype=np.int64)
