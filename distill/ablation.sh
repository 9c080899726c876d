#!/usr/bin/env bash
# The distillation ablation at equal budget: five students from the same teacher, data and settings.
#
# Needs the high and moderate window caches (a lent GPU machine has no `av` to build them, so build them here):
#   python -m distill.data.windows --data corpus/train --out runs/gpu_cache/high.safetensors --format jpeg --quality 85 --max-per-identity 1 --max-mb 44
#   python -m distill.data.windows --data corpus/train --out runs/cache/moderate.safetensors --tier moderate --format jpeg --quality 85 --max-per-identity 1 --max-mb 40
# then, from the repository root:
#   distill/ablation.sh OUT 2m          # GPU: 2 minutes of wall clock per run (carry runs/gpu_cache and runs/cache)
#   DEVICE=cpu BATCH=4 SUBSTEPS=2 LR=1e-4 WARMUP=50 distill/ablation.sh OUT 200   # this CPU: 200 optimisation steps per run
#
# Arguments: OUT BUDGET, BUDGET = <N>m (minutes per run) or <N> (optimisation steps per run; equal data per
# run whatever else shares the machine). Environment: TEACHER (fada_stream/assets/teacher), DEVICE (cuda),
# BATCH (64), SUBSTEPS (4), LR (3e-4), WARMUP (200), PYTHON (python3). Each run writes a checkpoint folder OUT/<run>/
# (student.*, autoencoder.*, log.jsonl) that `python -m distill.teacher_eval --checkpoint` scores afterwards:
#   naive        teacher targets, high only, no tokens, K = 6, sampled with 3-pass CFG (18 NFE: FADA-Balanced)
#   mixed        + mixed supervision (moderate tier, ground truth on high)           (18 NFE)
#   tokens_k6    + CFG tokens, one pass per step                                      (6 NFE: FADA-Fast)
#   tokens_k2    the same at K = 2                                                    (2 NFE: our target)
#   tokens_k1    the same at K = 1                                                    (1 NFE)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:?usage: distill/ablation.sh OUT BUDGET (e.g. 2m or 200)}
BUDGET=${2:?usage: distill/ablation.sh OUT BUDGET (e.g. 2m or 200)}
PY=${PYTHON:-python3}
if [[ $BUDGET == *m ]]; then LIMIT=(--iters 1000000 --max-minutes "${BUDGET%m}"); EVERY=500
else LIMIT=(--iters "$BUDGET"); EVERY=$(( BUDGET > 100 ? 100 : BUDGET )); fi
COMMON=(--teacher "${TEACHER:-fada_stream/assets/teacher}" --data runs/gpu_cache/high.safetensors
        --moderate runs/cache/moderate.safetensors --device "${DEVICE:-cuda}" --batch "${BATCH:-64}" --lr "${LR:-3e-4}" --warmup "${WARMUP:-200}"
        --substeps "${SUBSTEPS:-4}" "${LIMIT[@]}" --log-every 25 --eval-every "$EVERY" --eval-windows 8 --save-every "$EVERY")

mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-20}
exec > >(tee -a "$OUT/ablation.log") 2>&1
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

$PY -m distill.distill "${COMMON[@]}" --out "$OUT/naive" --steps 6 --tokens false --mixed false
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/mixed" --steps 6 --tokens false --mixed true
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/tokens_k6" --steps 6
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/tokens_k2" --steps 2
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/tokens_k1" --steps 1

for run in naive mixed tokens_k6 tokens_k2 tokens_k1; do
    rm -f "$OUT/$run"/state.* "$OUT/$run"/cache-*   # resumable state stays behind: only what the runtime loads is kept
    tail -n 1 "$OUT/$run/log.jsonl"
done
ls -l "$OUT"/*
