"""Claim 2 (Xiao et al. 2025, docs/methods.md): SC-VAE reconstructs better than VQ-VAE at a
matched latent size and dictionary budget, and avoids codebook collapse.

``scvae``, three VQ-VAE variants, ``vae`` and ``ae`` with the settings of the shipped demo runs
(``lsx.demos``: spatial latent, 16 channels on the H/4 x W/4 grid, K = 64 atoms / codes), one
run each per seed, scored on the test split (MSE, PSNR, SSIM) and on atom / code usage. The
VQ-VAE variants (:data:`VARIANTS`) are the plain one (straight-through, codebook loss), one with
EMA codebook updates, and one with EMA, dead-code restarts and k-means initialisation; SC-VAE is
judged against the best of them, so a win is not against a weakened baseline.
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
# model name -> (kind, fields over the demo's); the remedies' settings are the common ones
# (decay 0.99 as in van den Oord et al.; a restart after 20 idle steps, ~2/3 of an mnist5k
# epoch at batch 128), fixed here before any number was seen, never tuned on the results
VARIANTS: dict[str, tuple[str, dict]] = {
    "scvae": ("scvae", {}),
    "vqvae": ("vqvae", {}),
    "vqvae-ema": ("vqvae", {"codebook_update": "ema", "ema_decay": 0.99}),
    "vqvae-ema-restart-kmeans": (
        "vqvae",
        {"codebook_update": "ema", "ema_decay": 0.99, "dead_code_restart": 20, "kmeans_init": True},
    ),
    "vae": ("vae", {}),
    "ae": ("ae", {}),
}
VQ_VARIANTS = tuple(name for name, (kind, _) in VARIANTS.items() if kind == "vqvae")
SHARED = ("latent_dim", "hidden_dim", "spatial", "arch")  # what ae/vae take from the demo
TITLE = "SC-VAE reconstructs better than VQ-VAE at matched size (Xiao et al. 2025)"
STATEMENT = (
    "A VAE whose latent is a sparse code over a learned dictionary (learned ISTA) reconstructs "
    "better than a VQ-VAE with the same latent grid and dictionary size, and uses its atoms."
)
# data, epochs, hidden_dim override; the model settings are always the mnist5k demo's
BUDGETS = {"full": ("mnist5k", None, None), "quick": ("digits", 1, 8)}
CLAIM_RULE = (
    f"{RULE} Metric: test PSNR (dB). Three VQ-VAE variants are trained: plain (`vqvae`), EMA "
    "codebook updates (`vqvae-ema`), and EMA with dead-code restarts and k-means "
    "initialisation (`vqvae-ema-restart-kmeans`). The best VQ-VAE is the variant with the "
    "highest mean test PSNR over the seeds (picked on the test split itself, which can only "
    "favour the baseline). The claim holds when `scvae` wins against the best VQ-VAE; a tie or "
    "a loss means it does not hold. `scvae` against each other VQ-VAE variant, against the "
    "plain `ae` of the same latent size and against the `vae` is reported the same way but "
    "does not decide the claim."
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
    hidden_dim: int | None = None, settings_from: str | None = None, variant: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train (or reuse, when ``run_dir`` is given) one run and score it on the test split;
    the settings are the demo's for ``settings_from`` (default: ``data``), with the fields of
    the :data:`VARIANTS` entry ``variant`` over them (``row["model"]``; default: ``kind``)."""
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
    if variant is not None:
        model_fields.update(VARIANTS[variant][1])
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
    row = {"data": data, "kind": kind, "model": variant or kind, "seed": seed,
           "epochs": train_fields["epochs"], **q}  # fmt: skip
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
        row["restarts"] = int(model.restarts) if hasattr(model, "restarts") else 0
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
                    variant=name,
                    run_dir=Path(out) / "runs" / "atoms" / f"{data}-{name}-s{seed}")
        for name, (kind, _) in VARIANTS.items() for seed in seeds
    ]  # fmt: skip
    psnr = {name: [r["psnr"] for r in rows if r["model"] == name] for name in VARIANTS}
    best = max(VQ_VARIANTS, key=lambda name: statistics.mean(psnr[name]))
    lines = [
        "| model | PSNR (dB) | SSIM | atoms / codes used | dead | restarts |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        g = [r for r in rows if r["model"] == name]
        used = pm([100 * r["share_used"] for r in g if "share_used" in r], "{:.1f} %")
        dead = pm([r["dead"] for r in g if "dead" in r], "{:.1f}")
        restarts = pm([r["restarts"] for r in g if "restarts" in r], "{:.0f}")
        mark = " (best VQ-VAE)" if name == best else ""
        lines.append(
            f"| `{name}`{mark} | {pm(psnr[name])} | {pm([r['ssim'] for r in g], '{:.3f}')}"
            f" | {used} | {dead} | {restarts} |"
        )
    others = [best, *[v for v in VQ_VARIANTS if v != best], "ae", "vae"]
    verdicts = [
        {"setting": f"{data}: scvae vs {o}{' (best VQ-VAE)' if o == best else ''} (PSNR)",
         "verdict": compare(psnr["scvae"], psnr[o])}
        for o in others
    ]  # fmt: skip
    decisive = verdicts[0]["verdict"]
    overall = {
        "n = 1": "no verdict (n = 1)",
        "wins": f"holds (against the best VQ-VAE variant, {best})",
    }.get(decisive, f"does not hold (against the best VQ-VAE variant, {best})")
    model, train = demo_settings("scvae", "mnist5k")
    return {
        "title": TITLE,
        "statement": STATEMENT,
        "rule": CLAIM_RULE,
        "settings": {
            "data": data,
            "scvae model": model,
            "vq-vae variants": {v: VARIANTS[v][1] for v in VQ_VARIANTS},
            "train": train,
            "epochs": epochs,
            "hidden_dim override": hidden,
            "threads": 1,
        },  # fmt: skip
        "table": "\n".join(lines),
        "best_vqvae": best,
        "verdicts": verdicts,
        "verdict": overall,
        "rows": rows,
    }
