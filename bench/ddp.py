"""Distributed data-parallel throughput: N processes (torchrun, gloo on the CPU) against one, on
the same global batch; prints JSON.

    python bench/ddp.py                                   # ae on mnist5k, batch 256, 2 vs 1
    python bench/ddp.py --kind vae --data digits --batch-size 1024 --epochs 6 --nproc 2

Both runs are ``python -m lsx train`` (the 1-process one) and ``torchrun --standalone
--nproc-per-node=N -m lsx train`` with the same arguments, one thread per process
(``OMP_NUM_THREADS=1``, ``--threads 1``). samples/s is the trainer's per-epoch global figure from
``metrics.jsonl``: the first epoch (warm-up) is dropped and the median of the rest is reported;
``ratio`` = N-process / 1-process samples/s. The final losses are printed too: for ``ae`` they
agree to about 1e-6 (same global batches, gradients equal up to float rounding). On a machine
with fewer free cores than N processes the ratio says more about the machine than about DDP.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lsx.checkpoint import METRICS_NAME  # noqa: E402
from lsx.files import read_jsonl  # noqa: E402


def run(nproc: int, out: Path, args: argparse.Namespace) -> dict:
    """Train once with ``nproc`` processes; samples/s and losses from its metrics.jsonl."""
    name = f"p{nproc}"
    train = ["train", "--model", args.kind, "--data", args.data, "--out", str(out)]
    train += ["--name", name, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    train += ["--device", "cpu", "--threads", "1", "--seed", "0", "--no-progress"]
    if nproc == 1:
        cmd = [sys.executable, "-m", "lsx", *train]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd = [*launcher, f"--nproc-per-node={nproc}", "-m", "lsx", *train]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    metrics = read_jsonl(out / name / METRICS_NAME)
    rates = [m["samples_per_s"] for m in metrics[1:]] or [metrics[0]["samples_per_s"]]
    return {
        "processes": nproc,
        "samples_per_s": round(statistics.median(rates), 1),
        "samples_per_s_per_epoch": [m["samples_per_s"] for m in metrics],
        "train_seconds": round(sum(m["seconds"] for m in metrics), 3),
        "wall_s_incl_startup": round(wall, 2),
        "final_train_loss": metrics[-1]["train_loss"],
        "final_test_loss": metrics[-1]["test_loss"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kind", default="ae")
    p.add_argument("--data", default="mnist5k")
    p.add_argument("--batch-size", type=int, default=256, help="the global batch")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--nproc", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="lsx-ddp-bench-") as tmp:
        one = run(1, Path(tmp), args)
        many = run(args.nproc, Path(tmp), args)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        json.dumps(
            {
                "bench": "ddp",
                "kind": args.kind,
                "data": args.data,
                "global_batch": args.batch_size,
                "epochs": args.epochs,
                "backend": "gloo",
                "threads_per_process": 1,
                "cpu_count": os.cpu_count(),
                "load_avg_after": [round(x, 2) for x in load] if load else None,
                "machine": platform.processor() or platform.machine(),
                "one": one,
                "many": many,
                "ratio": round(many["samples_per_s"] / one["samples_per_s"], 3),
                "rel_diff_final_test_loss": abs(many["final_test_loss"] - one["final_test_loss"])
                / abs(one["final_test_loss"]),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
