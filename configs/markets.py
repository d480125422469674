"""Market definitions (`configs/markets.yaml`): universe, money, calendar, sessions and rules.

A market is data: the flow, the tools and the strategies read what they need from a `Market`,
so adding one is an entry in the YAML file (plus, at most, a data adapter).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, ValidationError, model_validator

from configs.yaml_files import named_entry, read_yaml
from models.book import TradingRules, trades_as_original
from models.costs import TradingCosts
from models.errors import ConfigError, one_line

MARKETS_FILE = Path(__file__).parent / "markets.yaml"
# The original benchmark's market, NASDAQ-100 daily: the default, and the one whose recorded
# runs this code keeps byte for byte (`Market.original`, docs/markets.md).
ORIGINAL_MARKET = "nasdaq100"
DEFAULT_MARKET = ORIGINAL_MARKET
BAR_LENGTH = timedelta(hours=1)


class Market(BaseModel):
    """One market: what is traded, in which money, when, and by which rules."""

    model_config = {"extra": "forbid"}

    name: str
    title: str
    universe: str = Field(description="a universe of configs/universes.yaml")
    currency: str
    initial_cash: float = Field(gt=0)
    calendar: Literal["XNYS", "XSHG", "ALWAYS"]
    timezone: str
    open: time = Field(description="when a daily session's orders fill, local time")
    frequency: Literal["daily", "hourly"] = "daily"
    sessions: list[time] = Field(default_factory=list, description="hourly bar labels")
    bar_label: Literal["start", "end"] = "start"
    rules: TradingRules = Field(default_factory=TradingRules)
    costs: TradingCosts | None = Field(
        default=None, description="what its orders cost (docs/markets.md); None: nothing"
    )
    schedule: str = Field(
        description="when its daily run fires (cron, in its timezone): just after the open, so "
        "a day is traded on its own open; an hourly market's, after its close"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Market:
        if self.frequency == "hourly" and not self.sessions:
            raise ValueError(f"market {self.name!r}: an hourly market needs its session labels")
        self.rules = self.rules.model_copy(update={"currency": self.currency, "costs": self.costs})
        ZoneInfo(self.timezone)  # an unknown zone fails here, not mid-run
        return self

    def with_costs(self, costs: TradingCosts | None) -> Market:
        """This market with another cost schedule (None: free fills, as the original)."""
        rules = self.rules.model_copy(update={"costs": costs})
        return self.model_copy(update={"costs": costs, "rules": rules})

    @property
    def hourly(self) -> bool:
        return self.frequency == "hourly"

    @property
    def original(self) -> bool:
        """The original benchmark's market: its portfolios' fingerprints leave the market's
        definition out, so the keys recorded before markets were configurable stay theirs."""
        return self.name == ORIGINAL_MARKET

    @property
    def original_compat(self) -> bool:
        """Whether it trades by the original's rules (daily, whole shares, T+0, USD, free fills,
        as `nasdaq100` with `costs: none`): prompt, tools and strategies then word and size
        everything as the recorded runs did."""
        return trades_as_original(self.rules, self.hourly)

    @property
    def interval(self) -> str:
        """The bar interval its sessions trade on (the store's `1d` or `60min`)."""
        return "60min" if self.hourly else "1d"

    def session_times(self, day: date) -> list[datetime]:
        """The sessions of a trading day: its bars' labels, or the day itself (at midnight)."""
        if not self.hourly:
            return [datetime.combine(day, time.min)]
        return [datetime.combine(day, label) for label in self.sessions]

    def fill_time(self, at: datetime) -> datetime:
        """When a session's orders fill (its bar's open), as an aware time in the market's zone.

        A daily session (midnight) fills at the market's open; an hourly one at its bar's start.
        """
        if not self.hourly:
            local = datetime.combine(at.date(), self.open)
        else:
            local = at - BAR_LENGTH if self.bar_label == "end" else at
        return local.replace(tzinfo=ZoneInfo(self.timezone))


@cache
def _markets() -> dict[str, Market]:
    markets: dict[str, Market] = {}
    for name, body in read_yaml(MARKETS_FILE).items():
        try:
            markets[name] = Market(name=name, **body)
        except ValidationError as exc:
            problems = one_line(exc, prefix=f"{name}.")
            raise ConfigError(f"invalid {MARKETS_FILE.name}: {problems}") from exc
    return markets


def default_market() -> Market:
    """The market a config, a request or a tool server trades when it names none."""
    return load_market(DEFAULT_MARKET)


def market_names() -> list[str]:
    return sorted(_markets())


def load_market(name: str) -> Market:
    """A market of `configs/markets.yaml`, by name."""
    return named_entry(_markets(), "market", name)


def run_interval(run_config: dict) -> str:
    """The bars a stored run traded on, from its recorded config: its market's interval (`1d`,
    `60min`), or an import's own; `1d` when it names neither."""
    if "interval" in run_config:  # an import of the original's logs says it
        return str(run_config["interval"])
    try:
        return load_market(str(run_config["market"]["name"])).interval
    except (KeyError, TypeError, ConfigError):
        return "1d"
