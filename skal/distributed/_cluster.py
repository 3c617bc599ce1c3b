"""What every distributed query shares: the pool's blocks, the client, the
strategy on the workers, per-block tasks and per-block actors.

The fitted strategy (with its estimator) is pickled once on the client and
scattered to every worker once (``broadcast=True``). Each worker thread
unpickles its own copy the first time it needs it: a torch module reads its
penultimate features through forward hooks, and two threads running hooks on
one module would read each other's activations.
"""

import functools
import threading
import uuid
from dataclasses import dataclass

import cloudpickle
import dask
import dask.array as da
import numpy as np
from dask.sizeof import sizeof

from .._config import config_context, get_config
from .._validation import n_features_of_array
from ..gradients import GradientFactors
from ..strategies.base import _numerical_errors_raise


@sizeof.register(GradientFactors)
def _sizeof_factors(factors):
    """Bytes of a partition's factors (Dask would count the object only)."""
    return sizeof(factors.a) + sizeof(factors.h)


# ------------------------------------------------------------------ the pool
@dataclass
class DaskPool:
    """A validated Dask pool: one chunk across the features, known row chunks."""

    array: da.Array

    @property
    def n_rows(self):
        return int(self.array.shape[0])

    @property
    def offsets(self):
        """First global row of each block, then the number of rows."""
        return np.concatenate([[0], np.cumsum(self.array.chunks[0])]).astype(np.int64)

    def blocks(self):
        return list(self.array.to_delayed().ravel())

    def aligned_to(self, step):
        """The same rows in blocks whose boundaries are multiples of ``step`` rows
        (about as many blocks as before)."""
        rows_per_block = np.mean(self.array.chunks[0])
        size = max(1, int(round(rows_per_block / step))) * step
        sizes = [size] * (self.n_rows // size)
        if self.n_rows % size:
            sizes.append(self.n_rows % size)
        return DaskPool(self.array.rechunk({0: tuple(sizes)}))


def as_dask_pool(X, n_features, owner):
    """Check a Dask array or DataFrame pool as :func:`skal._validation.check_pool`
    checks a pool in memory (the values are checked block by block on the workers).
    """
    if hasattr(X, "to_dask_array"):  # a Dask DataFrame: its partitions' lengths
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(
            f"A Dask pool must be a dask.array.Array or a Dask DataFrame, got "
            f"{type(X).__name__}."
        )
    if X.ndim < 2:
        raise ValueError(
            f"X_pool must have one row per sample (2-D or more), got a Dask array "
            f"of shape {X.shape}; reshape it with X_pool.reshape(-1, 1) for a "
            f"single feature."
        )
    if any(np.isnan(size) for size in X.chunks[0]):
        raise ValueError(
            "X_pool has unknown chunk sizes (rows per partition); compute them "
            "with X_pool.compute_chunk_sizes() (or to_dask_array(lengths=True))."
        )
    if X.shape[0] == 0:
        raise ValueError("X_pool is empty: at least one sample is required.")
    if n_features is not None and n_features_of_array(X) != n_features:
        raise ValueError(
            f"X_pool has {n_features_of_array(X)} features, but {owner} is "
            f"expecting {n_features} features as input."
        )
    if any(len(chunks) > 1 for chunks in X.chunks[1:]):  # a block = whole rows
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    if 0 in X.chunks[0]:  # empty partitions (after a filter): nothing to score
        X = X.rechunk({0: tuple(size for size in X.chunks[0] if size)})
    return DaskPool(X)


# ------------------------------------------------------- the strategy on workers
@dataclass(frozen=True)
class _Payload:
    """The pickled fitted strategy, scattered once per query."""

    token: str
    data: bytes


_copies = {}  # (token, thread id) -> this thread's unpickled strategy
_copies_lock = threading.Lock()


def strategy_copy(payload):
    """This worker thread's copy of the query's fitted strategy."""
    key = (payload.token, threading.get_ident())
    with _copies_lock:
        strategy = _copies.get(key)
    if strategy is None:
        strategy = cloudpickle.loads(payload.data)
        with _copies_lock:
            _copies[key] = strategy
    return strategy


def _forget(token):
    with _copies_lock:
        for key in [key for key in _copies if key[0] == token]:
            del _copies[key]


def _on_block(function, payload, block, offset, chunk_size, *args):
    """Run ``function(strategy, block, offset, *args)`` on a worker, as ``query``
    would in memory: the block validated, the client's chunk size, numerical
    errors raised."""
    strategy = strategy_copy(payload)
    with config_context(chunk_size=chunk_size), _numerical_errors_raise(strategy):
        return function(strategy, strategy._check_pool(block), int(offset), *args)


def _client():
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise RuntimeError(
            "Querying a Dask pool needs a dask.distributed Client: start one with "
            "Client() (a local cluster) or Client('tcp://scheduler:8786') (an "
            "existing cluster) before calling query."
        ) from None


class ClusterQuery:
    """One query on the cluster: its client, the strategy sent once, the pool.

    Use as a context manager: on exit the strategy's copies, the per-block
    states and the actors are released on the workers.
    """

    def __init__(self, strategy, pool):
        self.strategy = strategy
        self.pool = pool
        self.client = _client()
        self.chunk_size = get_config()["chunk_size"]
        self._token = uuid.uuid4().hex
        self.payload = self.client.scatter(
            _Payload(self._token, cloudpickle.dumps(strategy)),
            broadcast=True,
            hash=False,
        )
        self._futures = [self.payload]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for future in self._futures:
            future.release()
        self._futures = []
        self.client.run(_forget, self._token)

    def release(self, futures):
        """Free results the query no longer needs (e.g. once actors hold them)."""
        released = {future.key for future in futures}
        for future in futures:
            future.release()
        self._futures = [f for f in self._futures if f.key not in released]

    def _tasks(self, function, *args):
        return [
            dask.delayed(_on_block, pure=False)(
                function, self.payload, block, offset, self.chunk_size, *args
            )
            for block, offset in zip(self.pool.blocks(), self.pool.offsets[:-1])
        ]

    def map_blocks(self, function, *args):
        """``[function(strategy, block, offset, *args)]`` over the blocks, gathered.

        The blocks are computed by the tasks that need them and released after:
        a worker holds the blocks it is working on and their (small) results.
        """
        return self.client.gather(self.client.compute(self._tasks(function, *args)))

    def persist_blocks(self, function, *args):
        """Like :meth:`map_blocks`, but the results stay on the workers (futures)."""
        futures = self.client.compute(self._tasks(function, *args))
        self._futures.extend(futures)
        return futures

    def actors(self, cls, *per_block_args):
        """One actor per block, ``cls(*args of that block)``: state that stays on
        the workers between the rounds of a sequential selection."""
        futures = [
            self.client.submit(cls, *args, actor=True, pure=False)
            for args in zip(*per_block_args)
        ]
        self._futures.extend(futures)
        return Actors([future.result() for future in futures])


class Actors:
    """Calls to every block's actor at once, in block order."""

    def __init__(self, handles):
        self.handles = handles

    def __len__(self):
        return len(self.handles)

    def call(self, method, *args):
        """``method(*args)`` on every actor; the results in block order."""
        futures = [getattr(actor, method)(*args) for actor in self.handles]
        return [future.result() for future in futures]

    def call_each(self, method, args_per_actor):
        """``method(*args_per_actor[b])`` on actor ``b``; the results in block order."""
        futures = [
            getattr(actor, method)(*args)
            for actor, args in zip(self.handles, args_per_actor)
        ]
        return [future.result() for future in futures]

    def call_one(self, b, method, *args):
        return getattr(self.handles[b], method)(*args).result()


def raising_numerical_errors(method):
    """Actor methods run under ``np.errstate(raise)`` as ``query`` does in memory."""

    @functools.wraps(method)
    def wrapped(self, *args):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return method(self, *args)

    return wrapped
