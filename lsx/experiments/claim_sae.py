"""Claim 1 (Gabdullin 2024, docs/methods.md): a configured latent space labels by nearest
centre, without a classifier, and unseen classes still form groups.

Per dataset and seed: an ``sae`` (the demo settings of ``lsx.demos``) scored by nearest centre,
against the strongest fair baselines with the same data, epochs and batch size — logistic
regression on raw pixels; kNN-5 and a logistic-regression probe on the latents of a plain ``ae``
of the same net and latent size; and a supervised classifier made of the same encoder plus a
linear layer trained with cross-entropy (the fair upper reference: it has a classifier, the
``sae`` does not). Then the hold-out: an ``sae`` trained without two classes, and the 5-NN purity
of those classes in its latent space against the plain ``ae``'s (which saw them, unsupervised).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from lsx.experiments.common import RULE, compare, pm, train_or_reuse

TITLE = "Configured latent spaces label by nearest centre (Gabdullin 2024)"
STATEMENT = (
    "A supervised AE whose latent clusters are fixed in advance (geometric loss) predicts labels "
    "by nearest centre, without a decoder or classifier; unseen classes still form groups."
)
DEMO = {  # the demo-sae-* settings of lsx.demos: (model fields, train fields)
    "digits": ({"latent_dim": 10, "hidden_dim": 128}, {"epochs": 60, "batch_size": 64}),
    "mnist5k": ({"latent_dim": 16, "hidden_dim": 64}, {"epochs": 30, "batch_size": 128}),
}
BUDGETS = {  # budget -> (datasets, epochs override or None, hold-out dataset)
    "quick": (["digits"], 2, "digits"),
    "full": (["digits", "mnist5k"], None, "mnist5k"),
}
HELD_OUT = (8, 9)
METHODS = (  # (row key, label)
    ("sae_nearest", "`sae`, nearest centre (no classifier)"),
    ("sae_knn5", "`sae` latents, kNN-5"),
    ("pixels_logreg", "logistic regression on raw pixels"),
    ("ae_knn5", "plain `ae` latents, kNN-5"),
    ("ae_logreg", "plain `ae` latents, logistic regression"),
    ("supervised", "same encoder + linear layer, cross-entropy (upper reference)"),
)
BASELINES = ("pixels_logreg", "ae_knn5", "ae_logreg", "supervised")
CLAIM_RULE = (
    f"{RULE} Metric: test accuracy. The `sae` by nearest centre is compared with each baseline. "
    "The claim holds on a dataset when the `sae` wins or ties against every baseline except the "
    "supervised upper reference (which it need not beat); the hold-out part holds when the held-"
    "out classes' 5-NN purity in the `sae` space wins or ties against the plain `ae`'s."
)


def _settings(data: str, budget: str) -> tuple[dict, dict]:
    fields, train = DEMO[data]
    epochs = BUDGETS[budget][1]
    if epochs is not None:
        fields, train = {**fields, "hidden_dim": 32}, {**train, "epochs": epochs}
    return fields, train


def _supervised(ds: Any, fields: dict, train: dict, seed: int) -> float:
    """Test accuracy of the ``sae``'s encoder design plus a linear layer, trained with
    cross-entropy for the same epochs, batch size and learning rate."""
    import torch
    from torch import nn

    from lsx.config import ModelConfig
    from lsx.models.base import Encoder

    torch.manual_seed(seed)
    cfg = ModelConfig(input_shape=ds.input_shape, **fields)
    n_classes = int(max(ds.y_train.max(), ds.y_test.max())) + 1
    net = nn.Sequential(Encoder(cfg), nn.Linear(cfg.latent_dim, n_classes))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.from_numpy(np.array(ds.x_train, dtype=np.float32))
    y = torch.from_numpy(ds.y_train.astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    for _ in range(train["epochs"]):
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), train["batch_size"]):
            idx = order[start : start + train["batch_size"]]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = net.eval()(torch.from_numpy(np.array(ds.x_test, dtype=np.float32))).argmax(1).numpy()
    return float(np.mean(pred == ds.y_test))


def _one(ds: Any, data: str, budget: str, seed: int, out: Path) -> dict[str, Any]:
    from lsx.analysis.clusters import (
        cluster_space,
        knn_accuracy,
        linear_probe_accuracy,
        nearest_center_accuracy,
    )
    from lsx.analysis.embedding import encode_array
    from lsx.config import TrainConfig
    from lsx.models import dataset_fields, make_config

    fields, train_fields = _settings(data, budget)
    train = TrainConfig(seed=seed, device="cpu", threads=1, **train_fields)
    models, row = {}, {"data": data, "seed": seed}
    for kind in ("sae", "ae"):
        config = make_config(kind, **{**dataset_fields(kind, ds), **fields})
        run_dir = out / "runs" / "sae" / f"{data}-{kind}-s{seed}"
        models[kind], secs, reused = train_or_reuse(run_dir, config, train, ds)
        row[f"{kind}_train_s"], row[f"{kind}_reused"] = round(secs, 1), reused
    y_tr, y_te = ds.y_train, ds.y_test
    z_tr, z_te = encode_array(models["sae"], ds.x_train), encode_array(models["sae"], ds.x_test)
    space = cluster_space(models["sae"], z_tr, ds.labels_train, ds.label_names)
    row["sae_nearest"] = next(iter(nearest_center_accuracy(space, z_te, ds.labels_test).values()))
    row["sae_knn5"] = knn_accuracy(z_tr, y_tr, z_te, y_te)
    px_tr, px_te = ds.x_train.reshape(len(y_tr), -1), ds.x_test.reshape(len(y_te), -1)
    row["pixels_logreg"] = linear_probe_accuracy(px_tr, y_tr, px_te, y_te, seed)
    a_tr, a_te = encode_array(models["ae"], ds.x_train), encode_array(models["ae"], ds.x_test)
    row["ae_knn5"] = knn_accuracy(a_tr, y_tr, a_te, y_te)
    row["ae_logreg"] = linear_probe_accuracy(a_tr, y_tr, a_te, y_te, seed)
    t0 = time.perf_counter()
    row["supervised"] = _supervised(ds, fields, train_fields, seed)
    row["supervised_train_s"] = round(time.perf_counter() - t0, 1)
    return row


def _unseen(ds: Any, data: str, budget: str, seed: int, out: Path) -> dict[str, Any]:
    from lsx.analysis.clusters import grouping_ratio
    from lsx.analysis.embedding import encode_array
    from lsx.config import TrainConfig
    from lsx.models import dataset_fields, make_config

    fields, train_fields = _settings(data, budget)
    train = TrainConfig(seed=seed, device="cpu", threads=1, **train_fields)
    config = make_config("sae", **{**dataset_fields("sae", ds), **fields, "held_out": HELD_OUT})
    run_dir = out / "runs" / "sae" / f"{data}-sae-heldout-s{seed}"
    sae, _, _ = train_or_reuse(run_dir, config, train, ds)
    ae_cfg = make_config("ae", **{**dataset_fields("ae", ds), **fields})
    ae, _, _ = train_or_reuse(out / "runs" / "sae" / f"{data}-ae-s{seed}", ae_cfg, train, ds)
    row: dict[str, Any] = {"data": data, "seed": seed}
    for name, model in (("sae", sae), ("ae", ae)):
        rep = grouping_ratio(encode_array(model, ds.x_test), ds.y_test, HELD_OUT, seed=seed)
        row[f"{name}_ratio"], row[f"{name}_purity"] = rep.ratio, rep.knn_purity
    return row


def run_claim(budget: str, seeds: list[int], out: Path) -> dict[str, Any]:
    """Train (or reuse) and score every run; returns the report's fields (see
    :mod:`lsx.experiments.reproduce`)."""
    from lsx.data import load_dataset

    datasets, _, unseen_data = BUDGETS[budget]
    rows, unseen_rows = [], []
    for data in datasets:
        ds = load_dataset(data)
        rows += [_one(ds, data, budget, seed, out) for seed in seeds]
        if data == unseen_data:
            unseen_rows = [_unseen(ds, data, budget, seed, out) for seed in seeds]
    verdicts = []
    lines = ["| data | " + " | ".join(label for _, label in METHODS) + " |"]
    lines.append("|" + "---|" * (len(METHODS) + 1))
    for data in datasets:
        group = [r for r in rows if r["data"] == data]
        cells = [pm([100 * r[key] for r in group], "{:.1f} %") for key, _ in METHODS]
        lines.append(f"| `{data}` | " + " | ".join(cells) + " |")
        for base in BASELINES:
            sae, other = [r["sae_nearest"] for r in group], [r[base] for r in group]
            verdicts.append({"setting": f"{data}: sae vs {base}", "verdict": compare(sae, other)})
    lines += ["", f"Hold-out of classes {HELD_OUT} on `{unseen_data}` (test split):", ""]
    lines += ["| model | held-out 5-NN purity | intra/inter distance ratio |", "|---|---|---|"]
    for name in ("sae", "ae"):
        purity = pm([100 * r[f"{name}_purity"] for r in unseen_rows], "{:.1f} %")
        ratio = pm([r[f"{name}_ratio"] for r in unseen_rows], "{:.2f}")
        lines.append(f"| `{name}` | {purity} | {ratio} |")
    held = compare([r["sae_purity"] for r in unseen_rows], [r["ae_purity"] for r in unseen_rows])
    verdicts.append({"setting": f"{unseen_data}: held-out purity, sae vs ae", "verdict": held})
    return {
        "title": TITLE,
        "statement": STATEMENT,
        "rule": CLAIM_RULE,
        "settings": {
            "datasets": {d: _settings(d, budget) for d in datasets},
            "held_out": list(HELD_OUT),
            "threads": 1,
        },
        "table": "\n".join(lines),
        "verdicts": verdicts,
        "verdict": _overall(verdicts),
        "rows": rows,
        "unseen": unseen_rows,
    }


def _overall(verdicts: list[dict[str, str]]) -> str:
    """The claim's verdict from the per-setting ones, by :data:`CLAIM_RULE`."""
    judged = [v for v in verdicts if "supervised" not in v["setting"]]
    if any(v["verdict"] == "n = 1" for v in judged):
        return "no verdict (n = 1)"
    if all(v["verdict"] in ("wins", "ties") for v in judged):
        return "holds"
    return "does not hold"
