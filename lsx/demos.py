"""The shipped demo runs: ``(name, kind, dataset, model fields, train fields)``.

``python -m lsx demo`` retrains them reproducibly (seed 0, CPU, 1 thread) into ``checkpoints/``.
A kind that ships demo checkpoints adds its entries here.
"""

from __future__ import annotations

from typing import Any

Demo = tuple[str, str, str, dict[str, Any], dict[str, Any]]

DEMOS: list[Demo] = [
    (f"demo-{kind}-{data}", kind, data, model, train)
    for data, model, train in (
        ("digits", {"latent_dim": 8, "hidden_dim": 128}, {"epochs": 60, "batch_size": 64}),
        ("mnist5k", {"latent_dim": 16, "hidden_dim": 64}, {"epochs": 25, "batch_size": 128}),
    )
    for kind in ("ae", "dae", "vae")
]

# sae (issue 3): supervised AE with a configured latent space; textures is multi-attribute
# (pattern and colour sub-spaces of 6 dims each). Class counts come from the dataset.
DEMOS += [
    (f"demo-sae-{data}", "sae", data, model, train)
    for data, model, train in (
        ("digits", {"latent_dim": 10, "hidden_dim": 128}, {"epochs": 60, "batch_size": 64}),
        ("mnist5k", {"latent_dim": 16, "hidden_dim": 64}, {"epochs": 30, "batch_size": 128}),
        ("textures", {"latent_dim": 12, "hidden_dim": 64}, {"epochs": 30, "batch_size": 128}),
    )
]

# manifold (issue 6): ae (CAE), dae and vae with spatial latent tensors 64 x h/4 x w/4 from the
# same encoder design, for the Manifold page; trained like the seed-0 runs of
# `python -m lsx manifold-experiment`.
DEMOS += [
    (f"demo-{kind}-spatial-{data}", kind, data, model, train)
    for data, model, train in (
        (
            "mnist5k",
            {"latent_dim": 64, "hidden_dim": 32, "spatial": True},
            {"epochs": 10, "batch_size": 128},
        ),
        (
            "textures",
            {"latent_dim": 64, "hidden_dim": 32, "spatial": True},
            {"epochs": 10, "batch_size": 128},
        ),
    )
    for kind in ("ae", "dae", "vae")
]

# scvae and its vqvae baseline (issue 4): matched latent grid (H/4 x W/4, 16 channels) and
# dictionary size K = 64, gradient clipping 1.0 as in the SC-VAE fork (docs/methods.md).
DEMOS += [
    (f"demo-{kind}-{data}", kind, data, {**shared, **model}, train)
    for data, train in (
        ("mnist5k", {"epochs": 12, "batch_size": 128, "grad_clip": 1.0}),
        ("textures", {"epochs": 12, "batch_size": 128, "grad_clip": 1.0}),
    )
    for shared in ({"latent_dim": 16, "hidden_dim": 64, "spatial": True, "arch": "conv"},)
    for kind, model in (("scvae", {"n_atoms": 64, "lam": 0.5}), ("vqvae", {"n_codes": 64}))
]

# consistency (issue 5): vae + the consistency term (docs/methods.md; lambda 1, the 'simple' affine
# set), with the seed, architecture and budget of demo-vae-digits / demo-vae-mnist5k, so the
# Consistency page can compare "VAE vs CR-VAE" on either dataset.
CONSISTENCY_DEMO = {"consistency": 1.0, "transforms": "simple"}
DEMOS += [
    (f"demo-vae-cr-{data}", "vae", data, model, {**train, **CONSISTENCY_DEMO})
    for name, _, data, model, train in list(DEMOS)
    if name in ("demo-vae-digits", "demo-vae-mnist5k")
]
