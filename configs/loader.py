"""Load and validate the shipped configuration files (and users' own)."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from configs.cutoffs import parse_cutoff
from configs.markets import DEFAULT_MARKET, Market, load_market
from configs.yaml_files import named_entry, read_yaml
from models.costs import TradingCosts
from models.errors import ConfigError, one_line

CONFIG_DIR = Path(__file__).parent
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
UNIVERSES_FILE = CONFIG_DIR / "universes.yaml"
# The most independent trials of every model one backtest runs.
MAX_TRIALS = 100
# An original AI-Trader config's agent class names the market it trades.
AITRADER_AGENT_MARKETS = {
    "BaseAgent": "nasdaq100",
    "BaseAgent_Hour": "nasdaq100-hourly",
    "BaseAgentAStock": "sse50",
    "BaseAgentAStock_Hour": "sse50-hourly",
    "BaseAgentCrypto": "crypto",
}


# The built-in strategy that buys a universe's index weights; a config naming it without
# `params.weights` gets the universe's (agents/strategies registers it under this name).
INDEX_WEIGHT_STRATEGY = "index-weight"


class Universe(BaseModel):
    """A named list of tradable symbols and the benchmark they are measured against."""

    name: str
    symbols: list[str]
    benchmark: str
    # The index's published weights (any positive scale) and their date, where the data has them:
    # what the `index-weight` baseline buys.
    weights: dict[str, float] | None = None
    weights_as_of: date | None = None


class MarketConfig(BaseModel):
    """Which market is traded (`configs/markets.yaml`) and where its prices come from; the
    synthetic market needs no network."""

    model_config = {"extra": "forbid"}

    name: str = Field(default=DEFAULT_MARKET, description="a market of configs/markets.yaml")
    source: Literal["synthetic", "files", "alphavantage"] = "synthetic"
    seed: int = 7
    start: date = date(2024, 10, 1)
    end: date = date(2025, 6, 30)
    path: str | None = Field(default=None, description="folder or file for source=files")

    @property
    def store_market(self) -> str:
        """The store's partition these prices live in: `real`, or `synthetic-<seed>`."""
        return f"synthetic-{self.seed}" if self.source == "synthetic" else "real"

    @property
    def definition(self) -> Market:
        """The market's universe, money, calendar, sessions and trading rules."""
        return load_market(self.name)

    @model_validator(mode="after")
    def _known_market(self) -> MarketConfig:
        try:
            market = load_market(self.name)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if self.source == "synthetic" and (market.calendar != "XNYS" or market.hourly):
            raise ValueError(
                f"the synthetic market follows the XNYS daily calendar; market {self.name!r} "
                "needs real prices (source: files, after `aitrader data import`)"
            )
        return self


