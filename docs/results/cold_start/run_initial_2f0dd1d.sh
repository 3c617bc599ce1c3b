#!/bin/bash
# Cold start proper (issue 19): the initial batch itself chosen by typiclust or
# probcover on the input (skal bench --initial-strategy) against a random initial
# batch, then margin / random / typiclust rounds; ISOLET, b = 26 (one label per class
# per round), 15 rounds, 5 seeds, at commit 2f0dd1d.
# Needs: git worktree add /work/run_2f0dd1d 2f0dd1d. Resume: rerun.
set -u
export PYTHONPATH=/work/run_2f0dd1d OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
OUT=/work/main/docs/results/cold_start
cd /work/run_2f0dd1d
for SEEDS in 1 2 3 4 5; do  # --seeds N runs seeds 0..N-1; finished cells are kept
for INIT in random typiclust probcover; do
start=$(date +%s)
python -m skal bench --datasets isolet --batch-size 26 --rounds 15 --initial-strategy $INIT --strategies margin random typiclust --strategy-params typiclust:space=input --seeds $SEEDS --epochs 30 --sgd-batch-size 8 --data-home /work/shared/data --output-dir $OUT/isolet_initial_$INIT --n-jobs 1 --torch-threads 1 --no-progress
echo "isolet initial $INIT seeds $SEEDS exit $? wall $(( $(date +%s) - start )) s commit 2f0dd1d $(date -u +%FT%TZ)"
done
done
