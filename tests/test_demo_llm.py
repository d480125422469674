"""`aitrader demo-llm` and `configs/demo-llm.yaml`: the real LLM path (langchain-openai, the MCP
tools, tokens, recording and replay) run end to end with no key and no network."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import update
from sqlmodel import Session, delete, select
from starlette.responses import JSONResponse

from deployments.demo_llm import DEMO_MODELS, demo_app
from flows.backtest import backtest
from models.engine import create_store_engine, dispose_engines
from models.tables import Holding, LLMCall, Message, ModelDay, ToolCall, Trade
from tests.conftest import served_in_thread

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("prefect_harness")
DAYS = {"start": date(2025, 1, 2), "end": date(2025, 1, 8)}


@pytest.fixture
def demo_llm() -> Iterator[str]:
    """`aitrader demo-llm`'s endpoint on a free port, in a thread; its base URL."""
    with served_in_thread(demo_app(), "/v1/models") as base:
        yield f"{base}/v1"


def shipped_config(tmp_path: Path, base_url: str) -> str:
    """configs/demo-llm.yaml as shipped, pointed at `base_url` instead of port 8011."""
    config = yaml.safe_load((ROOT / "configs" / "demo-llm.yaml").read_text())
    for model in config["models"]:
        assert model["base_url"] == "http://127.0.0.1:8011/v1" and model["api_key_env"] is None
        model["base_url"] = base_url
    path = tmp_path / "demo-llm.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def books(session: Session) -> dict[tuple[str, date], list[tuple[str, str, float, float]]]:
    rows = session.exec(select(ModelDay, Trade).join(Trade, Trade.model_day_id == ModelDay.id))
    found: dict = {}
    for day, trade in rows:
        found.setdefault((day.model, day.day), []).append(
            (trade.side, trade.symbol, trade.shares, trade.price)
        )
    return found


def test_the_demo_endpoint_runs_the_llm_path_and_replays_without_it(
    flow_store, demo_llm: str, tmp_path: Path
) -> None:
    listed = httpx.get(f"{demo_llm}/models").json()["data"]
    assert {m["id"] for m in listed} == set(DEMO_MODELS)
    config = shipped_config(tmp_path, demo_llm)
    live = asyncio.run(backtest(**DAYS, config=config, return_state=True))
    assert live.is_completed() and live.message.endswith("10 simulated, 0 already done")
    with Session(flow_store) as session:
        days = session.exec(select(ModelDay)).all()
        assert all(d.tokens_in > 0 and d.tokens_out > 0 for d in days)  # counted by the client
        priced = [d for d in days if d.model == "demo-momentum"]
        assert all(d.cost_usd > 0 for d in priced)  # the config's price per million tokens
        first_call = session.exec(select(LLMCall)).first().response["message"]["data"]
        assert first_call["tool_calls"] and first_call["usage_metadata"]["input_tokens"] > 0
        recorded = books(session)
    assert recorded[("demo-momentum", DAYS["start"])], "momentum buys on its first day"

    # Without the endpoint: the same days again, from the recorded calls alone.
    with Session(flow_store) as session:
        session.exec(update(LLMCall).values(model_day_id=None))
        for table in (Trade, Holding, Message, ToolCall, ModelDay):
            session.exec(delete(table))
        session.commit()
    config_offline = shipped_config(tmp_path, "http://127.0.0.1:9/v1")  # nothing listens there
    replay = asyncio.run(backtest(**DAYS, config=config_offline, replay=True, return_state=True))
    assert replay.is_completed() and replay.message.endswith("10 simulated, 0 already done")
    with Session(flow_store) as session:
        assert books(session) == recorded


def test_a_malformed_request_gets_a_clear_400(demo_llm: str) -> None:
    answer = httpx.post(f"{demo_llm}/chat/completions", json={"model": "gpt-9", "messages": []})
    assert answer.status_code == 400 and "demo-momentum" in answer.json()["error"]["message"]


class FlakyEndpoint:
    """An ASGI wrapper that fails every other chat call (429, 500, 503, or a stall past the
    client's timeout, in turn) and every call while it is down, for `down_s` from call
    `down_at`; the calls it lets through reach the demo endpoint."""

    def __init__(self, app, down_at: int, down_s: float, stall_s: float) -> None:
        self.app, self.down_at, self.down_s, self.stall_s = app, down_at, down_s, stall_s
        self.calls, self.failed, self.down_until = 0, 0, 0.0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            return await self.app(scope, receive, send)
        self.calls += 1
        if self.calls == self.down_at:
            self.down_until = time.monotonic() + self.down_s
        down = time.monotonic() < self.down_until
        if not down and self.calls % 2:
            return await self.app(scope, receive, send)
        self.failed += 1
        kind = 503 if down else (429, 500, 503, None)[(self.calls // 2) % 4]
        if kind is None:
            await asyncio.sleep(self.stall_s)  # the client has given up by now
            kind = 504
        response = JSONResponse({"error": {"message": f"injected {kind}"}}, status_code=kind)
        await response(scope, receive, send)


def test_an_endpoint_failing_half_its_calls_and_down_a_while_costs_no_day(
    flow_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = {"start": date(2025, 1, 2), "end": date(2025, 1, 3)}

    def configured(base_url: str) -> str:
        path = Path(shipped_config(tmp_path, base_url))
        config = yaml.safe_load(path.read_text())
        # Outages are ridden out by the session (the client itself does not retry here); the
        # shipped window is five minutes, scaled down so the test takes seconds.
        config["agent"].update(outage_window_s=20, retry_delay_s=0.05, retries=0)
        for model in config["models"]:
            model.update(max_retries=0, timeout_s=0.5)
        path.write_text(yaml.safe_dump(config))
        return str(path)

    flaky = FlakyEndpoint(demo_app(), down_at=7, down_s=2.0, stall_s=1.0)
    with served_in_thread(flaky, "/v1/models") as base:
        state = asyncio.run(backtest(**days, config=configured(f"{base}/v1"), return_state=True))
    assert state.is_completed() and state.name == "Completed", state.message
    assert state.message.endswith("4 simulated, 0 already done")
    assert flaky.failed >= flaky.calls // 2 and flaky.failed > 8
    with Session(flow_store) as session:
        assert len(session.exec(select(ModelDay)).all()) == 4  # none twice
        assert {d.status for d in session.exec(select(ModelDay))} == {"completed"}
        rough = books(session)

    # The same days against the endpoint without faults, in a store of their own.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fault-free.db'}")
    dispose_engines()
    with served_in_thread(demo_app(), "/v1/models") as base:
        state = asyncio.run(backtest(**days, config=configured(f"{base}/v1"), return_state=True))
    assert state.is_completed(), state.message
    with Session(create_store_engine(f"sqlite:///{tmp_path / 'fault-free.db'}")) as session:
        assert books(session) == rough and rough
