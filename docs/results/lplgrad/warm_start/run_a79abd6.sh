#!/bin/bash
# Issue 13, item 3: the paper-002 reproduction (docs/results/lplgrad) with warm-start
# rounds (papers 002/003, Algorithm 1: the model is initialized once and trained further
# every round), same protocols as the cold runs, at commit a79abd6.
# Needs: git worktree add /work/run_a79abd6 a79abd6. Resume: rerun.
set -u
export PYTHONPATH=/work/run_a79abd6 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
OUT=/work/main/docs/results/lplgrad/warm_start
T3="lplgrad learning_loss entropy_gradnorm entropy kcenter random"
cd /work/run_a79abd6
run() { local name=$1; shift; local start=$(date +%s); python -m skal bench --warm-start "$@" --strategies $T3 --data-home /work/shared/data --n-jobs 1 --torch-threads 1 --no-progress; echo "$name exit $? wall $(( $(date +%s) - start )) s commit a79abd6 $(date -u +%FT%TZ)"; }
run isolet --datasets isolet --seeds 5 --rounds 6 --batch-size 40 --epochs 20 --sgd-batch-size 16 --pool-size 2000 --output-dir $OUT/isolet
run 20newsgroups --datasets 20newsgroups --seeds 5 --rounds 5 --batch-size 100 --epochs 30 --sgd-batch-size 16 --pool-size 4000 --max-features 2000 --lr 0.1 --output-dir $OUT/20newsgroups
run mnist_lenet --datasets mnist --model lenet --seeds 3 --rounds 6 --batch-size 40 --epochs 20 --sgd-batch-size 16 --pool-size 2000 --dropout 0.1 --output-dir $OUT/mnist_lenet
# The cold baseline of 20 Newsgroups at the same commit (the committed cold cells of
# ../20newsgroups predate first_layer_lr_scale="auto", so they are not comparable):
run 20newsgroups_cold --datasets 20newsgroups --seeds 5 --rounds 5 --batch-size 100 --epochs 30 --sgd-batch-size 16 --pool-size 4000 --max-features 2000 --lr 0.1 --no-warm-start --output-dir $OUT/20newsgroups_cold
