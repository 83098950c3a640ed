#!/usr/bin/env bash
# One-command GPU continuation of the embedded default generator (for a lent device machine, ≤ 9 minutes):
# resumes the committed training state with the committed autoencoder, trains for $MINUTES minutes of
# wall-clock at batch 64 on 256² crops (64² latents: the sampling size), exports the EMA pipeline to
# $OUT/diffusion/pipeline and writes $OUT/diffusion/train_log.jsonl. Copy $OUT back and run
# scripts/export_default.py on it.
#   bash scripts/train_gpu.sh            # on the device machine, from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${OUT:-${OUT_DIR:-runs/gpu}}
MINUTES=${MINUTES:-8}
STEPS=${STEPS:-6000}  # an upper bound; the time limit usually stops first (the last checkpoint is kept)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout --signal=INT "$((MINUTES * 60))" "$PYTHON" -m changeanywhere.cli train-diffusion \
  --data "${DATA:-../shared/data/dubai-landcover}" --classes dubai-landcover \
  --autoencoder checkpoints/changeanywhere-dubai-256/vae --output-dir "$OUT/diffusion" \
  --resume "${RESUME:-checkpoints/changeanywhere-dubai-256-resume}" \
  --preset cpu --crop-size 256 --batch-size 64 --cache-latents 0 --cond-dropout 0.1 --ema-decay 0.999 \
  --prediction-type v_prediction --loss mse --snr-gamma 5 --mixed-precision bf16 \
  --max-steps "$STEPS" --lr 5e-4 --lr-schedule constant --checkpointing-steps 200 --checkpoints-total-limit 1 \
  --sample-steps 100000 --log-steps 50 || echo "stopped by the time limit (checkpoints kept)"
ls "$OUT/diffusion"
