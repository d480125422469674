"""Trading costs: each market's schedule against hand-computed fills, the book under any order
sequence with costs on, what the tools and the prompt say, and free fills kept as recorded."""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import date, datetime, time
from pathlib import Path

import fastmcp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from agent_tools.context import SessionContext
from agent_tools.servers import build_server
from agent_tools.trading_rules import TradingSession
from agents.prompt import WHOLE_SHARES_RULES, rules_text
from analysis.statistics import pairwise_tests, scenario_pairwise_tests
from configs.loader import AppConfig, load_config
from configs.markets import load_market, market_names
from deployments.cli import app
from flows.plan import portfolio_key
from models.book import Portfolio
from models.costs import TradingCosts, affordable_steps
from models.engine import dispose_engines
from models.errors import ConfigError, OrderRejected
from models.prices import DAILY, HOURLY, PriceBook, StoredBar
from tests.conftest import FinishedBacktest, sqlite_backup

OPENS = {
    "nasdaq100": {"AAPL": 255.5, "NVDA": 189.6, "MSFT": 515.25},
    "sse50": {"600028.SH": 5.57, "601398.SH": 7.21, "600036.SH": 42.35},
    "crypto": {"BTC": 110234.56, "ETH": 3890.12, "XRP": 2.4567},
}


def costs_of(market: str) -> TradingCosts:
    costs = load_market(market).costs
    assert costs is not None, f"{market} ships without costs"
    return costs


# --- 1. Each market's schedule, hand-computed ---------------------------------------------------


def test_us_commission_per_share_with_its_minimum_and_cap_and_slippage() -> None:
    us = costs_of("nasdaq100")
    small = us.order_cost("buy", 5, 200.0)  # 5 x $0.005 = $0.025: the $1 minimum
    assert (small.commission, small.taxes, small.fees) == (1.0, 0.0, 0.0)
    assert small.slippage == pytest.approx(1000.0 * 0.0005)
    large = us.order_cost("sell", 1000, 200.0)  # $5 per 1,000 shares; no US stamp duty
    assert large.commission == pytest.approx(5.0) and large.taxes == 0.0
    assert large.total == pytest.approx(5.0 + 100.0)
    tiny = us.order_cost("buy", 1, 50.0)  # the 1 % cap wins over the $1 minimum
    assert tiny.commission == pytest.approx(0.5)
    assert us == costs_of("nasdaq100-hourly")


def test_a_share_stamp_duty_is_charged_on_sells_only_with_the_five_yuan_minimum() -> None:
    cn = costs_of("sse50")
    buy = cn.order_cost("buy", 100, 10.0)  # ¥1,000: 0.025 % is ¥0.25, so the ¥5 minimum
    assert buy.commission == 5.0 and buy.taxes == 0.0
    assert buy.fees == pytest.approx(0.01) and buy.slippage == pytest.approx(0.5)
    sell = cn.order_cost("sell", 100, 10.0)
    assert sell.taxes == pytest.approx(0.5)  # 0.05 % stamp duty
    assert sell.total == pytest.approx(5.0 + 0.5 + 0.01 + 0.5)
    big = cn.order_cost("sell", 10_000, 40.0)  # ¥400,000
    assert (big.commission, big.taxes, big.fees, big.slippage) == pytest.approx(
        (100.0, 200.0, 4.0, 200.0)
    )
    assert cn == costs_of("sse50-hourly")


def test_crypto_taker_fee_applies_to_fractions_without_a_minimum() -> None:
    crypto = costs_of("crypto")
    fill = crypto.order_cost("buy", 0.0123, 60_000.0)  # $738
    assert fill.commission == pytest.approx(0.738) and fill.slippage == pytest.approx(0.369)
    assert crypto.order_cost("sell", 0.0001, 2.5).total == pytest.approx(0.00025 * 0.0015)


def test_affordable_quantities_leave_room_for_costs() -> None:
    us = costs_of("nasdaq100")
    # $1,000 at $100: 10 shares cost $1,000 + $1.50; 9 shares $900 + $1.45.
    assert affordable_steps(1000.0, 100.0, lambda n: n, us) == 9
    assert affordable_steps(1000.0, 100.0, lambda n: n, None) == 10
    assert affordable_steps(0.5, 100.0, lambda n: n, us) == 0


# --- 2. The book under any order sequence, in every market --------------------------------------

