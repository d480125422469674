"""The core rules, called directly (no Prefect server): the catch-up planner, the portfolio key,
the replay fingerprint and the model-day cache key."""

from __future__ import annotations

from datetime import date

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from sqlmodel import Session

from agents.recording import fingerprint
from configs.loader import AppConfig
from flows.plan import plan_backtest, portfolio_key
from market_data.calendar import next_trading_day, trading_days
from market_data.synthetic import synthesize_into
from models.engine import create_store_engine, upgrade
from models.errors import PlanError
from models.tables import ModelDay, ModelDayStatus, Run
from tasks.model_day import ModelDayKey, model_day_cache_key, model_day_key

SYMBOLS = ["AAA", "BBB", "CCC"]


def _config(**changes) -> AppConfig:
    settings = {
        "name": "rules",
        "universe": SYMBOLS,
        "market": {"source": "synthetic", "seed": 3},
        "models": [
            {"name": "hold", "strategy": "equal-weight"},
            {"name": "mom", "strategy": "momentum", "params": {"top_k": 2, "lookback": 5}},
        ],
    }
    return AppConfig.model_validate({**settings, **changes})


@pytest.fixture
def store(sqlite_url: str) -> Session:
    engine = create_store_engine(sqlite_url)
    with Session(engine, expire_on_commit=False) as session:
        synthesize_into(session, SYMBOLS, date(2025, 1, 2), date(2025, 1, 31), seed=3)
        session.commit()
        yield session


def _complete(session: Session, portfolio: str, days: list[date]) -> None:
    run = Run(name="earlier")
    session.add(run)
    session.commit()
    for day in days:
        session.add(
            ModelDay(
                run_id=run.id,
                model=portfolio.split("/")[1].split("@")[0],
                portfolio=portfolio,
                day=day,
                status=ModelDayStatus.COMPLETED,
                cash_end=4_000.0,
                value_end=10_000.0,
            )
        )
    session.commit()


# --- the catch-up planner ----------------------------------------------------------------------


def test_catch_up_starts_each_model_after_its_own_last_completed_day(store: Session) -> None:
    config = _config()
    january = trading_days(date(2025, 1, 2), date(2025, 1, 31))
    hold = portfolio_key(config, config.model("hold"))
    _complete(store, hold, january[:5])

    plan = plan_backtest(store, config)

    by_model = {p.model.name: p for p in plan.models}
    assert plan.catch_up
    assert by_model["hold"].last_completed == january[4]
    assert by_model["hold"].days == january[5:]
    assert by_model["hold"].days[0] == next_trading_day(january[4])
    assert by_model["mom"].last_completed is None
    assert by_model["mom"].days == january  # never simulated: from the first priced day
    assert plan.days == january
    assert plan.last_simulated is None  # mom has completed nothing


def test_catch_up_with_everything_done_plans_no_day(store: Session) -> None:
    config = _config()
    january = trading_days(date(2025, 1, 2), date(2025, 1, 31))
    for model in config.models:
        _complete(store, portfolio_key(config, model), january)

    plan = plan_backtest(store, config)

    assert plan.days == []
    assert plan.last_simulated == january[-1]


def test_explicit_dates_ignore_completed_days_and_stop_at_the_last_price(store: Session) -> None:
    config = _config()
    hold = portfolio_key(config, config.model("hold"))
    _complete(store, hold, [date(2025, 1, 2)])

    plan = plan_backtest(store, config, date(2025, 1, 2), date(2025, 3, 31), ["hold"])

    assert [p.model.name for p in plan.models] == ["hold"]
    assert plan.days[0] == date(2025, 1, 2)  # explicit start: not shifted past completed days
    assert plan.days[-1] == date(2025, 1, 31)  # the store's last priced day caps the range
    assert date(2025, 1, 20) not in plan.days  # Martin Luther King Jr. Day: no session


@pytest.mark.parametrize(
    ("start", "end", "models", "message"),
    [
        (date(2026, 1, 5), date(2026, 1, 9), None, "no price data between"),
        (None, None, ["nobody"], "unknown model 'nobody'"),
        (date(2025, 1, 18), date(2025, 1, 20), None, "no trading day with prices"),
    ],
)
def test_unsatisfiable_triggers_are_refused(store, start, end, models, message) -> None:
    with pytest.raises(PlanError, match=message):
        plan_backtest(store, _config(), start, end, models)


def test_a_plan_describes_its_run_for_the_store(store: Session) -> None:
    config = _config()
    plan = plan_backtest(store, config, date(2025, 1, 6), date(2025, 1, 10))

    record = plan.run_record(replay=True, flow_run_id="abc")

    assert record.kind == "backtest-replay"
    assert (record.start_date, record.end_date) == (date(2025, 1, 6), date(2025, 1, 10))
    assert record.portfolios == {p.model.name: p.portfolio for p in plan.models}
    assert record.market == "synthetic-3" and record.flow_run_id == "abc"


# --- the portfolio key ---------------------------------------------------------------------------


