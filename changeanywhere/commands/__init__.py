"""Sub-commands of the CLI. Each module exposes `add_parser(subparsers)` that sets `func`."""

from . import (
            build_bank,
            eval_cd,
            eval_generator,
            generate,
            simulate,
            train_autoencoder,
            train_cd,
            train_diffusion,
            train_segmenter,
)

COMMANDS = [simulate, train_autoencoder, train_diffusion, train_segmenter, eval_generator, train_cd, eval_cd, generate,
            build_bank]
