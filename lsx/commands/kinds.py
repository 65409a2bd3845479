"""``python -m lsx kinds``: the model kinds and the fields of their configs."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lsx.commands import DEFAULT_ROOT

HELP = "list model kinds and their config fields"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT)  # accepted, as by every listing


def run(args: argparse.Namespace) -> int:
    from lsx.models import MODELS

    for kind, spec in MODELS.items():
        fields = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(spec.config_cls))
        print(f"{kind:6s} {spec.summary}\n       {fields}")
    return 0
