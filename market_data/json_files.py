"""Reading a saved JSON file (a price file, a news answer) with one-line errors that name it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: Path, error: type[Exception]) -> Any:
    """The parsed content of `path`; `error` saying which file and why if unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise error(f"{path}: not valid JSON: {exc}") from exc
