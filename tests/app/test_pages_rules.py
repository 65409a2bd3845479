"""Layout rules, checked on the source (docs/architecture.md, rules 1 and 2):
pages (and app.py) import no torch or numpy; nothing in lsx outside lsx/app imports streamlit;
every page starts with state.init() and run_picker(), and stays thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
LIBRARY = [
    p for p in sorted((ROOT / "lsx").rglob("*.py")) if p.relative_to(ROOT / "lsx").parts[0] != "app"
]
MAX_PAGE_LINES = 130  # "<= ~120 lines" with a little slack; more means a missing lsx function


def imported_roots(path: Path) -> set[str]:
    """Top-level module names imported anywhere in the file (also inside functions)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def called_names(path: Path) -> list[str]:
    """Names of the functions called at the top level of the file, in order."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        call = node.value if isinstance(node, ast.Expr | ast.Assign) else None
        if isinstance(call, ast.Call):
            func = call.func
            names.append(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def test_there_are_pages_to_check():
    assert (ROOT / "pages" / "2_latent_map.py") in PAGES
    assert len(LIBRARY) > 5


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_import_no_torch_or_numpy(path):
    banned = imported_roots(path) & {"torch", "numpy"}
    assert not banned, f"{path.name} imports {sorted(banned)}; move the math into lsx.analysis"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_start_with_init_and_picker_and_stay_thin(path):
    source = path.read_text(encoding="utf-8")
    calls = called_names(path)
    if path.name == "app.py":  # the st.navigation router (docs/architecture.md): its Home
        # page, lsx.app.home.render, starts with init and run_picker like every page
        assert calls[:2] == ["init", "run"], f"{path.name} starts with {calls[:2]}"
    else:
        assert calls[:2] == ["init", "run_picker"], f"{path.name} starts with {calls[:2]}"
        assert "st.navigation" not in source  # only app.py routes
    assert "__main__" not in source
    assert len(source.splitlines()) <= MAX_PAGE_LINES


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_library_outside_lsx_app_does_not_import_streamlit(path):
    assert "streamlit" not in imported_roots(path), (
        f"{path.relative_to(ROOT)} imports streamlit; only app.py, pages/ and lsx/app/ may"
    )


def test_the_rule_checker_sees_nested_and_from_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    import numpy as np\nfrom torch import nn\nfrom . import y\n")
    assert imported_roots(sample) == {"numpy", "torch"}
