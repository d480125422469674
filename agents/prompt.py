"""The system prompt of a model-day: date, book, compact prices, and how to finish."""

from __future__ import annotations

from agent_tools.context import SessionContext

FINISH_SIGNAL = "<FINISH_SIGNAL>"

SYSTEM_PROMPT = """You are a {asset} trading agent managing a long-only portfolio of \
{universe_name}.
Goal: maximise long-term return. Think with the tools: read prices, news and your portfolio,
then act. You do not need permission; trades happen only through the buy and sell tools, never
by writing them in text.

Rules: {rules}

{now}.
Cash: {cash:.2f}
Holdings ({unit}): {holdings}
Prices, one per symbol as previous close -> today's open (your fill price):
{prices}

When you are done for today, answer with a short summary and {finish}."""


# The wording under the original's rules (`SessionContext.original_compat`), kept as it was so
# recorded runs replay unchanged.
WHOLE_SHARES_RULES = """orders are for whole shares and fill completely at today's open; \
no short selling, no
margin, no fees; cash may not go below zero. You cannot see anything after today's open."""


def rules_text(context: SessionContext) -> str:
    """The market's order rules in the words the agent reads."""
    if context.original_compat:
        return WHOLE_SHARES_RULES
    rules = context.rules
    when = (
        "this session's open (the open of the current hourly bar)"
        if context.hourly
        else ("today's open")
    )
    fees = "" if rules.costs else " no fees;"
    return (
        f"orders fill completely at {when}; no short selling, no margin;{fees} cash may not "
        f"go below zero. {rules.describe()} You cannot see anything after {when}."
    )


def system_prompt(context: SessionContext, universe_name: str | None = None) -> str:
    """The prompt for `context`'s session, with every price taken from its market view."""
    lines = []
    for symbol in context.universe:
        previous = context.market.previous_close(symbol)
        today = context.market.today(symbol).open
        close_text = _price(previous[0]) if previous else "n/a"
        open_text = _price(today) if today is not None else "n/a"
        lines.append(f"{symbol} {close_text}->{open_text}")
    book = context.trading.portfolio
    holdings = ", ".join(f"{s} {n}" for s, n in sorted(book.positions.items())) or "none"
    return SYSTEM_PROMPT.format(
        asset="crypto" if context.rules.quantity == "fractional" else "stock",
        unit="units" if context.rules.quantity == "fractional" else "shares",
        universe_name=universe_name or context.title,
        rules=rules_text(context),
        now=f"Now is {context.at:%Y-%m-%d %H:%M}, an hourly session"
        if context.hourly
        else (f"Today is {context.day}"),
        cash=book.cash,
        holdings=holdings,
        prices="; ".join(lines),
        finish=FINISH_SIGNAL,
    )


def _price(value: float) -> str:
    """A price as the data has it (up to 4 decimals), without trailing zeros."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def first_message(context: SessionContext) -> str:
    if context.hourly:
        return f"Please analyse and update your positions for the {context.at:%H:%M} session."
    return f"Please analyse and update today's ({context.day}) positions."
