"""A book's shapes: the cash and positions a portfolio holds, and the fills that change them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Side = Literal["buy", "sell"]


class Portfolio(BaseModel):
    """Cash and whole-share positions (symbols with zero shares are dropped)."""

    cash: float = Field(ge=0)
    positions: dict[str, int] = Field(default_factory=dict)

    def shares(self, symbol: str) -> int:
        return self.positions.get(symbol, 0)


class Fill(BaseModel):
    """An executed order."""

    seq: int
    side: Side
    symbol: str
    shares: int
    price: float
    cash_after: float

    @property
    def notional(self) -> float:
        return self.shares * self.price
