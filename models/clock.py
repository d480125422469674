"""The wall clock the live parts read: what a refresh may store and which track a decision is on.

`now()` is the current time, aware UTC. `AITRADER_NOW` (an ISO time with its offset, e.g.
`2025-10-14T13:45:00+00:00`) sets it instead, for a drill or a test that replays a live day as it
happened: a refresh then stores only what had been traded by that time, and a decision made then
is live if its session had not closed. Leave it unset in production.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from models.errors import ConfigError

CLOCK_VARIABLE = "AITRADER_NOW"


def now() -> datetime:
    """The current time (aware UTC), or `AITRADER_NOW`'s."""
    fixed = os.environ.get(CLOCK_VARIABLE)
    if not fixed:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(fixed)
    except ValueError:
        raise ConfigError(f"{CLOCK_VARIABLE}={fixed!r} is not an ISO time") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{CLOCK_VARIABLE}={fixed!r} needs its UTC offset (…+00:00)")
    return moment.astimezone(UTC)
