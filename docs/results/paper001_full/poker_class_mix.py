"""Why poker hand's informed strategies fall below the majority class (issue 16).

One seed (the bench's data split, learner seed 0), ten rounds of 100 labels with
the paper's MLP at the sweep's learning rate (1e-4): accuracy at 100 / 600 /
1,100 labels, the class mix of the labeled set and of the test predictions
(classes 0 "nothing", 1 "one pair", 2 "two pairs"). ~3 min on one core:

    python docs/results/paper001_full/poker_class_mix.py --data-home ../shared/data
"""

import argparse

import numpy as np

from skal import ActiveLearner
from skal.experiments._setup import load_benchmark_data, make_mlp


def class_fractions(y, n=3):
    return np.round(np.bincount(y, minlength=10)[:n] / len(y), 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    args = parser.parse_args()
    data = load_benchmark_data("pokerhand", data_home=args.data_home, random_state=0)
    print(
        "test set class fractions (nothing, pair, two pairs):",
        class_fractions(data.y_test),
    )
    for strategy in ["random", "entropy", "grad", "margin"]:
        learner = ActiveLearner(
            make_mlp(lr=1e-4),
            strategy=strategy,
            batch_size=100,
            n_rounds=10,
            random_state=0,
        )
        learner.fit(data.X_pool, data.y_pool, eval_set=(data.X_test, data.y_test))
        accuracy = learner.history_["eval_score"].to_numpy()[[0, 5, 10]]
        print(
            f"{strategy:8s} accuracy at 100/600/1100 labels {np.round(accuracy, 3)}; "
            f"labeled {class_fractions(data.y_pool[learner.labeled_indices_])}; "
            f"test predictions {class_fractions(learner.predict(data.X_test))}"
        )


if __name__ == "__main__":
    main()
