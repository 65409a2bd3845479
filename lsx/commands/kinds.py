"""``python -m lsx kinds``: the model kinds and the fields of their configs, then where each
plugin kind comes from and the plugins that could not be loaded."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lsx.commands import DEFAULT_ROOT

HELP = "list model kinds (built-in and from installed packages) and their config fields"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT)  # accepted, as by every listing


def run(args: argparse.Namespace) -> int:
    from lsx.models import MODELS, PLUGIN_PROBLEMS, PLUGINS

    for kind, spec in MODELS.items():
        fields = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(spec.config_cls))
        plugin = PLUGINS.get(kind)
        origin = f" [plugin: {plugin.package} {plugin.version}]" if plugin else ""
        print(f"{kind:6s} {spec.summary}{origin}\n       {fields}")
    for problem in PLUGIN_PROBLEMS:
        print(f"not loaded: {problem}")
    return 0
