"""The layer rule of docs/architecture.md, enforced: every import inside lsx (module-level and
function-level, TYPE_CHECKING blocks included), and those of app.py and pages/, points to the
same layer or a lower one, and no set of modules imports itself in a cycle. The layer table is
read from docs/architecture.md itself, so the document and the rule cannot drift apart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 500  # a module past this is split (docs/architecture.md, "Size")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "lsx").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    out["app"] = ROOT / "app.py"
    for path in sorted((ROOT / "pages").glob("*.py")):
        out[f"pages.{path.stem}"] = path
    return out


MODULES = _modules()


def _layers() -> list[tuple[str, list[str]]]:
    """The table between ``<!-- layers -->`` and ``<!-- /layers -->``: | n | name | modules |."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- layers -->")[1].split("<!-- /layers -->")[0]
    layers = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            layers.append((cells[1], re.findall(r"`([\w.*]+)`", cells[2])))
    return layers


LAYERS = _layers()


def layer_of(module: str) -> int:
    """Index of the layer whose longest pattern matches ``module`` (``x.*``: x and below)."""
    best, best_len = -1, -1
    for i, (_, patterns) in enumerate(LAYERS):
        for pat in patterns:
            base = pat.removesuffix(".*")
            hit = module == base or (pat.endswith(".*") and module.startswith(base + "."))
            if hit and len(base) > best_len:
                best, best_len = i, len(base)
    return best


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The lsx modules (and pages) that ``module`` imports, anywhere in its body."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from pkg import sub` depends on pkg.sub when that is a module, else on pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for target in targets:
            if target.split(".")[0] in ("lsx", "pages", "app"):
                resolved = _resolve(target)
                if resolved and resolved != module:
                    found.add(resolved)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_layer_table_is_read_from_the_document():
    assert len(LAYERS) >= 8, f"no layer table found in {DOC}"
    names = [name for name, _ in LAYERS]
    assert names[0] == "base"
    assert names[-1] == "pages"


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if layer_of(m) < 0)
    assert not missing, (
        f"modules without a layer: {missing}. Add them to the layer table of {DOC.name}."
    )


def test_no_import_points_up():
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, targets in GRAPH.items()
        for t in sorted(targets)
        if layer_of(t) > layer_of(m)
    ]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles (module-level or inside functions):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_cycle_finder_finds_cycles():
    # the checker itself can fail: a two-module loop and a three-module loop are reported
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


@pytest.mark.parametrize(
    ("module", "layer"),
    [("lsx.errors", "base"), ("lsx.models.sae", "models"), ("lsx.app.cache", "app")],
)
def test_layer_lookup(module, layer):
    assert LAYERS[layer_of(module)][0] == layer


def test_modules_stay_small():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    big = {m: n for m, n in sizes.items() if m.startswith("lsx") and n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them): {big}"
