"""Run results read by portfolio: days adopted from another run still chain in date order."""

from __future__ import annotations

import re
from datetime import date, datetime

import pandas as pd
import pytest
from sqlmodel import Session

from analysis.leaderboard import leaderboard
from analysis.report import equity_curves, render_report
from models.prices import Bar, insert_bars
from models.results import model_days_frame
from models.tables import ModelDay, Run
from tests.conftest import completed_day

DAYS = [date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6), date(2025, 1, 7)]
VALUES = [10_100.0, 10_200.0, 10_050.0, 10_300.0]


def test_days_simulated_by_two_runs_chain_in_date_order(session: Session) -> None:
    closes = [500.0, 505.0, 510.0, 500.0, 520.0]  # 2024-12-31 and the four days
    bars = [
        Bar(symbol="QQQ", market="real", ts=datetime(d.year, d.month, d.day), open=c, close=c)
        for d, c in zip([date(2024, 12, 31), *DAYS], closes, strict=True)
    ]
    insert_bars(session, bars)
    portfolios = {"m": "test/m@1"}
    first = Run(
        name="a",
        kind="backtest",
        models=["m"],
        portfolios=portfolios,
        start_date=DAYS[0],
        end_date=DAYS[-1],
    )
    second = Run(
        name="b",
        kind="backtest",
        models=["m"],
        portfolios=portfolios,
        start_date=DAYS[0],
        end_date=DAYS[-1],
    )
    session.add_all([first, second])
    session.flush()
    # An overlap or a resume: the later run adopted the first two days, the earlier the rest.
    owners = [second.id, second.id, first.id, first.id]
    for day, value, owner in zip(DAYS, VALUES, owners, strict=True):
        session.add(
            ModelDay(
                run_id=owner,
                model="m",
                portfolio="test/m@1",
                day=day,
                status="completed",
                cash_end=value,
                value_end=value,
            )
        )
    session.commit()

    frame = model_days_frame(session, first.id)
    assert list(frame["day"]) == DAYS
    (row, benchmark) = leaderboard(session, first.id)
    # Measured from the initial cash at the close before the first day.
    assert row.performance.start_date == date(2024, 12, 31)
    assert row.performance.cumulative_return == pytest.approx(10_300 / 10_000 - 1)
    assert benchmark.performance.cumulative_return == pytest.approx(520 / 500 - 1)


def store_benchmark(session: Session, closes: dict[date, float]) -> None:
    """QQQ's daily bars, each opening and closing at its close."""
    bars = [
        Bar(symbol="QQQ", ts=datetime(d.year, d.month, d.day), open=c, close=c)
        for d, c in closes.items()
    ]
    insert_bars(session, bars)


def test_every_curve_ends_at_its_leaderboard_final_value(session: Session) -> None:
    # Two models starting on different days and the benchmark: the charts' curves and the
    # leaderboard are one definition, so the starting points and the final values agree.
    closes = {
        date(2024, 12, 31): 500.0,
        **dict(zip(DAYS, [505.0, 510.0, 500.0, 520.0], strict=True)),
    }
    store_benchmark(session, closes)
    run = Run(name="curves", models=["a", "b"], start_date=DAYS[0], end_date=DAYS[-1])
    run.portfolios = {"a": "c/a@1", "b": "c/b@1"}
    session.add(run)
    session.flush()
    for model, days, values in [("a", DAYS, VALUES), ("b", DAYS[1:], [9_900.0, 9_800.0, 10_400.0])]:
        for day, value in zip(days, values, strict=True):
            session.add(completed_day(run, model, day, value))
    session.commit()

    curves = equity_curves(session, run.id)
    board = {row.model: row.performance for row in leaderboard(session, run.id)}
    assert set(curves.columns) == {"a", "b", "QQQ"}
    for column in curves.columns:
        series = curves[column].dropna()
        assert series.iloc[-1] == pytest.approx(board[column].end_value)
        assert series.iloc[0] == pytest.approx(board[column].start_value)
    assert curves["a"].dropna().iloc[0] == 10_000.0  # the starting book, the close before day 1
    assert curves["b"].dropna().index[0].date() == DAYS[0]  # b starts the day before its first
    assert curves["QQQ"].iloc[0] == 10_000.0 and curves.index[0].date() == date(2024, 12, 31)
    # The report's table writes the same numbers as the CLI: amounts and percentages with two
    # decimals and separators, ratios with two.
    table = render_report(session, run.id).markdown.split("\n\n")[1].splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in table[2:]
    ]
    row_a = next(row for row in rows if row["model"] == "a")
    assert row_a["final_value"] == "10,300.00"
    assert row_a["return_pct"] == "3.00" and re.fullmatch(r"-?\d+\.\d\d", row_a["sharpe"])


