"""SC-VAE numbers (issue 4); prints JSON (and writes it with --out).

    python bench/atoms.py                          # everything: ~10 min quiet, 2 cores
    python bench/atoms.py --only ista segmentation # the timings only (~1 min)
    python bench/atoms.py --data mnist5k --seeds 0 --epochs 3   # a quick look

Sections:
- ``quality``: scvae, vqvae, vae and ae trained with the same settings at a matched latent size
  (spatial latent, 16 channels on the H/4 x W/4 grid; K = 64 atoms / codes), one row per
  (dataset, kind, seed) with test-split MSE, PSNR, SSIM and atom/code usage, then the mean and
  standard deviation over seeds. The models and training settings are those of the shipped demo
  runs (lsx.demos), trained in memory.
- ``ista``: cost of the learned-ISTA layer alone per batch (forward; forward + backward), CPU,
  1 thread, at the demo size and at the official SC-VAE size; also CUDA when present.
- ``segmentation``: seconds to segment the 640x427 ``china`` photo (k = 4) with the shipped
  demo scvae checkpoints (train them first: ``python -m lsx demo``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lsx.analysis.segmentation import load_photo, segment_image  # noqa: E402
from lsx.checkpoint import load_checkpoint  # noqa: E402
from lsx.experiments.claim_atoms import KINDS, aggregate, quality_row  # noqa: E402
from lsx.models import make_config  # noqa: E402
from lsx.models.scvae import LearnedISTA  # noqa: E402


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ista_cost(device: str, repeats: int) -> list[dict]:
    sizes = [  # (label, batch, grid, latent_dim, n_atoms, T)
        ("demo mnist5k: batch 128, 7x7 grid, 16-d, K=64", 128, (7, 7), 16, 64, 16),
        ("official SC-VAE: batch 8, 16x16 grid, 256-d, K=512", 8, (16, 16), 256, 512, 16),
    ]
    rows = []
    for label, batch, (h, w), n, k, t in sizes:
        config = make_config("scvae", latent_dim=n, n_atoms=k, n_ista_steps=t, learn_dict=True)
        layer = LearnedISTA(config).to(device)
        z = torch.randn(batch, h, w, n, device=device)

        def forward(layer: LearnedISTA = layer, z: torch.Tensor = z) -> None:
            with torch.no_grad():
                layer(z)
            if device != "cpu":
                torch.cuda.synchronize()

        def backward(layer: LearnedISTA = layer, z: torch.Tensor = z) -> None:
            layer(z.requires_grad_()).sum().backward()
            if device != "cpu":
                torch.cuda.synchronize()

        rows.append({
            "size": label, "device": device, "threads": torch.get_num_threads(),
            "positions": batch * h * w, "forward_ms": round(1e3 * time_it(forward, repeats), 2),
            "forward_backward_ms": round(1e3 * time_it(backward, repeats), 2),
        })  # fmt: skip
    return rows


def segmentation_cost(repeats: int) -> list[dict]:
    china = load_photo("china")
    rows = []
    for name in ("demo-scvae-mnist5k", "demo-scvae-textures"):
        run = ROOT / "checkpoints" / name
        if not run.is_dir():
            rows.append({"run": name, "skipped": "not trained; run `python -m lsx demo`"})
            continue
        model, _ = load_checkpoint(run)
        times, seg = [], None
        for _ in range(repeats):
            seg = segment_image(model, china, 4)
            times.append(seg.seconds)
        rows.append({
            "run": name, "image": "china 640x427", "k": 4, "tiles": seg.n_tiles,
            "patches": int(seg.grid_labels.size),
            "seconds_median": round(statistics.median(times), 3),
            "seconds_all": [round(t, 3) for t in times],
        })  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", nargs="*", default=["quality", "ista", "segmentation"])
    p.add_argument("--data", nargs="*", default=["mnist5k", "textures"])
    p.add_argument("--kinds", nargs="*", default=list(KINDS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the demo's epochs")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    out: dict = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine(),
                    "cuda": torch.cuda.is_available()},
    }  # fmt: skip
    if "quality" in args.only:
        rows = []
        for data in args.data:
            for seed in args.seeds:
                for kind in args.kinds:
                    rows.append(quality_row(kind, data, seed, args.epochs))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        out["quality"] = rows
        out["quality_mean"] = aggregate(rows)
    if "ista" in args.only:
        out["ista"] = ista_cost("cpu", args.repeats)
        if torch.cuda.is_available():
            out["ista"] += ista_cost("cuda", args.repeats)
    if "segmentation" in args.only:
        out["segmentation"] = segmentation_cost(3)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