def test_portfolio_key_names_config_and_model_and_is_stable() -> None:
    config = _config()
    key = portfolio_key(config, config.model("mom"))
    assert key.startswith("rules/mom@")
    assert key == portfolio_key(_config(), _config().model("mom"))


@pytest.mark.parametrize(
    "change",
    [
        {"initial_cash": 20_000.0},
        {"universe": [*SYMBOLS, "DDD"]},
        {"market": {"source": "synthetic", "seed": 4}},
        {"agent": {"max_steps": 5}},
        {
            "models": [
                {"name": "mom", "strategy": "momentum", "params": {"top_k": 1, "lookback": 5}}
            ]
        },
    ],
)
def test_a_change_of_behaviour_starts_a_new_portfolio(change: dict) -> None:
    before = _config()
    after = _config(**change)
    assert portfolio_key(after, after.model("mom")) != portfolio_key(before, before.model("mom"))


def test_settings_that_do_not_change_behaviour_keep_the_portfolio() -> None:
    before = _config()
    model = before.model("mom").model_copy(update={"timeout_s": 5.0, "max_retries": 9})
    assert portfolio_key(before, model) == portfolio_key(before, before.model("mom"))


# --- the replay fingerprint ----------------------------------------------------------------------


def _conversation(answer: str = '{"cash": 10000}') -> list:
    return [
        SystemMessage("rules"),
        HumanMessage("today is 2025-01-06"),
        AIMessage("", tool_calls=[{"name": "get_portfolio", "args": {}, "id": "call-1"}]),
        ToolMessage(answer, tool_call_id="call-1"),
    ]


TOOLS = [{"name": "get_portfolio"}, {"name": "buy"}]


def test_fingerprint_ignores_message_ids_and_tool_order() -> None:
    first = _conversation()
    second = _conversation()
    for message in second:
        message.id = "run-something-else"
    assert fingerprint("m", first, TOOLS) == fingerprint("m", second, list(reversed(TOOLS)))


@pytest.mark.parametrize(
    ("model", "messages", "tools"),
    [
        ("other-model", _conversation(), TOOLS),
        ("m", _conversation('{"cash": 9000}'), TOOLS),
        ("m", _conversation()[:-1], TOOLS),
        ("m", _conversation(), TOOLS[:1]),
    ],
)
def test_fingerprint_changes_with_model_messages_or_tools(model, messages, tools) -> None:
    assert fingerprint(model, messages, tools) != fingerprint("m", _conversation(), TOOLS)


# --- the model-day cache key ---------------------------------------------------------------------


def test_cache_key_follows_the_starting_book_and_the_store(store: Session, tmp_path) -> None:
    config = _config()
    portfolio = portfolio_key(config, config.model("hold"))
    engine = store.get_bind()
    day = date(2025, 1, 7)

    fresh = model_day_key(engine, portfolio, day, 10_000.0)
    assert fresh == model_day_key(engine, portfolio, day, 10_000.0)
    assert fresh.start_state != model_day_key(engine, portfolio, day, 20_000.0).start_state

    _complete(store, portfolio, [date(2025, 1, 6)])  # now the day starts from that day's book
    assert model_day_key(engine, portfolio, day, 10_000.0).start_state != fresh.start_state

    other_store = create_store_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other_store)
    assert model_day_key(other_store, portfolio, day, 10_000.0).store != fresh.store


def test_cache_key_of_task_parameters_is_that_of_the_key() -> None:
    key = ModelDayKey(portfolio="p@1", day=date(2025, 1, 7), start_state="s", store="db")
    day, portfolio, start_state, store = key.task_inputs()
    parameters = {
        "model": "hold",
        "day": day,
        "portfolio": portfolio,
        "start_state": start_state,
        "store": store,
        "resources": object(),  # the run does not enter the key: another run may reuse it
    }
    assert model_day_cache_key(None, parameters) == key.cache_key()
    assert model_day_cache_key(None, {**parameters, "resources": object()}) == key.cache_key()
    for field, value in [("day", date(2025, 1, 8)), ("start_state", "t"), ("store", "db2")]:
        assert model_day_cache_key(None, {**parameters, field: value}) != key.cache_key()


def test_a_store_made_again_at_the_same_path_is_another_store_to_the_cache(tmp_path) -> None:
    # Deleting the store file and running again must not take cached days for stored ones.
    url = f"sqlite:///{tmp_path / 'again.db'}"
    keys = []
    for _ in range(2):
        engine = create_store_engine(url)
        upgrade(engine)
        keys.append(model_day_key(engine, "p/m@1", date(2025, 1, 2), 10_000.0))
        assert keys[-1] == model_day_key(engine, "p/m@1", date(2025, 1, 2), 10_000.0)
        engine.dispose()
        (tmp_path / "again.db").unlink()
    assert keys[0].start_state == keys[1].start_state  # the same first day, the same book
    assert keys[0].store != keys[1].store and keys[0].cache_key() != keys[1].cache_key()
