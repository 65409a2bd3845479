"""Running a notebook headless in a real Jupyter kernel (nbclient + ipykernel), for the tests of
the shipped notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient


def run_notebook(path: Path, cwd: Path, timeout: int) -> tuple[Any, list[Any]]:
    """Execute every cell of ``path`` with ``cwd`` as the kernel's folder; returns the executed
    notebook and its code cells' outputs. Raises ``CellExecutionError`` on the first failing
    cell; asserts that no output is an error."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    return nb, outputs
