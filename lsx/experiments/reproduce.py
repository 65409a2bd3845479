"""``python -m lsx reproduce``: each paper's claim, its baselines and a verdict, from one command.

Every claim is one module of ``lsx.experiments`` with ``TITLE``, ``STATEMENT``, ``CLAIM_RULE``
and ``run_claim(budget, seeds, out) -> dict``. This module runs the chosen claims and writes, per
claim, ``<out>/<claim>.json`` and ``<out>/<claim>.md``: the statement, the command, the
settings, the verdict rule (written before the numbers, and fixed in the code before any number
was seen), the table (mean ± sample std over seeds, "n = 1" for one seed), the verdicts and the
wall time. Finished training runs under ``<out>/runs/`` are reused only when their training
settings, full model config and data hash match (:func:`lsx.experiments.common.reusable`).

Budgets: ``quick`` is a CI-sized smoke (tiny epochs and nets, one seed by default): it checks the
pipeline, never the verdict. ``full`` is what ``docs/results`` tables come from.
"""

from __future__ import annotations

import importlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "checkpoints" / ".experiments" / "reproduce"
CLAIMS: dict[str, str] = {  # claim name -> module; order of the papers (docs/methods.md)
    "sae": "lsx.experiments.claim_sae",
    "atoms": "lsx.experiments.claim_atoms",
    "consistency": "lsx.experiments.claim_consistency",
    "manifold": "lsx.experiments.claim_manifold",
}
BUDGETS = ("quick", "full")
REPORT_FIELDS = ("claim", "title", "statement", "rule", "verdict", "verdicts", "table", "command")


def command_for(claim: str, budget: str, seeds: list[int]) -> str:
    """The command line that regenerates one claim's report."""
    return f"python -m lsx reproduce {claim} --budget {budget} --seeds {len(seeds)}"


def reproduce(
    claims: list[str], *, budget: str = "full", seeds: list[int] | None = None, out: Path
) -> list[dict[str, Any]]:
    """Run each claim and write its report; returns the reports.

    Parameters
    ----------
    claims : list of str
        Keys of :data:`CLAIMS`.
    budget : {"quick", "full"}
    seeds : list of int, optional
        Default: ``[0]`` for quick, ``[0, 1, 2]`` for full.
    out : Path
        Reports and ``runs/``.

    Returns
    -------
    list of dict
        One report per claim (the JSON written).

    Raises
    ------
    ConfigError
        An unknown claim or budget.
    """
    from lsx.errors import ConfigError
    from lsx.files import atomic_write_bytes, atomic_write_json

    for claim in claims:
        if claim not in CLAIMS:
            raise ConfigError(
                f"Unknown claim {claim!r}. Choose from {', '.join(CLAIMS)} "
                "(or give none for all of them)."
            )
    if budget not in BUDGETS:
        raise ConfigError(f"--budget must be 'quick' or 'full'; got {budget!r}.")
    seeds = list(seeds) if seeds else ([0] if budget == "quick" else [0, 1, 2])
    out = Path(out)
    reports = []
    for claim in claims:
        module = importlib.import_module(CLAIMS[claim])
        start = time.perf_counter()
        result = module.run_claim(budget, seeds, out)
        report = {
            "claim": claim,
            "budget": budget,
            "seeds": seeds,
            "command": command_for(claim, budget, seeds),
            "wall_s": round(time.perf_counter() - start, 1),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **result,
        }
        atomic_write_json(out / f"{claim}.json", report)
        atomic_write_bytes(out / f"{claim}.md", to_markdown(report).encode())
        print(f"{claim}: {report['verdict']} ({report['wall_s']} s)", file=sys.stderr)
        reports.append(report)
    return reports


def to_markdown(report: dict[str, Any]) -> str:
    """A report as Markdown: the rule comes before the numbers."""
    lines = [
        f"# {report['title']}",
        "",
        f"Claim: {report['statement']}",
        "",
        f"Regenerate: `{report['command']}` (budget `{report['budget']}`, seeds "
        f"{', '.join(map(str, report['seeds']))}; {report['wall_s']:.0f} s wall time, "
        f"{report['created']}).",
        "",
        "## Verdict rule (fixed before the numbers)",
        "",
        report["rule"],
        "",
        "## Results",
        "",
        report["table"],
        "",
        "## Verdicts",
        "",
        *[f"- {v['setting']}: **{v['verdict']}**" for v in report["verdicts"]],
        "",
        f"Overall: **{report['verdict']}**"
        + (
            " (a `quick` smoke run: its verdict means nothing)"
            if report["budget"] == "quick"
            else ""
        ),
        "",
        "## Settings",
        "",
        "```",
        *[f"{k}: {v}" for k, v in report["settings"].items()],
        "```",
        "",
    ]
    return "\n".join(lines)
