"""``python -m lsx manifold-experiment``: are CAE/DAE latent manifolds stratified, the VAE's smooth?

Trains ``ae`` (the CAE), ``dae`` and ``vae`` with spatial latent tensors from one encoder design
(``lsx.models.base``; same latent shape, epochs, batch size and learning rate for all) on one
dataset (``mnist5k`` by default), several seeds each, then sweeps the first ``--n-images`` test
images over the noise levels with :func:`lsx.analysis.manifold.sweep` and writes

- the strata/rank table: per kind and level, distinct rank triples, the modal triple and its
  share, SPD/SPSD factor types, mean rank per mode, share of images that left their clean stratum;
- the subspace-angle table: per kind and level, dimension of the principal subspace of the
  Hilbert-mapped points, mean principal angle and Grassmann distance to the clean subspace;
- verdicts per seed, also at other rank tolerances (the tolerance is an lsx choice: how much do
  the conclusions depend on it?), interpolation smoothness and global descriptors.

The paper (docs/methods.md) reports CAE/DAE stratified and the VAE smooth with two SPD factors
and one SPSD factor; this command reports what we measure either way. Finished runs with the
same settings are reused, so a second call only re-measures.

Outputs in ``--out``: ``runs/<kind>-s<seed>/`` (ordinary lsx run folders), ``results.json``
(every number, the settings and timings) and ``table.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HELP = "train ae/dae/vae with spatial latents; write the strata/rank and subspace-angle tables"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "checkpoints" / ".experiments" / "manifold"
NAMES = {"ae": "CAE (ae)", "dae": "DAE (dae)", "vae": "VAE (vae)"}
N_PATHS = 10  # interpolation paths per run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument("--data", default="mnist5k", help="dataset name")
    p.add_argument("--kinds", nargs="+", default=["ae", "dae", "vae"], help="model kinds")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run each")
    p.add_argument("--epochs", type=int, default=10, help="the same for every run")
    p.add_argument("--batch-size", type=int, default=128, help="the same for every run")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--latent-dim", type=int, default=64, help="channels C of the latent tensor")
    p.add_argument("--hidden-dim", type=int, default=32, help="conv channels")
    p.add_argument("--n-images", type=int, default=1000, help="test images swept (cap)")
    p.add_argument("--perturbation", default="gaussian", help="gaussian, blur or occlusion")
    p.add_argument("--levels", type=float, nargs="+", default=None, help="default: 0 .. 0.5")
    p.add_argument(
        "--rtols", nargs="+", default=["auto", "1e-6", "1e-4"], help="rank tolerances compared"
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="runs, results.json, table.md")


def _rtol(text: str) -> float | None:
    from lsx.errors import ConfigError

    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError as err:
        raise ConfigError(f"--rtols takes 'auto' or numbers in (0, 1); got {text!r}.") from err
    if not 0.0 < value < 1.0:
        raise ConfigError(f"--rtols takes 'auto' or numbers in (0, 1); got {text!r}.")
    return value


def _train_one(args: argparse.Namespace, ds: Any, kind: str, seed: int) -> tuple[Any, Path, float]:
    """Train one run, or reuse it when finished with the same training settings, full model
    config and data hash (then the seconds are its recorded training time, negated)."""
    from lsx.config import TrainConfig
    from lsx.experiments.common import train_or_reuse
    from lsx.models import make_config

    run_dir = args.out / "runs" / f"{kind}-s{seed}"
    train = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed, device="cpu",
        threads=args.threads,
    )  # fmt: skip
    config = make_config(
        kind, input_shape=ds.input_shape, latent_dim=args.latent_dim,
        hidden_dim=args.hidden_dim, arch="conv", spatial=True,
    )  # fmt: skip
    model, seconds, reused = train_or_reuse(run_dir, config, train, ds)
    return model, run_dir, -seconds if reused else seconds  # < 0: reused


def _paths(model: Any, x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    """Mean spike ratio and rank changes over ``N_PATHS`` paths between different classes."""
    from lsx.analysis.manifold import interpolation_profile

    rng = np.random.default_rng(seed)
    spikes, changes = [], []
    while len(spikes) < N_PATHS:
        i, j = rng.choice(len(x), 2, replace=False)
        if y[i] == y[j]:
            continue
        p = interpolation_profile(model, x[i], x[j], n_steps=20)
        spikes.append(p.spike_ratio)
        changes.append(p.n_rank_changes)
    return {"spike_ratio": float(np.mean(spikes)), "rank_changes": float(np.mean(changes))}


def _sensitivity(result: Any, rtols: list[str]) -> list[dict[str, Any]]:
    """Verdict and strata again at other rank tolerances, from the kept eigenvalues."""
    from lsx.analysis.manifold import numerical_rank, verdict

    out = []
    for text in rtols:
        rtol = _rtol(text)
        ranks = np.stack([numerical_rank(s, rtol) for s in result.spectra], axis=-1)
        v = verdict(dataclasses.replace(result, ranks=ranks.astype(np.int16)))
        out.append({"rtol": text, "label": v.label, "n_strata": v.n_strata, "modal": v.modal})
    return out


def measure(model: Any, ds: Any, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Sweep, verdicts, tables, paths and global descriptors of one trained model."""
    from lsx.analysis import encode_array
    from lsx.analysis.manifold import (
        SweepConfig,
        global_descriptors,
        strata_rows,
        subspace_rows,
        sweep,
        verdict,
    )

    n = min(args.n_images, len(ds.x_test))
    x, y = ds.x_test[:n], ds.y_test[:n]
    config = SweepConfig(perturbation=args.perturbation, levels=args.levels, seed=seed)
    t0 = time.perf_counter()
    result = sweep(model, x, config, keep_spectra=True)
    sweep_s = time.perf_counter() - t0
    v = verdict(result)
    kind = model.config.kind
    return {
        "sweep_s": round(sweep_s, 2),
        "n_images": n,
        "levels": [float(v) for v in result.levels],
        "latent_shape": list(result.latent_shape),
        "verdict": {"label": v.label, "text": v.text, "n_strata": v.n_strata, "modal": v.modal},
        "factors": list(v.factors) if v.factors else None,
        "strata": strata_rows(NAMES.get(kind, kind), result),
        "subspace": subspace_rows(NAMES.get(kind, kind), result),
        "sensitivity": _sensitivity(result, args.rtols),
        "paths": _paths(model, x, y, seed),
        "global": global_descriptors(encode_array(model, x), seed=seed).as_row(kind),
    }


