"""Command line: ``python -m lsx train | runs | datasets | demo``.

Model options are generated from the config dataclasses of the ``MODELS`` registry, so a new
kind's fields appear here without edits (``--beta``, ``--noise-level``, ``--latent-dim`` ...).
"""

from __future__ import annotations

import argparse
import importlib
import warnings

from lsx.commands import DEFAULT_ROOT as DEFAULT_ROOT
from lsx.commands import run_handled
from lsx.data import LAZY_FOLDER_ABOVE as LAZY_FOLDER_ABOVE  # read by lsx.data.open_data

# Every subcommand: name -> module with ``HELP`` (one line), ``add_arguments(parser)`` and
# ``run(args) -> int``, in the order of ``--help``. A new command is one line here.
COMMANDS: dict[str, str] = {
    "train": "lsx.commands.train",
    "consistency-experiment": "lsx.experiments.consistency",
    "encode": "lsx.commands.encode",
    "eval": "lsx.commands.eval",
    "manifold-experiment": "lsx.experiments.manifold",
    "search": "lsx.search",
    "reproduce": "lsx.commands.reproduce",
    "synth-npy": "lsx.commands.synth",
    "import-embeddings": "lsx.commands.import_embeddings",
    "runs": "lsx.commands.runs",
    "export": "lsx.commands.export",
    "datasets": "lsx.commands.datasets",
    "kinds": "lsx.commands.kinds",
    "demo": "lsx.commands.demo",
    "app": "lsx.commands.app",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m lsx`` parser, one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="python -m lsx", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(cmd, help=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the command; returns the exit code
    (2 after an lsx error, printed as ``error: ...``; 130 after Ctrl-C)."""
    with warnings.catch_warnings(record=True) as caught:  # building the parser loads the kinds
        parser = build_parser()
    args = parser.parse_args(argv)
    from lsx.models.plugins import PluginWarning  # loaded by the parser already

    for w in caught:  # shown now, except plugin warnings for `kinds`, which lists them itself
        if not (args.command == "kinds" and issubclass(w.category, PluginWarning)):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return run_handled(importlib.import_module(COMMANDS[args.command]).run, args)
