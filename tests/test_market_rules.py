"""Market rules under any order sequence, and the built-in strategies trading in every market.

The properties run `TradingSession` directly on small in-memory price books: A-share lots and
per-day T+1 (daily and hourly), crypto amounts and cash kept to 4 decimals, NASDAQ-100 whole
shares. The strategy runs drive the real MCP tools through `converse`, session by session as an
agent session does, on synthetic prices, and require every order to be accepted.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, ToolMessage

from agent_tools.context import SessionContext
from agent_tools.trading_rules import TradingSession
from agents.conversation import converse
from agents.recording import RecordingChatModel
from agents.session import session_times
from agents.strategies import FINISH_SIGNAL, build_strategy
from configs.loader import AgentConfig, load_universe
from configs.markets import Market, load_market
from market_data.calendar import calendar
from models.book import Fill, Portfolio, TradingRules
from models.errors import OrderRejected
from models.prices import DAILY, HOURLY, PriceBook, StoredBar

A_SHARES = TradingRules(quantity="lots", lot=100, settlement="T+1", currency="CNY")
CRYPTO = TradingRules(quantity="fractional", decimals=4, currency="USDT")
CN_DAY, CN_NEXT = date(2025, 10, 9), date(2025, 10, 10)
CN_HOURS = [time(10, 30), time(11, 30), time(14, 0), time(15, 0)]
# A-share opens: ¥1,450 makes one lot (¥145,000) dearer than the whole book.
CN_OPENS = {"600028.SH": 5.57, "601398.SH": 7.21, "600036.SH": 42.35, "600519.SH": 1450.0}
COIN_OPENS = {"BTC": 110234.56, "ETH": 3890.12, "XRP": 2.4567, "ADA": 0.5731}
US_OPENS = {"AAPL": 255.5, "NVDA": 189.6, "MSFT": 515.25}


def price_book(opens: dict[str, float], times: list[datetime], interval: str) -> PriceBook:
    """Bars at `times` whose opens drift a little from `opens`, so each session prices anew."""
    bars = []
    for k, ts in enumerate(times):
        for symbol, base in opens.items():
            price = round(base * (1 + 0.003 * k), 4)
            bars.append(StoredBar(symbol, ts, price, price * 1.01, price * 0.99, price, 1e6))
    return PriceBook(bars, interval)


def session(book: Portfolio, prices: PriceBook, at: datetime, rules: TradingRules):
    universe = sorted({s for s in [*CN_OPENS, *COIN_OPENS, *US_OPENS] if prices.has_symbol(s)})
    return TradingSession(book, prices, at, universe, lambda d: True, rules)


def cn_times(hourly: bool) -> list[datetime]:
    days = (CN_DAY, CN_NEXT)
    if not hourly:
        return [datetime.combine(d, time.min) for d in days]
    return [datetime.combine(d, t) for d in days for t in CN_HOURS]


# --- 1. A-shares: lots on both sides, and T+1 per trading day, whatever the orders --------------

quantities = st.one_of(
    st.integers(min_value=1, max_value=40).map(lambda n: n * 100),  # whole lots, mostly fillable
    st.integers(min_value=-200, max_value=5_000),
    st.floats(min_value=-1, max_value=3_000, allow_nan=False),
    st.sampled_from(["200", "150", " 300 ", "lots", 0, True, float("nan")]),
)
cn_steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["buy", "sell"]), st.sampled_from(list(CN_OPENS)), quantities),
        st.just(("next", "", 0)),  # hourly: on to the day's next session
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    hourly=st.booleans(),
    cash=st.floats(min_value=0, max_value=150_000, allow_nan=False),
    held=st.dictionaries(
        st.sampled_from(list(CN_OPENS)), st.integers(0, 20).map(lambda n: n * 100)
    ),
    steps=cn_steps,
)
def test_a_share_lots_and_t1_hold_for_any_order_sequence(hourly, cash, held, steps) -> None:
    prices = price_book(CN_OPENS, cn_times(hourly), HOURLY if hourly else DAILY)
    start = Portfolio(cash=cash, positions={s: n for s, n in held.items() if n})
    day_sessions = [t for t in cn_times(hourly) if t.date() == CN_DAY]
    trading = session(start, prices, day_sessions[0], A_SHARES)
    later = iter(day_sessions[1:])
    sold: dict[str, int] = {}
    for action, symbol, shares in steps:
        if action == "next":
            at = next(later, None)
            if at is not None:
                trading.next_session(at)
            continue
        book, fills, bought = trading.portfolio, list(trading.fills), dict(trading.bought_today)
        try:
            fill = getattr(trading, action)(symbol, shares)
        except OrderRejected:
            assert trading.portfolio == book and trading.fills == fills  # nothing changed
            assert trading.bought_today == bought
            continue
        assert isinstance(fill.shares, int) and fill.shares > 0 and fill.shares % 100 == 0
        assert trading.portfolio.cash >= 0
        if action == "sell":
            sold[symbol] = sold.get(symbol, 0) + fill.shares
        # T+1: whatever was bought today, only the start-of-day holding may have been sold.
        for s in CN_OPENS:
            assert sold.get(s, 0) <= start.shares(s)
            assert trading.sellable(s) == start.shares(s) - sold.get(s, 0)
    end = trading.portfolio
    assert all(n % 100 == 0 for n in end.positions.values())
    # The next trading day, built from the end-of-day book, may sell everything.
    tomorrow = session(
        end, prices, next(t for t in prices.times() if t.date() == CN_NEXT), A_SHARES
    )
    for symbol, shares in sorted(end.positions.items()):
        assert tomorrow.sellable(symbol) == shares
        tomorrow.sell(symbol, shares)
    assert tomorrow.portfolio.positions == {}


def test_a_share_shares_bought_in_one_hourly_session_wait_for_the_next_day() -> None:
    prices = price_book(CN_OPENS, cn_times(True), HOURLY)
    first, second = (datetime.combine(CN_DAY, t) for t in CN_HOURS[:2])
    trading = session(
        Portfolio(cash=100_000.0, positions={"601398.SH": 300}), prices, first, A_SHARES
    )
    trading.buy("601398.SH", 1_000)
    trading.next_session(second)
    with pytest.raises(OrderRejected, match="T\\+1 settlement"):
        trading.sell("601398.SH", 400)  # 300 held since yesterday; the 1,000 are today's
    with pytest.raises(OrderRejected, match="multiple of 100"):
        trading.sell("601398.SH", 250)
    trading.sell("601398.SH", 300)
    assert trading.sellable("601398.SH") == 0 and trading.portfolio.shares("601398.SH") == 1_000


# --- 2. crypto: amounts and cash keep their 4 decimals ------------------------------------------

coin_steps = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell", "buy_all", "sell_part"]),
        st.sampled_from(list(COIN_OPENS)),
        st.one_of(
            st.floats(min_value=0, max_value=1.2, allow_nan=False),
            st.floats(min_value=1e-7, max_value=1e-3),
            st.integers(min_value=0, max_value=20),
        ),
    ),
    max_size=40,
)


def _coin_amount(trading: TradingSession, action: str, symbol: str, x: float) -> object:
    """An order amount: as drawn, or a part `x` of what the cash buys (unrounded, so it may round
    above the cash) or of the holding."""
    if action == "buy_all":
        return trading.portfolio.cash * min(x, 1.0) / trading.open_price(symbol)
    if action == "sell_part":
        return trading.portfolio.shares(symbol) * min(x, 1.0)
    return x


@settings(max_examples=150, deadline=None)
@given(
    cash=st.integers(min_value=0, max_value=10**9).map(lambda n: n / 10**4),
    held=st.dictionaries(
        st.sampled_from(list(COIN_OPENS)), st.integers(0, 10**6).map(lambda n: n / 10**4)
    ),
    steps=coin_steps,
)
def test_crypto_amounts_and_cash_keep_four_decimals(cash, held, steps) -> None:
    at = datetime(2025, 11, 2)
    prices = price_book(COIN_OPENS, [at], DAILY)
    trading = session(
        Portfolio(cash=cash, positions={s: n for s, n in held.items() if n}), prices, at, CRYPTO
    )
    for action, symbol, x in steps:
        book = trading.portfolio
        amount = _coin_amount(trading, action, symbol, x)
        try:
            fill = getattr(trading, action.split("_")[0])(symbol, amount)
        except OrderRejected:
            assert trading.portfolio == book
            continue
        after = trading.portfolio
        assert after.cash >= 0 and after.cash == round(after.cash, 4)
        assert all(n > 0 and n == round(n, 4) for n in after.positions.values())
        assert fill.shares == round(fill.shares, 4) and fill.cash_after == after.cash
        if fill.side == "buy":
            assert fill.price * fill.shares <= book.cash + 1e-9  # never more than the cash
        else:
            assert fill.shares <= book.shares(symbol)


def test_crypto_rounds_amounts_to_four_decimals_and_refuses_dust() -> None:
    at = datetime(2025, 11, 2)
    trading = session(Portfolio(cash=50_000.0), price_book(COIN_OPENS, [at], DAILY), at, CRYPTO)
    assert trading.buy("BTC", 0.123456).shares == 0.1235
    with pytest.raises(OrderRejected, match="rounds to 0"):
        trading.buy("ADA", 0.00004)
    trading.sell("BTC", 0.1235)  # T+0: today's buy may be sold today
    assert trading.portfolio.positions == {} and trading.portfolio.cash == 50_000.0


# --- 3. NASDAQ-100: whole shares, T+0, as before -----------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    shares=st.one_of(
        st.integers(min_value=1, max_value=30),
        st.floats(min_value=0.01, max_value=30).filter(lambda x: not x.is_integer()),
    ),
    hourly=st.booleans(),
)
def test_nasdaq_trades_whole_shares_and_may_sell_todays_buys(shares, hourly) -> None:
    market = load_market("nasdaq100-hourly" if hourly else "nasdaq100")
    # Whole shares, T+0, USD; the US broker's costs.
    assert market.rules.model_copy(update={"costs": None}) == TradingRules()
    first = datetime(2025, 10, 2, 10) if hourly else datetime(2025, 10, 2)
    times = [first, first + timedelta(hours=1)] if hourly else [first]
    prices = price_book(US_OPENS, times, HOURLY if hourly else DAILY)
    trading = session(Portfolio(cash=20_000.0), prices, first, market.rules)
    if not float(shares).is_integer():
        with pytest.raises(OrderRejected, match="whole number"):
            trading.buy("AAPL", shares)
        return
    bought = trading.buy("AAPL", shares)
    assert isinstance(bought.shares, int) and trading.sellable("AAPL") == shares
    if hourly:
        trading.next_session(times[1])
    sold = trading.sell("AAPL", shares)  # T+0: today's buy may be sold today
    assert trading.portfolio.positions == {} and isinstance(sold.shares, int)
    assert bought.cost > 0 and sold.cost > 0
    expected = 20_000.0 - bought.notional + sold.notional - bought.cost - sold.cost
    assert math.isclose(trading.portfolio.cash, expected, abs_tol=1e-9)


# --- the built-in strategies in every market, through the real tools --------------------------

AGENT = AgentConfig(max_steps=8, tool_groups=["prices", "trade"])
UNIVERSES = {
    "nasdaq100": {"AAPL": 255.0, "MSFT": 515.0, "NVDA": 189.0, "AMZN": 220.0, "COST": 915.0},
    "sse50": {
        "600028.SH": 5.57,
        "601398.SH": 7.21,
        "601988.SH": 5.33,
        "600900.SH": 28.4,
        "600036.SH": 42.35,
        "601318.SH": 55.1,
        "688981.SH": 110.2,
        "600519.SH": 1450.0,  # one lot costs more than the whole book
    },
    "crypto10": {
        "BTC": 110234.56,
        "ETH": 3890.12,
        "XRP": 2.4567,
        "SOL": 185.3,
        "ADA": 0.5731,
        "LINK": 16.52,
        "DOT": 3.087,
    },
}
# Each market's days: ten of history (momentum's lookback), then the traded ones.
TRADED = {
    "nasdaq100": (date(2025, 10, 1), 3),
    "nasdaq100-hourly": (date(2025, 10, 1), 2),
    "sse50": (date(2025, 10, 9), 4),
    "sse50-hourly": (date(2025, 10, 9), 3),
    "crypto": (date(2025, 10, 31), 10),  # Friday to Sunday a week later: two weekends
}
STRATEGY_PARAMS = {
    "equal-weight": {},
    "momentum": {"top_k": 3, "lookback": 5, "rebalance_every": 1},
    "random": {"seed": 3, "trade_probability": 1.0, "max_orders": 4},
}


def market_days(market: Market) -> tuple[list[date], list[date]]:
    """The market's history days (ten) and traded days, from its own calendar."""
    first, count = TRADED[market.name]
    sessions = calendar(market.calendar).trading_days(
        first - timedelta(days=30), first + timedelta(days=30)
    )
    start = sessions.index(first)
    return sessions[start - 10 : start], sessions[start : start + count]