MARKETS = {
    "nasdaq100": ("nasdaq100", False),
    "nasdaq100-hourly": ("nasdaq100", True),
    "sse50": ("sse50", False),
    "sse50-hourly": ("sse50", True),
    "crypto": ("crypto", False),
}
DAY = date(2025, 10, 9)


def trading_session(market_name: str, cash: float) -> tuple[TradingSession, list[datetime]]:
    market = load_market(market_name)
    opens = OPENS[MARKETS[market_name][0]]
    times = market.session_times(DAY)
    bars = [
        StoredBar(s, ts, round(p * (1 + 0.002 * k), 4), None, None, None, None)
        for k, ts in enumerate(times)
        for s, p in opens.items()
    ]
    prices = PriceBook(bars, HOURLY if market.hourly else DAILY)
    book = Portfolio(cash=cash)
    return TradingSession(book, prices, times[0], list(opens), lambda d: True, market.rules), times


orders = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell", "next"]),
        st.integers(min_value=0, max_value=2),
        st.floats(min_value=0.0001, max_value=1.0),
    ),
    max_size=25,
)


@pytest.mark.parametrize("market_name", list(MARKETS))
@settings(max_examples=60, deadline=None)
@given(steps=orders, cash=st.sampled_from([2_000.0, 10_000.0, 100_000.0]))
def test_cash_never_goes_negative_and_the_book_equals_the_fills_minus_their_costs(
    market_name: str, steps: list, cash: float
) -> None:
    trading, times = trading_session(market_name, cash)
    rules = trading.rules
    symbols = sorted(OPENS[MARKETS[market_name][0]])
    later = iter(times[1:])
    for action, which, share in steps:
        symbol = symbols[which]
        if action == "next":
            if (at := next(later, None)) is not None:
                trading.next_session(at)
            continue
        price = trading.open_price(symbol)
        if action == "buy":
            wanted = trading.portfolio.cash * share / price
        else:
            wanted = trading.sellable(symbol) * share
        quantity = _on_the_grid(wanted, rules)
        if quantity <= 0:
            continue
        try:
            (trading.buy if action == "buy" else trading.sell)(symbol, quantity)
        except OrderRejected as exc:
            _accept_what_it_says_is_affordable(trading, symbol, str(exc))
        assert trading.portfolio.cash >= 0
    fills = trading.fills
    assert all(f.cost > 0 for f in fills)
    spent = sum((f.notional if f.side == "buy" else -f.notional) + f.cost for f in fills)
    rounding = len(fills) * 10.0**-rules.decimals if rules.quantity == "fractional" else 1e-6
    assert trading.portfolio.cash == pytest.approx(cash - spent, abs=rounding)
    for symbol in symbols:
        bought = sum(f.shares for f in fills if f.symbol == symbol and f.side == "buy")
        sold = sum(f.shares for f in fills if f.symbol == symbol and f.side == "sell")
        assert trading.portfolio.shares(symbol) == pytest.approx(bought - sold, abs=1e-9)


