#!/bin/bash
# Paper 004's evaluation (issue 20) on an image and a text data set, at commit 7379eb1.
# Needs: git worktree add /work/run_7379eb1 7379eb1. Resume: rerun (finished cells are
# kept; seeds in the outer loop). Usage: bash run_7379eb1.sh mnist|text
#  mnist: LeNet (paper 001's head), FixMatch + DARP judges each evaluated round
#         (~1 min a round on one core), the offline 5,000-image MNIST subset
#         (pool 4,500 after the validation split), 20 -> 100 labels.
#  text:  20 Newsgroups (paper 001's preprocessing, vocabulary cut to 20,000 terms
#         and the pool subsampled to 1,500 documents so that self-training's up to 11
#         refits on the pool per evaluated round fit on a CPU core), 50 -> 250 labels.
set -u
export PYTHONPATH=/work/run_7379eb1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
OUT=/work/main/docs/results/assl
S="random margin badge grad grad_kmeans npc"
cd /work/run_7379eb1
start=$(date +%s)
for SEEDS in 1 2 3 4 5; do
  case $1 in
    mnist) python -m skal bench --datasets mnist --model lenet --strategies $S --seeds $SEEDS --rounds 4 --batch-size 20 --epochs 30 --sgd-batch-size 8 --evaluate ssl --ssl-every 2 --data-home /work/shared/data --output-dir $OUT/mnist_lenet_bench --n-jobs 1 --torch-threads 1 --no-progress ;;
    text) python -m skal bench --datasets 20newsgroups --max-features 20000 --pool-size 1500 --strategies $S --seeds $SEEDS --rounds 4 --batch-size 50 --epochs 20 --sgd-batch-size 16 --evaluate ssl --ssl-every 2 --data-home /work/shared/data --output-dir $OUT/20newsgroups_bench --n-jobs 1 --torch-threads 1 --no-progress ;;
  esac
done
echo "assl $1 exit $? wall $(( $(date +%s) - start )) s commit 7379eb1 $(date -u +%FT%TZ)"
