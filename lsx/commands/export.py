"""``python -m lsx export``: a tag (or ids, or all samples) of a run as CSV, Parquet or .npy.

Example: ``python -m lsx export --run demo-vae-mnist5k --tag "blurry 7s" --format parquet``
writes ``demo-vae-mnist5k-blurry 7s.parquet`` in the current folder (``--out`` to choose).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lsx.commands import DEFAULT_ROOT
from lsx.errors import ConfigError

HELP = "export a tag or ids of a run (ids, split, labels, latents, map, error) as csv/parquet/npy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run name under --root, or a run folder")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of the runs")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--tag", default=None, help="a tag saved on the Latent map")
    which.add_argument("--ids", default=None, help="comma-separated sample ids (train first)")
    parser.add_argument("--format", choices=("parquet", "csv", "npy"), default="parquet")
    parser.add_argument("--method", choices=("pca", "umap", "tsne"), default="pca")
    parser.add_argument("--seed", type=int, default=0, help="seed of the map coordinates")
    parser.add_argument(
        "--out", type=Path, default=None, help="output file (default: ./RUN-TAG.FMT)"
    )


def _run_dir(run: str, root: Path) -> Path:
    path = Path(run)
    for candidate in (path, Path(root) / run):
        if (candidate / "config.json").is_file():
            return candidate
    raise ConfigError(
        f"No run {run!r}: neither {path} nor {Path(root) / run} is a run folder. List the runs "
        "with `python -m lsx runs`."
    )


def _ids(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError as err:
        raise ConfigError(
            f"--ids must be comma-separated integers, e.g. 3,17,204; got {text!r}."
        ) from err


def run(args: argparse.Namespace) -> int:
    from lsx.export import export_run, write_table

    run_dir = _run_dir(args.run, args.root)
    ids = _ids(args.ids) if args.ids is not None else None
    frame = export_run(run_dir, tag=args.tag, ids=ids, method=args.method, seed=args.seed)
    what = args.tag or ("ids" if ids is not None else "all")
    out = args.out or Path(f"{run_dir.name}-{what}.{args.format}")
    write_table(frame, out, args.format)
    print(f"wrote {len(frame):,} rows ({args.format}) to {out}")
    return 0
