"""The example notebook runs top to bottom and its backtest lands in the store."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from sqlmodel import Session, select

from models.engine import create_store_engine
from models.tables import Run
from tests.conftest import ROOT

NOTEBOOK = ROOT / "deployments" / "notebooks" / "backtest.ipynb"


def test_the_example_notebook_executes(prefect_server: str, tmp_path: Path, monkeypatch) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    monkeypatch.setenv("DATABASE_URL", store)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=dict(os.environ))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert "Completed" in outputs[0]["text"]
    with Session(create_store_engine(store)) as session:
        (run,) = session.exec(select(Run)).all()
        assert run.status == "completed" and len(run.models) == 3
