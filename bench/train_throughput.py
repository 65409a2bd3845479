"""Training throughput (samples/s) of every model kind on the built-in datasets; prints JSON.

    python bench/train_throughput.py                 # ae, dae, vae on digits and mnist5k, CPU
    python bench/train_throughput.py --device cuda --batch-sizes 256 1024 4096

Each measurement trains the demo architecture for ``--epochs`` epochs (the first epoch is a
warm-up and is not counted) and reports the median samples/s of the rest.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lsx.config import TrainConfig  # noqa: E402
from lsx.data import load_dataset  # noqa: E402
from lsx.demos import DEMOS  # noqa: E402
from lsx.models import MODELS, build_model, make_config  # noqa: E402
from lsx.train import Trainer  # noqa: E402


def measure(kind: str, data: str, batch_size: int, epochs: int, device: str, threads: int) -> dict:
    model_fields = next(m for _, k, d, m, _ in DEMOS if d == data)
    ds = load_dataset(data)
    torch.manual_seed(0)
    model = build_model(make_config(kind, input_shape=ds.input_shape, **model_fields))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, device=device, threads=threads)
    t0 = time.perf_counter()
    result = Trainer(model, ds, cfg).fit()
    wall = time.perf_counter() - t0
    rates = [h["samples_per_s"] for h in result.history[1:]] or [result.history[0]["samples_per_s"]]
    return {
        "kind": kind,
        "data": data,
        "batch_size": batch_size,
        "device": device,
        "threads": threads,
        "samples_per_s": round(statistics.median(rates), 1),
        "epochs": epochs,
        "wall_s": round(wall, 2),
        "n_train": len(ds.x_train),
        "params": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kinds", nargs="*", default=sorted(MODELS))
    p.add_argument("--data", nargs="*", default=["digits", "mnist5k"])
    p.add_argument("--batch-sizes", nargs="*", type=int, default=[128])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [
        measure(k, d, b, args.epochs, args.device, args.threads)
        for d in args.data
        for k in args.kinds
        for b in args.batch_sizes
    ]
    print(
        json.dumps(
            {
                "bench": "train_throughput",
                "torch": torch.__version__,
                "machine": platform.processor() or platform.machine(),
                "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
