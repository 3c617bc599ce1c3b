#!/bin/bash
# Regenerate every report and comparison of this folder from the committed cells
# (issue 16): per experiment `skal report` + paired tests with the README's table,
# then the combined penalty matrices over the four experiments. ~1 min; run from
# anywhere with the project's venv active. Output of the tests: <experiment>/tests.txt.
set -e
cd "$(dirname "$0")"
labels_isolet="100 200 300 400 500 700 1100"
labels_pokerhand="100 200 500 1000 2000 3000 4000"
labels_mnist_lenet="100 200 300 500 700 1000 1500"
labels_20newsgroups="100 200 300 500 1000 1500 2000"
for exp in isolet pokerhand mnist_lenet 20newsgroups; do
    skal report "$exp" > /dev/null
    labels="labels_$exp"
    python compare.py "$exp" --labels ${!labels} > "$exp/tests.txt"
    echo "$exp: $(ls "$exp"/cells | wc -l) cells; tests in $exp/tests.txt"
done
skal report combined --combine isolet pokerhand mnist_lenet 20newsgroups > /dev/null
echo "combined: combined/summary.txt, loss_scores.csv, penalty_matrix_{all,early,late}.png"
