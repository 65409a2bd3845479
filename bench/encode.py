"""Streamed encoding into a latent store: throughput and peak RSS per size; print JSON.

    python bench/encode.py                          # 10k, 100k and 1M images, latent dim 16 and 64
    python bench/encode.py --sizes 10000 --dims 16  # a quick run

Each size is a synthetic ``npy:`` source of 1x16x16 uint8 images, written to a temporary file in
chunks (the 1M file is 256 MB; it is never held in memory). Each (size, dim) is encoded by
``lsx.latents.encode_to_store`` in a FRESH subprocess (1 torch thread, batch 1024) through a
small MLP autoencoder (``ae``, hidden 64), so its peak RSS (``VmHWM``) is that encode's alone;
``rss_after_imports_mib`` is the same process before encoding (Python + torch + lsx). Target
(issue 8): 1,000,000 latent vectors without holding the dataset in RAM, under 8 GiB RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled
SIDE = 16
CHUNK = 100_000


def _status_mib(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process, in MiB, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS)

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_source(path: Path, n: int, side: int = SIDE) -> None:
    """n random 1 x side x side uint8 images with 10 labels, written in chunks through a memory
    map (also used by ``bench/encode_ddp.py``)."""
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 1, side, side))
    rng = np.random.default_rng(0)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        x[start:stop] = rng.integers(0, 256, size=(stop - start, 1, side, side), dtype=np.uint8)
    x.flush()
    del x
    np.save(str(path).replace(".npy", ".labels.npy"), np.arange(n, dtype=np.int64) % 10)


def child(npy: Path, dim: int, batch: int, store: Path) -> dict[str, Any]:
    """Encode one source in this (fresh) process and measure it."""
    import torch

    from lsx.data.lazy import open_source
    from lsx.latents.writer import encode_to_store
    from lsx.models import build_model, make_config

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = make_config(
        "ae", input_shape=(1, SIDE, SIDE), latent_dim=dim, hidden_dim=64, arch="mlp"
    )
    model = build_model(config).eval()
    source = open_source(f"npy:{npy}")
    rss0 = _status_mib("VmRSS")
    start = time.perf_counter()
    out = encode_to_store(model, source, store, checkpoint_sha="bench", batch_size=batch)
    seconds = time.perf_counter() - start
    return {
        "n": out.n,
        "dim": out.dim,
        "arch": config.arch,
        "seconds": round(seconds, 2),
        "rows_per_s": round(out.n / seconds),
        "peak_rss_mib": _status_mib("VmHWM"),
        "rss_after_imports_mib": rss0,
        "dataset_on_disk_mib": round(npy.stat().st_size / 2**20, 1),
        "dataset_as_float32_mib": round(out.n * SIDE * SIDE * 4 / 2**20, 1),
        "store_z_mib": round((store / "z.npy").stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--child", nargs=3, metavar=("NPY", "DIM", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        npy, dim, store = args.child
        print(json.dumps(child(Path(npy), int(dim), args.batch_size, Path(store))))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="lsx-bench-encode-") as tmp:
        for n in args.sizes:
            npy = Path(tmp) / f"x{n}.npy"
            start = time.perf_counter()
            write_source(npy, n)
            write_s = round(time.perf_counter() - start, 2)
            for dim in args.dims:
                store = Path(tmp) / f"store-{n}-{dim}"
                cmd = [sys.executable, __file__, "--batch-size", str(args.batch_size)]
                cmd += ["--child", str(npy), str(dim), str(store)]
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append({**row, "write_source_s": write_s})
                print(json.dumps(rows[-1]), file=sys.stderr)
            npy.unlink()
    import torch

    print(
        json.dumps(
            {
                "bench": "encode",
                "image_shape": [1, SIDE, SIDE],
                "batch_size": args.batch_size,
                "threads": 1,
                "model": "ae (MLP, hidden 64)",
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpu_count": os.cpu_count(),
                "target": "1M rows under 8 GiB peak RSS, dataset never in RAM",
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