class TokenPrice(BaseModel):
    """What an endpoint charges, in US dollars per million tokens."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class ModelConfig(BaseModel):
    """One trading model: a chat model behind an OpenAI-compatible endpoint, or a built-in strategy.

    Reads the original AI-Trader `models` entries too (`name`, `basemodel`, `signature`,
    `enabled`, `openai_base_url`): the signature becomes the name the store and leaderboard use.
    """

    model_config = {"extra": "forbid", "populate_by_name": True}

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$")
    kind: Literal["openai", "strategy"] = "openai"
    enabled: bool = True
    basemodel: str | None = Field(default=None, description="the model name at the endpoint")
    base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("base_url", "openai_base_url")
    )
    api_key_env: str | None = Field(
        default="OPENAI_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="the environment variable holding the key; null for a local endpoint "
        "that takes none (aitrader demo-llm, Ollama)",
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0, description="per LLM call, retries aside")
    max_retries: int = Field(default=4, ge=0, le=10)
    price: TokenPrice | None = None
    strategy: str | None = Field(default=None, description="built-in strategy, for kind=strategy")
    params: dict[str, Any] = Field(default_factory=dict)
    # Reporting metadata, not behaviour: no portfolio's fingerprint includes it (flows/plan.py).
    knowledge_cutoff: date | None = Field(
        default=None,
        description="the last day the model's training data can know (a day, or a month such as "
        "2024-11); default: configs/knowledge_cutoffs.yaml's, by name then basemodel",
    )

    _parse_cutoff = field_validator("knowledge_cutoff", mode="before")(parse_cutoff)

    @model_validator(mode="before")
    @classmethod
    def _read_aitrader_entry(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for secret in ("openai_api_key", "api_key"):
            if data.get(secret):
                raise ValueError(
                    f"the config holds an API key ({secret!r}); put it in an environment "
                    "variable and name that variable with api_key_env"
                )
            data.pop(secret, None)
        if "signature" in data:  # AI-Trader: `name` is a label, `signature` the identity
            data["name"] = data.pop("signature")
        if data.get("strategy") and "kind" not in data:
            data["kind"] = "strategy"
        return data

    @model_validator(mode="after")
    def _kind_needs(self) -> ModelConfig:
        if self.kind == "openai" and not self.basemodel:
            raise ValueError(f"model {self.name!r}: an OpenAI-compatible model needs basemodel")
        if self.kind == "strategy" and not self.strategy:
            raise ValueError(f"model {self.name!r}: a strategy model needs strategy")
        if self.kind == "strategy" and self.knowledge_cutoff is not None:
            raise ValueError(f"model {self.name!r}: a built-in strategy has no knowledge cutoff")
        return self


class AgentConfig(BaseModel):
    """How a model-day's agent session runs."""

    max_steps: int = Field(default=30, ge=1, le=500, description="model calls per model-day")
    day_timeout_s: float = Field(default=1800.0, gt=0, description="a model-day's time limit")
    max_concurrent_models: int = Field(default=8, ge=1, description="model-days run at once")
    retries: int = Field(default=2, ge=0, le=10, description="attempts after a transient failure")
    retry_delay_s: float = Field(
        default=2.0,
        ge=0,
        description="first retry delay (of a model-day, and of an LLM call in an outage); doubles "
        "each attempt, with jitter",
    )
    outage_window_s: float = Field(
        default=300.0,
        ge=0,
        description="how long an LLM's calls are retried through transient errors (rate limits, "
        "5xx, timeouts, a connection refused), with backoff, before its model-day fails",
    )
    lease_seconds: float = Field(
        default=60.0,
        ge=1,
        description="a model-day's claim lapses this long after its simulator stops renewing it "
        "(it renews on a heartbeat while it works, however long the day takes)",
    )
    tool_groups: list[Literal["prices", "news", "trade", "math"]] = Field(
        default_factory=lambda: ["prices", "news", "trade", "math"]
    )


class BudgetConfig(BaseModel):
    """A run's spending limit; once spent, no further LLM call is made."""

    usd: float | None = Field(default=None, gt=0)
    tokens: int | None = Field(default=None, gt=0)