def run_experiment(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse) every run and measure it; one dict per run."""
    import torch

    from lsx.data import load_dataset

    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    rows = []
    for kind in args.kinds:
        for seed in args.seeds:
            model, run_dir, train_s = _train_one(args, ds, kind, seed)
            row = {"kind": kind, "seed": seed, "run": str(run_dir), "reused": train_s < 0}
            row["train_s"] = round(abs(train_s), 1)  # a reused run: its recorded epochs
            row.update(measure(model, ds, args, seed))
            rows.append(row)
            print(
                f"{kind:4s} seed {seed}: {row['verdict']['label']}, "
                f"{row['verdict']['n_strata']} strata (train {row['train_s']} s"
                f"{', reused' if row['reused'] else ''}, sweep "
                f"{row['sweep_s']} s)",
                file=sys.stderr,
            )
    return rows


# ------------------------------------------------------------------------------ tables


def _pm(values: list[float], fmt: str = "{:.2f}") -> str:
    from lsx.experiments.common import pm

    return pm(values, fmt)


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(cells) + " |" for cells in lines])


def _by_kind(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["kind"], []).append(row)
    return groups


def strata_table(rows: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds per kind and level; the modal triple of each seed."""
    header = ["model", "level", "distinct triples", "modal triple per seed", "factors"]
    header += ["modal share", "mean r1", "mean r2", "mean r3", "left clean stratum"]
    lines = []
    for kind, group in _by_kind(rows).items():
        for li in range(len(group[0]["strata"])):
            cells = [r["strata"][li] for r in group]
            modal = " ".join(c["modal_triple"].replace(" ", "") for c in cells)
            factors = " / ".join(sorted({c["factors"] for c in cells}))
            lines.append(
                [NAMES.get(kind, kind), f"{cells[0]['level']:g}"]
                + [_pm([c["strata"] for c in cells], "{:.1f}"), modal, factors]
                + [_pm([c[k] for c in cells]) for k in ("modal_share", "mean_r1", "mean_r2")]
                + [_pm([c[k] for c in cells]) for k in ("mean_r3", "changed")]
            )
    return _table(header, lines)


def stable_levels(strata: list[dict[str, Any]], share: float = 0.9) -> int:
    """Levels whose modal triple is the clean one and holds at least ``share`` of the images."""
    clean = strata[0]["modal_triple"]
    return sum(r["modal_triple"] == clean and r["modal_share"] >= share for r in strata)


