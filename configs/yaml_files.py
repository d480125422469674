"""Reading the YAML files of configs: one safe loader whose errors name the file, and one lookup
of a named entry whose error lists the known names."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml

from models.errors import ConfigError, missing


class _DatesAsText(yaml.SafeLoader):
    """YAML without its own date parsing: `2025-02-30` reaches pydantic as text, so the error
    names the field instead of being YAML's bare "day is out of range"."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(), Loader=_DatesAsText)  # a SafeLoader: no objects
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {missing(path)}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


Entry = TypeVar("Entry")


def named_entry(entries: dict[str, Entry], kind: str, name: str) -> Entry:
    """The entry called `name` of a YAML file of named entries (markets, universes); an unknown
    name is a one-line error listing the known ones."""
    try:
        return entries[name]
    except KeyError:
        known = ", ".join(sorted(entries))
        raise ConfigError(f"unknown {kind} {name!r}; known: {known}") from None
