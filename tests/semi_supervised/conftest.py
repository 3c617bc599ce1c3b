import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small solvers (lbfgs on a few hundred rows) run fastest on one thread, and
    pytest -n 2 already uses both cores; contention made them 10x slower."""
    with threadpool_limits(1):
        yield
