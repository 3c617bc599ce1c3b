"""The README's text recipe on real documents: TF-IDF -> ActiveLearner(MLPClassifier()).

Raw 20 Newsgroups texts (headers, footers and quotes stripped) go through a
``TfidfVectorizer`` into an ``ActiveLearner`` with skal's default MLP; the matrix
stays sparse end to end. Simulation: the training texts are the pool (all labels
known, only the queried ones revealed), the test texts the evaluation set, 100
documents per round. Compared: entropy and random acquisition with the MLP's
defaults, and random acquisition with paper 001's optimizer and loss as printed
(``first_layer_lr_scale=1.0, criterion__label_smoothing=0.0``), which barely moves
the first layer of a TF-IDF network (see ``MLPClassifier``'s docstring).

    OMP_NUM_THREADS=1 python examples/text_pipeline.py --data-home ../shared/data
    # ~6 min on one core; --rounds 4 for a quicker look

Without local files the loader downloads the corpus with scikit-learn.
"""

import argparse

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer

from skal import ActiveLearner, ActiveLearningPipeline
from skal.datasets import load_20newsgroups
from skal.nets import MLPClassifier

PAPER_OPTIMIZER = dict(first_layer_lr_scale=1.0, criterion__label_smoothing=0.0)


def learning_curve(texts, y, eval_set, strategy, net_params, rounds):
    """Test accuracy after each round of one active-learning run."""
    pipeline = ActiveLearningPipeline(
        [
            ("tfidf", TfidfVectorizer(stop_words="english")),
            (
                "al",
                ActiveLearner(
                    MLPClassifier(random_state=0, **net_params),
                    strategy,
                    batch_size=100,
                    n_rounds=rounds,
                    random_state=0,
                ),
            ),
        ]
    )
    pipeline.fit(texts, y, al__eval_set=eval_set)
    history = pipeline.named_steps["al"].history_
    return history.set_index("n_labeled")["eval_score"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    data = load_20newsgroups(data_home=args.data_home)
    eval_set = (data.texts_test, data.y_test)
    runs = {
        "entropy, defaults": ("entropy", {}),
        "random, defaults": ("random", {}),
        "random, paper 001's optimizer": ("random", PAPER_OPTIMIZER),
    }
    curves = {
        name: learning_curve(
            data.texts_train, data.y_train, eval_set, strategy, params, args.rounds
        )
        for name, (strategy, params) in runs.items()
    }
    print("20 Newsgroups test accuracy (20 classes, chance 0.05) by labeled documents:")
    print(pd.DataFrame(curves).round(3).to_string())


if __name__ == "__main__":
    main()
