"""Load and validate the shipped configuration files (and users' own)."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

CONFIG_DIR = Path(__file__).parent
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
UNIVERSES_FILE = CONFIG_DIR / "universes.yaml"


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid."""


class Universe(BaseModel):
    """A named list of tradable symbols and the benchmark they are measured against."""

    name: str
    symbols: list[str]
    benchmark: str = "QQQ"


class MarketConfig(BaseModel):
    """Where prices come from; the synthetic market needs no network."""

    source: Literal["synthetic", "files", "alphavantage"] = "synthetic"
    seed: int = 7
    start: date = date(2024, 10, 1)
    end: date = date(2025, 6, 30)
    path: str | None = Field(default=None, description="folder or file for source=files")

    @property
    def name(self) -> str:
        """The store's market these prices live in: `real`, or `synthetic-<seed>`."""
        return f"synthetic-{self.seed}" if self.source == "synthetic" else "real"


class AppConfig(BaseModel):
    """A simulation: universe, money, dates, market source (models come with the agent layer)."""

    model_config = {"extra": "allow"}

    name: str = "default"
    universe: str | list[str] = "nasdaq100"
    benchmark: str = "QQQ"
    initial_cash: float = Field(default=10_000.0, gt=0)
    start_date: date | None = None
    end_date: date | None = None
    market: MarketConfig = MarketConfig()

    @model_validator(mode="after")
    def _dates_in_order(self) -> AppConfig:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self

    def resolve_universe(self) -> Universe:
        """The universe this config trades: a named one from universes.yaml or an inline list."""
        if isinstance(self.universe, list):
            symbols = [s.upper() for s in self.universe]
            return Universe(name="custom", symbols=symbols, benchmark=self.benchmark)
        return load_universe(self.universe)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def load_config(path: str | Path | None = None) -> AppConfig:
    """Read and validate a config file (default: the shipped offline default)."""
    path = Path(path) if path else DEFAULT_CONFIG
    data = _read_yaml(path)
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid config {path}: {problems}") from exc


@cache
def _universes() -> dict[str, Universe]:
    data = _read_yaml(UNIVERSES_FILE)
    return {name: Universe(name=name, **body) for name, body in data.items()}


def universe_names() -> list[str]:
    return sorted(_universes())


def load_universe(name: str) -> Universe:
    """A universe shipped in `configs/universes.yaml`, by name."""
    try:
        return _universes()[name]
    except KeyError:
        known = ", ".join(universe_names())
        raise ConfigError(f"unknown universe {name!r}; known: {known}") from None
