"""Training: the autoencoder (`autoencoder.py`) and the semantic latent diffusion model (`diffusion.py`).

Both take a typed config (`config.py`; `train-cd`'s is there too), run under `accelerate` (CPU, one GPU, or
`torchrun` / `accelerate launch` data parallel) through one loop (`common.run_steps`), and write pickle-free
checkpoints (`checkpoint.py`). `args.py` declares the CLI flags that parse into the configs.
"""
