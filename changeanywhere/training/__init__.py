"""Training: the autoencoder (`autoencoder.py`) and the semantic latent diffusion model (`diffusion.py`).

Both run under `accelerate` (CPU, one GPU, or `torchrun` / `accelerate launch` data parallel) and write
pickle-free checkpoints (`checkpoint.py`).
"""
