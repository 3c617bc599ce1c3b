"""Supervised vs semi-supervised scores of one `skal bench --evaluate ssl` directory.

Per strategy and seed, the accuracy and the semi-supervised accuracy are averaged
over the evaluated rounds (those with an ``ssl_accuracy``); then, over the seeds:
the means and ranks under each score, the gain of semi-supervised evaluation and
its paired t-test, the significant pairs of strategies under each score (paired t,
Benjamini-Hochberg over all pairs), NPC's gain against every other strategy's, and
Kendall's tau between the two orders.

    python docs/results/assl/read_assl.py docs/results/assl/mnist_lenet_bench
"""

import argparse
import itertools
from pathlib import Path

import pandas as pd
from scipy.stats import false_discovery_control, kendalltau, ttest_rel


def significant_pairs(per_seed, alpha=0.05):
    """'a>b(diff)' for each pair of columns that differs after BH correction."""
    rows = []
    for a, b in itertools.combinations(per_seed.columns, 2):
        diff = per_seed[a] - per_seed[b]
        p = ttest_rel(per_seed[a], per_seed[b]).pvalue if diff.std() > 0 else 1.0
        rows.append((a, b, diff.mean(), p))
    tests = pd.DataFrame(rows, columns=["a", "b", "diff", "p"])
    tests["p_bh"] = false_discovery_control(tests["p"].fillna(1.0))
    return [
        f"{a}>{b}({abs(d):.3f})" if d > 0 else f"{b}>{a}({abs(d):.3f})"
        for a, b, d in tests.loc[tests["p_bh"] < alpha, ["a", "b", "diff"]].values
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    results = pd.read_csv(parser.parse_args().results_dir / "results.csv")
    evaluated = results[results["ssl_accuracy"].notna()]
    print("evaluated label counts:", sorted(evaluated["n_labeled"].unique()))
    scores = ["accuracy", "ssl_accuracy"]
    per_seed = evaluated.groupby(["strategy", "seed"])[scores].mean()
    per_seed["gain"] = per_seed["ssl_accuracy"] - per_seed["accuracy"]
    table = per_seed.groupby("strategy").mean()
    for score in scores:
        table[f"rank_{score}"] = table[score].rank(ascending=False).astype(int)
    table["gain_p"] = [
        ttest_rel(group["ssl_accuracy"], group["accuracy"]).pvalue
        for _, group in per_seed.groupby("strategy")
    ]
    print(table.sort_values("ssl_accuracy", ascending=False).round(4).to_string())
    print(
        evaluated.pivot_table(index="strategy", columns="n_labeled", values=scores)
        .round(3)
        .to_string()
    )
    for score in scores:
        pairs = significant_pairs(per_seed[score].unstack("strategy"))
        print(f"{score}: significant pairs (BH): {' '.join(pairs) or 'none'}")
    gains = per_seed["gain"].unstack("strategy")
    if "npc" in gains:
        print("NPC's gain minus each other strategy's gain (paired over seeds):")
        for other in gains.columns.drop("npc"):
            p = ttest_rel(gains["npc"], gains[other]).pvalue
            print(
                f"  vs {other}: {(gains['npc'] - gains[other]).mean():+.3f} (p {p:.3f})"
            )
    tau = kendalltau(table["accuracy"], table["ssl_accuracy"])
    print(f"Kendall tau of the two orders: {tau.statistic:.2f} (p {tau.pvalue:.3f})")


if __name__ == "__main__":
    main()
