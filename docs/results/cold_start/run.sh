#!/bin/bash
# Cold start at small budgets (issue 19): typiclust and probcover (input space) against
# random, margin, entropy, badge and kcenter, 1-20 labels per class, 5 seeds,
# at commit 0e06fc1. Needs: git worktree add /work/run_0e06fc1 0e06fc1. Resume: rerun.
set -u
export PYTHONPATH=/work/run_0e06fc1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
OUT=/work/main/docs/results/cold_start
S="typiclust probcover kcenter random margin entropy badge"
P="typiclust:space=input probcover:space=input"
cd /work/run_0e06fc1
run() { local name=$1; shift; local start=$(date +%s); python -m skal bench "$@" --strategies $S --strategy-params $P --seeds $SEEDS --epochs 30 --sgd-batch-size 8 --data-home /work/shared/data --n-jobs 1 --torch-threads 1 --no-progress; echo "$name exit $? wall $(( $(date +%s) - start )) s commit 0e06fc1 $(date -u +%FT%TZ)"; }
# Seeds in the outer loop, so that an interrupted run has every strategy for its first seeds.
for SEEDS in 1 2 3 4 5; do  # --seeds N runs seeds 0..N-1; finished cells are kept
run isolet --datasets isolet --batch-size 26 --rounds 15 --output-dir $OUT/isolet
done
for SEEDS in 1 2 3 4 5; do
run digits --datasets digits --batch-size 10 --rounds 19 --output-dir $OUT/digits
run mnist --datasets mnist --batch-size 10 --rounds 19 --output-dir $OUT/mnist_mlp
done
