"""Store one backtest flow run's results (from fetch_simulation_results) in PostgreSQL.

Idempotent: storing the same flow run again replaces its rows, so a retried step or a re-run of
the Windmill flow for the same Prefect run never duplicates anything. The tables are created on
first use.
"""

import json
import re
from datetime import date

import psycopg
import wmill

SCHEMA = """
CREATE TABLE IF NOT EXISTS simulation_run (
    flow_run_id text PRIMARY KEY,
    flow_run_name text NOT NULL,
    state_name text NOT NULL,
    parameters jsonb NOT NULL,
    title text NOT NULL DEFAULT '',
    start_time timestamptz,
    end_time timestamptz,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS simulation_leaderboard (
    flow_run_id text NOT NULL REFERENCES simulation_run ON DELETE CASCADE,
    model text NOT NULL,
    rank integer,
    final_value double precision,
    return_pct double precision,
    sharpe double precision,
    max_drawdown_pct double precision,
    trades integer,
    metrics jsonb NOT NULL,
    PRIMARY KEY (flow_run_id, model)
);
CREATE TABLE IF NOT EXISTS simulation_daily_value (
    flow_run_id text NOT NULL REFERENCES simulation_run ON DELETE CASCADE,
    model text NOT NULL,
    day date NOT NULL,
    status text,
    cash double precision,
    value double precision,
    trades integer,
    PRIMARY KEY (flow_run_id, model, day)
);
"""
# Serializes concurrent first uses: CREATE TABLE IF NOT EXISTS alone can race on the catalog.
SCHEMA_LOCK = 7_262_001

POSTGRESQL_KEYS = ("host", "port", "user", "password", "dbname", "sslmode")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def connect(database: str) -> psycopg.Connection:
    """A connection to the `postgresql` resource at workspace path `database`."""
    resource = wmill.get_resource(database)
    settings = {k: resource[k] for k in POSTGRESQL_KEYS if resource.get(k) not in (None, "")}
    return psycopg.connect(**settings, connect_timeout=10)


def ensure_schema(connection: psycopg.Connection) -> None:
    """Create the result tables when they do not exist yet (inside the caller's transaction)."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    connection.execute(SCHEMA)


def _number(row: dict, key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(row: dict, key: str) -> int | None:
    value = _number(row, key)
    return int(value) if value is not None else None


def check_results(results: dict) -> None:
    """Raise ValueError naming the first field of `results` that is missing or malformed."""
    if not isinstance(results, dict):
        raise ValueError(f"results must be an object, got {type(results).__name__}")
    flow_run_id = results.get("flow_run_id")
    if not isinstance(flow_run_id, str) or not UUID.match(flow_run_id):
        raise ValueError(f"results.flow_run_id must be a flow run UUID, got {flow_run_id!r}")
    for key in ("leaderboard", "daily_values"):
        rows = results.get(key)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"results.{key} must be a list of objects")
        for number, row in enumerate(rows):
            if not isinstance(row.get("model"), str) or not row["model"]:
                raise ValueError(f"results.{key}[{number}] has no model name")
    for number, row in enumerate(results["daily_values"]):
        try:
            date.fromisoformat(str(row.get("day")))
        except ValueError:
            raise ValueError(
                f"results.daily_values[{number}].day must be YYYY-MM-DD, got {row.get('day')!r}"
            ) from None
    if not results["leaderboard"] and not results.get("up_to_date"):
        raise ValueError("results.leaderboard is empty but the run is not up to date")


def store(connection: psycopg.Connection, results: dict) -> dict:
    """Replace the run's stored rows with `results` in one transaction; what it stored."""
    run_id = results["flow_run_id"]
    with connection.transaction():
        ensure_schema(connection)
        inserted = connection.execute(
            """
            INSERT INTO simulation_run
                (flow_run_id, flow_run_name, state_name, parameters, title, start_time, end_time)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (flow_run_id) DO UPDATE SET
                flow_run_name = EXCLUDED.flow_run_name, state_name = EXCLUDED.state_name,
                parameters = EXCLUDED.parameters, title = EXCLUDED.title,
                start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, stored_at = now()
            RETURNING (xmax = 0) AS inserted
            """,
            (
                run_id,
                results.get("flow_run_name") or "",
                results.get("state_name") or "Completed",
                json.dumps(results.get("parameters") or {}),
                results.get("title") or "",
                results.get("start_time"),
                results.get("end_time"),
            ),
        ).fetchone()[0]
        for table in ("simulation_leaderboard", "simulation_daily_value"):
            connection.execute(f"DELETE FROM {table} WHERE flow_run_id = %s", (run_id,))
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO simulation_leaderboard VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        run_id,
                        row["model"],
                        _integer(row, "rank"),
                        _number(row, "final_value"),
                        _number(row, "return_pct"),
                        _number(row, "sharpe"),
                        _number(row, "max_drawdown_pct"),
                        _integer(row, "trades"),
                        json.dumps(row),
                    )
                    for row in results["leaderboard"]
                ],
            )
            cursor.executemany(
                "INSERT INTO simulation_daily_value VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        run_id,
                        row["model"],
                        date.fromisoformat(str(row["day"])),
                        row.get("status"),
                        _number(row, "cash"),
                        _number(row, "value"),
                        _integer(row, "trades"),
                    )
                    for row in results["daily_values"]
                ],
            )
    return {
        "flow_run_id": run_id,
        "leaderboard_rows": len(results["leaderboard"]),
        "daily_value_rows": len(results["daily_values"]),
        "replaced": not inserted,  # the run was stored before: its rows were replaced
    }


def main(results: dict, database: str = "f/trading/trading_db"):
    """Store `results` (the fetch step's output) in the `postgresql` resource at `database`."""
    check_results(results)
    with connect(database) as connection:
        return store(connection, results)
