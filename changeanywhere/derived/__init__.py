"""Pair sets derived from a generated folder, for the zero-shot experiment's arms and the evaluator's floor:
`naive` (B by copy-paste of same-class texture, no diffusion) and `drifted` (B with the generator's seeded
radiometric drift). Kept out of `cd/`, which knows nothing of the generator."""
