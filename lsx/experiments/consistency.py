"""``python -m lsx consistency-experiment``: does consistency regularisation improve VAEs?

Trains ``vae``, beta-VAE (``vae`` with ``beta``) and ``iwae`` without and with the consistency
term (docs/methods.md; one CR run per lambda in ``--consistency``) on one dataset
(``mnist5k`` by default), several seeds each, with the same budget (epochs, batch size,
learning rate, architecture) for every run, then evaluates every run on the test split with
:func:`lsx.analysis.posterior.posterior_report` and writes one table of AU, MI, NLL, downstream
accuracy and consistency as mean ± std over seeds.

The paper claims the term always improves representation quality (MI, AU, accuracy) and NLL
(docs/methods.md); this command reports what we measure either way. A finished run is reused only
when its training settings, full model config and data hash all match
(:func:`lsx.experiments.common.reusable`), so an interrupted experiment continues where it
stopped and a changed beta, k, network or dataset is trained again.

Outputs in ``--out``: ``runs/<variant>-s<seed>/`` (ordinary lsx run folders), ``results.json``
(every run's numbers, settings and timings) and ``table.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HELP = "train vae, beta-VAE and iwae with and without consistency; write a metrics table"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "checkpoints" / ".experiments" / "consistency"
COLUMNS = (  # (report row key, table header, format)
    ("AU", "AU", "{:.1f}"),
    ("MI (nats)", "MI (nats)", "{:.2f}"),
    ("NLL (nats)", "NLL (nats)", "{:.1f}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("KL[all]", "consistency KL", "{:.2f}"),
    ("displacement[all]", "displacement", "{:.3f}"),
    ("kNN kept[all]", "kNN kept", "{:.3f}"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument("--data", default="mnist5k", help="dataset name")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run each")
    p.add_argument("--epochs", type=int, default=15, help="the same for every run")
    p.add_argument("--batch-size", type=int, default=128, help="the same for every run")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument(
        "--consistency", type=float, nargs="+", default=[1.0, 10.0], help="lambda of CR runs"
    )
    p.add_argument("--transforms", default="simple", help="transform set (training and scores)")
    p.add_argument("--beta", type=float, default=4.0, help="beta of the beta-VAE runs")
    p.add_argument("--k", type=int, default=5, help="importance samples of the iwae runs")
    p.add_argument("--latent-dim", type=int, default=16, help="latent dimensions")
    p.add_argument("--hidden-dim", type=int, default=256, help="MLP width / conv channels")
    p.add_argument("--arch", default="mlp", help="auto, mlp or conv (mlp: CPU budget)")
    p.add_argument("--nll-samples", type=int, default=100, help="S of the importance-sampled NLL")
    p.add_argument("--eval-points", type=int, default=1000, help="test points evaluated (cap)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="runs, results.json, table.md")


def variants(
    beta: float, k: int, lambdas: list[float]
) -> list[tuple[str, str, str, dict[str, Any], float]]:
    """``(name, run-folder stem, kind, model fields, lambda)``: each model without the term
    (lambda 0), then with it for every lambda."""
    base = [
        ("vae", "vae", "vae", {}),
        (f"beta-vae (beta={beta:g})", "beta-vae", "vae", {"beta": beta}),
        (f"iwae (k={k})", "iwae", "iwae", {"k": k}),
    ]
    return [
        (name, f"{stem}-cr{lam:g}" if lam else stem, kind, fields, lam)
        for name, stem, kind, fields in base
        for lam in (0.0, *lambdas)
    ]


def _train_one(
    args: argparse.Namespace, ds: Any, stem: str, kind: str, fields: dict, lam: float, seed: int
) -> tuple[Any, Path, float, bool]:
    """Train one run, or reuse it when finished with the same training settings, full model
    config (beta, k, network ...) and data hash (then the seconds are 0.0 and reused True)."""
    from lsx.config import TrainConfig
    from lsx.experiments.common import train_or_reuse
    from lsx.models import make_config

    run_dir = args.out / "runs" / f"{stem}-s{seed}"
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=seed,
        device="cpu",
        threads=args.threads,
        **({"consistency": lam, "transforms": args.transforms} if lam else {}),
    )
    config = make_config(
        kind,
        input_shape=ds.input_shape,
        latent_dim=args.latent_dim,
        hidden_dim=args.hidden_dim,
        arch=args.arch,
        **fields,
    )
    model, seconds, reused = train_or_reuse(run_dir, config, train, ds)
    return model, run_dir, 0.0 if reused else seconds, reused


def run_experiment(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """Train (or reuse) every run and evaluate it.

    Returns
    -------
    rows : list of dict
        One dict of numbers per run (``variant``, ``consistency`` (lambda, 0 = off), ``seed``,
        the report's columns).
    n_eval : int
        Test points every run was evaluated on.
    """
    import torch

    from lsx.analysis.posterior import posterior_report
    from lsx.data import load_dataset

    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    n_eval = min(args.eval_points, len(ds.x_test))
    x_eval, y_eval = ds.x_test[:n_eval], ds.y_test[:n_eval]
    rows = []
    for name, stem, kind, fields, lam in variants(args.beta, args.k, args.consistency):
        for seed in args.seeds:
            model, run_dir, train_s, reused = _train_one(args, ds, stem, kind, fields, lam, seed)
            t0 = time.perf_counter()
            report = posterior_report(
                model, x_eval, y_eval, x_train=ds.x_train, y_train=ds.y_train,
                transforms=args.transforms, dataset=ds.spec, nll_samples=args.nll_samples,
                seed=seed,
            )  # fmt: skip
            row = {
                "variant": name,
                "consistency": lam,
                "seed": seed,
                "run": str(run_dir),
                "train_s": round(train_s, 1),
                "reused": reused,
                "eval_s": round(time.perf_counter() - t0, 1),
                **report.row(),
            }
            rows.append(row)
            print(
                f"{name:22s} lambda={lam:<4g} seed {seed}: AU {row['AU']}, "
                f"NLL {row['NLL (nats)']:.1f}, acc {row['accuracy']:.3f} "
                f"(train {row['train_s']} s, eval {row['eval_s']} s)",
                file=sys.stderr,
            )
    return rows, n_eval


def format_table(rows: list[dict[str, Any]]) -> str:
    """One markdown row per (variant, consistency): mean ± std over seeds of each column
    ("n = 1" instead of a standard deviation when there is one seed)."""
    from lsx.experiments.common import pm

    header = ["model", "CR lambda", "seeds", *[title for _, title, _ in COLUMNS]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["consistency"]), []).append(row)
    for (variant, lam), group in groups.items():
        cells = [variant, f"{lam:g}" if lam else "– (plain)", str(len(group))]
        for key, _, fmt in COLUMNS:
            cells.append(pm([r.get(key) for r in group], fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from lsx.config import TrainConfig
    from lsx.files import atomic_write_bytes, atomic_write_json

    for lam in args.consistency:  # validate early: negative or non-finite lambda, bad set
        TrainConfig(consistency=lam, transforms=args.transforms)
    args.out = Path(args.out)
    start = time.perf_counter()
    rows, n_eval = run_experiment(args)
    table = format_table(rows)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.pop("command", None)
    elapsed = round(time.perf_counter() - start, 1)
    results = {"settings": settings, "seconds": elapsed, "n_eval": n_eval, "runs": rows}
    atomic_write_json(args.out / "results.json", results)
    lambdas = ", ".join(f"{v:g}" for v in args.consistency)
    note = (
        f"\n\n{args.data}, {len(args.seeds)} seeds, {args.epochs} epochs, batch {args.batch_size}, "
        f"arch {args.arch} (hidden {args.hidden_dim}, latent {args.latent_dim}), CR lambda "
        f"{lambdas} with '{args.transforms}'; metrics on {n_eval} "
        f"test points, NLL with S={args.nll_samples}; {elapsed:.0f} s in total.\n"
    )
    atomic_write_bytes(args.out / "table.md", (table + note).encode())
    print(table + note)
    return 0
