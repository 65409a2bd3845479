"""The Claims page's logic: the latest report of each claim written by ``python -m lsx
reproduce`` (:mod:`lsx.experiments.reproduce`) in the reports folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsx.app import state
from lsx.experiments.reproduce import CLAIMS

MAX_REPORT_BYTES = 5_000_000  # a report is a few kB; refuse anything far larger


@dataclass(frozen=True)
class ClaimEntry:
    """One claim: its report (None when there is none yet), or why it could not be read."""

    claim: str
    report: dict[str, Any] | None
    problem: str | None
    command: str


def reports_folder() -> Path:
    """``<checkpoints>/.experiments/reproduce``: where ``python -m lsx reproduce`` writes by
    default (the app's checkpoints folder, so ``$LSX_CHECKPOINTS`` moves it too)."""
    return state.checkpoints_root() / ".experiments" / "reproduce"


def read_entries(folder: Path) -> list[ClaimEntry]:
    """One :class:`ClaimEntry` per claim of :data:`CLAIMS`, in their order."""
    entries = []
    for claim in CLAIMS:
        path = Path(folder) / f"{claim}.json"
        command = f"python -m lsx reproduce {claim} --budget full --seeds 3"
        report, problem = None, None
        if path.is_file():
            try:
                if path.stat().st_size > MAX_REPORT_BYTES:
                    raise ValueError(f"larger than {MAX_REPORT_BYTES} bytes")
                report = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(report, dict) or "verdict" not in report:
                    raise ValueError("not a report of python -m lsx reproduce")
                command = report.get("command", command)
            except (OSError, ValueError) as err:
                report = None
                problem = f"{path.name} could not be read ({err}); run `{command}` again."
        entries.append(ClaimEntry(claim, report, problem, command))
    return entries


def verdict_rows(entries: list[ClaimEntry]) -> list[dict[str, str]]:
    """The overview table: claim, verdict, budget, seeds, wall time, when."""
    rows = []
    for e in entries:
        r = e.report or {}
        rows.append({
            "claim": r.get("title", e.claim),
            "verdict": r.get("verdict", "not run yet" if e.problem is None else "unreadable"),
            "budget": r.get("budget", "–"),
            "seeds": str(len(r.get("seeds", []))) if r else "–",
            "wall time (s)": f"{r['wall_s']:.0f}" if "wall_s" in r else "–",
            "written": r.get("created", "–"),
        })  # fmt: skip
    return rows
