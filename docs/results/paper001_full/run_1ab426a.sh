#!/bin/bash
# Paper-001 full run, 20 Newsgroups to 2,000 labels, at commit 1ab426a (issue 16).
# Needs the worktree: git worktree add /work/run_1ab426a 1ab426a. Resume: rerun.
# Seeds in the outer loop (--seeds N runs seeds 0..N-1; finished cells are kept), so
# that an interrupted run has every strategy for its first seeds (sessions 3-6 ran
# `--seeds 5` in one call, strategy by strategy: grad has all 5 seeds).
export PYTHONPATH=/work/run_1ab426a OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
cd /work/run_1ab426a
OUT=/work/main/docs/results/paper001_full
S10="grad entropy badge kcenter random grad_seq margin grad_kmeans npc lplgrad"
start=$(date +%s)
for SEEDS in 1 2 3 4 5; do
python -m skal bench --datasets 20newsgroups --rounds 19 --batch-size 100 --seeds $SEEDS --epochs 30 --sgd-batch-size 8 --strategies $S10 --data-home /work/shared/data --output-dir $OUT/20newsgroups --n-jobs 1 --torch-threads 1 --no-progress
done
echo "20newsgroups exit $? wall $(( $(date +%s) - start )) s commit 1ab426a $(date -u +%FT%TZ)"
