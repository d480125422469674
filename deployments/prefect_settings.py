"""Prefect settings this project runs with, applied before Prefect is imported.

Why the batch sizes: with Prefect's SQLite database, the task-run recorder and the event
persister write each event in its own transaction as it arrives. The API's own writes (creating
a subflow's tracking task run, for one) use deferred transactions, and when one of those
background writes commits between their read and their write, SQLite answers "database is
locked" at once, the API returns 503, and the client backs off for 2 s or more. Measured here:
19 trading days of cached model-days took 53 s against a SQLite server with the defaults and 5-7
s with batched writers (6 s on Postgres). Batching the writers removes most of the collisions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LOCAL_DEFAULTS: Mapping[str, str] = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "1000",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "1000",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_READ_BATCH_SIZE": "100",
    # A cold ephemeral server migrates its database first; the default 20 s is too short here.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "DO_NOT_TRACK": "1",
}


def apply_local_defaults(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set the project's Prefect defaults where the environment does not set them already."""
    environ = os.environ if environ is None else environ
    for name, value in LOCAL_DEFAULTS.items():
        environ.setdefault(name, value)
    return environ
