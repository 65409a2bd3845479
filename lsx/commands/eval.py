"""``python -m lsx eval --run NAME``: the headline metrics of one run, as a table or ``--json``.

Reconstruction (per-pixel MSE, PSNR, SSIM) for every kind, plus what the kind is about:
nearest-centre accuracy for ``sae``, atoms or codes used for ``scvae``/``vqvae``, active units,
mutual information and NLL for Gaussian posteriors (:func:`lsx.analysis.headline.headline_metrics`).
Computed on the run's own dataset (recorded in its ``config.json``), test split by default, on a
per-class sample of at most ``--max-samples`` images (seed 0).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lsx.commands import DEFAULT_ROOT
from lsx.errors import CheckpointError, ConfigError

HELP = "print a run's headline metrics (accuracy, PSNR, atoms used, AU/MI/NLL, reconstruction)"
DEFAULT_MAX_SAMPLES = 2000
DEFAULT_NLL_SAMPLES = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run", required=True, help="run folder name under --out (e.g. demo-sae-mnist5k) or path"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT, help="folder of run folders")
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument(
        "--max-samples", type=int, default=DEFAULT_MAX_SAMPLES,
        help="evaluate a per-class sample of at most this many images (seed 0)",
    )  # fmt: skip
    parser.add_argument(
        "--nll-samples", type=int, default=DEFAULT_NLL_SAMPLES,
        help="importance samples per image of the NLL (Gaussian posteriors); 0 skips it",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of MI and NLL draws")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def resolve_run(name: str, root: Path) -> Path:
    """``root / name`` when that is a run folder, else ``name`` as a path; a CheckpointError
    naming the runs of ``root`` otherwise."""
    from lsx.checkpoint import CONFIG_NAME, list_runs

    for candidate in (root / name, Path(name)):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    runs, _ = list_runs(root) if root.is_dir() else ([], [])
    known = ", ".join(r.name for r in runs[:30]) + (", ..." if len(runs) > 30 else "") or "none"
    raise CheckpointError(
        f"No run {name!r} in {root} (and no run folder at that path). Runs there: {known}. "
        "Pass a name from `python -m lsx runs`, or --out for another folder."
    )


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Load the run and its dataset, sample, and compute the headline metrics (a JSON dict)."""
    from lsx.analysis import sample_per_class
    from lsx.analysis.headline import headline_metrics
    from lsx.checkpoint import load_checkpoint, read_header
    from lsx.data import load_dataset

    if args.max_samples < 1 or args.nll_samples < 0:
        raise ConfigError(
            f"--max-samples must be >= 1 and --nll-samples >= 0; got {args.max_samples} and "
            f"{args.nll_samples}."
        )
    run_dir = resolve_run(args.run, args.out)
    data = read_header(run_dir).get("data") or {}
    if not data.get("spec"):
        raise CheckpointError(
            f"{run_dir} records no dataset in its config.json, so lsx cannot tell which images "
            "to evaluate on. Runs trained with `python -m lsx train` record it."
        )
    ds = load_dataset(data["spec"], image_size=data.get("image_size"))
    x, labels = (ds.x_test, ds.labels_test) if args.split == "test" else (
        ds.x_train, ds.labels_train)  # fmt: skip
    ids = sample_per_class(labels[ds.primary], args.max_samples, seed=0)
    model, _ = load_checkpoint(run_dir)
    model.eval()
    result = headline_metrics(
        model, x[ids], {k: v[ids] for k, v in labels.items()}, ds.label_names,
        nll_samples=args.nll_samples, seed=args.seed,
    )  # fmt: skip
    return {
        "run": run_dir.name,
        "dataset": data["spec"],
        "split": args.split,
        "n_available": len(x),
        **result.as_dict(),
    }


def _value(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def table(report: dict[str, Any]) -> str:
    """The report as aligned text: a title line, then metric, value, unit and note columns."""
    head = (
        f"{report['run']} · {report['kind']} ({report['label']}) · {report['dataset']} "
        f"{report['split']} split, {report['n_samples']:,} of {report['n_available']:,} images"
    )
    rows = [("metric", "value", "unit", "note")] + [
        (m["name"], _value(m["value"]), m["unit"], m["note"]) for m in report["metrics"]
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [head, ""]
    for r in rows:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
        )
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    report = evaluate(args)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0
