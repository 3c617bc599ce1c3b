"""Short names for strategies, for ``ActiveLearner(strategy="entropy")`` and the CLI."""

_STRATEGIES = {}


def register(name):
    """Class decorator that makes a strategy available under ``name``."""

    def decorator(cls):
        if name in _STRATEGIES and _STRATEGIES[name] is not cls:
            raise ValueError(f"A strategy is already registered as {name!r}.")
        _STRATEGIES[name] = cls
        cls.registered_name = name
        return cls

    return decorator


def available_strategies():
    """Sorted names of every registered strategy.

    Returns
    -------
    names : list of str
    """
    return sorted(_STRATEGIES)


def get_strategy(name, **params):
    """A new strategy instance from its registered name.

    Parameters
    ----------
    name : str
        One of :func:`available_strategies`.
    **params
        Constructor parameters of the strategy.

    Returns
    -------
    strategy : QueryStrategy
    """
    try:
        cls = _STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown strategy {name!r}; available: {', '.join(available_strategies())}."
        ) from None
    return cls(**params)
