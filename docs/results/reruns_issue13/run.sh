#!/bin/bash
# Issue 13 reruns: NPC rows of paper001_reduced and the Learning Loss / LPLgrad rows of
# docs/results/lplgrad and images/mnist_lenet, at commit d866e20 (NPC's new rule, the
# 0.6 detach default). Only those strategies' cells are recomputed; the other cells of
# each directory are kept (a random cell rerun at d866e20 reproduced its committed
# accuracies exactly). Needs: git worktree add /work/run_d866e20 d866e20.
set -u
export PYTHONPATH=/work/run_d866e20 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
R=/work/main/docs/results
BEFORE=/work/main/docs/results/reruns_issue13/before
cd /work/run_d866e20
redo() {  # redo DIR PATTERN -- bench args
  local dir=$1 pat=$2; shift 3
  mkdir -p $BEFORE/$dir; mv $R/$dir/cells/*__${pat}__*.csv $BEFORE/$dir/ 2>/dev/null
  local start=$(date +%s)
  python -m skal bench "$@" --data-home /work/shared/data --output-dir $R/$dir --n-jobs 1 --torch-threads 1 --no-progress
  echo "$dir $pat exit $? wall $(( $(date +%s) - start )) s commit d866e20 $(date -u +%FT%TZ)"
}
redo paper001_reduced/tabular npc -- --datasets isolet pokerhand --seeds 3 --rounds 4 --batch-size 40 --epochs 20 --sgd-batch-size 16 --dropout 0.1 --pool-size 2000 --max-features 5000 --strategy-params npc:max_candidates=100 --strategies npc
redo paper001_reduced/20newsgroups npc -- --datasets 20newsgroups --seeds 3 --rounds 3 --batch-size 40 --epochs 30 --sgd-batch-size 16 --dropout 0.1 --pool-size 2000 --max-features 2000 --lr-grid 0.01 0.05 0.1 --strategy-params npc:max_candidates=100 --strategies npc
for s in lplgrad learning_loss; do
redo lplgrad/isolet $s -- --datasets isolet --seeds 5 --rounds 6 --batch-size 40 --epochs 20 --sgd-batch-size 16 --pool-size 2000 --strategies $s
redo lplgrad/20newsgroups $s -- --datasets 20newsgroups --seeds 5 --rounds 5 --batch-size 100 --epochs 30 --sgd-batch-size 16 --pool-size 4000 --max-features 2000 --lr 0.1 --strategies $s
redo images/mnist_lenet $s -- --datasets mnist --model lenet --seeds 3 --rounds 6 --batch-size 40 --epochs 20 --sgd-batch-size 16 --pool-size 2000 --dropout 0.1 --strategies $s
done
