"""Every error the project raises on purpose, under one base.

It sits in the bottom layer because every layer raises these; callers catch `AITraderError` to
tell a refused input or a known failure (one clear line) from a bug (a traceback). Each also
derives from the built-in error it has always been, so `except ValueError` keeps working.

    AITraderError
    ├── InputError (ValueError): something a user or a file gave is wrong
    │   ├── ConfigError          a config file or a config value
    │   ├── PlanError            a trigger's dates or models cannot be satisfied
    │   ├── CalendarError        a day outside the exchange calendar
    │   ├── PriceFileError       an AI-Trader price file
    │   ├── NewsFormatError      a news item or a saved news feed
    │   ├── LegacyImportError    an AI-Trader position log
    │   └── ModelSetupError      a model's endpoint settings (a missing key, say)
    ├── AgentError: what an agent did cannot stand (told to the agent, never fatal to a run)
    │   ├── OrderRejected (ValueError)     an order broke a trading rule
    │   ├── CalculationError (ValueError)  the math tool's expression
    │   └── ObservationError (ValueError)  a strategy cannot read a tool's answer
    ├── ResultsError (LookupError): the asked-for run, model or range holds no results
    ├── ReplayMiss (LookupError): replay mode met an LLM call that was never recorded
    ├── StoreError (RuntimeError): the store cannot be opened or migrated
    ├── MarketSetupError (RuntimeError): a config's market cannot be provided
    ├── AlphaVantageError (RuntimeError): Alpha Vantage refused or failed
    │   ├── AlphaVantageRateLimited
    │   └── AlphaVantagePremiumOnly
    ├── BudgetExhausted (RuntimeError): the run's LLM budget is spent
    ├── PortfolioDayTaken (RuntimeError): another simulator holds a live claim on the day
    ├── TransientModelDayError (RuntimeError): the endpoint was busy; another attempt may work
    ├── BacktestError (RuntimeError): the backtest flow failed
    └── ServeConflict (RuntimeError): serving would take over a work pool's deployments

The tools' `RejectedCall` is not here: it must be fastmcp's `ToolError` for the protocol.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


def missing(path: Path) -> str:
    """A path that was not found, and for a relative one the folder it was looked for in."""
    return str(path) if path.is_absolute() else f"{path} (looked for in {Path.cwd()})"


def one_line(error: ValidationError, prefix: str = "", whole: str = "") -> str:
    """Pydantic's errors in one line: `<prefix><dotted location>: <message>`, joined by
    semicolons; `whole` stands for the location of an error about the value as a whole."""
    return "; ".join(
        f"{prefix}{'.'.join(map(str, item['loc'])) or whole}: {item['msg']}"
        for item in error.errors()
    )


class AITraderError(Exception):
    """The base of every error the project raises on purpose."""


class InputError(AITraderError, ValueError):
    """Something a user, a config or a file gave is wrong; the message says what and where."""


class ConfigError(InputError):
    """A config file or value is invalid."""


class PlanError(InputError):
    """The trigger's parameters cannot be satisfied (dates, models, missing prices)."""


class CalendarError(InputError):
    """A day outside the exchange calendar's range."""


class PriceFileError(InputError):
    """A price file cannot be read as AI-Trader prices."""


class NewsFormatError(InputError):
    """A news item lacks a title, URL or a readable publication time."""


class LegacyImportError(InputError):
    """An AI-Trader position log cannot be imported."""


class ModelSetupError(InputError):
    """A model's endpoint settings are incomplete (a missing API key, say)."""


class AgentError(AITraderError):
    """What an agent asked for cannot stand; the message is written for the agent to read."""


class OrderRejected(AgentError, ValueError):
    """An order broke a trading rule; the message says which, for the agent to read."""


class CalculationError(AgentError, ValueError):
    """The expression is not plain arithmetic, or its value is not finite."""


class ObservationError(AgentError, ValueError):
    """An observation tool failed or answered something the strategy cannot read."""


class ResultsError(AITraderError, LookupError):
    """The asked-for run, model or range holds no results."""


class ReplayMiss(AITraderError, LookupError):
    """Replay mode met an LLM call that is not in the record."""


class StoreError(AITraderError, RuntimeError):
    """The store cannot be opened or migrated."""


class MarketSetupError(AITraderError, RuntimeError):
    """The config's market cannot be provided (no data, or a data file is missing)."""


class AlphaVantageError(AITraderError, RuntimeError):
    """Alpha Vantage answered with an error, or could not be reached."""


class AlphaVantageRateLimited(AlphaVantageError):
    """The key's request quota is spent for now."""


class AlphaVantagePremiumOnly(AlphaVantageError):
    """The endpoint or option needs a premium key."""


class BudgetExhausted(AITraderError, RuntimeError):
    """The run's LLM budget is spent; no further LLM call is made."""


class PortfolioDayTaken(AITraderError, RuntimeError):
    """Another simulator holds a live claim on this portfolio's day."""


class TransientModelDayError(AITraderError, RuntimeError):
    """The endpoint was busy, slow or unreachable; another attempt may succeed."""


class BacktestError(AITraderError, RuntimeError):
    """The backtest flow failed (bad parameters, or every model failed)."""


class ServeConflict(AITraderError, RuntimeError):
    """Deployments of the same names are deployed to a work pool; serving would take them over."""
