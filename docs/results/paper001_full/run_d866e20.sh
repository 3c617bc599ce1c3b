#!/bin/bash
# Paper-001 full runs at commit d866e20 (issue 16). Resume: rerun this script.
export PYTHONPATH=/work/run_d866e20 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
cd /work/run_d866e20
OUT=/work/main/docs/results/paper001_full
S10="grad entropy badge kcenter random grad_seq margin grad_kmeans npc lplgrad"
run() { local name=$1; shift; local start=$(date +%s); python -m skal bench "$@" --data-home /work/shared/data --n-jobs 1 --torch-threads 1 --no-progress; echo "$name exit $? wall $(( $(date +%s) - start )) s commit d866e20 $(date -u +%FT%TZ)"; }
run isolet --datasets isolet --rounds 10 --batch-size 100 --seeds 5 --epochs 30 --sgd-batch-size 8 --strategies $S10 --output-dir $OUT/isolet
run mnist_npc --datasets mnist --model lenet --rounds 14 --batch-size 100 --seeds 5 --epochs 30 --sgd-batch-size 8 --strategies npc --output-dir $OUT/mnist_lenet
# Poker: seeds in the outer loop (finished cells are kept), so that an interrupted run
# has every strategy for its first seeds.
for SEEDS in 1 2 3 4 5; do
run pokerhand --datasets pokerhand --rounds 39 --batch-size 100 --seeds $SEEDS --epochs 30 --sgd-batch-size 8 --strategies $S10 --output-dir $OUT/pokerhand
done
