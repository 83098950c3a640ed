#!/usr/bin/env bash
# Train the default CPU weights (preset `cpu`, generator v2) on the Dubai train split: the colour-carrying
# autoencoder, then the diffusion model (v-prediction, min-SNR-5 weighted MSE, EMA).
# About 20 + 120 minutes on 2 idle CPU cores (longer when the cores are shared).
# Rerunning resumes from the latest checkpoints in $OUT; raise DM_STEPS to train on.
#   nohup scripts/train_default.sh > runs/train_default.log 2>&1 &
# To continue the embedded default's run instead:
#   DM_RESUME=checkpoints/changeanywhere-dubai-256-resume AE=checkpoints/changeanywhere-dubai-256/vae \
#   DM_STEPS=20000 scripts/train_default.sh
# Outputs: $OUT/ae/autoencoder (+ autoencoder_metrics.json), $OUT/diffusion/pipeline (diffusers format),
# sample grids in */samples/, logs in */train_log.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/dubai-landcover}
OUT=${OUT:-runs/default}
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-1}  # 1 thread per process when the 2 cores are shared; 2 on an idle machine
AE_STEPS=${AE_STEPS:-1500}
DM_STEPS=${DM_STEPS:-8000}
DM_RESUME=${DM_RESUME:-auto}
AE=${AE:-}
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-30}

date
if [ -z "$AE" ]; then
  "$PYTHON" -m changeanywhere.cli train-autoencoder \
    --data "$DATA" --classes dubai-landcover --output-dir "$OUT/ae" --preset cpu \
    --crop-size 64 --batch-size 8 --max-steps "$AE_STEPS" --lr 1e-3 --lr-schedule cosine \
    --checkpointing-steps 250 --checkpoints-total-limit 2 --sample-steps 500 --log-steps 50 \
    --num-threads "$THREADS" --seed 0
  AE="$OUT/ae/autoencoder"
fi
date
"$PYTHON" -m changeanywhere.cli train-diffusion \
  --data "$DATA" --classes dubai-landcover --autoencoder "$AE" --output-dir "$OUT/diffusion" \
  --preset cpu --crop-size 128 --batch-size 16 --cache-latents 4000 --cond-dropout 0.1 --ema-decay 0.999 \
  --prediction-type v_prediction --loss mse --snr-gamma 5 \
  --max-steps "$DM_STEPS" --lr 1e-3 --lr-schedule cosine --resume "$DM_RESUME" \
  --checkpointing-steps 250 --checkpoints-total-limit 2 --sample-steps 1000 --log-steps 50 \
  --num-threads "$THREADS" --seed 0 --save-dtype fp32
date
