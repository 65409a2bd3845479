"""``lsx encode`` on 1 process vs 2 processes (torchrun, gloo) on the CPU; print JSON.

    python bench/encode_ddp.py                       # 200,000 28x28 images, 2 rounds
    python bench/encode_ddp.py --n 20000 --rounds 1  # a quick run

A synthetic ``npy:`` source of n random 1x28x28 uint8 images (written in chunks, never held in
memory) is encoded by an ``ae`` run (latent 16, hidden 64, conv; untrained weights:
the speed does not depend on them) through the real command, from scratch each time:

- A: ``python -m lsx encode --run-dir RUN --data npy:X --threads 1``
- B: ``torchrun --standalone --nproc-per-node=2 -m lsx encode ... --threads 1`` (1 thread each)

interleaved A, B, A, B, ... so both see the same machine load; each round's ratio B/A is of two
neighbouring runs. ``rows_per_s`` is n over the wall time of the whole command (interpreter and
torch start-up, process group, arrays created); ``encode_rows_per_s`` is n over the seconds the
store's manifest records (the encode alone). Every B store is checked to equal A's bit for bit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from encode import write_source  # bench/encode.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, uninstalled
SIDE = 28


def write_run(run: Path) -> str:
    """An ``ae`` run folder for 28x28 images; returns its arch."""
    import torch

    from lsx.checkpoint import save_checkpoint
    from lsx.models import build_model, make_config

    torch.manual_seed(0)
    config = make_config("ae", input_shape=(1, SIDE, SIDE), latent_dim=16, hidden_dim=64)
    model = build_model(config).eval()
    save_checkpoint(model, config, run)
    return config.resolved_arch


def encode(run: Path, spec: str, processes: int, batch: int) -> dict[str, Any]:
    """One encode from scratch through the CLI; wall time, manifest seconds, z's sha256."""
    from lsx.latents.store import open_store, store_dir_for

    store_dir = store_dir_for(run, spec)
    shutil.rmtree(store_dir, ignore_errors=True)
    args = ["encode", "--run-dir", str(run), "--data", spec, "--device", "cpu"]
    args += ["--batch-size", str(batch), "--threads", "1"]
    if processes == 1:
        cmd = [sys.executable, "-m", "lsx", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc-per-node={processes}", "-m", "lsx", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    store = open_store(store_dir)
    seconds = float(store.manifest["seconds"])
    digest = hashlib.sha256((store_dir / "z.npy").read_bytes()).hexdigest()[:16]
    return {
        "processes": processes,
        "wall_s": round(wall, 2),
        "encode_s": round(seconds, 2),
        "rows_per_s": round(store.n / wall),
        "encode_rows_per_s": round(store.n / seconds),
        "z_sha256": digest,
        "load_avg_1m_after": round(os.getloadavg()[0], 2),  # other work on the machine
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2, help="A,B pairs")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lsx-bench-encode-ddp-") as tmp:
        npy, run = Path(tmp) / "x.npy", Path(tmp) / "run"
        write_source(npy, args.n, SIDE)
        arch = write_run(run)
        spec = f"npy:{npy}"
        for r in range(args.rounds):
            for processes in (1, 2):  # A, B, A, B, ...
                runs.append({"round": r + 1, **encode(run, spec, processes, args.batch_size)})
                print(json.dumps(runs[-1]), file=sys.stderr)
    pairs = [(runs[i], runs[i + 1]) for i in range(0, len(runs), 2)]
    ratios = [round(b["rows_per_s"] / a["rows_per_s"], 3) for a, b in pairs]
    encode_ratios = [round(b["encode_rows_per_s"] / a["encode_rows_per_s"], 3) for a, b in pairs]
    import torch

    print(
        json.dumps(
            {
                "bench": "encode_ddp",
                "n": args.n,
                "image_shape": [1, SIDE, SIDE],
                "model": f"ae (latent 16, hidden 64, arch {arch}), untrained",
                "batch_size": args.batch_size,
                "threads_per_process": 1,
                "order": "A,B,A,B (A: 1 process, B: torchrun 2 processes, gloo)",
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpu_count": os.cpu_count(),
                "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
                "runs": runs,
                "ratio_2_over_1": ratios,
                "ratio_2_over_1_median": statistics.median(ratios),
                "encode_ratio_2_over_1": encode_ratios,
                "encode_ratio_2_over_1_median": statistics.median(encode_ratios),
                "bit_identical": len({run["z_sha256"] for run in runs}) == 1,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
