"""Both runs together, and the five methods of paper 001 alone.

Reads ``tabular/results.csv`` and ``20newsgroups/results.csv`` (two results
directories: their protocols differ, see README.md) and writes here the penalty
matrices and loss scores summed over the three experiments, for all strategies
(``all20_*``) and for paper 001's five methods (``paper5_*``). With 20
strategies each round's Benjamini-Hochberg correction runs over 190 pairs, and
3 seeds leave almost no significant win; with five methods (10 pairs) the test
has a chance. Run from the repository root:

    python docs/results/paper001_reduced/paper5.py
"""

from pathlib import Path

import pandas as pd

from skal.experiments import (
    loss_scores,
    penalty_matrix,
    plot_learning_curves,
    plot_penalty_matrix,
)
from skal.experiments._report import VIEWS, _rounds_view

HERE = Path(__file__).parent
PAPER = ["grad", "badge", "kcenter", "entropy", "random"]


def penalty_views(results, prefix, title):
    """Penalty matrices (all, early, late acquisition rounds) and loss scores."""
    scores = {}
    for view in VIEWS:
        P = penalty_matrix(results, rounds=_rounds_view(view))
        P.to_csv(HERE / f"{prefix}_penalty_matrix_{view}.csv")
        scores[view] = loss_scores(P)
        plot_penalty_matrix(
            P,
            path=HERE / f"{prefix}_penalty_matrix_{view}.png",
            title=f"{title}, {view} acquisition rounds",
        )
    table = pd.DataFrame(scores).sort_values("all")
    table.index.name = "strategy"
    table.to_csv(HERE / f"{prefix}_loss_scores.csv")
    print(title)
    print(table.round(3).to_string(), "\n")


results = pd.concat(
    [pd.read_csv(HERE / run / "results.csv") for run in ("tabular", "20newsgroups")],
    ignore_index=True,
)
results.to_csv(HERE / "results_all.csv", index=False)
penalty_views(results, "all20", "All strategies, 3 experiments")
five = results[results["strategy"].isin(PAPER)]
for suffix in ("png", "pdf"):
    plot_learning_curves(five, path=HERE / f"paper5_learning_curves.{suffix}")
penalty_views(five, "paper5", "Paper 001's five methods, 3 experiments")
