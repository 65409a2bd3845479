"""``python -m lsx reproduce [CLAIM ...] [--seeds 3] [--budget quick|full] [--out DIR]``: run each
paper's claim against its baselines and write one Markdown + JSON report per claim
(:mod:`lsx.experiments.reproduce`)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "reproduce the papers' claims against their baselines; one report per claim"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from lsx.experiments.reproduce import BUDGETS, CLAIMS, DEFAULT_OUT

    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument("claims", nargs="*", default=[], help=f"any of {', '.join(CLAIMS)}; none: all")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (quick: 1, full: 3)")
    p.add_argument("--budget", choices=BUDGETS, default="full", help="quick: a CI smoke")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="reports and runs/")


def run(args: argparse.Namespace) -> int:
    from lsx.errors import ConfigError
    from lsx.experiments.reproduce import CLAIMS, reproduce

    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds takes a number of seeds >= 1; got {args.seeds}.")
    seeds = list(range(args.seeds)) if args.seeds else None
    reports = reproduce(args.claims or list(CLAIMS), budget=args.budget, seeds=seeds, out=args.out)
    for report in reports:
        print(
            f"{report['claim']:12s} {report['verdict']:24s} {report['wall_s']:8.1f} s  "
            f"{Path(args.out) / (report['claim'] + '.md')}"
        )
    return 0
