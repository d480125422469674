"""`aitrader health`: is everything a backtest needs reachable and in order?"""

from __future__ import annotations

import os

import httpx
from pydantic import BaseModel
from sqlalchemy import text

from agents.chat_models import api_key_for
from configs.loader import AppConfig, load_universe
from configs.markets import load_market, market_names
from market_data.calendar import calendar
from models import clock
from models.engine import current_revision, get_engine, head_revision
from models.errors import ModelSetupError
from models.prices import REAL_MARKET, coverage, last_bar_days

TIMEOUT_S = 5.0


class Check(BaseModel):
    check: str
    ok: bool
    detail: str


def run_checks(config: AppConfig) -> list[Check]:
    """Every check, each with a reason; nothing here raises."""
    checks = [_store()]
    if checks[0].ok:
        checks.append(_coverage(config))
        checks.extend(_freshness())
    checks.append(_prefect())
    checks.extend(_model(model) for model in config.enabled_models())
    return checks


def _store() -> Check:
    try:
        engine = get_engine()
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(engine)
        url = engine.url.render_as_string(hide_password=True)
        ok = revision == head_revision()
        return Check(check="store", ok=ok, detail=f"{url} at revision {revision}")
    except Exception as exc:
        return Check(check="store", ok=False, detail=" ".join(str(exc).split())[:300])


def _coverage(config: AppConfig) -> Check:
    from sqlmodel import Session

    market = config.market.store_market
    definition = config.market.definition
    symbols = set(config.resolve_universe().symbols)
    with Session(get_engine()) as session:
        rows = [r for r in coverage(session, definition.interval, market) if r.symbol in symbols]
    if not rows:
        hint = "a backtest synthesizes it" if config.market.source == "synthetic" else "import it"
        return Check(
            check="data",
            ok=config.market.source == "synthetic",
            detail=f"no {definition.interval} prices of {definition.title} in market {market} "
            f"yet ({hint})",
        )
    last = max(r.last for r in rows)
    detail = f"market {market}: {len(rows)} symbols, {min(r.first for r in rows)} to {last}"
    if config.market.source != "synthetic":
        expected = calendar(definition.calendar).last_closed_trading_day()
        if last < expected:
            detail += f"; missing days up to {expected} (aitrader data fetch)"
    return Check(check="data", ok=True, detail=detail)


def _freshness() -> list[Check]:
    """For each market of configs/markets.yaml whose prices the store holds (`real`): through
    which day every symbol is complete, which symbols lag, what holds only an open (a session
    not ended), and how far that is behind the market's last closed session."""
    from sqlmodel import Session

    checks = []
    with Session(get_engine()) as session:
        for name in market_names():
            market = load_market(name)
            symbols = load_universe(market.universe).symbols
            complete = last_bar_days(session, market.interval, REAL_MARKET, symbols, True)
            if not complete:
                continue
            newest = max(complete.values())
            lagging = sorted(s for s, d in complete.items() if d < newest)
            opened = last_bar_days(session, market.interval, REAL_MARKET, symbols)
            detail = f"complete through {min(complete.values())}"
            if lagging:
                detail = (
                    f"complete through {newest} but {', '.join(lagging[:5])}"
                    + (f" and {len(lagging) - 5} more" if len(lagging) > 5 else "")
                    + f" ({min(complete.values())})"
                )
            if max(opened.values()) > newest:
                detail += f"; open only: {max(opened.values())} (a session not ended)"
            closed = calendar(market.calendar).last_closed_trading_day(clock.now())
            behind = len(calendar(market.calendar).trading_days(newest, closed)) - 1
            detail += f"; last closed session {closed}" + (
                f", {behind} session(s) behind" if behind > 0 else ", up to date"
            )
            checks.append(Check(check=f"fresh {name}", ok=True, detail=detail))
    return checks


def _prefect() -> Check:
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        return Check(
            check="prefect", ok=True, detail="no PREFECT_API_URL: ephemeral server per run"
        )
    try:
        response = httpx.get(f"{url}/health", timeout=TIMEOUT_S)
        ok = response.status_code == 200
        return Check(check="prefect", ok=ok, detail=f"{url}: HTTP {response.status_code}")
    except httpx.HTTPError as exc:
        return Check(check="prefect", ok=False, detail=f"{url}: {type(exc).__name__}")


def _model(model) -> Check:
    name = f"model {model.name}"
    if model.kind == "strategy":
        return Check(check=name, ok=True, detail=f"built-in strategy {model.strategy}")
    try:
        key = api_key_for(model)
    except ModelSetupError as exc:
        return Check(check=name, ok=False, detail=str(exc))
    base = (model.base_url or "https://api.openai.com/v1").rstrip("/")
    try:
        response = httpx.get(
            f"{base}/models",
            headers={"Authorization": f"Bearer {key.get_secret_value()}", **model.headers},
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        return Check(check=name, ok=False, detail=f"{base}: {type(exc).__name__}")
    ok = response.status_code == 200
    return Check(check=name, ok=ok, detail=f"{base}/models: HTTP {response.status_code}")
