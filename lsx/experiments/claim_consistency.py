"""Claim 3 (Sinha & Dieng 2021, docs/methods.md): consistency regularisation improves VAEs.

At the paper's settings first: the lambda sweep {1e-3, 1e-2, 1e-1, 1} (the official default is
1e-3), latent 32 as in the official code, the ``simple`` transformation set, and a small CNN
VAE. lsx's ``conv`` architecture is the first two blocks of the official ``CNNVAE`` (Conv 4x4,
stride 2, 128 then 256 channels, with ``hidden_dim`` = 256) followed by a linear layer to the
posterior; the official net's 512- and 1024-channel blocks and batch norm (made for inputs of 32
pixels and more) are not in lsx. Models: VAE, beta-VAE (beta = 4; the paper's beta is not found)
and IWAE (k = 5; the paper's k is not found), each without and with the term, the same budget
for every run. Metrics (on the test split): AU, MI, importance-sampled NLL, linear-probe
accuracy, via :func:`lsx.experiments.consistency.run_experiment`.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from lsx.experiments.common import RULE, compare

TITLE = "Consistency regularisation improves VAEs (Sinha & Dieng 2021)"
STATEMENT = (
    "Adding lambda * KL(q(z|t(x)) || q(z|x)) to the VAE, beta-VAE and IWAE objectives improves "
    "mutual information, active units, downstream accuracy and NLL."
)
LAMBDAS = [1e-3, 1e-2, 1e-1, 1.0]
METRICS = (("AU", True), ("MI (nats)", True), ("accuracy", True), ("NLL (nats)", False))
BUDGETS = {
    # full: 30 epochs of mnist5k (4,000 images, batch 128: 960 steps); the test loss of the
    # plain CNN VAE has flattened by then (lsx choice; the paper's epochs are not found)
    "full": {"data": "mnist5k", "epochs": 30, "hidden_dim": 256, "nll_samples": 100,
             "eval_points": 1000},
    "quick": {"data": "digits", "epochs": 1, "hidden_dim": 16, "nll_samples": 2,
              "eval_points": 40},
}  # fmt: skip
CLAIM_RULE = (
    f"{RULE} Each CR run (model, lambda) is compared with the same model without the term on "
    "AU, MI, accuracy (higher is better) and NLL (lower is better). The claim is reproduced at "
    "a setting when the CR run loses on none of the four metrics and wins on at least one; it "
    "holds overall when it is reproduced at some lambda for every model."
)


def settings(budget: str, seeds: list[int], out: Path) -> Namespace:
    """The arguments of :func:`lsx.experiments.consistency.run_experiment` for a budget."""
    b = BUDGETS[budget]
    return Namespace(
        data=b["data"], seeds=list(seeds), epochs=b["epochs"], batch_size=128, lr=1e-3,
        consistency=list(LAMBDAS), transforms="simple", beta=4.0, k=5, latent_dim=32,
        hidden_dim=b["hidden_dim"], arch="conv", nll_samples=b["nll_samples"],
        eval_points=b["eval_points"], threads=1, out=Path(out) / "runs" / "consistency",
    )  # fmt: skip


def run_claim(budget: str, seeds: list[int], out: Path) -> dict[str, Any]:
    """Train (or reuse) and score every run; returns the report's fields."""
    from lsx.experiments.consistency import format_table, run_experiment

    args = settings(budget, seeds, out)
    rows, n_eval = run_experiment(args)
    verdicts = []
    by_model: dict[str, list[str]] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        plain = [r for r in rows if r["variant"] == variant and r["consistency"] == 0.0]
        for lam in LAMBDAS:
            cr = [r for r in rows if r["variant"] == variant and r["consistency"] == lam]
            per = {
                m: compare([r[m] for r in cr], [r[m] for r in plain], higher_is_better=hib)
                for m, hib in METRICS
            }
            if "n = 1" in per.values():
                verdict = "n = 1"
            elif "loses" not in per.values() and "wins" in per.values():
                verdict = "reproduced"
            else:
                verdict = "not reproduced"
            by_model.setdefault(variant, []).append(verdict)
            detail = ", ".join(f"{m} {v}" for m, v in per.items())
            verdicts.append(
                {"setting": f"{variant}, lambda {lam:g} ({detail})", "verdict": verdict}
            )
    if any("n = 1" in v for v in by_model.values()):
        overall = "no verdict (n = 1)"
    elif all("reproduced" in v for v in by_model.values()):
        overall = "holds"
    else:
        overall = "not reproduced"
    note = f"\n\nMetrics on {n_eval} test points of `{args.data}`; NLL with S = {args.nll_samples}."
    kept = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {
        "title": TITLE,
        "statement": STATEMENT,
        "rule": CLAIM_RULE,
        "settings": kept,
        "table": format_table(rows) + note,
        "verdicts": verdicts,
        "verdict": overall,
        "rows": rows,
    }
