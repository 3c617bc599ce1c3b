"""Tune acquisition hyperparameters with GridSearchCV, like any sklearn parameter.

An ``ActiveLearner`` is a classifier, so ``GridSearchCV`` can search its
``strategy`` and the strategy's own hyperparameters (``strategy__...``) as well as
the AL protocol (``batch_size``, ...). Each candidate runs a full active-learning
loop on the training folds; its score is the final model's accuracy on the held-out
fold. Here: how strongly ``grad_kmeans`` tilts BADGE's D^2 sampling towards high
gradient discrepancy (``score_power``; 0 is BADGE's draws after grad's first pick),
against BADGE and margin, on scikit-learn's digits with a small MLP.

    python examples/grid_search_strategy.py            # about a minute on 2 cores
"""

import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skal import ActiveLearner
from skal.nets import MLPClassifier
from skal.strategies import GradKMeans


def main():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("float32")
    learner = ActiveLearner(
        MLPClassifier(hidden_layer_sizes=(128,), max_epochs=15, batch_size=16),
        GradKMeans(random_state=0),
        batch_size=30,
        n_rounds=4,
        random_state=0,
    )
    grid = [
        {"strategy__score_power": [0.0, 1.0, 2.0, 4.0]},
        {"strategy": ["badge", "margin"]},
    ]
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    search = GridSearchCV(learner, grid, cv=cv, n_jobs=2).fit(X, y)
    table = pd.DataFrame(search.cv_results_)[
        ["params", "mean_test_score", "std_test_score", "rank_test_score"]
    ]
    with pd.option_context("display.max_colwidth", 60, "display.width", 120):
        print(table.sort_values("rank_test_score").to_string(index=False))
    print(f"\nbest: {search.best_params_} ({search.best_score_:.3f} accuracy)")


if __name__ == "__main__":
    main()
