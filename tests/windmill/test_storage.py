"""store_simulation_results and get_latest_performance, run through the wmill SDK's mock mode
against a real PostgreSQL database."""

from __future__ import annotations

import time

import psycopg
import pytest
import yaml

from tests.windmill.conftest import DATABASE_RESOURCE, WINDMILL, workspace_script

pytestmark = pytest.mark.postgres

RUN_A = "11111111-1111-4111-8111-111111111111"
RUN_B = "22222222-2222-4222-8222-222222222222"


def board_row(model: str, rank: int | None, final_value: float, return_pct: float) -> dict:
    """A leaderboard artifact row as analysis.report.leaderboard_table writes it (a subset)."""
    return {
        "rank": rank,
        "model": model,
        "final_value": final_value,
        "return_pct": return_pct,
        "sharpe": 1.5,
        "max_drawdown_pct": -2.0,
        "trades": 4,
        "alpha": None,
        "live_sessions": None if rank is None else 1,
        "chain_head": None if rank is None else f"{model}-head",
    }


def day_row(day: str, model: str, value: float) -> dict:
    return {"day": day, "model": model, "status": "completed", "cash": 10.0, "value": value}


def results(run_id: str, end_time: str, board: list[dict], days: list[dict], **extra) -> dict:
    """The output of fetch_simulation_results for one run."""
    return {
        "flow_run_id": run_id,
        "flow_run_name": f"run-{run_id[:4]}",
        "state_name": "Completed",
        "parameters": {"start": days[0]["day"], "end": days[-1]["day"]} if days else {},
        "start_time": end_time,
        "end_time": end_time,
        "title": "Backtest",
        "leaderboard": board,
        "daily_values": days,
        **extra,
    }


JANUARY = results(
    RUN_A,
    "2025-01-08T12:00:00+00:00",
    [
        board_row("alpha", 1, 10_300.0, 3.0),
        board_row("beta", 2, 9_900.0, -1.0),
        board_row("QQQ", None, 10_100.0, 1.0),
    ],
    [day_row(d, m, v) for d, m, v in [
        ("2025-01-06", "alpha", 10_100.0), ("2025-01-06", "beta", 10_000.0),
        ("2025-01-07", "alpha", 10_300.0), ("2025-01-07", "beta", 9_900.0),
    ]],
)  # fmt: skip
# A later run of alpha alone that re-simulates 2025-01-07 and adds 2025-01-08.
LATER = results(
    RUN_B,
    "2025-01-09T12:00:00+00:00",
    [board_row("alpha", 1, 10_500.0, 0.5)],
    [day_row("2025-01-07", "alpha", 10_350.0), day_row("2025-01-08", "alpha", 10_500.0)],
)


def count(db: dict, table: str) -> int:
    with psycopg.connect(**db) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_storing_a_run_twice_replaces_it(mocked_wmill: dict) -> None:
    store = workspace_script("store_simulation_results")
    first = store.main(JANUARY)
    assert first == {
        "flow_run_id": RUN_A,
        "leaderboard_rows": 3,
        "daily_value_rows": 4,
        "replaced": False,
    }
    assert store.main(JANUARY) == {**first, "replaced": True}
    assert count(mocked_wmill, "simulation_run") == 1
    assert count(mocked_wmill, "simulation_leaderboard") == 3
    assert count(mocked_wmill, "simulation_daily_value") == 4

    # Storing the run again with fewer rows leaves exactly the new rows.
    fewer = {**JANUARY, "daily_values": JANUARY["daily_values"][:1]}
    assert store.main(fewer)["daily_value_rows"] == 1
    assert count(mocked_wmill, "simulation_daily_value") == 1


def test_latest_performance_per_model_comes_from_its_latest_run(mocked_wmill: dict) -> None:
    store = workspace_script("store_simulation_results")
    latest = workspace_script("get_latest_performance")
    store.main(LATER)  # stored first, but finished later: Prefect's end time decides
    store.main(JANUARY)
    table = latest.main("table")
    assert [(r["model"], r["flow_run_id"], r["final_value"]) for r in table] == [
        ("QQQ", RUN_A, 10_100.0),  # ordered by return: 1.0, 0.5, -1.0
        ("alpha", RUN_B, 10_500.0),
        ("beta", RUN_A, 9_900.0),
    ]
    alpha = table[1]
    assert (alpha["window_start"], alpha["window_end"]) == ("2025-01-07", "2025-01-08")
    assert alpha["rank"] == 1 and alpha["sharpe"] == 1.5 and alpha["trades"] == 4
    assert alpha["chain_head"] == "alpha-head" and alpha["live_sessions"] == 1
    assert table[0]["rank"] is None and table[0]["window_start"] is None  # the benchmark
    assert alpha["end_time"].startswith("2025-01-09T12:00:00")


