#!/usr/bin/env bash
# Retrain the shipped model's codec and NS2 on one GPU, each stage bounded in time:
#   0. an Opus/FLAC dataset's audio decoded once, for the codec (training/decode_audio.py: RUN_DIR/data_pcm16);
#   1. the codec from scratch (training/configs/codec_gpu.yaml: Fourier decoder, GAN, augmentation, real recordings);
#   2. the `codes` of the prepared dataset with that codec (prepare_dataset.py, batched on the GPU);
#   3. NS2 on those codes (training/configs/ns2_gpu.yaml: prompt-anchored pitch).
# Then assemble the pipeline here (training/assemble_pipeline.py) and evaluate it (training/evaluate_tts.py).
#
# Usage: SOURCE_ARGS="<the prepare_dataset.py source arguments DATA was prepared with>" \
#          scripts/device/train_shipped.sh DATA RUN_DIR [RESULTS_DIR]
#   DATA         a prepared dataset with durations and audio (e.g. --audio_format opus to keep it small)
#   RUN_DIR      where the runs go (RUN_DIR/codec, RUN_DIR/ns2)
#   RESULTS_DIR  optional: the logs and a tar of codec/best + ns2/best (without its codec copy), cut into 15 MB parts
# Environment: CODEC_MINUTES, NS2_MINUTES (training wall-clock bounds, default 4 and 3.5); BUDGET_SECONDS (optional:
#   the whole script's bound — NS2 gets what the earlier stages left, less a margin, and each stage is killed at the
#   bound, so the results are packaged in time); CODEC_ARGS, NS2_ARGS (extra `--key value` recipe overrides);
#   PYTHON (default python3); WHEELS (a folder of wheels to install first, for machines without a package index).
set -euo pipefail
DATA=$1 RUN=$2 RESULTS=${3:-}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false NVIDIA_TF32_OVERRIDE=1  # TF32 matmuls and convolutions
mkdir -p "$RUN"

package() {  # whatever the stages left, even after a failure
  [ -n "$RESULTS" ] || return 0
  mkdir -p "$RESULTS"
  cp "$RUN"/*.log "$RESULTS"/ 2>/dev/null || true
  local parts=()
  for folder in codec/best codec/tensorboard ns2/best ns2/tensorboard; do [ -d "$RUN/$folder" ] && parts+=("$folder"); done
  # ns2/best holds a copy of the codec: left out (it is codec/best)
  [ ${#parts[@]} -gt 0 ] && tar -cf - -C "$RUN" --exclude=ns2/best/codec "${parts[@]}" | split -b 15m - "$RESULTS/shipped.tar.part-"
  ls -la "$RESULTS"
}
trap package EXIT

if [ -n "${WHEELS:-}" ]; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
$PYTHON -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

left() {  # seconds of BUDGET_SECONDS left, less $1 (a large number without a budget)
  echo $(( ${BUDGET_SECONDS:-1000000} - SECONDS - $1 ))
}

stage() {  # name, command...: run with a log and the elapsed time, killed at the budget
  local name=$1; shift
  local start=$SECONDS
  echo "== $name (at $SECONDS s)"
  timeout "$(left 15)" "$@" 2>&1 | tr '\r' '\n' | grep -v -E '^\s*$|[0-9]+/[0-9]+ \[[0-9:]+<' > "$RUN/$name.log" || { tail -40 "$RUN/$name.log"; return 1; }
  tail -5 "$RUN/$name.log"
  echo "== $name done in $((SECONDS - start)) s"
}

# shellcheck disable=SC2086  # *_ARGS are lists of arguments
CODEC_DATA=$DATA
if grep -q -E '"audio_format": "(opus|flac)"' "$DATA/prepare_info.json"; then  # read every step: decode it once
  CODEC_DATA=$RUN/data_pcm16
  [ -d "$CODEC_DATA" ] || stage decode $PYTHON training/decode_audio.py "$DATA" "$CODEC_DATA" --num_proc "$(nproc)"
fi
stage codec $PYTHON training/train_codec.py --config training/configs/codec_gpu.yaml --dataset "$CODEC_DATA" \
  --output_dir "$RUN/codec" --max_minutes "${CODEC_MINUTES:-4}" ${CODEC_ARGS:-}
# shellcheck disable=SC2086
stage codes $PYTHON training/prepare_dataset.py $SOURCE_ARGS --output_dir "$DATA" --codec "$RUN/codec/best" --batch_size 64
NS2_MINUTES=$($PYTHON -c "print(round(min(${NS2_MINUTES:-3.5}, $(left 75) / 60), 2))")  # start-up, validation, saving
# shellcheck disable=SC2086
stage ns2 $PYTHON training/train_ns2.py --config training/configs/ns2_gpu.yaml --dataset "$DATA" \
  --codec "$RUN/codec/best" --output_dir "$RUN/ns2" --max_minutes "$NS2_MINUTES" ${NS2_ARGS:-}
