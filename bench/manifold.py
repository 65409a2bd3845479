"""Time and memory of a full manifold sweep (6 noise levels x 1,000 test images) per model; JSON.

    python bench/manifold.py                     # the shipped demo-{ae,dae,vae}-spatial-mnist5k
    python bench/manifold.py --runs checkpoints/my-run --n-images 500 --repeats 3
    python bench/manifold.py --device cuda       # when a GPU is there (encoding on the GPU)

Per run: the median wall time of ``--repeats`` sweeps (after one warm-up sweep of 64 images);
the peak of Python-traced memory during a sweep of a quarter of the images and of all of them
(``tracemalloc``: numpy's allocations, not torch's; flat in the image count because the sweep
is batched; it scales with ``batch_size`` and ``max_components``); the process's peak resident
memory (``resource.getrusage``; includes Python, torch and the dataset); what the perturbed
images alone would take if the sweep held them all; and the strata/rank and subspace-angle
tables of the sweep (``lsx.analysis.manifold``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lsx.analysis import manifold as mf  # noqa: E402
from lsx.checkpoint import load_checkpoint, read_header  # noqa: E402
from lsx.data import load_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = [ROOT / "checkpoints" / f"demo-{k}-spatial-mnist5k" for k in ("ae", "dae", "vae")]


def measure(run_dir: Path, n_images: int, repeats: int, device: str) -> dict:
    model, config = load_checkpoint(run_dir, device=device)
    model.requires_grad_(False)
    spec = read_header(run_dir)["data"]["spec"]
    x = load_dataset(spec).x_test[:n_images]
    sweep_config = mf.SweepConfig()
    mf.sweep(model, x[:64], sweep_config, device=device)  # warm-up: imports, first kernels
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = mf.sweep(model, x, sweep_config, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    traced = {}
    for n in sorted({max(len(x) // 4, 3), len(x)}):  # flat in n: the sweep is batched
        tracemalloc.start()
        mf.sweep(model, x[:n], sweep_config, device=device)
        traced[n] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
        tracemalloc.stop()
    v = mf.verdict(result)
    n_levels = len(result.levels)
    return {
        "run": run_dir.name,
        "kind": config.kind,
        "dataset": spec,
        "latent_shape": list(result.latent_shape),
        "n_images": len(x),
        "levels": [float(lv) for lv in result.levels],
        "sweep_s_median": round(statistics.median(times), 3),
        "sweep_s_all": [round(t, 3) for t in times],
        "images_per_s": round(len(x) * n_levels / statistics.median(times), 1),
        "traced_peak_mb_by_n_images": traced,
        "batch_size": sweep_config.batch_size,
        "max_components": sweep_config.max_components,
        "all_perturbed_images_mb": round(n_levels * x.nbytes / 2**20, 2),
        "verdict": v.label,
        "verdict_text": v.text,
        "strata": mf.strata_rows(run_dir.name, result),
        "subspace": mf.subspace_rows(run_dir.name, result),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", nargs="*", type=Path, default=DEFAULT_RUNS)
    p.add_argument("--n-images", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = [measure(run, args.n_images, args.repeats, args.device) for run in args.runs]
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "bench": "manifold sweep",
                "machine": {
                    "python": platform.python_version(),
                    "torch": torch.__version__,
                    "cpu_count": os.cpu_count(),
                    "threads": args.threads,
                    "device": args.device,
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                },
                "peak_rss_mb": round(rss_after / 1024, 1),
                "peak_rss_before_sweeps_mb": round(rss_before / 1024, 1),
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
