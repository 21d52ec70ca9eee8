"""Write the example's backbone: the CNN from a seeded initialisation, pretrained briefly on
the bundled Fashion-MNIST images (nothing is downloaded), saved as a ``state_dict``.

    .venv/bin/python examples/lora/make_backbone.py            # -> examples/lora/backbone.pt

The LoRA run (``lora_mnist.yaml``) loads it as ``model.weights`` and fine-tunes it on
MNIST through adapters: the pretrained features stay frozen at every hospital.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from medsilo.bench.lora import pretrain
from medsilo.models.builder import build_model

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "backbone.pt")
    parser.add_argument("--steps", type=int, default=300, help="pretraining SGD steps (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = build_model("cnn", (1, 28, 28), 10, seed=args.seed)
    state = pretrain(model, args.steps, args.seed) if args.steps > 0 else model.state_dict()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"wrote {args.out} ({args.steps} pretraining steps, seed {args.seed})")
    return args.out


if __name__ == "__main__":
    main()
