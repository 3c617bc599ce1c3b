"""Global settings, in the style of ``sklearn.get_config`` / ``config_context``."""

import contextlib
import threading

_DEFAULTS = {"chunk_size": 1024}
_local = threading.local()


def _config():
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config():
    """Current skal settings as a dict.

    Returns
    -------
    config : dict
        ``chunk_size``: rows of the pool processed at once by strategies and
        :mod:`skal.embeddings` (memory is bounded by it, not by the pool size).
    """
    return dict(_config())


def set_config(chunk_size=None):
    """Change skal settings for the current thread.

    Parameters
    ----------
    chunk_size : int, default=None
        Rows per chunk when streaming a pool; ``None`` leaves it unchanged.
    """
    if chunk_size is not None:
        if int(chunk_size) < 1:
            raise ValueError(
                f"chunk_size must be a positive integer, got {chunk_size}."
            )
        _config()["chunk_size"] = int(chunk_size)


@contextlib.contextmanager
def config_context(**new_config):
    """Temporarily change settings: ``with config_context(chunk_size=256): ...``."""
    old = get_config()
    set_config(**new_config)
    try:
        yield
    finally:
        _config().update(old)
