#!/usr/bin/env bash
# Train the autoencoder, then the teacher, from one cache file, within a wall-clock budget.
#
# For a lent GPU machine: it needs torch (CUDA), numpy, safetensors, Pillow and tqdm, but no `av`
# (the cache holds JPEG frames and 16-bit audio, decoded with Pillow). Build the cache here first:
#   python -m distill.data.windows --data corpus/train --out runs/gpu_cache/high.safetensors \
#       --format jpeg --quality 85 --max-per-identity 2
# then, on the GPU machine, from the repository root:
#   distill/gpu_train.sh runs/gpu_cache/high.safetensors "$OUT" 2 6
#
# Arguments: CACHE OUT [AE_MINUTES=2] [TEACHER_MINUTES=6] [extra train_teacher flags...]
# Environment: DEVICE (cuda), RUN (runs/gpu: resumable run state, stays on the machine),
#              AE_ARGS (more train_autoencoder flags, e.g. "--restyle 0.5": docs/autoencoder.md),
#              AE_BATCH (256), TEACHER_BATCH (128), WORKERS (0: DataLoader processes need a
#              roomy /dev/shm, which sandboxed machines may lack), PYTHON (python3).
# OUT receives 7 files, each under 16 MB: teacher.{json,safetensors} (fp16 EMA weights),
# autoencoder.{json,safetensors} (the folder `python -m fada_stream.render --checkpoint OUT`
# reads), both training logs (log.jsonl rows) and gpu_train.log (everything printed).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${1:?usage: distill/gpu_train.sh CACHE OUT [AE_MINUTES] [TEACHER_MINUTES] [teacher flags...]}
OUT=${2:?output folder}
AE_MIN=${3:-2}
TEACHER_MIN=${4:-6}
shift $(( $# < 4 ? $# : 4 ))
DEVICE=${DEVICE:-cuda}
RUN=${RUN:-runs/gpu}
PY=${PYTHON:-python3}

mkdir -p "$OUT" "$RUN"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-20}  # a captured log wants a bar line every 20 s, not every step
exec > >(tee -a "$OUT/gpu_train.log") 2>&1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

# A big batch and a higher learning rate: the GPU has two orders of magnitude more compute than
# the CPU these defaults were set for, and the budget buys minutes, not steps.
$PY -m distill.train_autoencoder --data "$CACHE" --out "$RUN/autoencoder" --device "$DEVICE" \
    --batch "${AE_BATCH:-256}" --lr 1e-3 --steps 1000000 --max-minutes "$AE_MIN" \
    --log-every 100 --eval-every 1000 --save-every 2000 ${AE_ARGS:-}

$PY -m distill.train_teacher --data "$CACHE" --autoencoder "$RUN/autoencoder/autoencoder" --out "$RUN/teacher" \
    --device "$DEVICE" --batch "${TEACHER_BATCH:-128}" --workers "${WORKERS:-0}" --lr 5e-4 --warmup 300 \
    --steps 1000000 --max-minutes "$TEACHER_MIN" --log-every 100 --eval-every 1000 --save-every 2000 "$@"

cp "$RUN/teacher/teacher.json" "$RUN/teacher/teacher.safetensors" \
   "$RUN/teacher/autoencoder.json" "$RUN/teacher/autoencoder.safetensors" "$OUT/"
cp "$RUN/autoencoder/log.jsonl" "$OUT/autoencoder-log.jsonl"
cp "$RUN/teacher/log.jsonl" "$OUT/teacher-log.jsonl"
ls -l "$OUT"
tail -n 3 "$OUT/autoencoder-log.jsonl" "$OUT/teacher-log.jsonl"
