"""``python -m lsx synth-npy``: write a labelled synthetic image set of any size as ``npy:`` files.

    python -m lsx synth-npy --n 1000000 --out /tmp/big.npy     # 244 MB, 10 classes of 16x16
    python -m lsx train --model ae --data npy:/tmp/big.npy --name big
    python -m lsx encode --run checkpoints/big --data npy:/tmp/big.npy

For trying the large-data path (lazy training, latent stores, million-point maps) without a large
dataset at hand; see :func:`lsx.data.synthetic.write_pattern_npy`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "write a labelled synthetic image set of any size (npy:) to try the large-data path"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="the images file, *.npy")
    parser.add_argument("--n", type=int, default=100_000, help="number of images")
    parser.add_argument("--size", type=int, default=16, help="height and width in pixels")
    parser.add_argument("--classes", type=int, default=10, help="number of classes")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from lsx.data.synthetic import write_pattern_npy
    from lsx.errors import ConfigError

    if args.out.exists():
        raise ConfigError(f"{args.out} exists; lsx does not overwrite files. Choose another --out.")
    start = time.perf_counter()
    images, labels = write_pattern_npy(
        args.out, args.n, size=args.size, n_classes=args.classes, seed=args.seed
    )
    print(
        f"{args.n:,} images of {args.size}x{args.size} ({images.stat().st_size / 1e6:,.1f} MB) "
        f"in {time.perf_counter() - start:.1f} s -> {images} (+ {labels.name}); use "
        f"--data npy:{images}"
    )
    return 0
