#!/bin/bash
# Stopping criteria compared (issue 19): where stabilizing predictions, classification
# change and overall uncertainty would stop, on learning curves that reach a plateau
# (digits to 600 labels, ISOLET to 1,000 = 90 % of its pool, MNIST/MLP to 1,500),
# random/margin/badge, 5 seeds, at commit 596ce6d.
# Needs: git worktree add /work/run_596ce6d 596ce6d. Resume: rerun.
set -u
export PYTHONPATH=/work/run_596ce6d OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
OUT=/work/main/docs/results/stopping
cd /work/run_596ce6d
run() { local name=$1; shift; local start=$(date +%s); python -m skal bench "$@" --stopping --strategies random margin badge --seeds $SEEDS --epochs 20 --sgd-batch-size 16 --data-home /work/shared/data --n-jobs 1 --torch-threads 1 --no-progress; echo "$name exit $? wall $(( $(date +%s) - start )) s commit 596ce6d $(date -u +%FT%TZ)"; }
for SEEDS in 1 2 3 4 5; do  # --seeds N runs seeds 0..N-1; finished cells are kept
run digits --datasets digits --batch-size 20 --rounds 29 --output-dir $OUT/digits
run isolet --datasets isolet --batch-size 40 --rounds 24 --output-dir $OUT/isolet
run mnist --datasets mnist --batch-size 50 --rounds 29 --output-dir $OUT/mnist_mlp
done
