"""``python -m lsx datasets``: the built-in datasets (and the ``folder:`` form)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lsx.commands import DEFAULT_ROOT

HELP = "list built-in datasets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT)  # accepted, as by every listing


def run(args: argparse.Namespace) -> int:
    from lsx.data import DATASETS

    for name, spec in DATASETS.items():
        print(f"{name:16s} {spec.summary}")
    print(f"{'folder:PATH':16s} your image folder, one subfolder per class (PNG/JPEG)")
    return 0
