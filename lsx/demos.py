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
