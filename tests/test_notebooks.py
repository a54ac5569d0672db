"""Every notebook runs top to bottom on the organism on a CPU (executed here on a copy, on a sample of each split; the
committed ones keep the outputs of a full run)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_are_there():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("TAXLENS_QUICK", "1")  # each notebook samples its splits; the kernel inherits the environment
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any(c.get("outputs") for c in book.cells if c.cell_type == "code")
    if "plt." in "".join(c.source for c in book.cells) or "Image(" in "".join(c.source for c in book.cells):
        assert any(o.output_type == "display_data" for c in book.cells for o in c.get("outputs", []))
