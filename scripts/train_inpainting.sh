#!/usr/bin/env bash
# Train the default inpainting denoiser (generator v3): the embedded v2 UNet widened to also take the masked
# before latent and the paint mask (new input channels zero-initialised), fine-tuned on the Dubai train split
# with random masks (dilated object footprints, blobs, strokes, the whole tile; `changeanywhere.regions`).
# Rerunning resumes from the latest checkpoint in $OUT; raise STEPS to train on. To continue the committed run:
#   RESUME=checkpoints/changeanywhere-dubai-256-resume STEPS=12000 scripts/train_inpainting.sh
#   nohup scripts/train_inpainting.sh > runs/train_inpainting.log 2>&1 &
# About 1.5 s/step on one thread of a shared 2-core CPU; THREADS=2 on an idle machine, or a GPU (--device).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/dubai-landcover}
OUT=${OUT:-runs/inpaint}
PYTHON=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-1}
STEPS=${STEPS:-8000}
RESUME=${RESUME:-auto}
INIT=${INIT:-checkpoints/changeanywhere-dubai-256}
BATCH=${BATCH:-16}
CROP=${CROP:-128}
export TQDM_MININTERVAL=${TQDM_MININTERVAL:-30}

date
"$PYTHON" -m changeanywhere.cli train-diffusion \
  --data "$DATA" --classes dubai-landcover --autoencoder "$INIT/vae" --output-dir "$OUT" \
  --preset cpu --inpainting --init-from "$INIT" \
  --crop-size "$CROP" --batch-size "$BATCH" --cache-latents 4000 --cond-dropout 0.1 --ema-decay 0.999 \
  --prediction-type v_prediction --loss mse --snr-gamma 5 \
  --max-steps "$STEPS" --lr 3e-4 --lr-schedule cosine --warmup-steps 100 --resume "$RESUME" \
  --checkpointing-steps 250 --checkpoints-total-limit 2 --sample-steps 1000 --log-steps 50 \
  --num-threads "$THREADS" --seed 1 --save-dtype fp32
date