def synthetic_prices(market: Market) -> PriceBook:
    """A seeded random walk: a bar per symbol at every session of the history and traded days."""
    rng = random.Random(market.name)
    history, traded = market_days(market)
    bars = []
    for symbol, base in UNIVERSES[market.universe].items():
        price = base
        for day in [*history, *traded]:
            for at in market.session_times(day):
                open_ = round(price * (1 + rng.gauss(0, 0.01)), 4)
                price = round(open_ * (1 + rng.gauss(0, 0.02)), 4)
                bars.append(
                    StoredBar(symbol, at, open_, max(open_, price), min(open_, price), price, 1e6)
                )
    return PriceBook(bars, market.interval)


@dataclass
class SessionRun:
    at: datetime
    start: Portfolio  # the book at the start of the trading day
    fills: list[Fill]
    messages: list
    finished: bool


async def _run_market(
    market: Market, strategy: str, prices: PriceBook, params: dict | None = None
) -> list[SessionRun]:
    """The strategy's sessions over the market's traded days, as an agent session runs them:
    one conversation per session, the same model throughout, the book carried across."""
    model = build_strategy(strategy, f"{strategy}-test", params or STRATEGY_PARAMS[strategy])
    universe = list(prices.symbols)
    is_session_day = calendar(market.calendar).is_trading_day
    book, runs = Portfolio(cash=market.initial_cash), []
    for day in market_days(market)[1]:
        context = None
        for at in session_times(market, prices, day, universe):
            context = SessionContext.create(
                run_id=1,
                model=strategy,
                portfolio=f"test/{strategy}",
                day=at,
                universe=universe,
                prices=prices,
                book=book,
                is_session_day=is_session_day,
                rules=market.rules,
                trading=context.trading if context else None,
                fill_time=market.fill_time(at),
                title=market.title,
            )
            done = len(context.trading.fills)
            recorder = RecordingChatModel(model_name=f"{strategy}-test", inner=model)
            conversation = await converse(context, AGENT, recorder)
            assert conversation.error is None, conversation.error
            fills = context.trading.fills[done:]
            runs.append(SessionRun(at, book, fills, conversation.transcript, conversation.finished))
        book = context.trading.portfolio
    return runs


