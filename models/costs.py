"""What an order costs beyond its price: commission, taxes, exchange fees and slippage.

A market's schedule (`configs/markets.yaml`, its sources cited in docs/markets.md) prices each
order on its value at the open:

    commission  per share (US brokers) or a share of the value (A-share brokers, crypto taker
                fees), at least `commission_min` an order, at most `commission_max_rate` of
                its value (the cap wins over the minimum, as brokers apply them)
    sell tax    a share of a sale's value (the A-share stamp duty); buys pay none
    fees        a share of the value on both sides (the A-share transfer fee)
    slippage    `slippage_bps` of the value on both sides: what a fill loses against the open

Every part is paid in the market's currency out of cash. A fill keeps the open as its price and
records its cost, so cash always equals the fills' values minus their costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

BASIS_POINT = 1e-4


class OrderCost(BaseModel):
    """An order's costs, by kind, in the market's currency."""

    commission: float = 0.0
    taxes: float = 0.0
    fees: float = 0.0
    slippage: float = 0.0

    @property
    def total(self) -> float:
        return self.commission + self.taxes + self.fees + self.slippage


class TradingCosts(BaseModel):
    """A market's cost schedule: what a buy or a sell of a given value pays."""

    model_config = {"extra": "forbid", "frozen": True}

    commission_per_share: float = Field(default=0.0, ge=0, description="per share (or unit)")
    commission_rate: float = Field(default=0.0, ge=0, lt=0.1, description="share of the value")
    commission_min: float = Field(default=0.0, ge=0, description="per order, in the currency")
    commission_max_rate: float | None = Field(
        default=None, gt=0, lt=1, description="the commission's cap, as a share of the value"
    )
    sell_tax_rate: float = Field(default=0.0, ge=0, lt=0.1, description="stamp duty on sales")
    fee_rate: float = Field(default=0.0, ge=0, lt=0.1, description="exchange fees, both sides")
    slippage_bps: float = Field(default=0.0, ge=0, le=500, description="against the open")

    def order_cost(self, side: Literal["buy", "sell"], quantity: float, price: float) -> OrderCost:
        """The costs of buying or selling `quantity` at `price`."""
        value = quantity * price
        commission = quantity * self.commission_per_share + value * self.commission_rate
        commission = max(commission, self.commission_min)
        if self.commission_max_rate is not None:
            commission = min(commission, value * self.commission_max_rate)
        return OrderCost(
            commission=commission,
            taxes=value * self.sell_tax_rate if side == "sell" else 0.0,
            fees=value * self.fee_rate,
            slippage=value * self.slippage_bps * BASIS_POINT,
        )

    def describe(self, currency: str) -> str:
        """The schedule in one sentence an agent can act on."""
        parts = []
        per_share = f"{self.commission_per_share:g} {currency} a share"
        rate = _percent(self.commission_rate)
        if self.commission_per_share and self.commission_rate:
            commission = f"{per_share} plus {rate} of its value"
        elif self.commission_per_share or not self.commission_rate:
            commission = per_share
        else:
            commission = f"{rate} of its value"
        limits = []
        if self.commission_min:
            limits.append(f"at least {self.commission_min:.2f} {currency}")
        if self.commission_max_rate is not None:
            limits.append(f"at most {_percent(self.commission_max_rate)} of its value")
        if limits:
            commission += f" ({', '.join(limits)})"
        if self.commission_per_share or self.commission_rate or self.commission_min:
            parts.append(f"a commission of {commission}")
        if self.sell_tax_rate:
            parts.append(f"a stamp duty of {_percent(self.sell_tax_rate)} of a sale's value")
        if self.fee_rate:
            parts.append(f"exchange fees of {_percent(self.fee_rate)} of its value")
        if self.slippage_bps:
            parts.append(f"slippage of {self.slippage_bps:g} bp of its value against the open")
        if not parts:
            return "Orders cost nothing beyond their price."
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        return f"Each order pays {listed}, out of cash; a buy must leave room for its costs."


def buy_total(quantity: float, price: float, costs: TradingCosts | None) -> float:
    """What buying `quantity` at `price` takes from cash, costs included."""
    value = price * quantity
    return value if costs is None else value + costs.order_cost("buy", quantity, price).total


def affordable_steps(
    budget: float,
    price: float,
    amount: Callable[[int], float],
    costs: TradingCosts | None,
    epsilon: float = 0.0,
) -> int:
    """The most order steps (shares, lots or coin decimals; `amount(n)` is n steps' quantity)
    whose buy at `price`, costs included, `budget` pays for."""
    if budget <= 0 or price <= 0:
        return 0
    high = math.floor((budget + epsilon) / (price * amount(1)))  # costs only lower it
    low = 0
    while low < high:  # every cost grows with the quantity: bisect for the last that fits
        middle = (low + high + 1) // 2
        if buy_total(amount(middle), price, costs) <= budget + epsilon:
            low = middle
        else:
            high = middle - 1
    return low


def _percent(rate: float) -> str:
    return f"{rate * 100:.4f}".rstrip("0").rstrip(".") + "%"