def test_a_continued_run_tells_one_story_in_the_chart_and_the_table(session: Session) -> None:
    # A portfolio that lost 10 % in an earlier run, then gains 3.3 % while QQQ gains 2 %. Over
    # the later run alone it beats QQQ, yet its book (9,300) ends below what 10,000 in QQQ became:
    # the later run shows the portfolio from its first day, so every view says the same.
    closes = {
        date(2024, 12, 31): 500.0,
        **dict(zip(DAYS, [505.0, 510.0, 500.0, 510.0], strict=True)),
    }
    store_benchmark(session, closes)
    earlier = Run(name="january", models=["m"], start_date=DAYS[0], end_date=DAYS[1])
    later = Run(name="january", models=["m"], start_date=DAYS[2], end_date=DAYS[3])
    for run in (earlier, later):
        run.portfolios = {"m": "c/m@1"}
        session.add(run)
    session.flush()
    for run, days, values in [
        (earlier, DAYS[:2], [9_500.0, 9_000.0]),
        (later, DAYS[2:], [9_100.0, 9_300.0]),
    ]:
        for day, value in zip(days, values, strict=True):
            session.add(completed_day(run, "m", day, value))
    session.commit()

    chart = equity_curves(session, later.id)
    model, benchmark = leaderboard(session, later.id)
    assert chart.index[0].date() == date(2024, 12, 31)  # the portfolio's start, not the run's
    assert chart["m"].iloc[0] == chart["QQQ"].iloc[0] == 10_000.0
    assert model.performance.end_value == chart["m"].iloc[-1] == 9_300.0  # the real book
    assert benchmark.performance.end_value == pytest.approx(chart["QQQ"].iloc[-1]) == 10_200.0
    beats_in_chart = chart["m"].iloc[-1] > chart["QQQ"].iloc[-1]
    beats_by_value = model.performance.end_value > benchmark.performance.end_value
    beats_by_return = model.performance.cumulative_return > benchmark.performance.cumulative_return
    assert beats_in_chart == beats_by_value == beats_by_return is False
    # An explicit window still measures from the book it starts with.
    (windowed, _) = leaderboard(session, later.id, start=DAYS[2])
    assert windowed.performance.cumulative_return == pytest.approx(9_300 / 9_000 - 1)
    # The daily values of the run stay its own days.
    assert list(model_days_frame(session, later.id)["day"]) == DAYS[2:]


def test_an_hourly_run_charts_its_values_at_the_bar_they_were_taken_at(session: Session) -> None:
    from analysis.curves import run_curves
    from analysis.report import equity_html, time_axis

    run = Run(name="hourly", models=["m"], start_date=DAYS[0], end_date=DAYS[2])
    run.portfolios = {"m": "h/m@1"}
    session.add(run)
    session.flush()
    for day, value in zip(DAYS[:3], VALUES[:3], strict=True):
        model_day = completed_day(run, "m", day, value)
        model_day.session = "10:30, 11:30, 14:00, 15:00"  # the SSE 50's bars, by their end
        session.add(model_day)
    session.commit()

    curves = run_curves(session, run.id)
    charted = curves.on_bar_times(curves.frame())
    assert curves.on_bar_times(curves.trial_frame()).empty  # no trials: nothing to move
    assert [t.strftime("%H:%M") for t in charted.index] == ["15:00"] * 3
    assert list(charted["m"]) == VALUES[:3] and list(curves.frame().index) == list(
        pd.to_datetime(DAYS[:3])
    )  # the statistics keep their days
    axis = time_axis(charted.index)
    assert axis == {"hoverformat": "%Y-%m-%d %H:%M", "dtick": 86_400_000, "tickformat": "%b %d"}
    assert time_axis(curves.frame().index)["hoverformat"] == "%Y-%m-%d"  # a daily market's
    months = pd.date_range("2025-01-01", "2025-03-31")
    assert "dtick" not in time_axis(months)  # a long span is left to plotly's own ticks
    assert '"dtick":86400000' in equity_html(charted, "t")


def test_a_model_keeps_its_colour_in_every_chart_of_the_store(session: Session) -> None:
    from analysis.colours import PALETTE, model_colours
    from analysis.report import equity_html

    session.add(Run(name="first", models=["zeta", "alpha"]))
    session.commit()
    before = model_colours(session)
    session.add(Run(name="second", models=["beta", "alpha"]))  # a new model, an old one
    session.commit()
    after = model_colours(session)
    assert after == {**before, "beta": PALETTE[2]}  # by first appearance: no colour moves
    frame = pd.DataFrame(
        {"alpha": [1.0, 2.0], "zeta": [1.0, 3.0], "QQQ": [1.0, 1.5]},
        index=pd.to_datetime(["2025-01-02", "2025-01-03"]),
    )
    html = equity_html(frame, "t", colours=after)
    for model in ("alpha", "zeta"):
        assert f'"line":{{"color":"{after[model]}"}},"mode":"lines","name":"{model}"' in html