def _on_the_grid(quantity: float, rules) -> float:
    if rules.quantity == "fractional":
        return math.floor(quantity * 10**rules.decimals) / 10**rules.decimals
    lot = rules.lot if rules.quantity == "lots" else 1
    return int(quantity // lot) * lot


def _accept_what_it_says_is_affordable(trading: TradingSession, symbol: str, message: str) -> None:
    """A rejected buy names the most that is affordable, costs included: that order fills."""
    most = re.search(r"at most ([0-9.]+) (?:shares|units)", message)
    if not message.startswith("insufficient cash") or most is None:
        return
    quantity = float(most.group(1))
    if quantity > 0:
        fill = trading.buy(symbol, quantity)
        assert fill.cash_after >= 0


def test_a_buy_that_only_the_costs_make_unaffordable_is_refused_and_says_why() -> None:
    trading, _ = trading_session("nasdaq100", 1000.0)
    price = trading.open_price("MSFT")  # 515.25: one share, plus $1 + 5 bp, fits
    trading.buy("MSFT", 1)
    cash = trading.portfolio.cash
    assert cash == pytest.approx(1000.0 - price - 1.0 - price * 0.0005)
    exact = TradingSession(
        Portfolio(cash=price), trading.prices, trading.at, ["MSFT"], lambda d: True, trading.rules
    )
    with pytest.raises(
        OrderRejected, match=r"plus 1\.26 in costs.*at most 0 shares, costs included"
    ):
        exact.buy("MSFT", 1)
    assert exact.portfolio.cash == price and exact.fills == []


def test_a_sale_whose_minimum_commission_exceeds_its_value_and_the_cash_is_refused() -> None:
    cn = load_market("sse50")
    bar = StoredBar("600028.SH", datetime.combine(DAY, time.min), 0.03, None, None, None, None)
    book = Portfolio(cash=0.0, positions={"600028.SH": 100})
    trading = TradingSession(
        book, PriceBook([bar], DAILY), DAY, ["600028.SH"], lambda d: True, cn.rules
    )
    with pytest.raises(OrderRejected, match=r"brings 3\.00 but costs 5\.\d+"):
        trading.sell("600028.SH", 100)
    assert trading.portfolio == book


# --- 3. What the tools and the prompt say; free fills as recorded -------------------------------


def context_for(market_name: str, costs: str = "market") -> SessionContext:
    config = AppConfig(market={"name": market_name, "source": "files"}, costs=costs)
    market = config.trading_market
    trading, times = trading_session(market_name, 10_000.0)
    trading.rules = market.rules
    return SessionContext.create(
        run_id=1,
        model="m",
        portfolio="p",
        day=times[0],
        universe=list(trading.universe),
        prices=trading.prices,
        book=trading.portfolio,
        is_session_day=lambda d: True,
        trading=trading,
        fill_time=market.fill_time(times[0]),
        title=market.title,
    )


@pytest.mark.parametrize("market_name", market_names())
def test_the_prompt_states_what_a_trade_costs_in_the_markets_currency(market_name: str) -> None:
    text = rules_text(context_for(market_name))
    market = load_market(market_name)
    assert "no fees" not in text and "Each order pays a commission of" in text
    minimum = market.costs.commission_min
    assert (f"at least {minimum:.2f} {market.currency}" in text) == (minimum > 0)
    assert ("stamp duty of 0.05% of a sale's value" in text) == market_name.startswith("sse50")
    assert "slippage of 5 bp" in text


def test_nasdaq_daily_with_costs_none_keeps_its_recorded_wording_and_keys() -> None:
    context = context_for("nasdaq100", costs="none")
    assert rules_text(context) == WHOLE_SHARES_RULES
    assert context.rules.costs is None
    fill = context.trading.buy("AAPL", 2)
    assert fill.cost == 0.0 and context.trading.portfolio.cash == 10_000.0 - 2 * fill.price
    # The portfolio keys of free fills are those they had before costs existed.
    config = load_config().model_copy(update={"costs": "none"})
    keys = [portfolio_key(config, model) for model in config.models]
    assert keys == [
        "offline-default/equal-weight@4e1f62d26a",
        "offline-default/momentum@803e3b9de0",
        "offline-default/random@e277c6c397",
    ]
    sse50 = load_config("configs/sse50.yaml").model_copy(update={"costs": "none"})
    assert portfolio_key(sse50, sse50.models[0]) == "sse50/equal-weight@ca9ee12a2f"
    costed = [portfolio_key(load_config(), model) for model in config.models]
    assert not set(costed) & set(keys)


def call_tools(context: SessionContext, calls: list[tuple[str, dict]]) -> list[dict]:
    """The JSON answers of the trade tools, called through an in-memory MCP client."""

    async def ask() -> list[dict]:
        async with fastmcp.Client(build_server(context, groups=("trade",))) as client:
            return [
                json.loads((await client.call_tool(name, args)).content[0].text)
                for name, args in calls
            ]

    return asyncio.run(ask())


@pytest.mark.parametrize("costs", ["market", "none"])
def test_the_trade_tools_answer_with_each_fills_cost_and_the_schedule(costs: str) -> None:
    context = context_for("nasdaq100", costs=costs)
    book, answer = call_tools(
        context, [("get_portfolio", {}), ("buy", {"symbol": "NVDA", "shares": 3})]
    )
    if costs == "none":  # the recorded answers, byte for byte: no rules, no cost
        assert "rules" not in book and "cost" not in answer["filled"]
        return
    assert book["rules"]["costs"]["commission_min"] == 1.0
    filled = answer["filled"]
    assert filled["cost"] == pytest.approx(1.0 + 3 * filled["price"] * 5e-4)
    assert answer["cash"] == pytest.approx(10_000 - 3 * filled["price"] - filled["cost"], abs=1e-4)


def test_a_config_may_turn_costs_off_or_change_some_numbers_and_bad_ones_are_named(
    tmp_path,
) -> None:
    assert AppConfig(costs="none").trading_costs is None
    changed = AppConfig(costs={"slippage_bps": 20}).trading_costs
    assert changed.slippage_bps == 20 and changed.commission_min == 1.0
    path = tmp_path / "bad.yaml"
    path.write_text("costs: {slippage_bps: -3}\n")
    with pytest.raises(ConfigError, match="costs: slippage_bps: Input should be greater"):
        load_config(path)
    path.write_text("costs: {commision_rate: 0.001}\n")
    with pytest.raises(ConfigError, match="commision_rate: Extra inputs are not permitted"):
        load_config(path)
    path.write_text("costs: free\n")
    with pytest.raises(ConfigError, match="costs"):
        load_config(path)


# --- 4. Where results are read: the quick start's backtest, with the US costs --------------------


@pytest.mark.slow
@pytest.mark.xdist_group("quickstart-backtest")  # shares its backtest with the docs and crash tests
def test_the_leaderboard_is_net_of_costs_and_a_zero_multiplier_gives_the_gross_return(
    quickstart_backtest: FinishedBacktest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_backup(quickstart_backtest.store, tmp_path / "s.db"))
    runner = CliRunner()

    def rows(*arguments: str) -> dict[str, dict]:
        result = runner.invoke(app, ["results", *arguments, "--format", "json"])
        assert result.exit_code == 0, result.output
        return {row["model"]: row for row in json.loads(result.stdout) if row["rank"]}

    try:
        net, gross, triple = rows(), rows("--cost-multiplier", "0"), rows("--cost-multiplier", "3")
        days = runner.invoke(app, ["results", "days", "--format", "json"])
    finally:
        dispose_engines()
    paid = {model: row["costs_paid"] for model, row in net.items()}
    assert max(paid, key=paid.get) == "momentum" == max(net, key=lambda m: net[m]["trades"])
    for model, row in net.items():
        assert row["costs_paid"] > 0 and row["gross_return"] > row["return"]
        assert gross[model]["return"] == pytest.approx(row["gross_return"], abs=1e-9)
        assert gross[model]["costs_paid"] == 0
        assert triple[model]["costs_paid"] == pytest.approx(3 * row["costs_paid"])
        assert triple[model]["return"] < row["return"]
        scenarios = [row[f"return_at_{m}x"] for m in (0, 1, 2, 3)]
        assert scenarios == sorted(scenarios, reverse=True)
        assert row["return_at_1x"] == row["return"] and row["tier_at_1x"] == row["tier"]
        # The book lost exactly what the fills paid (JSON keeps returns to 6 decimals).
        start = row["final_value"] / (1 + row["return"])
        assert start * (row["gross_return"] - row["return"]) == pytest.approx(paid[model], abs=0.02)
    # docs/ranking.md: momentum is first on free fills, second with costs, last at three times.
    by_gross = sorted(net, key=lambda m: net[m]["return_at_0x"], reverse=True)
    assert by_gross[0] == "momentum" and net["momentum"]["rank"] == 2
    assert triple["momentum"]["rank"] == len(triple)
    per_day = json.loads(days.stdout)
    assert sum(d["trading_costs"] for d in per_day if d["model"] == "momentum") == pytest.approx(
        paid["momentum"]
    )


def test_cost_scenarios_are_tested_together_and_the_first_is_the_plain_test() -> None:
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2025-01-02", periods=61)
    values = {
        name: pd.Series(10_000 * np.cumprod(np.r_[1.0, 1 + rng.normal(edge, 0.01, 60)]), days)
        for name, edge in (("a", 0.004), ("b", 0.0), ("c", -0.002))
    }
    # "a" pays a cost each day: enough at 3x to lose its lead over "b".
    costly = {**values, "a": values["a"] - 3 * 40.0 * np.arange(61)}
    plain, charged = scenario_pairwise_tests([values, costly])
    assert plain == pairwise_tests(values)
    a_over_b = [
        next(p for p in pairs if p.model_a == "a" and p.model_b == "b")
        for pairs in (plain, charged)
    ]
    assert a_over_b[1].mean_difference < a_over_b[0].mean_difference
    assert [p.block_length for p in charged] == [p.block_length for p in plain]
