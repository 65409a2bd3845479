"""``python -m lsx runs``: the valid runs of a folder, and what was skipped and why."""

from __future__ import annotations

import argparse
from pathlib import Path

from lsx.commands import DEFAULT_ROOT

HELP = "list valid runs, embedding sets, and what was skipped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_ROOT)


def run(args: argparse.Namespace) -> int:
    from lsx.checkpoint import list_runs
    from lsx.embeddings import list_embedding_sets
    from lsx.paths import extra_roots

    runs, skipped = list_runs(args.out)
    for extra in extra_roots(args.out):  # an installed package's demo runs, after the user's
        names = {r.name for r in runs}
        runs += [r for r in list_runs(extra)[0] if r.name not in names]
    for r in runs:
        last = r.final_metrics.get("test_loss")
        loss = f"test_loss {last:.5g}" if last is not None else ""
        print(f"{r.name:32s} {r.kind:6s} {r.dataset:12s} {loss}")
    sets, bad_sets = list_embedding_sets(args.out)
    for e in sets:
        print(f"{e.name:32s} {'set':6s} {'embeddings':12s} {e.n:,} x {e.dim} (no model)")
    for name, why in [*skipped, *bad_sets]:
        print(f"skipped {name}: {why}")
    if not runs and not sets:
        print(f"no runs in {args.out}; train one with `python -m lsx train`")
    return 0
