#!/usr/bin/env bash
# The bundled teacher and its autoencoder (fada_stream/assets/teacher/) remade by one command: every stage the
# bundled pair went through, in order, with the settings and wall-clock budgets its checkpoints' JSON record
# (docs/models.md, "Remaking the bundled teacher"). From the repository root:
#
#   distill/make_teacher.sh OUT
#
# Stages (budgets as recorded; a budget stops a run cleanly and saves it):
#   1. corpus/train (400 clips, seed 0) and its two window caches                                   CPU, ~6 min
#   2. autoencoder 1.5 min, first teacher 5.5 min then resumed for 3.6 min (batch 256 / 128)        GPU
#   3. second teacher stage, half the windows restyled and reshaped, 3.5 min                         GPU
#   4. four decoder fine-tunes with the encoder frozen (the latents, so the teacher, unchanged): restyled frames
#      50 min, reference-aware 45, mouth-weighted 45, trained on faint mouths 40                     CPU, one thread
# The bundled pair's GPU stages ran on an NVIDIA H200 (device tool). With DEVICE=cpu they run here too, within
# the same minutes and so with far fewer steps: a weaker teacher, not the bundled one.
#
# Environment: DEVICE for stages 2-3 (cuda if torch sees one, else cpu); CORPUS (corpus/train); RUN (runs/make_teacher:
# every stage's run folder, resumable); SCALE (1: multiplies every budget; tests/distill/test_make_teacher.py runs it
# at 0.001); CLIPS (400); AE_BATCH (256), TEACHER_BATCH (128), DECODER_BATCH (32); TEACHER_ARGS (more train_teacher
# flags for all three teacher runs, e.g. a smaller DiT); PYTHON (python3). A finished stage leaves a marker in RUN and
# is skipped when the command runs again (an interrupted one resumes its own run state); a new RUN starts over.
# OUT receives teacher.{json,safetensors} and autoencoder.{json,safetensors}: the folder `python -m fada_stream.render
# --checkpoint OUT` and `python -m distill.teacher_eval --checkpoint OUT` read.
set -euo pipefail
OUT=$(realpath -m "${1:?usage: distill/make_teacher.sh OUT}")   # paths given relative to the caller, before the cd
CORPUS=$(realpath -m "${CORPUS:-$(dirname "$0")/../corpus/train}")
RUN=$(realpath -m "${RUN:-$(dirname "$0")/../runs/make_teacher}")
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
read -r -a TARGS <<< "${TEACHER_ARGS:-}"
SCALE=${SCALE:-1}
CLIPS=${CLIPS:-400}
DEVICE=${DEVICE:-$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
export PYTHONUNBUFFERED=1
minutes() { $PY -c "import sys; print(max(0.0001, float(sys.argv[1]) * float(sys.argv[2])))" "$1" "$SCALE"; }
mkdir -p "$OUT" "$RUN"
stage() { echo "== $(date -u +%H:%M:%S) $*"; }
# once NAME CMD...: run CMD unless an earlier call finished it. A second budget on a finished run would train it
# further, and train_teacher copies its --autoencoder in again at every start.
once() { local mark="$RUN/.done-$1"; shift; [ -f "$mark" ] || { "$@"; touch "$mark"; }; }

stage "1. corpus and caches"
[ -f "$CORPUS/manifest.jsonl" ] || $PY -m distill.data synth --out "$CORPUS" --clips "$CLIPS" --seed 0 --split train --workers 2
GPU_CACHE=$RUN/gpu_cache/high.safetensors   # one window source per identity, under 44 MB: what the lent GPU was sent
ALL_CACHE=$RUN/cache/high_all.safetensors   # every high clip, for the CPU decoder stages
[ -f "$GPU_CACHE" ] || $PY -m distill.data.windows --data "$CORPUS" --out "$GPU_CACHE" --quality 85 --max-per-identity 1 --max-mb 44
[ -f "$ALL_CACHE" ] || $PY -m distill.data.windows --data "$CORPUS" --out "$ALL_CACHE" --quality 85

stage "2. autoencoder and first teacher on $DEVICE"
once autoencoder $PY -m distill.train_autoencoder --data "$GPU_CACHE" --out "$RUN/autoencoder" --device "$DEVICE" --batch "${AE_BATCH:-256}" \
    --lr 1e-3 --steps 1000000 --max-minutes "$(minutes 1.5)" --log-every 100 --eval-every 1000 --save-every 2000
first=(--data "$GPU_CACHE" --autoencoder "$RUN/autoencoder/autoencoder" --out "$RUN/first" --device "$DEVICE"
       --batch "${TEACHER_BATCH:-128}" --workers 0 --lr 5e-4 --warmup 300 --steps 1000000 --log-every 100
       --eval-every 1000 --save-every 2000 "${TARGS[@]}")
once first $PY -m distill.train_teacher "${first[@]}" --max-minutes "$(minutes 5.5)"
once first-resumed $PY -m distill.train_teacher "${first[@]}" --max-minutes "$(minutes 3.6)"   # the same run resumed, as the bundled one was

stage "3. second teacher stage on $DEVICE"
once second $PY -m distill.train_teacher --init "$RUN/first" --data "$GPU_CACHE" --autoencoder "$RUN/first/autoencoder" --out "$RUN/second" \
    --device "$DEVICE" --batch "${TEACHER_BATCH:-128}" --workers 0 --lr 2e-4 --warmup 200 --restyle 0.5 --restyle-shape true \
    --steps 1000000 --max-minutes "$(minutes 3.5)" --log-every 100 --eval-every 1000 --save-every 500 "${TARGS[@]}"

stage "4. decoder fine-tunes on the CPU"
dec=(--train decoder --restyle 0.5 --steps 100000 --batch "${DECODER_BATCH:-32}" --lr 2e-4 --warmup 50 --log-every 50
     --eval-every 250 --save-every 250 --device cpu)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
once ae_restyled $PY -m distill.train_autoencoder --data "$GPU_CACHE" --init "$RUN/second/autoencoder" "${dec[@]}" --max-minutes "$(minutes 50)" \
    --out "$RUN/ae_restyled"
once ae_ref $PY -m distill.train_autoencoder --data "$ALL_CACHE" --init "$RUN/ae_restyled/autoencoder" "${dec[@]}" --max-minutes "$(minutes 45)" \
    --ref-channels 12,24,64,128 --out "$RUN/ae_ref"
once ae_mouth $PY -m distill.train_autoencoder --data "$ALL_CACHE" --init "$RUN/ae_ref/autoencoder" "${dec[@]}" --max-minutes "$(minutes 45)" \
    --mouth-weight 2 --out "$RUN/ae_mouth"
once ae_faint $PY -m distill.train_autoencoder --data "$ALL_CACHE" --init "$RUN/ae_mouth/autoencoder" "${dec[@]}" --max-minutes "$(minutes 40)" \
    --mouth-weight 2 --mouth-corrupt 1.0 --out "$RUN/ae_faint"

cp "$RUN/second/teacher.json" "$RUN/second/teacher.safetensors" "$OUT/"
cp "$RUN/ae_faint/autoencoder.json" "$RUN/ae_faint/autoencoder.safetensors" "$OUT/"
stage "done: $OUT"
ls -l "$OUT"
