#!/bin/bash
# Paper 004's evaluation (issue 20) at CPU scale on ISOLET, with the stopping criteria
# recorded (issue 19), at commit 100fe0a. Needs: git worktree add /work/run_100fe0a 100fe0a.
# Resume: rerun.
set -u
export PYTHONPATH=/work/run_100fe0a OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
OUT=/work/main/docs/results/assl
cd /work/run_100fe0a
start=$(date +%s)
# Seeds in the outer loop (--seeds N = seeds 0..N-1; finished cells are kept).
for SEEDS in 1 2 3 4 5; do
python -m skal bench --datasets isolet --strategies random margin badge grad grad_kmeans npc --seeds $SEEDS --rounds 5 --batch-size 40 --epochs 20 --sgd-batch-size 16 --evaluate ssl --stopping --data-home /work/shared/data --output-dir $OUT/isolet_bench --n-jobs 1 --torch-threads 1 --no-progress
done
echo "assl isolet exit $? wall $(( $(date +%s) - start )) s commit 100fe0a $(date -u +%FT%TZ)"
