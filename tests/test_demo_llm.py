"""`aitrader demo-llm` and `configs/demo-llm.yaml`: the real LLM path (langchain-openai, the MCP
tools, tokens, recording and replay) run end to end with no key and no network."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import update
from sqlmodel import Session, delete, select

from deployments.demo_llm import DEMO_MODELS, demo_app
from flows.backtest import backtest
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