def test_chart_is_chartjs_line_data_with_the_newest_value_per_day(mocked_wmill: dict) -> None:
    store = workspace_script("store_simulation_results")
    latest = workspace_script("get_latest_performance")
    store.main(JANUARY)
    store.main(LATER)
    chart = latest.main("chart", days=90)
    assert chart == {
        "labels": ["2025-01-06", "2025-01-07", "2025-01-08"],
        "datasets": [
            {"label": "alpha", "data": [10_100.0, 10_350.0, 10_500.0]},  # LATER wins 01-07
            {"label": "beta", "data": [10_000.0, 9_900.0, None]},
        ],
    }
    # `days` counts calendar days back from the newest stored day, that day included.
    assert latest.main("chart", days=2)["labels"] == ["2025-01-07", "2025-01-08"]


def test_an_empty_store_reads_as_no_rows(mocked_wmill: dict) -> None:
    latest = workspace_script("get_latest_performance")
    assert latest.main("table") == []
    assert latest.main("chart") == {"labels": [], "datasets": []}


def test_an_up_to_date_run_is_recorded_without_rows(mocked_wmill: dict) -> None:
    store = workspace_script("store_simulation_results")
    latest = workspace_script("get_latest_performance")
    store.main(JANUARY)
    nothing = results(RUN_B, "2025-01-09T12:00:00+00:00", [], [], up_to_date=True)
    assert store.main({**nothing, "state_name": "UpToDate"})["leaderboard_rows"] == 0
    assert count(mocked_wmill, "simulation_run") == 2
    assert {r["flow_run_id"] for r in latest.main("table")} == {RUN_A}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flow_run_id": None}, "flow_run_id must be a flow run UUID"),
        ({"flow_run_id": "latest"}, "flow_run_id must be a flow run UUID"),
        ({"leaderboard": {"alpha": 1}}, "results.leaderboard must be a list of objects"),
        ({"daily_values": [1, 2]}, "results.daily_values must be a list of objects"),
        ({"leaderboard": [{"rank": 1}]}, r"results.leaderboard\[0\] has no model name"),
        ({"daily_values": [day_row("2025-02-30", "a", 1.0)]}, "must be YYYY-MM-DD"),
        ({"leaderboard": []}, "leaderboard is empty but the run is not up to date"),
    ],
)
def test_bad_results_are_refused_before_touching_the_database(
    mocked_wmill: dict, change: dict, message: str
) -> None:
    store = workspace_script("store_simulation_results")
    with pytest.raises(ValueError, match=message):
        store.main({**JANUARY, **change})
    with psycopg.connect(**mocked_wmill) as connection:
        created = connection.execute("SELECT to_regclass('simulation_run')").fetchone()[0]
    assert created is None  # nothing was written, not even the tables


def test_results_must_be_an_object(mocked_wmill: dict) -> None:
    store = workspace_script("store_simulation_results")
    with pytest.raises(ValueError, match="results must be an object, got list"):
        store.main([JANUARY])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"shape": "pie"}, "shape must be 'table' or 'chart'"),
        ({"days": 0}, "days must be a positive whole number"),
        ({"days": "30"}, "days must be a positive whole number"),
    ],
)
def test_bad_dashboard_arguments_are_refused(
    mocked_wmill: dict, arguments: dict, message: str
) -> None:
    latest = workspace_script("get_latest_performance")
    with pytest.raises(ValueError, match=message):
        latest.main(**arguments)


def test_the_database_resource_is_read_through_wmill(mocked_wmill: dict) -> None:
    store = workspace_script("store_simulation_results")
    # The `$res:` form a flow's static input may carry resolves to the same resource.
    assert store.main(JANUARY, database=f"$res:{DATABASE_RESOURCE}")["leaderboard_rows"] == 3
    # A resource the workspace does not have is an error (the mock falls back to the real API,
    # which is a closed port here), and fails fast.
    began = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises whatever httpx raised
        store.main(JANUARY, database="f/trading/no_such_db")
    assert time.monotonic() - began < 10


def test_dashboard_table_columns_are_fields_of_the_table_rows(mocked_wmill: dict) -> None:
    workspace_script("store_simulation_results").main(JANUARY)
    rows = workspace_script("get_latest_performance").main("table")
    app = yaml.safe_load((WINDMILL / "f/trading/performance_dashboard__app/app.yaml").read_text())
    (table,) = [c["data"] for c in app["value"]["grid"] if c["id"] == "perf_table"]
    columns = [c["field"] for c in table["configuration"]["columnDefs"]["value"]]
    assert columns and all(set(columns) <= set(row) for row in rows)
