"""Cost of the consistency term and of the posterior metric suite; prints JSON.

    python bench/consistency.py                # all three parts, CPU, 1 thread
    python bench/consistency.py --parts step   # only the per-step training cost

Parts:
- ``step``: seconds per training step (objective + backward + Adam step) with and without the
  consistency term, for the demo architectures and the experiment's MLP; plain and CR steps are
  interleaved in rounds and the median of each is kept, so contention hits both alike. Target:
  CR / plain < 2.2 (the term adds one encoder-decoder pass).
- ``nll``: the importance-sampled NLL of ``demo-vae-mnist5k`` on test points for several S and
  seeds (how stable the default S is).
- ``suite``: wall time of :func:`lsx.analysis.posterior.posterior_report` (AU, MI, KL, NLL with
  the default S, accuracy, consistency per transform) on 5,000 points: all of ``mnist5k``
  (its 4,000 train + 1,000 test images as evaluation points; the logistic regression is fit on the
  4,000 train images), with ``demo-vae-mnist5k``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lsx.analysis.posterior import DEFAULT_NLL_SAMPLES, importance_nll, posterior_report  # noqa: E402
from lsx.checkpoint import load_checkpoint  # noqa: E402
from lsx.config import TrainConfig  # noqa: E402
from lsx.data import load_dataset  # noqa: E402
from lsx.losses import objective  # noqa: E402
from lsx.models import build_model, make_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETUPS = [  # (label, kind, data, model fields, batch size)
    ("vae digits mlp (demo)", "vae", "digits", {"latent_dim": 8, "hidden_dim": 128}, 64),
    ("vae mnist5k conv (demo)", "vae", "mnist5k", {"latent_dim": 16, "hidden_dim": 64}, 128),
    ("vae mnist5k mlp-256 (experiment)", "vae", "mnist5k",
     {"latent_dim": 16, "hidden_dim": 256, "arch": "mlp"}, 128),
    ("iwae k=5 mnist5k mlp-256 (experiment)", "iwae", "mnist5k",
     {"latent_dim": 16, "hidden_dim": 256, "arch": "mlp", "k": 5}, 128),
    ("ae mnist5k conv (lsx extension)", "ae", "mnist5k", {"latent_dim": 16, "hidden_dim": 64}, 128),
]  # fmt: skip


def _steps(model, opt, x, cfg, spec, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        objective(model, x, None, cfg, dataset=spec).total.backward()
        opt.step()
    return (time.perf_counter() - start) / n


def bench_step(rounds: int, steps: int) -> list[dict]:
    out = []
    cr = TrainConfig(consistency=1.0, transforms="simple")
    for label, kind, data, fields, batch in SETUPS:
        ds = load_dataset(data)
        x = torch.from_numpy(np.array(ds.x_train[:batch]))
        torch.manual_seed(0)
        model = build_model(make_config(kind, input_shape=ds.input_shape, **fields))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        _steps(model, opt, x, cr, ds.spec, 3)  # warm-up both paths
        _steps(model, opt, x, TrainConfig(), ds.spec, 3)
        plain, with_cr = [], []
        for _ in range(rounds):
            plain.append(_steps(model, opt, x, TrainConfig(), ds.spec, steps))
            with_cr.append(_steps(model, opt, x, cr, ds.spec, steps))
        p, c = statistics.median(plain), statistics.median(with_cr)
        out.append(
            {
                "setup": label,
                "batch_size": batch,
                "plain_ms_per_step": round(1000 * p, 2),
                "consistency_ms_per_step": round(1000 * c, 2),
                "ratio": round(c / p, 3),
                "rounds": rounds,
                "steps_per_round": steps,
            }
        )
        print(json.dumps(out[-1]), file=sys.stderr)
    return out


def bench_nll(n_points: int, samples: list[int], seeds: int) -> list[dict]:
    model, _ = load_checkpoint(ROOT / "checkpoints" / "demo-vae-mnist5k")
    x = load_dataset("mnist5k").x_test[:n_points]
    out = []
    for s in samples:
        start = time.perf_counter()
        means = [
            float(importance_nll(model, x, n_samples=s, seed=seed).mean()) for seed in range(seeds)
        ]
        out.append(
            {
                "S": s,
                "points": n_points,
                "mean_nll_per_seed": [round(m, 3) for m in means],
                "std_over_seeds": round(float(np.std(means, ddof=1)), 3),
                "seconds_per_estimate": round((time.perf_counter() - start) / seeds, 2),
            }
        )
        print(json.dumps(out[-1]), file=sys.stderr)
    return out


def bench_suite() -> dict:
    model, _ = load_checkpoint(ROOT / "checkpoints" / "demo-vae-mnist5k")
    ds = load_dataset("mnist5k")
    x = np.concatenate([ds.x_train, ds.x_test])  # 5,000 evaluation points
    y = np.concatenate([ds.y_train, ds.y_test])
    start = time.perf_counter()
    rep = posterior_report(
        model, x, y, x_train=ds.x_train, y_train=ds.y_train, transforms="simple",
        dataset=ds.spec, seed=0,
    )  # fmt: skip
    total = time.perf_counter() - start
    return {
        "points": len(x),
        "nll_samples": rep.nll_samples,
        "seconds_total": round(total, 2),
        "seconds_per_metric": {k: round(v, 2) for k, v in rep.seconds.items()},
        "transforms_scored": list(rep.consistency),
        "row": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in rep.row().items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--parts", nargs="*", default=["step", "nll", "suite"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--nll-points", type=int, default=200)
    p.add_argument("--nll-samples", type=int, nargs="*", default=[10, DEFAULT_NLL_SAMPLES, 1000])
    p.add_argument("--nll-seeds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
        }
    }
    if "step" in args.parts:
        result["step"] = bench_step(args.rounds, args.steps)
    if "nll" in args.parts:
        result["nll"] = bench_nll(args.nll_points, args.nll_samples, args.nll_seeds)
    if "suite" in args.parts:
        result["suite"] = bench_suite()
    result["machine"]["load_avg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(result, indent=2)
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "consistency.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
