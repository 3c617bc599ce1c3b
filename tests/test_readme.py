"""The README's strategy list is the registry's."""

import re
from pathlib import Path

from skal.strategies import available_strategies

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_registered_strategy_and_no_other():
    row = next(
        line for line in README.read_text().splitlines() if "the registry (" in line
    )
    described = row.split("the registry (", 1)[1]
    count = int(re.match(r"(\d+) strategies", described).group(1))
    listed = set(re.findall(r"`([a-z_]+)`", described))
    listed -= {"space", "input"}  # parameter values quoted in the row
    assert listed == set(available_strategies())
    assert count == len(available_strategies())
