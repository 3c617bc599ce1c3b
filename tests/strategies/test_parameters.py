"""Every registered strategy declares and checks its parameters the scikit-learn way."""

import pytest
from sklearn.utils.estimator_checks import check_param_validation

from skal.strategies import available_strategies, get_strategy


@pytest.mark.parametrize("name", available_strategies())
def test_every_parameter_is_declared_and_an_invalid_value_is_refused(name):
    # scikit-learn's own check: the constraints cover exactly the constructor's
    # parameters, and fit refuses a value of a wrong type, and one out of range,
    # for each of them, with "The 'p' parameter of S must be ... Got ... instead."
    strategy = get_strategy(name)
    check_param_validation(type(strategy).__name__, strategy)