@pytest.fixture(scope="module")
def market_runs() -> dict[tuple[str, str], list[SessionRun]]:
    """Every strategy's sessions in every market (computed once, checked by the tests below)."""
    runs = {}
    for name in TRADED:
        market = load_market(name)
        prices = synthetic_prices(market)
        for strategy in STRATEGY_PARAMS:
            runs[name, strategy] = asyncio.run(_run_market(market, strategy, prices))
    return runs


def _orders(run: SessionRun) -> list[dict]:
    return [
        c
        for m in run.messages
        if isinstance(m, AIMessage)
        for c in m.tool_calls
        if c["name"] in ("buy", "sell")
    ]


@pytest.mark.parametrize("name", list(TRADED))
def test_builtin_strategies_orders_are_all_accepted(market_runs, name) -> None:
    rules = load_market(name).rules
    for strategy in STRATEGY_PARAMS:
        runs = market_runs[name, strategy]
        assert sum(len(r.fills) for r in runs) > 0, f"{strategy} never traded in {name}"
        for run in runs:
            rejected = [
                m.text for m in run.messages if isinstance(m, ToolMessage) and m.status == "error"
            ]
            assert not rejected, f"{strategy} in {name} at {run.at}: {rejected}"
            assert run.finished and FINISH_SIGNAL in run.messages[-1].text
            assert len(_orders(run)) == len(run.fills)
            for fill in run.fills:
                if rules.quantity == "lots":
                    assert isinstance(fill.shares, int) and fill.shares % rules.lot == 0
                elif rules.quantity == "fractional":
                    assert fill.shares == round(fill.shares, rules.decimals)
                else:
                    assert isinstance(fill.shares, int)
                assert fill.cash_after >= 0


