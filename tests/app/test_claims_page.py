"""AppTest of the Claims page: empty state (the command to run), reports shown with verdict,
rule and command, a claim not run yet, and an unreadable report."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from lsx.app import home, state
from lsx.experiments.reproduce import CLAIMS

PAGE = str(Path(__file__).parents[2] / "pages" / "9_claims.py")


def report(claim: str, verdict: str) -> dict:
    return {
        "claim": claim, "title": f"Title of {claim}", "statement": "The paper says so.",
        "rule": "A wins when its mean exceeds B's by more than the sum of their stds.",
        "budget": "full", "seeds": [0, 1, 2], "wall_s": 123.4, "created": "2026-01-01T00:00:00",
        "command": f"python -m lsx reproduce {claim} --budget full --seeds 3",
        "table": "| model | acc |\n|---|---|\n| sae | 97.0 ± 0.2 % |",
        "verdicts": [{"setting": "digits: sae vs ae", "verdict": "wins"}],
        "verdict": verdict, "settings": {"data": "digits"},
    }  # fmt: skip


def page(monkeypatch, root: Path) -> AppTest:
    monkeypatch.setenv(state.CHECKPOINTS_ENV, str(root))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_empty_state_names_the_command(monkeypatch, tmp_path):
    at = page(monkeypatch, tmp_path)
    assert "python -m lsx reproduce --budget full --seeds 3" in at.info[0].value
    assert not at.dataframe


def test_reports_show_verdict_rule_table_and_command(monkeypatch, tmp_path):
    folder = tmp_path / ".experiments" / "reproduce"
    folder.mkdir(parents=True)
    (folder / "sae.json").write_text(json.dumps(report("sae", "holds")))
    (folder / "consistency.json").write_text(json.dumps(report("consistency", "not reproduced")))
    (folder / "atoms.json").write_text("{not json")
    at = page(monkeypatch, tmp_path)
    table = at.dataframe[0].value
    assert list(table["verdict"]) == ["holds", "unreadable", "not reproduced", "not run yet"]
    text = " ".join(m.value for m in at.markdown)
    assert "**Verdict: holds**" in text
    assert "Rule (fixed before the numbers)" in text
    assert "`python -m lsx reproduce sae --budget full --seeds 3`" in text
    assert "atoms.json could not be read" in at.error[0].value
    assert "python -m lsx reproduce manifold --budget full --seeds 3" in at.info[0].value


def test_the_router_lists_the_page():
    assert "Claims" in [home.page_title(p) for p in home.page_files()]
    assert len(CLAIMS) == 4
