"""Models' knowledge cutoffs: the shipped table (`configs/knowledge_cutoffs.yaml`), its lookup by
a model's id as configs write it, and the parsing of a cutoff a config states."""

from __future__ import annotations

import calendar
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from configs.yaml_files import read_yaml
from models.errors import ConfigError

CUTOFFS_FILE = Path(__file__).parent / "knowledge_cutoffs.yaml"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
# A release date at the end of a vendor's id (`claude-3-7-sonnet-20250219`, `gpt-5-2025-08-07`),
# or the market an original AI-Trader signature names (`gpt-5-astock-hour`).
_SUFFIXES = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|astock-hour|astock|hour|crypto)$")


def parse_cutoff(value: Any) -> Any:
    """A cutoff as a config or the table writes it: a day, or a month (`2024-11`, its last day,
    since vendors publish months); anything else is left for pydantic to refuse."""
    if isinstance(value, str) and (month := _MONTH.match(value.strip())):
        year, number = int(month[1]), int(month[2])
        if not 1 <= number <= 12:
            raise ValueError(f"knowledge cutoff {value!r}: month {number} is not 1 to 12")
        return date(year, number, calendar.monthrange(year, number)[1])
    return value


class KnownCutoff(BaseModel):
    """One row of the table: a model's cutoff, where the date comes from, and its other ids."""

    model_config = {"extra": "forbid"}

    model: str
    cutoff: date
    source: str = Field(min_length=1)
    approximate: bool = False
    aliases: list[str] = Field(default_factory=list)

    _parse = field_validator("cutoff", mode="before")(parse_cutoff)


def model_key(model_id: str) -> str:
    """The table's key for an id: lower case, without a provider prefix or a `:tag` suffix."""
    return model_id.strip().lower().rsplit("/", 1)[-1].split(":", 1)[0]


@cache
def cutoff_table() -> dict[str, KnownCutoff]:
    """Every id and alias of the shipped table, by `model_key`."""
    rows: dict[str, KnownCutoff] = {}
    for name, body in read_yaml(CUTOFFS_FILE).items():
        try:
            row = KnownCutoff(model=str(name), **(body or {}))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{CUTOFFS_FILE}: {name}: {exc}") from None
        for key in (row.model, *row.aliases):
            rows[model_key(key)] = row
    return rows


def known_cutoff(*model_ids: str | None) -> KnownCutoff | None:
    """The table's row for the first of `model_ids` it knows (a name, then a `basemodel`)."""
    table = cutoff_table()
    for model_id in filter(None, model_ids):
        key = model_key(model_id)
        row = table.get(key) or table.get(_SUFFIXES.sub("", key))
        if row is not None:
            return row
    return None
