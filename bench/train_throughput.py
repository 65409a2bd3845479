"""Training throughput (samples/s), model FLOPs and MFU of every model kind; prints JSON.

    python bench/train_throughput.py                      # every kind on mnist5k, CPU
    python bench/train_throughput.py --device cuda --precision bf16 --compile default
    python bench/train_throughput.py --kinds ae vae --data digits --batch-sizes 256 1024

Each measurement trains the demo architecture of the dataset with ``lsx.train.Trainer`` (data on
the device, the GPU path's options from ``--precision`` and ``--compile``) for ``--epochs``
epochs; the first epoch (warm-up, compilation) is not counted and the median samples/s of the
rest is reported (the trainer times each epoch up to a device read, so CUDA work is included).

Model FLOPs per sample are counted once per kind with ``torch.utils.flop_counter.FlopCounterMode``
over the training objective's forward and backward (matmuls and convolutions; elementwise ops
are not counted, as usual for MFU). ``tflops = flops_per_sample * samples_per_s / 1e12`` and
``mfu = tflops / peak`` where the dense peak of the GPU and precision is known (a table for
H100/H200, or ``--peak-tflops``); on the CPU ``mfu`` is null.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lsx.config import COMPILE_MODES, PRECISIONS, TrainConfig  # noqa: E402
from lsx.data import load_dataset  # noqa: E402
from lsx.demos import DEMOS  # noqa: E402
from lsx.losses import objective  # noqa: E402
from lsx.models import MODELS, build_model, dataset_fields, make_config  # noqa: E402
from lsx.train import Trainer, label_matrix  # noqa: E402

# Dense (no sparsity) peak TFLOP/s from NVIDIA's datasheets, by a substring of the device name.
# "fp32" is the non-tensor-core FP32 peak (cuDNN may still run convolutions in TF32, torch's
# default); "tf32" and "bf16" are tensor-core peaks.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.0},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0},
    "H100": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4},  # SXM (HBM3); after NVL and PCIe
}


def peak_tflops(device: str, precision: str, override: float | None) -> float | None:
    """The dense peak for the CUDA device and precision, ``override`` if given, else None."""
    if override is not None:
        return override
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    for key, peaks in PEAK_TFLOPS.items():  # dict order: specific names first
        if key in name:
            return peaks[precision]
    return None


def _demo_fields(data: str) -> dict:
    return next(m for _, _, d, m, _ in DEMOS if d == data)


@functools.lru_cache(maxsize=64)
def flops_per_sample(kind: str, data: str, batch: int = 32) -> float:
    """Forward + backward FLOPs of one training sample (matmuls and convolutions; the count
    does not depend on the precision they run in)."""
    ds = load_dataset(data)
    torch.manual_seed(0)
    config = make_config(kind, **dataset_fields(kind, ds), **_demo_fields(data))
    model = build_model(config)
    x = torch.from_numpy(ds.x_train[:batch].copy())
    y = torch.from_numpy(label_matrix(ds, "train")[:batch].copy())
    with FlopCounterMode(display=False) as counter:
        objective(model, x, y, TrainConfig(), dataset=data).total.backward()
    return counter.get_total_flops() / batch


def measure(kind: str, data: str, batch_size: int, args: argparse.Namespace) -> dict:
    ds = load_dataset(data)
    torch.manual_seed(0)
    model = build_model(make_config(kind, **dataset_fields(kind, ds), **_demo_fields(data)))
    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=batch_size,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
        compile=args.compile,
    )
    trainer = Trainer(model, ds, cfg)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    t0 = time.perf_counter()
    result = trainer.fit()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    wall = time.perf_counter() - t0
    rates = [h["samples_per_s"] for h in result.history[1:]] or [result.history[0]["samples_per_s"]]
    rate = statistics.median(rates)
    flops = flops_per_sample(kind, data)
    tflops = flops * rate / 1e12
    peak = peak_tflops(args.device, args.precision, args.peak_tflops)
    return {
        "kind": kind,
        "data": data,
        "batch_size": batch_size,
        "steps_per_epoch": -(-len(ds.x_train) // batch_size),
        "device": str(trainer.device),
        "precision": args.precision,
        "compile": args.compile,
        "threads": args.threads,
        "samples_per_s": round(rate, 1),
        "flops_per_sample": int(flops),
        "tflops": round(tflops, 6),
        "peak_tflops": peak,
        "mfu": None if peak is None else round(tflops / peak, 6),
        "epochs": args.epochs,
        "wall_s": round(wall, 2),
        "n_train": len(ds.x_train),
        "params": sum(p.numel() for p in model.parameters()),
        "final_train_loss": result.history[-1]["train_loss"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kinds", nargs="*", default=sorted(MODELS))
    p.add_argument("--data", nargs="*", default=["mnist5k"])
    p.add_argument("--batch-sizes", nargs="*", type=int, default=[256, 1024, 4096])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--compile", choices=COMPILE_MODES, default="off")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak for the MFU column")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(k, d, b, args) for d in args.data for k in args.kinds for b in args.batch_sizes]
    cuda = torch.cuda.is_available()
    print(
        json.dumps(
            {
                "bench": "train_throughput",
                "torch": torch.__version__,
                "machine": platform.processor() or platform.machine(),
                "cuda": torch.cuda.get_device_name() if cuda else None,
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
