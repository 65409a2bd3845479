"""Claim 4 (Shrivastava et al. 2025, docs/methods.md): CAE and DAE latent manifolds are
stratified under noise, the VAE's is one smooth manifold.

Runs :func:`lsx.experiments.manifold.run_experiment` (``ae``, ``dae``, ``vae`` with spatial
latent tensors from one encoder design, Gaussian noise levels) and takes lsx's per-run verdict
(:func:`lsx.analysis.manifold.verdict`, an lsx interpretation of the paper's criterion).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

TITLE = "CAE/DAE latent manifolds are stratified, the VAE's smooth (Shrivastava et al. 2025)"
STATEMENT = (
    "Under growing Gaussian noise the CAE's and DAE's latent tensors move between strata of "
    "different ranks, while the VAE's stay on one smooth manifold."
)
EXPECTED = {"ae": "stratified", "dae": "stratified", "vae": "smooth"}
BUDGETS = {
    "full": {"data": "mnist5k", "epochs": 10, "hidden_dim": 32, "latent_dim": 64,
             "n_images": 1000},
    "quick": {"data": "digits", "epochs": 1, "hidden_dim": 16, "latent_dim": 8, "n_images": 20},
}  # fmt: skip
CLAIM_RULE = (
    "Per model, the lsx verdict of each seed's run (the rank-triple rule of "
    "lsx.analysis.manifold, at the default rank tolerance) is compared with the paper's: "
    "stratified for ae and dae, smooth for vae. A model agrees when every seed's verdict is "
    "the paper's; the claim holds when all three models agree. With one seed the verdicts are "
    "shown but no overall verdict is given ('n = 1')."
)


def settings(budget: str, seeds: list[int], out: Path) -> Namespace:
    """The arguments of :func:`lsx.experiments.manifold.run_experiment` for a budget."""
    b = BUDGETS[budget]
    return Namespace(
        data=b["data"], kinds=["ae", "dae", "vae"], seeds=list(seeds), epochs=b["epochs"],
        batch_size=128, lr=1e-3, latent_dim=b["latent_dim"], hidden_dim=b["hidden_dim"],
        n_images=b["n_images"], perturbation="gaussian", levels=None,
        rtols=["auto", "1e-6", "1e-4"], threads=1, out=Path(out) / "runs" / "manifold",
    )  # fmt: skip


def run_claim(budget: str, seeds: list[int], out: Path) -> dict[str, Any]:
    """Train (or reuse) and sweep every run; returns the report's fields."""
    from lsx.experiments.manifold import format_tables, run_experiment

    args = settings(budget, seeds, out)
    rows = run_experiment(args)
    verdicts = []
    for kind, expected in EXPECTED.items():
        labels = [r["verdict"]["label"] for r in rows if r["kind"] == kind]
        agree = all(label == expected for label in labels)
        verdicts.append({
            "setting": f"{kind}: seeds say {', '.join(labels)}; paper: {expected}",
            "verdict": "agrees" if agree else "disagrees",
        })  # fmt: skip
    if len(seeds) < 2:
        overall = "no verdict (n = 1)"
    else:
        overall = "holds" if all(v["verdict"] == "agrees" for v in verdicts) else "does not hold"
    kept = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    slim = [
        {k: r[k] for k in ("kind", "seed", "run", "reused", "train_s", "verdict")} for r in rows
    ]
    return {
        "title": TITLE,
        "statement": STATEMENT,
        "rule": CLAIM_RULE,
        "settings": kept,
        "table": format_tables(rows, args.rtols),
        "verdicts": verdicts,
        "verdict": overall,
        "rows": slim,
    }
