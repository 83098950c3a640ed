#!/usr/bin/env bash
# Train the default CPU weights (preset `cpu`) on the Dubai train split: autoencoder, then diffusion.
# About 15 + 45 minutes on 2 idle CPU cores (much longer when the cores are shared).
# Rerunning resumes from the latest checkpoints in $OUT.
#   nohup scripts/train_default.sh > runs/train_default.log 2>&1 &
# Outputs: $OUT/ae/autoencoder (+ autoencoder_metrics.json), $OUT/diffusion/pipeline (diffusers format),
# sample grids in */samples/, logs in */train_log.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/dubai-landcover}
OUT=${OUT:-runs/default}
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-1}  # 1 thread per process when the 2 cores are shared; 2 on an idle machine
AE_STEPS=${AE_STEPS:-1800}
DM_STEPS=${DM_STEPS:-3000}
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-30}

date
"$PYTHON" -m changeanywhere.cli train-autoencoder \
  --data "$DATA" --classes dubai-landcover --output-dir "$OUT/ae" --preset cpu \
  --crop-size 64 --batch-size 8 --max-steps "$AE_STEPS" --lr 1e-3 --lr-schedule cosine \
  --checkpointing-steps 500 --checkpoints-total-limit 2 --sample-steps 500 --log-steps 50 \
  --num-threads "$THREADS" --seed 0
date
"$PYTHON" -m changeanywhere.cli train-diffusion \
  --data "$DATA" --classes dubai-landcover --autoencoder "$OUT/ae/autoencoder" --output-dir "$OUT/diffusion" \
  --preset cpu --crop-size 128 --batch-size 16 --cache-latents 2000 --cond-dropout 0.1 --ema-decay 0.999 \
  --max-steps "$DM_STEPS" --lr 1e-3 --lr-schedule cosine \
  --checkpointing-steps 250 --checkpoints-total-limit 2 --sample-steps 500 --log-steps 50 \
  --num-threads "$THREADS" --seed 0 --save-dtype fp32
date
