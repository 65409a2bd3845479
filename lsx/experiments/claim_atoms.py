"""Claim 2 (Xiao et al. 2025, docs/methods.md): SC-VAE reconstructs better than VQ-VAE at a
matched latent size and dictionary budget, and avoids codebook collapse.

``scvae``, ``vqvae``, ``vae`` and ``ae`` with the settings of the shipped demo runs
(``lsx.demos``: spatial latent, 16 channels on the H/4 x W/4 grid, K = 64 atoms / codes), one
run each per seed, scored on the test split (MSE, PSNR, SSIM) and on atom / code usage. The
VQ-VAE here is lsx's plain one (straight-through, no EMA, no dead-code restarts, no k-means
initialisation): it is *not* the strongest VQ-VAE, which the verdict says.
``bench/atoms.py`` uses :func:`quality_row` and :func:`aggregate` from here.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from lsx.experiments.common import RULE, compare, pm

KINDS = ("scvae", "vqvae", "vae", "ae")
SHARED = ("latent_dim", "hidden_dim", "spatial", "arch")  # what ae/vae take from the demo
TITLE = "SC-VAE reconstructs better than VQ-VAE at matched size (Xiao et al. 2025)"
STATEMENT = (
    "A VAE whose latent is a sparse code over a learned dictionary (learned ISTA) reconstructs "
    "better than a VQ-VAE with the same latent grid and dictionary size, and uses its atoms."
)
# data, epochs, hidden_dim override; the model settings are always the mnist5k demo's
BUDGETS = {"full": ("mnist5k", None, None), "quick": ("digits", 1, 8)}
CLAIM_RULE = (
    f"{RULE} Metric: test PSNR (dB). The claim holds when `scvae` wins against `vqvae`; the "
    "comparison with the plain `ae` of the same latent size is reported the same way but does "
    "not decide the claim. Caveat fixed in advance: lsx's `vqvae` has none of the standard "
    "remedies (EMA codebook, dead-code restarts, k-means initialisation), so a win is against "
    "a plain VQ-VAE, not the best one."
)


def demo_settings(kind: str, data: str) -> tuple[dict, dict]:
    """Model and train fields of the shipped demo (ae/vae: the scvae demo's shared fields)."""
    from lsx.demos import DEMOS
    from lsx.errors import ConfigError

    for _, k, d, model, train in DEMOS:
        if d == data and k == ("scvae" if kind in ("vae", "ae") else kind):
            if kind in ("vae", "ae"):
                model = {f: v for f, v in model.items() if f in SHARED}
            return dict(model), dict(train)
    raise ConfigError(f"lsx.demos has no scvae/vqvae entry for {data!r}; use mnist5k or textures.")


def quality_row(
    kind: str, data: str, seed: int, epochs: int | None, *, run_dir: Path | None = None,
    hidden_dim: int | None = None, settings_from: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train (or reuse, when ``run_dir`` is given) one run and score it on the test split;
    the settings are the demo's for ``settings_from`` (default: ``data``)."""
    import torch

    from lsx.analysis.atoms import atom_stats, code_stats
    from lsx.analysis.quality import reconstruction_quality
    from lsx.config import TrainConfig
    from lsx.data import load_dataset
    from lsx.experiments.common import train_or_reuse
    from lsx.models import build_model, make_config
    from lsx.train import Trainer

    ds = load_dataset(data)
    model_fields, train_fields = demo_settings(kind, settings_from or data)
    if hidden_dim is not None:
        model_fields["hidden_dim"] = hidden_dim
    train_fields = {**train_fields, "seed": seed, "device": "cpu", "threads": 1}
    if epochs is not None:
        train_fields["epochs"] = epochs
    config = make_config(kind, input_shape=ds.input_shape, **model_fields)
    train = TrainConfig(**train_fields)
    t0 = time.perf_counter()
    if run_dir is None:
        torch.manual_seed(seed)
        model = build_model(config)
        Trainer(model, ds, train).fit()
        model.eval()
        train_s = time.perf_counter() - t0
    else:
        model, train_s, _ = train_or_reuse(run_dir, config, train, ds)
    q = reconstruction_quality(model, ds.x_test).summary()
    row = {"data": data, "kind": kind, "seed": seed, "epochs": train_fields["epochs"], **q}
    row["latent_numel"] = int(np.prod(model.latent_shape))
    row["train_s"] = round(train_s, 1)
    x_all = np.concatenate([ds.x_train, ds.x_test])
    if kind == "scvae":
        s = atom_stats(model, x_all)
        row.update(share_used=s.share_used, dead=len(s.dead), perplexity=s.perplexity,
                   l0=float(s.l0.mean()), zero_fraction=s.zero_fraction, hoyer=s.hoyer)  # fmt: skip
    elif kind == "vqvae":
        s = code_stats(model, x_all)
        row.update(share_used=s.share_used, dead=len(s.dead), perplexity=s.perplexity)
    return row


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation (ddof=1; None for one seed) per (data, kind)."""
    out = []
    for key in sorted(
        {(r["data"], r["kind"]) for r in rows}, key=lambda k: (k[0], KINDS.index(k[1]))
    ):
        group = [r for r in rows if (r["data"], r["kind"]) == key]
        agg = {"data": key[0], "kind": key[1], "n_seeds": len(group)}
        for metric in ("mse", "psnr", "ssim", "share_used", "dead", "perplexity", "l0"):
            values = [r[metric] for r in group if metric in r]
            if values:
                agg[metric] = round(statistics.mean(values), 5)
                sd = round(statistics.stdev(values), 5) if len(values) > 1 else None
                agg[f"{metric}_std"] = sd
        out.append(agg)
    return out


def run_claim(budget: str, seeds: list[int], out: Path) -> dict[str, Any]:
    """Train (or reuse) and score every run; returns the report's fields."""
    data, epochs, hidden = BUDGETS[budget]
    rows = [
        quality_row(kind, data, seed, epochs, hidden_dim=hidden, settings_from="mnist5k",
                    run_dir=Path(out) / "runs" / "atoms" / f"{data}-{kind}-s{seed}")
        for kind in KINDS for seed in seeds
    ]  # fmt: skip
    lines = ["| model | PSNR (dB) | SSIM | atoms / codes used | dead |", "|---|---|---|---|---|"]
    for kind in KINDS:
        g = [r for r in rows if r["kind"] == kind]
        used = pm([100 * r["share_used"] for r in g if "share_used" in r], "{:.1f} %")
        dead = pm([r["dead"] for r in g if "dead" in r], "{:.1f}")
        lines.append(
            f"| `{kind}` | {pm([r['psnr'] for r in g])} | {pm([r['ssim'] for r in g], '{:.3f}')}"
            f" | {used} | {dead} |"
        )
    psnr = {k: [r["psnr"] for r in rows if r["kind"] == k] for k in KINDS}
    verdicts = [
        {"setting": f"{data}: scvae vs {o} (PSNR)", "verdict": compare(psnr["scvae"], psnr[o])}
        for o in ("vqvae", "ae", "vae")
    ]
    decisive = verdicts[0]["verdict"]
    overall = {"n = 1": "no verdict (n = 1)", "wins": "holds (against a plain VQ-VAE)"}.get(
        decisive, "does not hold"
    )
    model, train = demo_settings("scvae", "mnist5k")
    return {
        "title": TITLE,
        "statement": STATEMENT,
        "rule": CLAIM_RULE,
        "settings": {
            "data": data,
            "scvae model": model,
            "train": train,
            "epochs": epochs,
            "hidden_dim override": hidden,
            "threads": 1,
        },  # fmt: skip
        "table": "\n".join(lines),
        "verdicts": verdicts,
        "verdict": overall,
        "rows": rows,
    }
