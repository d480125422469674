"""`aitrader results verify` and `results export-chain`: the sealed chains of model-days.

See models/seals.py for what a chain entry holds, and docs/sealed-decisions.md for checking an
export with nothing of ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlmodel import Session

from deployments.output import console, fail
from models.errors import ResultsError
from models.results import get_run
from models.seals import chain_heads, compare_with_export, export_chain, verify_chains
from models.trials import TrialRef


def chain_portfolios(session: Session, run: int | None, model: str | None) -> list[str] | None:
    """The portfolios a chain command covers: every one in the store, or a run's (one model's)."""
    if run is None and model is None:
        return None
    selected = get_run(session, run)
    portfolios = [
        portfolio
        for label, portfolio in selected.portfolios.items()
        if model is None or TrialRef.parse(label).model == model
    ]
    if not portfolios:
        raise ResultsError(f"run {selected.id} has no portfolio of model {model!r}")
    return portfolios


def verify(session: Session, portfolios: list[str] | None, against: Path | None) -> None:
    """Recompute the chains (and compare with an earlier export); exit 1 naming each problem."""
    problems = []
    for portfolio in portfolios or [None]:
        problems += verify_chains(session, portfolio)
    if against is not None:
        problems += compare_with_export(session, _read_export(against))
    heads = chain_heads(session, portfolios)
    if problems:
        for problem in problems:
            console().print(f"{problem}", highlight=False, soft_wrap=True)
        raise fail(f"{len(problems)} problem(s) in the sealed chains")
    console().print(
        f"every chain holds: {len(heads)} portfolio(s); heads: "
        + ", ".join(f"{p} {head[:12]} ({seq} days)" for p, (seq, head) in sorted(heads.items())),
        highlight=False,
        soft_wrap=True,
    )


def export(session: Session, portfolios: list[str] | None) -> None:
    """Every sealed entry with its hash, as JSON lines on stdout, chain by chain."""
    for portfolio in portfolios or [None]:
        for entry in export_chain(session, portfolio):
            typer.echo(json.dumps(entry, sort_keys=True, ensure_ascii=False))


def _read_export(path: Path) -> list[dict]:
    """The entries of an `export-chain` file (JSON lines)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        raise ResultsError(f"--against {path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultsError(f"--against {path}: not an export-chain file ({exc})") from None