class AppConfig(BaseModel):
    """A simulation: universe, money, dates, market source, models and agent settings."""

    model_config = {"extra": "forbid"}

    name: str = "default"
    # Universe, benchmark and starting cash default to the market's (configs/markets.yaml).
    universe: str | list[str] | None = None
    benchmark: str | None = None
    initial_cash: float | None = Field(default=None, gt=0)
    start_date: date | None = None
    end_date: date | None = None
    market: MarketConfig = Field(default_factory=MarketConfig)
    models: list[ModelConfig] = Field(default_factory=list)
    agent: AgentConfig = AgentConfig()
    budget: BudgetConfig | None = None
    costs: Literal["market", "none"] | dict[str, float] = Field(
        default="market",
        description="what orders cost: the market's schedule (configs/markets.yaml), none (the "
        "original's free fills), or a mapping changing some of the schedule's numbers",
    )
    # A run setting, not a model's behaviour: no portfolio's fingerprint includes it.
    trials: int = Field(
        default=1,
        ge=1,
        le=MAX_TRIALS,
        description="independent trials of every model over the range, each its own portfolio",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_aitrader_config(cls, data: Any) -> Any:
        """Accept an original AI-Trader config (date_range, agent_config, log_config)."""
        if not isinstance(data, dict) or not ({"date_range", "agent_config"} & set(data)):
            return data
        data = dict(data)
        dates = data.pop("date_range", None) or {}
        data.setdefault("start_date", dates.get("init_date"))
        data.setdefault("end_date", dates.get("end_date"))
        if data.get("agent_type") in AITRADER_AGENT_MARKETS and not isinstance(
            data.get("market"), dict
        ):
            data["market"] = {"name": AITRADER_AGENT_MARKETS[data["agent_type"]]}
        agent = data.pop("agent_config", None) or {}
        if "initial_cash" in agent:
            data.setdefault("initial_cash", agent["initial_cash"])
        if "max_steps" in agent:
            data.setdefault("agent", {"max_steps": agent["max_steps"]})
        data.pop("agent_type", None)
        data.pop("log_config", None)
        if not isinstance(data.get("market"), dict):  # AI-Trader's "market": "us"
            data.pop("market", None)
        data.setdefault("name", "aitrader-config")
        data.setdefault("market", {})
        data["market"] = {"source": "files", **data["market"]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> AppConfig:
        market = self.market.definition
        if self.universe is None:
            self.universe = market.universe
        if self.initial_cash is None:
            self.initial_cash = market.initial_cash
        if self.benchmark is None:
            try:
                named = isinstance(self.universe, str)
                self.benchmark = (
                    load_universe(self.universe).benchmark if named else default_benchmark()
                )
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        try:
            self.trading_costs  # noqa: B018 (a changed schedule is checked here, not mid-run)
        except ValidationError as exc:
            raise ValueError(f"costs: {one_line(exc)}") from None
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        for model in self.models:
            if model.strategy == INDEX_WEIGHT_STRATEGY:
                model.params = {**model.params, "weights": self._index_weights(model)}
        return self

    def _index_weights(self, model: ModelConfig) -> dict[str, float]:
        """An index-weight model's weights: its own, or its universe's; every symbol tradable."""
        try:
            universe = self.resolve_universe()
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        weights = model.params.get("weights", universe.weights)
        if weights is None:
            raise ValueError(
                f"model {model.name!r}: strategy {INDEX_WEIGHT_STRATEGY!r} needs params.weights "
                f"(universe {universe.name!r} publishes no index weights)"
            )
        if not isinstance(weights, dict):
            raise ValueError(f"model {model.name!r}: params.weights must map symbols to weights")
        unknown = sorted(str(s) for s in weights if str(s).upper() not in universe.symbols)
        if unknown:
            raise ValueError(
                f"model {model.name!r}: params.weights names symbols outside universe "
                f"{universe.name!r}: {', '.join(unknown)}"
            )
        return weights

    @property
    def trading_costs(self) -> TradingCosts | None:
        """What an order costs in this config's runs (None: nothing, as in the original)."""
        schedule = self.market.definition.costs
        if self.costs == "none":
            return None
        if self.costs == "market":
            return schedule
        base = schedule.model_dump() if schedule else {}
        return TradingCosts.model_validate({**base, **self.costs})

    @property
    def trading_market(self) -> Market:
        """The market this config trades, with the config's costs."""
        return self.market.definition.with_costs(self.trading_costs)

    def enabled_models(self) -> list[ModelConfig]:
        return [m for m in self.models if m.enabled]

    def model(self, name: str) -> ModelConfig:
        """The configured model called `name`."""
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models) or "none"
        raise ConfigError(f"unknown model {name!r}; configured: {known}")

    def resolve_universe(self) -> Universe:
        """The universe this config trades: a named one from universes.yaml or an inline list."""
        if isinstance(self.universe, list):
            symbols = [s.upper() for s in self.universe]
            return Universe(name="custom", symbols=symbols, benchmark=self.benchmark)
        return load_universe(self.universe)


def load_config(path: str | Path | None = None) -> AppConfig:
    """Read and validate a config file (default: the shipped offline default)."""
    path = Path(path) if path else DEFAULT_CONFIG
    data = read_yaml(path)
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config {path}: {one_line(exc, whole='config')}") from exc


@cache
def _universes() -> dict[str, Universe]:
    data = read_yaml(UNIVERSES_FILE)
    return {name: Universe(name=name, **body) for name, body in data.items()}


def universe_names() -> list[str]:
    return sorted(_universes())


def default_benchmark() -> str:
    """The default market's benchmark (its universe's): what a list of symbols is measured
    against unless a config says otherwise."""
    return load_universe(load_market(DEFAULT_MARKET).universe).benchmark


def load_universe(name: str) -> Universe:
    """A universe shipped in `configs/universes.yaml`, by name."""
    return named_entry(_universes(), "universe", name)
