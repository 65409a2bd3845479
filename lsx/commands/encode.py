"""``python -m lsx encode``: stream a run's encoding of a whole dataset into a latent store.

    python -m lsx encode --run checkpoints/demo-vae-mnist5k
    python -m lsx encode --run checkpoints/my-run --data npy:/data/big.npy --batch-size 2048
    python -m lsx encode --run checkpoints/my-run --data folder:/data/shirts --workers 4

Writes ``<run>/stores/<slug>/`` (see :mod:`lsx.latents`); an interrupted encode resumes
where it stopped, a store of older weights or changed data is recomputed. Prints progress on
stderr and one final line with rows, seconds, rows/s and the store path on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "encode a dataset with a run into an on-disk latent store (streamed, resumable)"
PROGRESS_EVERY_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run folder")
    parser.add_argument(
        "--data",
        default=None,
        help="dataset name, npy:PATH or folder:PATH (default: the run's own dataset)",
    )
    parser.add_argument("--split", default="all", choices=("all", "train", "test"))
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per batch")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader reader processes")
    parser.add_argument(
        "--image-size", type=int, default=None, help="resize images (default: the run's size)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    import torch

    from lsx.checkpoint import load_checkpoint, read_header, weights_sha256
    from lsx.encode import encode_target, open_encode_source
    from lsx.errors import ConfigError
    from lsx.latents.store import store_dir_for
    from lsx.latents.writer import encode_to_store
    from lsx.train import resolve_device

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1; got {args.threads}.")
    torch.set_num_threads(args.threads)
    spec, image_size = encode_target(read_header(args.run), args.run, args.data, args.image_size)
    device = resolve_device(args.device)
    model, _ = load_checkpoint(args.run, device=str(device))
    source = open_encode_source(spec, image_size)
    for note in source.notes:
        print(f"note: {note}", file=sys.stderr)
    store_dir = store_dir_for(args.run, source.spec, args.split)
    print(f"encoding {source.spec} ({args.split}) on {device} -> {store_dir}", file=sys.stderr)
    last = [time.perf_counter()]

    def progress(done: int, n: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_EVERY_S or done == n:
            print(f"  {done:,}/{n:,} rows ({100 * done / n:.0f} %)", file=sys.stderr)
            last[0] = now

    start = time.perf_counter()
    store = encode_to_store(
        model,
        source,
        store_dir,
        checkpoint_sha=weights_sha256(args.run),
        split=args.split,
        batch_size=args.batch_size,
        device=str(device),
        workers=args.workers,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    if store.recomputed_because:
        print(f"recomputed: {store.recomputed_because}", file=sys.stderr)
    total = store.manifest.get("seconds") or seconds
    print(
        f"{store.n:,} rows x {store.dim} dims in {total:.1f} s "
        f"({store.n / max(total, 1e-9):,.0f} rows/s) -> {store.path}"
    )
    return 0
