#!/usr/bin/env bash
# Distil several training seeds of the token student and of the naive baseline side by side on one GPU, then keep
# each run's EMA weights at the last optimisation step that every run reached (equal budget in steps, whatever
# each configuration's speed). For a lent GPU machine: torch (CUDA), numpy, safetensors, Pillow, tqdm; no `av`.
#
# Usage: distill/gpu_seeds.sh HIGH_CACHE MODERATE_CACHE OUT [MINUTES=7] [SEEDS="1 2 3"] [extra distill flags...]
# OUT receives one tar per run (student.{json,safetensors} at the shared step, log.jsonl) and seeds.log.
# Environment: DEVICE (cuda), BATCH (16), LR (2e-4), RUNS (/tmp/seed_runs), PYTHON (python3),
#   RECIPES ("student naive": which of the two to run for every seed; "student" alone leaves the GPU to the token
#   students, to set new ones beside naive runs already scored), TEACHER (fada_stream/assets/teacher),
#   CHECK_AFTER (90: seconds before the first look for a crashed run).
set -uo pipefail
cd "$(dirname "$0")/.."

HIGH=${1:?usage: distill/gpu_seeds.sh HIGH_CACHE MODERATE_CACHE OUT [MINUTES] [SEEDS] [flags...]}
MOD=${2:?moderate cache}
OUT=${3:?output folder}
MIN=${4:-7}
SEEDS=${5:-1 2 3}
shift $(( $# < 5 ? $# : 5 ))
RUNS=${RUNS:-/tmp/seed_runs}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=${TQDM_MININTERVAL:-30}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # six processes on a 16-core host
exec > >(tee -a "$OUT/seeds.log") 2>&1
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no cuda')"

C=(--teacher "${TEACHER:-fada_stream/assets/teacher}" --data "$HIGH" --moderate "$MOD" --device "${DEVICE:-cuda}" --batch "${BATCH:-16}"
   --lr "${LR:-2e-4}" --warmup 100 --substeps 2 --iters 1000000 --max-minutes "$MIN" --log-every 50 --eval-every 250
   --eval-windows 8 --save-every 1000000 --snapshot-every 50 "$@")
names=() pids=()
declare -A RECIPE=(  # the bundled student's recipe, and its naive comparator's
    [student]="--steps 2 --restyle 0.5"
    [naive]="--steps 6 --tokens false --mixed false"
)
for r in ${RECIPES:-student naive}; do  # every name checked before any run starts
    [ -n "${RECIPE[$r]:-}" ] || { echo "unknown recipe $r (student, naive)"; exit 2; }
done
for s in $SEEDS; do
    for r in ${RECIPES:-student naive}; do
        # shellcheck disable=SC2086  # the recipe's flags split on purpose
        $PY -m distill.distill "${C[@]}" --seed "$s" --out "$RUNS/${r}_s$s" ${RECIPE[$r]} > "$RUNS/${r}_s$s.out" 2>&1 &
        pids+=($!)
        names+=("${r}_s$s")
    done
done
# A run that dies early would waste the lease: report it at once and stop the others.
sleep "${CHECK_AFTER:-90}"
for n in "${names[@]}"; do
    if grep -q "Traceback" "$RUNS/$n.out"; then
        echo "== $n failed"; tail -n 30 "$RUNS/$n.out"
        kill "${pids[@]}" 2>/dev/null; exit 1
    fi
done
wait "${pids[@]}"  # not a bare `wait`: that would also wait for the log's tee, which never ends
for n in "${names[@]}"; do echo "== $n: $(tail -n 1 "$RUNS/$n/log.jsonl")"; done
# The last step every run has a snapshot of.
shared=$(for n in "${names[@]}"; do ls "$RUNS/$n/snapshots" 2>/dev/null | sed 's/step//' | sort -n | tail -n 1 || echo 0; done | sort -n | head -n 1)
echo "shared step: ${shared:-none}"
[ "${shared:-0}" -gt 0 ] || { echo "a run has no snapshot"; exit 1; }
for n in "${names[@]}"; do
    tar -cf "$OUT/$n.tar" -C "$RUNS/$n/snapshots/step$shared" student.json student.safetensors -C "$RUNS/$n" log.jsonl
done
ls -l "$OUT"
