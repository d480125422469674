"""A book's shapes: the cash and positions a portfolio holds, and the fills that change them.

Quantities are whole numbers of shares on stock markets and fractions of a coin on crypto
markets; a whole quantity is kept as an `int` so a stock book never shows `5.0` shares.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from models.costs import TradingCosts

Side = Literal["buy", "sell"]
# Float arithmetic on cash must not turn "exactly affordable" into "insufficient".
CASH_EPSILON = 1e-9


def as_quantity(value: float) -> int | float:
    """`value` as an int when it is whole (stock shares), else the float (a coin fraction)."""
    return int(value) if float(value).is_integer() else float(value)


Quantity = Annotated[int | float, AfterValidator(as_quantity)]


class Portfolio(BaseModel):
    """Cash and positions (symbols with zero quantity are dropped)."""

    cash: float = Field(ge=0)
    positions: dict[str, Quantity] = Field(default_factory=dict)

    def shares(self, symbol: str) -> int | float:
        return self.positions.get(symbol, 0)


class Fill(BaseModel):
    """An executed order."""

    seq: int
    side: Side
    symbol: str
    shares: Quantity
    price: float
    cash_after: float
    session_at: datetime | None = None  # the session it filled in, exchange local time
    cost: float = 0.0  # commission, taxes, fees and slippage, paid out of cash

    @property
    def notional(self) -> float:
        return self.shares * self.price


class TradingRules(BaseModel):
    """How a market sizes and settles orders: whole shares, lots or coin fractions; T+0 or T+1."""

    model_config = {"extra": "forbid"}

    quantity: Literal["whole", "lots", "fractional"] = "whole"
    lot: int = Field(default=100, ge=1, description="shares per lot, for quantity=lots")
    decimals: int = Field(default=4, ge=0, le=8, description="for quantity=fractional")
    settlement: Literal["T+0", "T+1"] = "T+0"
    currency: str = "USD"
    costs: TradingCosts | None = Field(default=None, description="None: every fill is free")

    def describe(self) -> str:
        """The rules in one sentence an agent can act on."""
        sizes = {
            "whole": "whole shares",
            "lots": f"multiples of {self.lot} shares (one lot), for buys and sells alike",
            "fractional": f"any positive amount, to {self.decimals} decimal places",
        }[self.quantity]
        settle = (
            "; what you buy on a trading day cannot be sold before the next trading day (T+1)"
            if self.settlement == "T+1"
            else ""
        )
        text = f"Order quantities: {sizes}{settle}. Prices and cash are in {self.currency}."
        return text if self.costs is None else f"{text} {self.costs.describe(self.currency)}"


def trades_as_original(rules: TradingRules, hourly: bool) -> bool:
    """Whether a session trades as the original benchmark's NASDAQ-100 daily market did (daily,
    whole shares, T+0, USD, free fills): its prompt, tool answers and built-in strategies then
    keep the recorded runs' wording and sizing, byte for byte (docs/markets.md)."""
    return not hourly and rules == TradingRules()
