"""Paired tests on each experiment's AULC and final accuracy (issue 16's comparison).

The penalty matrices of ``skal report`` test every round separately; this script
asks the question of the paper's summary sentences directly: over the whole
budget (AULC) and at the final budget, which strategy is better than which, by a
paired t-test over seeds with the Benjamini-Hochberg correction over all pairs of
the experiment (alpha 0.05, the paper's procedure applied to one number per seed).

Usage (from the repository root, after ``skal report`` on each experiment)::

    python docs/results/paper001_full/compare.py docs/results/paper001_full/isolet

``--labels 100 200 500`` also prints the README's table: mean test accuracy at
those label counts, AULC and the AULC wins/losses, strategies by AULC.
"""

import argparse
import itertools
from pathlib import Path

import pandas as pd
from scipy.stats import false_discovery_control, ttest_rel


def paired_tests(per_seed, alpha=0.05):
    """Every pair of strategies: mean difference, p, BH-adjusted p, significant."""
    rows = []
    for a, b in itertools.combinations(sorted(per_seed.columns), 2):
        diff = per_seed[a] - per_seed[b]
        p = ttest_rel(per_seed[a], per_seed[b]).pvalue if diff.std() > 0 else 1.0
        rows.append({"a": a, "b": b, "mean_diff": diff.mean(), "p": p})
    tests = pd.DataFrame(rows)
    tests["p_bh"] = false_discovery_control(tests["p"].fillna(1.0))
    tests["significant"] = tests["p_bh"] < alpha
    return tests


def wins_and_losses(tests):
    """Per strategy: how many strategies it beats and is beaten by, significantly."""
    sig = tests[tests["significant"]]
    winners = sig["a"].where(sig["mean_diff"] > 0, sig["b"])
    losers = sig["b"].where(sig["mean_diff"] > 0, sig["a"])
    names = sorted(set(tests["a"]) | set(tests["b"]))
    return pd.DataFrame(
        {
            "beats": winners.value_counts().reindex(names, fill_value=0),
            "beaten_by": losers.value_counts().reindex(names, fill_value=0),
        }
    )


def markdown_table(results, aulc_wins, labels, seeds):
    """Mean accuracy at ``labels``, mean AULC and AULC wins/losses, as markdown.

    Only ``seeds`` (those the AULC tests used) enter the means, so that the table's
    columns agree while some strategies have more finished seeds than others.
    """
    results = results[results["seed"].isin(seeds)]
    curves = results.pivot_table(
        index="strategy", columns="n_labeled", values="accuracy", aggfunc="mean"
    )
    missing = sorted(set(labels) - set(curves.columns))
    if missing:
        raise ValueError(f"No round has {missing} labels; have {list(curves.columns)}.")
    order = aulc_wins.sort_values("mean", ascending=False).index
    head = [f"{n:,}" for n in labels] + ["AULC", "beats / beaten by (AULC)"]
    lines = ["| strategy | " + " | ".join(head) + " |"]
    lines.append("| --- |" + " ---: |" * len(head))
    for name in order:
        cells = [f"{curves.loc[name, n]:.3f}" for n in labels]
        row = aulc_wins.loc[name]
        cells += [
            f"{row['mean']:.3f}",
            f"{int(row['beats'])} / {int(row['beaten_by'])}",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sd = results.groupby(["strategy", "n_labeled"])["accuracy"].std().max()
    lines.append(f"\n(largest sd over seeds at any round: {sd:.3f})")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", type=Path)
    parser.add_argument(
        "--labels", nargs="+", type=int, help="label counts for the markdown table"
    )
    args = parser.parse_args()
    for folder in args.experiments:
        results = pd.read_csv(folder / "results.csv")
        aulc = pd.read_csv(folder / "aulc.csv")
        final = results[results["round"] == results["round"].max()]
        for name, table in [("AULC", aulc), ("final accuracy", final)]:
            value = "aulc" if name == "AULC" else "accuracy"
            per_seed = table.pivot_table(
                index="seed", columns="strategy", values=value
            ).dropna()
            tests = paired_tests(per_seed)
            print(f"\n## {folder.name}: {name} ({len(per_seed)} seeds)")
            summary = wins_and_losses(tests)
            summary.insert(0, "mean", per_seed.mean().round(4))
            print(summary.sort_values("mean", ascending=False).to_string())
            if name == "AULC":
                aulc_wins, aulc_seeds = summary, per_seed.index
            sig = tests[tests["significant"]]
            for row in sig.itertuples():
                better, worse = (row.a, row.b) if row.mean_diff > 0 else (row.b, row.a)
                print(
                    f"  {better} > {worse}: {abs(row.mean_diff):.4f} "
                    f"(p {row.p:.4f}, BH {row.p_bh:.3f})"
                )
        if args.labels:
            print("\n" + markdown_table(results, aulc_wins, args.labels, aulc_seeds))


if __name__ == "__main__":
    main()