def subspace_table(rows: list[dict[str, Any]]) -> str:
    header = ["model", "level", "dim (energy)", "k", "mean angle (rad)", "Grassmann (rad)"]
    header += ["centroid shift"]
    lines = []
    for kind, group in _by_kind(rows).items():
        for li in range(len(group[0]["subspace"])):
            cells = [r["subspace"][li] for r in group]
            dims = [str(c["dim"]) for c in cells]
            lines.append(
                [NAMES.get(kind, kind), f"{cells[0]['level']:g}", ", ".join(dims)]
                + [str(cells[0]["k"])]
                + [_pm([c[k] for c in cells]) for k in ("mean_angle", "grassmann")]
                + [_pm([c["centroid_shift"] for c in cells])]
            )
    return _table(header, lines)


def verdict_table(rows: list[dict[str, Any]], rtols: list[str]) -> str:
    header = ["model", *[f"rtol {t}: smooth seeds, strata" for t in rtols]]
    header += ["stable levels (clean triple, share >= 0.9)", "paper"]
    paper = {"ae": "stratified", "dae": "stratified", "vae": "smooth, SPD x SPD x SPSD"}
    lines = []
    for kind, group in _by_kind(rows).items():
        cells = [NAMES.get(kind, kind)]
        for i, _ in enumerate(rtols):
            sens = [r["sensitivity"][i] for r in group]
            smooth = sum(s["label"] == "smooth" for s in sens)
            cells.append(f"{smooth}/{len(sens)}, {_pm([s['n_strata'] for s in sens], '{:.1f}')}")
        stable = [stable_levels(r["strata"]) for r in group]
        cells.append(f"{' '.join(map(str, stable))} of {len(group[0]['strata'])}")
        lines.append([*cells, paper.get(kind, "–")])
    return _table(header, lines)


def extras_table(rows: list[dict[str, Any]]) -> str:
    header = ["model", "path spike ratio", "rank changes / path", "effective rank"]
    header += ["participation ratio", "ID (MLE)", "ID (TwoNN)", "trustworthiness 2-D"]
    header += ["train s", "sweep s"]
    lines = []
    for kind, group in _by_kind(rows).items():
        g = [r["global"] for r in group]
        lines.append(
            [NAMES.get(kind, kind)]
            + [_pm([r["paths"][k] for r in group]) for k in ("spike_ratio", "rank_changes")]
            + [_pm([x[k] for x in g]) for k in ("effective_rank", "participation_ratio")]
            + [_pm([x[k] for x in g]) for k in ("id_mle", "id_twonn")]
            + [_pm([x["trustworthiness"] for x in g], "{:.3f}")]
            + [_pm([r[k] for r in group], "{:.1f}") for k in ("train_s", "sweep_s")]
        )
    return _table(header, lines)


def format_tables(rows: list[dict[str, Any]], rtols: list[str]) -> str:
    return "\n\n".join(
        [
            "### Strata and ranks (default tolerance)\n\n" + strata_table(rows),
            "### Principal subspaces in the Hilbert space\n\n" + subspace_table(rows),
            "### Verdicts by rank tolerance\n\n" + verdict_table(rows, rtols),
            "### Paths and global descriptors\n\n" + extras_table(rows),
        ]
    )


def run(args: argparse.Namespace) -> int:
    from lsx.analysis.manifold import SweepConfig
    from lsx.files import atomic_write_bytes, atomic_write_json

    SweepConfig(perturbation=args.perturbation, levels=args.levels)  # validate early
    for text in args.rtols:
        _rtol(text)
    args.out = Path(args.out)
    start = time.perf_counter()
    rows = run_experiment(args)
    tables = format_tables(rows, args.rtols)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.pop("command", None)
    elapsed = round(time.perf_counter() - start, 1)
    atomic_write_json(
        args.out / "results.json", {"settings": settings, "seconds": elapsed, "runs": rows}
    )
    shape = "x".join(map(str, rows[0]["latent_shape"])) if rows else "?"
    note = (
        f"\n\n{args.data}, {len(args.seeds)} seeds, {args.epochs} epochs, batch {args.batch_size}, "
        f"latent tensor {shape} (hidden {args.hidden_dim}); {args.perturbation} levels "
        f"{rows[0]['levels'] if rows else '?'} on {rows[0]['n_images'] if rows else '?'} test "
        f"images; {elapsed:.0f} s in total. Verdict rule, tolerance and Hilbert map: lsx "
        "interpretations (lsx.analysis.manifold).\n"
    )
    atomic_write_bytes(args.out / "table.md", (tables + note).encode())
    print(tables + note)
    return 0
