#!/usr/bin/env bash
# The distillation ablation at equal budget, on a lent GPU machine (the CPU here runs ~4.5 s per step).
#
# Needs the high and moderate caches built here first (the GPU machine has no `av`):
#   python -m distill.data.windows --data corpus/train --out runs/gpu_cache/high.safetensors --format jpeg --quality 85 --max-per-identity 1 --max-mb 44
#   python -m distill.data.windows --data corpus/train --out runs/cache/moderate.safetensors --tier moderate --format jpeg --quality 85 --max-per-identity 1 --max-mb 40
# then, carrying runs/gpu_cache and runs/cache, from the repository root:
#   distill/gpu_distill.sh "$OUT" 2
#
# Arguments: OUT [MINUTES_PER_RUN=2]. Environment: TEACHER (fada_stream/assets/teacher), DEVICE (cuda),
# BATCH (64), PYTHON (python3). Every run gets the same wall-clock budget, and each writes a checkpoint
# folder OUT/<run>/ (student.*, autoencoder.*, log.jsonl) that `python -m distill.teacher_eval --checkpoint`
# scores here afterwards:
#   naive        teacher targets, high only, no tokens, K = 6, sampled with 3-pass CFG (18 NFE: FADA-Balanced)
#   mixed        + mixed supervision (moderate tier, ground truth on high)           (18 NFE)
#   tokens_k6    + CFG tokens, one pass per step                                      (6 NFE: FADA-Fast)
#   tokens_k2    the same at K = 2                                                    (2 NFE: our target)
#   tokens_k1    the same at K = 1                                                    (1 NFE)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:?usage: distill/gpu_distill.sh OUT [MINUTES_PER_RUN]}
MIN=${2:-2}
PY=${PYTHON:-python3}
COMMON=(--teacher "${TEACHER:-fada_stream/assets/teacher}" --data runs/gpu_cache/high.safetensors
        --moderate runs/cache/moderate.safetensors --device "${DEVICE:-cuda}" --batch "${BATCH:-64}" --lr 3e-4
        --iters 1000000 --max-minutes "$MIN" --log-every 50 --eval-every 500 --save-every 500)

mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-20}
exec > >(tee -a "$OUT/gpu_distill.log") 2>&1
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no cuda')"

$PY -m distill.distill "${COMMON[@]}" --out "$OUT/naive" --steps 6 --tokens false --mixed false
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/mixed" --steps 6 --tokens false --mixed true
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/tokens_k6" --steps 6
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/tokens_k2" --steps 2
$PY -m distill.distill "${COMMON[@]}" --out "$OUT/tokens_k1" --steps 1

for run in naive mixed tokens_k6 tokens_k2 tokens_k1; do
    rm -f "$OUT/$run"/state.* "$OUT/$run"/cache-*   # resumable state stays behind: only what the runtime loads comes back
    tail -n 1 "$OUT/$run/log.jsonl"
done
ls -l "$OUT"/*
