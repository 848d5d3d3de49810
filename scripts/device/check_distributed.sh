#!/usr/bin/env bash
# Check the multi-GPU training routes on a machine with 2 or more GPUs (issue 18): DDP, DeepSpeed ZeRO-2 and FSDP2
# for train_ns2.py, DDP for train_codec.py. For each route: a short run on all GPUs with checkpoints (the scripts
# stop with ProcessMismatchError if the processes' weights or EMA copies differ at the start or at any checkpoint),
# then a copy of the run resumed from its middle checkpoint, whose final weights must equal the uninterrupted run's;
# and the NS2 routes' final weights must match DDP's (same seed, same batches: the same training). Differences are
# measured against how far the weights moved in the second half of the run (GPU kernels are not bit-deterministic).
#
# Usage: scripts/device/check_distributed.sh DATA CODEC RUN_DIR
#   DATA   a prepared dataset with durations and codes of CODEC (e.g. prepared with --codec pretrained/ns2-tiny-en/codec)
#   CODEC  the codec folder those codes come from
# Environment: STEPS (default 20; checkpoints at STEPS/2 and STEPS), PYTHON (default python3), ROUTES (default
#   "ddp zero2 fsdp codec"; zero2 needs `pip install deepspeed`), WHEELS (a folder of wheels to install first).
# Prints one line per check and ends with "all checks passed" (exit 0) or the first failure (exit 1).
set -euo pipefail
DATA=$1 CODEC=$2 RUN=$3
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-20}
HALF=$((STEPS / 2))
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=4
if [ -n "${WHEELS:-}" ]; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
GPUS=$($PYTHON -c "import torch; print(torch.cuda.device_count())")
[ "$GPUS" -ge 2 ] || { echo "needs 2 or more GPUs, found $GPUS"; exit 1; }
echo "$GPUS GPUs"
mkdir -p "$RUN"

declare -A CONFIG=([ddp]=accelerate_multigpu.yaml [zero2]=accelerate_deepspeed_zero2.yaml [fsdp]=accelerate_fsdp.yaml
                   [codec]=accelerate_multigpu.yaml)
COMMON=(--max_steps "$STEPS" --save_interval "$HALF" --val_interval "$HALF" --keep_checkpoints 2 --val_log_items 0
        --mixed_precision no --ema_decay 0 --dataset "$DATA")  # EMA decay 0: the saved EMA is the weights themselves

train() {  # route, output folder, extra arguments...
  local route=$1 out=$2; shift 2
  local script=train_ns2.py recipe=(--config training/configs/ns2_tiny.yaml --codec "$CODEC" --val_inference_steps 2)
  [ "$route" = codec ] && script=train_codec.py recipe=(--config training/configs/codec_tiny.yaml --gan_start_step "$HALF")
  accelerate launch --config_file "training/configs/${CONFIG[$route]}" --num_processes "$GPUS" \
    "training/$script" "${recipe[@]}" "${COMMON[@]}" --output_dir "$out" "$@" > "$out.log" 2>&1 \
    || { tail -30 "$out.log"; echo "FAILED: $route run ($out.log)"; exit 1; }
}

compare() {  # label, first EMA file, second EMA file, reference EMA file (earlier step of the first run), bound
  $PYTHON - "$@" <<'PY'
import sys
from safetensors.torch import load_file
label, (first, second, reference), bound = sys.argv[1], map(load_file, sys.argv[2:5]), float(sys.argv[5])
assert first.keys() == second.keys() == reference.keys(), f"{label}: different tensors"
def distance(a, b):  # over the whole model (a per-tensor bound would trip on the attention key biases, whose
    return sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in a) ** 0.5  # gradient is rounding noise)
ratio = distance(first, second) / distance(first, reference)
print(f"{label}: difference / what the second half of training moved = {ratio:.2e} (bound {bound:g})")
sys.exit(0 if ratio <= bound else 1)
PY
}

for route in ${ROUTES:-ddp zero2 fsdp codec}; do
  echo "== $route"
  train "$route" "$RUN/$route"
  rm -rf "$RUN/$route-resumed" && cp -r "$RUN/$route" "$RUN/$route-resumed" && rm -rf "$RUN/$route-resumed/checkpoints/step_$STEPS"
  train "$route" "$RUN/$route-resumed" --resume
  compare "$route: resumed vs uninterrupted weights at step $STEPS" "$RUN/$route/checkpoints/step_$STEPS/ema.safetensors" \
    "$RUN/$route-resumed/checkpoints/step_$STEPS/ema.safetensors" "$RUN/$route/checkpoints/step_$HALF/ema.safetensors" 1e-3 \
    || { echo "FAILED: $route resume"; exit 1; }
  if [ "$route" = zero2 ] || [ "$route" = fsdp ]; then
    compare "$route vs ddp: weights at step $STEPS" "$RUN/ddp/checkpoints/step_$STEPS/ema.safetensors" \
      "$RUN/$route/checkpoints/step_$STEPS/ema.safetensors" "$RUN/ddp/checkpoints/step_$HALF/ema.safetensors" 0.05 \
      || { echo "FAILED: $route differs from ddp"; exit 1; }
  fi
done
echo "all checks passed"
