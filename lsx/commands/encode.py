"""``python -m lsx encode``: stream a run's encoding of a whole dataset into a latent store.

    python -m lsx encode --run checkpoints/demo-vae-mnist5k
    python -m lsx encode --run checkpoints/my-run --data npy:/data/big.npy --batch-size 2048
    python -m lsx encode --run checkpoints/my-run --data folder:/data/shirts --workers 4
    torchrun --standalone --nproc-per-node=2 -m lsx encode --run-dir checkpoints/my-run

Writes ``<run>/stores/<slug>/`` (see :mod:`lsx.latents`); an interrupted encode resumes
where it stopped (with any number of processes), a store of older weights or changed data is
recomputed. Under torchrun every process encodes its share of the rows into the same store
(:func:`lsx.latents.writer.encode_to_store`), on the GPU of its ``LOCAL_RANK`` when there are
GPUs. Prints progress on stderr and one final line with rows, seconds, rows/s and the store path
on stdout (rank 0 only). Under torchrun name the run with ``--run-dir`` (torchrun's own parser
takes ``--run`` for an abbreviation of its ``--run-path``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

HELP = "encode a dataset with a run into an on-disk latent store (streamed, resumable)"
PROGRESS_EVERY_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # --run-dir: torchrun's own parser refuses "--run" (ambiguous with its --run-path)
    parser.add_argument(
        "--run", "--run-dir", dest="run", type=Path, required=True, help="run folder"
    )
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
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per process (under torchrun capped so that all the processes "
        "of a node use at most its cores)",
    )


def threads_per_process(requested: int, local_processes: int, cores: int) -> tuple[int, str]:
    """``requested`` threads, or fewer so ``local_processes`` x threads <= ``cores``; with a
    note saying so (empty when unchanged)."""
    most = max(1, cores // max(local_processes, 1))
    if requested <= most:
        return requested, ""
    return most, (
        f"--threads {requested} x {local_processes} processes would exceed the {cores} cores "
        f"here; using {most} thread{'s' if most > 1 else ''} per process"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from lsx.checkpoint import read_header
    from lsx.distributed import initialized, launched_by_torchrun
    from lsx.encode import encode_target
    from lsx.errors import ConfigError, LsxError

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1; got {args.threads}.")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if launched_by_torchrun() else 1
    threads, note = threads_per_process(args.threads, local, len(os.sched_getaffinity(0)))
    if note and os.environ.get("LOCAL_RANK", "0") == "0":
        print(f"note: {note}", file=sys.stderr)
    torch.set_num_threads(threads)
    spec, image_size = encode_target(read_header(args.run), args.run, args.data, args.image_size)
    with initialized(args.device) as ctx:  # one process: a DistContext() of world size 1
        try:
            return _encode(args, spec, image_size, ctx)
        except LsxError:
            if ctx.distributed:  # every rank stopped on the same error: close the group, so the
                _close_group()  # process exits with lsx's code 2 (not an abort in its teardown)
            raise


def _close_group() -> None:
    import torch.distributed as dist

    dist.destroy_process_group()


def _encode(args: argparse.Namespace, spec: str, image_size: int | None, ctx: Any) -> int:
    from lsx.checkpoint import load_checkpoint, weights_sha256
    from lsx.encode import open_encode_source
    from lsx.latents.store import store_dir_for
    from lsx.latents.writer import encode_to_store
    from lsx.train import resolve_device

    device = ctx.device or resolve_device(args.device)  # under torchrun: this rank's device
    model, _ = load_checkpoint(args.run, device=str(device))
    source = open_encode_source(spec, image_size)
    store_dir = store_dir_for(args.run, source.spec, args.split)
    main = ctx.rank == 0
    if main:
        for note in source.notes:
            print(f"note: {note}", file=sys.stderr)
        where = f"{ctx.world_size} processes ({ctx.backend}), " if ctx.distributed else ""
        print(
            f"encoding {source.spec} ({args.split}) on {where}{device} -> {store_dir}",
            file=sys.stderr,
        )
    share = f"rank 0 of {ctx.world_size}: " if ctx.distributed else ""
    last = [time.perf_counter()]

    def progress(done: int, n: int) -> None:
        now = time.perf_counter()
        if main and (now - last[0] >= PROGRESS_EVERY_S or done == n):
            print(f"  {share}{done:,}/{n:,} rows ({100 * done / n:.0f} %)", file=sys.stderr)
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
        dist=ctx,
    )
    seconds = time.perf_counter() - start
    if not main:
        return 0
    if store.recomputed_because:
        print(f"recomputed: {store.recomputed_because}", file=sys.stderr)
    total = store.manifest.get("seconds") or seconds
    print(
        f"{store.n:,} rows x {store.dim} dims in {total:.1f} s "
        f"({store.n / max(total, 1e-9):,.0f} rows/s) -> {store.path}"
    )
    return 0
