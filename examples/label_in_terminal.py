"""Label data yourself, in the terminal, with a session you can stop at any time.

skal picks the digits (or newsgroup posts) it is least sure about and asks you for
their labels one at a time. Every answer is written to an SQLite label store the
moment you give it, so Ctrl-C (or ``q``, or the end of piped input) loses nothing:
run the same command again and the session continues where it stopped, without
asking anything twice.

    python examples/label_in_terminal.py                       # 8x8 digits
    python examples/label_in_terminal.py --dataset 20newsgroups --data-home DIR

Answers: a label (``0``-``9`` for digits; a number or the start of a newsgroup
name), ``s`` to skip a row you cannot label (it is never asked again), ``q`` to
stop. Answers can also be piped in: ``printf '3\\n1\\nq\\n' | python ...``.
"""

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np

from skal import ActiveLearner
from skal.label_store import SQLiteLabelStore
from skal.nets import MLPClassifier

SHADES = " .:-=+*#%@"


class StopLabeling(Exception):
    """The person asked to stop (``q``, or the end of the input)."""


def digit_as_text(pixels):
    """An 8x8 image with values in [0, 1] as ASCII art, two characters a pixel."""
    rows = np.asarray(pixels).reshape(8, 8)
    levels = np.clip((rows * (len(SHADES) - 1)).round().astype(int), 0, len(SHADES) - 1)
    return "\n".join("".join(SHADES[v] * 2 for v in row) for row in levels)


def load(dataset, data_home):
    """Pool, test split, label names and a function that shows one pool row."""
    from skal import datasets

    if dataset == "digits":
        data = datasets.load_digits_split(random_state=0)
        return (
            data,
            [str(i) for i in range(10)],
            lambda i: digit_as_text(data.X_train[i]),
        )
    try:
        data = datasets.load_20newsgroups(
            data_home, max_features=20000, download_if_missing=False
        )
    except FileNotFoundError as exc:
        sys.exit(f"20 Newsgroups is not available offline: {exc}")

    def show(i):
        text = " ".join(data.texts_train[i].split()) or "(empty post)"
        return textwrap.fill(text[:1200], width=88)

    return data, list(data.target_names), show


def make_oracle(names, show):
    """Ask a person for labels, one row at a time, on stdin/stdout."""

    def ask(rows):
        (row,) = rows  # oracle_batch_size=1: one question per call
        print("\n" + show(row))
        while True:
            try:
                answer = input(f"label of row {row} (s = skip, q = quit): ").strip()
            except EOFError:
                raise StopLabeling from None
            if answer == "q":
                raise StopLabeling
            if answer == "s":
                return [-1]
            label = parse(answer, names)
            if label is not None:
                return [label]
            print(f"{answer!r} is not a label; answer one of: {', '.join(names)}")

    return ask


DEFAULTS = {
    "n_initial": 10,
    "batch_size": 10,
    "rounds": 5,
    "strategy": "margin",
    "seed": 0,
}
# Flag -> ActiveLearner parameter. --rounds and --strategy apply to a continued
# session; the others shape the session from its start and cannot change.
PARAMETERS = {
    "rounds": "n_rounds",
    "strategy": "strategy",
    "n_initial": "n_initial",
    "batch_size": "batch_size",
    "seed": "random_state",
}
CHANGEABLE = {"rounds", "strategy"}


def continued(store, args):
    """Parameters a continued session takes from the flags; refuse the rest.

    Flags are never ignored silently: a flag equal to the stored value changes
    nothing, ``--rounds`` and ``--strategy`` apply to this run (and are said so;
    the store keeps the settings the session started with), and any other change
    exits with a message.
    """
    from skal.label_store import stored_learner_params

    stored, _ = stored_learner_params(store)
    changes = {}
    for flag, parameter in PARAMETERS.items():
        given = getattr(args, flag)
        if given is None or given == stored.get(parameter):
            continue
        option = "--" + flag.replace("_", "-")
        if flag not in CHANGEABLE:
            sys.exit(
                f"{option} {given} differs from this session's "
                f"{stored.get(parameter)!r}, and it cannot change in a running "
                f"session; drop the flag or start a new session with another --store."
            )
        print(f"{option}: {stored.get(parameter)!r} -> {given!r} in this run.")
        changes[parameter] = given
    return changes


def count_answers(store):
    with SQLiteLabelStore(store) as labels:
        return len(labels)


def parse(answer, names):
    if answer.isdigit() and int(answer) < len(names):
        return int(answer)
    matches = [i for i, name in enumerate(names) if name.startswith(answer)]
    return matches[0] if answer and len(matches) == 1 else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", choices=["digits", "20newsgroups"], default="digits"
    )
    parser.add_argument("--data-home", default=None, help="where 20 Newsgroups lives")
    parser.add_argument("--store", default="skal-labels.db", help="SQLite label store")
    # None = not given: a continued session keeps its own value (see continued).
    parser.add_argument("--n-initial", type=int, help="default 10")
    parser.add_argument("--batch-size", type=int, help="default 10")
    parser.add_argument(
        "--rounds", type=int, help="default 5; when continuing: the total to reach"
    )
    parser.add_argument(
        "--strategy", help="default margin; when continuing: used in this run"
    )
    parser.add_argument("--seed", type=int, help="default 0")
    args = parser.parse_args(argv)

    data, names, show = load(args.dataset, args.data_home)
    print("Labels: " + ", ".join(f"{i}={name}" for i, name in enumerate(names)))
    oracle = make_oracle(names, show)
    unlabeled = np.full(data.X_train.shape[0], -1)
    store = Path(args.store)
    try:
        if store.exists():
            print(
                f"Continuing the session in {store} "
                f"({count_answers(store)} answers so far)."
            )
            # Parameters come from the store; the oracle (code) is given again, and
            # so are the flags that can change in a running session.
            changes = continued(store, args)
            learner = ActiveLearner.resume(
                data.X_train, None, store, oracle=oracle, **changes
            )
        else:
            given = {k: v for k, v in vars(args).items() if v is not None}
            options = {**DEFAULTS, **given}
            hidden = (64,) if args.dataset == "digits" else (512, 256)
            learner = ActiveLearner(
                MLPClassifier(hidden, max_epochs=30, classes=np.arange(len(names))),
                options["strategy"],
                n_initial=options["n_initial"],
                batch_size=options["batch_size"],
                n_rounds=options["rounds"],
                oracle=oracle,
                oracle_batch_size=1,  # each answer is stored before the next question
                label_store=store,
                random_state=options["seed"],
            ).fit(data.X_train, unlabeled)
    except (StopLabeling, KeyboardInterrupt) as stop:
        print(
            f"\nStopped: {count_answers(store)} answers are saved in {store}; "
            f"run the same command to continue."
        )
        return 130 if isinstance(stop, KeyboardInterrupt) else 0
    accuracy = learner.score(data.X_test, data.y_test)
    print(
        f"\nSession complete: {len(learner.labeled_indices_)} labels "
        f"({count_answers(store)} answers in {store}); "
        f"test accuracy {accuracy:.3f}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