@pytest.mark.parametrize("name", ["sse50", "sse50-hourly"])
def test_a_share_strategies_sell_only_start_of_day_holdings(market_runs, name) -> None:
    for strategy in STRATEGY_PARAMS:
        by_day: dict[date, list[SessionRun]] = {}
        for run in market_runs[name, strategy]:
            by_day.setdefault(run.at.date(), []).append(run)
        for runs in by_day.values():
            sold: dict[str, int] = {}
            for fill in (f for r in runs for f in r.fills if f.side == "sell"):
                sold[fill.symbol] = sold.get(fill.symbol, 0) + fill.shares
            start = runs[0].start
            assert all(n <= start.shares(s) for s, n in sold.items()), (strategy, sold, start)
        bought = {f.symbol for r in market_runs[name, strategy] for f in r.fills if f.side == "buy"}
        assert "600519.SH" not in bought  # one lot is dearer than the book


@pytest.mark.parametrize("name", list(TRADED))
def test_equal_weight_holds_under_5_percent_cash_after_its_first_session(market_runs, name):
    first = market_runs[name, "equal-weight"][0]
    cash = first.fills[-1].cash_after
    invested = sum(fill.notional for fill in first.fills)  # at the fill prices
    assert cash < 0.05 * (cash + invested), (name, cash, invested)


