"""``python -m lsx demo``: retrain the shipped demo runs (seed 0, CPU, 1 thread) in place."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from lsx.commands import DEFAULT_ROOT, run_handled
from lsx.demos import DEMOS
from lsx.errors import ConfigError

HELP = "retrain the shipped demo checkpoints"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--only", nargs="*", help="demo run names to retrain")


def _train(argv: list[str]) -> int:
    """``python -m lsx train *argv``: its exit code, its errors printed (as lsx.cli.main does)."""
    from lsx.commands import train

    parser = argparse.ArgumentParser(prog="python -m lsx train")
    train.add_arguments(parser)
    return run_handled(train.run, parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Retrain the shipped demo runs into a temporary folder, then swap each into place."""
    only = set(args.only or [])
    for name, kind, data, model, train in DEMOS:
        if only and name not in only:
            continue
        tmp = Path(args.out) / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        argv = [
            "--model",
            kind,
            "--data",
            data,
            "--out",
            str(args.out),
            "--name",
            tmp.name,
            "--seed",
            "0",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--no-progress",
        ]
        argv += [
            x
            for k, v in {**model, **train}.items()
            for x in (f"--{k.replace('_', '-')}", json.dumps(v) if isinstance(v, bool) else str(v))
        ]  # a bool as JSON (true/false), the form lsx.commands.train.parse_value reads
        if _train(argv) != 0:
            raise ConfigError(f"training the demo run {name} failed; see the message above.")
        for junk in (".lock", "train_state.pt"):
            (tmp / junk).unlink(missing_ok=True)
        final = Path(args.out) / name
        old = Path(args.out) / f".old-{name}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    return 0
