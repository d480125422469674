"""Latest performance per model from the stored backtest results, for the dashboard.

shape="table": one row per model (and benchmark), from the most recent stored run that has it,
best return first, with its tier and the 95% interval of its return, what its fills paid in
trading costs, and its return and tier had they paid 0, 2 or 3 times as much (the return and
tier are the 1x ones), how many of its sessions were decided live, and the head of its sealed
chain of model-days (`aitrader results verify`): the AgGrid table's rows.
shape="chart": portfolio value per model and trading day over the last `days` calendar days,
as Chart.js line data `{labels, datasets: [{label, data}]}` for chartjscomponentv2.
"""

from datetime import date, datetime
from typing import Literal

import psycopg
import wmill

POSTGRESQL_KEYS = ("host", "port", "user", "password", "dbname", "sslmode")

# The most recent run wins for each model: runs ordered by when Prefect finished them.
LATEST_ROWS = """
SELECT DISTINCT ON (l.model)
    l.model, l.rank, l.final_value, l.return_pct, l.sharpe, l.max_drawdown_pct, l.trades,
    (l.metrics->>'tier')::integer AS tier,
    (l.metrics->>'return_ci_low_pct')::double precision AS return_ci_low_pct,
    (l.metrics->>'return_ci_high_pct')::double precision AS return_ci_high_pct,
    (l.metrics->>'costs_paid')::double precision AS costs_paid,
    (l.metrics->>'gross_return_pct')::double precision AS gross_return_pct,
    (l.metrics->>'return_at_0x_pct')::double precision AS return_at_0x_pct,
    (l.metrics->>'tier_at_0x')::integer AS tier_at_0x,
    (l.metrics->>'return_at_2x_pct')::double precision AS return_at_2x_pct,
    (l.metrics->>'tier_at_2x')::integer AS tier_at_2x,
    (l.metrics->>'return_at_3x_pct')::double precision AS return_at_3x_pct,
    (l.metrics->>'tier_at_3x')::integer AS tier_at_3x,
    (l.metrics->>'live_sessions')::integer AS live_sessions,
    l.metrics->>'chain_head' AS chain_head,
    r.flow_run_id, r.flow_run_name, r.end_time,
    (SELECT min(d.day) FROM simulation_daily_value d
      WHERE d.flow_run_id = l.flow_run_id AND d.model = l.model) AS window_start,
    (SELECT max(d.day) FROM simulation_daily_value d
      WHERE d.flow_run_id = l.flow_run_id AND d.model = l.model) AS window_end
FROM simulation_leaderboard l JOIN simulation_run r USING (flow_run_id)
ORDER BY l.model, r.end_time DESC NULLS LAST, r.stored_at DESC
"""
# Two runs may both hold a model-day (a re-run over the same dates): the most recent one wins.
DAILY_VALUES = """
SELECT DISTINCT ON (d.model, d.day) d.model, d.day, d.value
FROM simulation_daily_value d JOIN simulation_run r USING (flow_run_id)
WHERE d.value IS NOT NULL
  AND d.day > (SELECT max(day) FROM simulation_daily_value) - %s::integer
ORDER BY d.model, d.day, r.end_time DESC NULLS LAST, r.stored_at DESC
"""


def connect(database: str) -> psycopg.Connection:
    """A connection to the `postgresql` resource at workspace path `database`."""
    resource = wmill.get_resource(database)
    settings = {k: resource[k] for k in POSTGRESQL_KEYS if resource.get(k) not in (None, "")}
    return psycopg.connect(**settings, connect_timeout=10)


def _stored(connection: psycopg.Connection) -> bool:
    """Whether the store script has created the tables yet (a fresh database has none)."""
    found = connection.execute("SELECT to_regclass('simulation_daily_value') IS NOT NULL")
    return found.fetchone()[0]


def _plain(value):
    """JSON-friendly: dates and timestamps as ISO text."""
    return value.isoformat() if isinstance(value, date | datetime) else value


def latest_table(connection: psycopg.Connection) -> list[dict]:
    """One row per model from its most recent stored run, best return first."""
    cursor = connection.execute(LATEST_ROWS)
    names = [column.name for column in cursor.description]
    rows = [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cursor]
    rows.sort(key=lambda r: (r["return_pct"] is None, -(r["return_pct"] or 0.0), r["model"]))
    return rows


def value_chart(connection: psycopg.Connection, days: int) -> dict:
    """Chart.js line data: one dataset per model, null where a model has no value that day."""
    values: dict[str, dict[str, float]] = {}
    for model, day, value in connection.execute(DAILY_VALUES, (days,)):
        values.setdefault(model, {})[day.isoformat()] = value
    labels = sorted({day for by_day in values.values() for day in by_day})
    datasets = [
        {"label": model, "data": [values[model].get(day) for day in labels]}
        for model in sorted(values)
    ]
    return {"labels": labels, "datasets": datasets}


def main(
    shape: Literal["table", "chart"] = "table",
    days: int = 90,
    database: str = "f/trading/trading_db",
):
    """The dashboard's data in `shape` from the `postgresql` resource at `database`."""
    if shape not in ("table", "chart"):
        raise ValueError(f"shape must be 'table' or 'chart', got {shape!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive whole number, got {days!r}")
    with connect(database) as connection:
        if not _stored(connection):
            return [] if shape == "table" else {"labels": [], "datasets": []}
        if shape == "table":
            return latest_table(connection)
        return value_chart(connection, days)