def test_hourly_equal_weight_buys_once_and_momentum_trades_in_first_sessions(market_runs) -> None:
    for name in ("nasdaq100-hourly", "sse50-hourly"):
        equal = market_runs[name, "equal-weight"]
        assert equal[0].fills and all(not r.fills for r in equal[1:])
        momentum = market_runs[name, "momentum"]
        first_sessions = {
            min(r.at for r in momentum if r.at.date() == d) for d in {r.at.date() for r in momentum}
        }
        assert momentum[0].fills
        for run in momentum:
            if run.at not in first_sessions:
                assert not run.fills and "first session" in run.messages[-1].text


def test_hourly_random_orders_differ_from_session_to_session(market_runs) -> None:
    for name in ("nasdaq100-hourly", "sse50-hourly"):
        runs = market_runs[name, "random"]
        for day in {r.at.date() for r in runs}:
            orders = [
                tuple((c["name"], c["args"]["symbol"], c["args"]["shares"]) for c in _orders(r))
                for r in runs
                if r.at.date() == day
            ]
            assert len(set(orders)) > 1, f"{name} {day}: every session placed {orders[0]}"


def test_crypto_momentum_rebalances_every_n_sessions_weekends_included() -> None:
    market = load_market("crypto")
    prices = synthetic_prices(market)
    every = 3
    params = {"top_k": 3, "lookback": 5, "rebalance_every": every}
    model_runs = asyncio.run(_run_market(market, "momentum", prices, params))
    rebalanced = [
        r.at.date() for r in model_runs if "rebalancing to the top" in r.messages[-1].text
    ]
    days = [r.at.date() for r in model_runs]
    epoch = date(1970, 1, 5)
    expected = [days[0]] + [d for d in days[1:] if (d - epoch).days % every == 0]
    assert rebalanced == expected
    assert any(d.weekday() >= 5 for d in rebalanced), "a weekend session rebalanced"
    assert all(b - a == timedelta(days=every) for a, b in pairwise(rebalanced[1:]))
    for run in model_runs:
        if run.at.date() not in expected:
            assert "not a rebalance day (every 3 days)" in run.messages[-1].text


@pytest.mark.parametrize("name", ["sse50", "sse50-hourly", "crypto"])
def test_index_weight_buys_the_index_weights_once_and_is_invested(name) -> None:
    market = load_market(name)
    prices = synthetic_prices(market)
    published = load_universe(market.universe).weights or {}
    weights = {s: w for s, w in published.items() if s in UNIVERSES[market.universe]}
    runs = asyncio.run(_run_market(market, "index-weight", prices, {"weights": weights}))
    first = runs[0]
    assert {fill.symbol for fill in first.fills} <= set(weights) and first.fills
    assert all(not run.fills for run in runs[1:])  # bought once, then held
    cash = first.fills[-1].cash_after
    held = {fill.symbol: fill.notional for fill in first.fills}
    book = cash + sum(held.values())
    assert cash < 0.05 * book, (name, cash, book)
    # Weights kept: no name is short of its index share by more than one lot (a coin market:
    # 1 %); a name whose lot is dearer than the book gives its share away to the others.
    total = sum(weights.values())
    lots = market.rules.quantity == "lots"
    for symbol, value in held.items():
        price = next(f.price for f in first.fills if f.symbol == symbol)
        slack = price * market.rules.lot if lots else 0.01 * value
        assert value >= book * weights[symbol] / total - slack * 1.01, (name, symbol, value)
    unbought = {s for s in weights if s not in held}
    assert all(prices.bar_at(s, first.at).open * market.rules.lot > book for s in unbought)
    assert not unbought or lots


def test_the_shipped_index_weights_are_the_published_ones(shared_data) -> None:
    import csv
    import re

    with open(shared_data / "sse50_daily" / "sse_50_weight.csv", encoding="utf-8") as handle:
        published = {row["con_code"]: float(row["weight"]) for row in csv.DictReader(handle)}
    sse50 = load_universe("sse50")
    assert sse50.weights == published and set(published) == set(sse50.symbols)
    cd5 = json.loads((shared_data / "crypto_daily" / "CD5_crypto_index.json").read_text())
    described = cd5["Meta Data"]["1. Information"]
    stated = {coin: float(w) for coin, w in re.findall(r"(\w+): ([\d.]+)%", described)}
    assert load_universe("crypto10").weights == stated
