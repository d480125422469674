"""The daily schedule is one fact: serve.py, prefect.yaml and the Windmill schedule agree on it."""

from __future__ import annotations

from typing import Any

import yaml

from deployments.serve import DAILY_CRON, TIMEZONE, deployments
from tests.conftest import ROOT

WINDMILL_SCHEDULE = ROOT / "windmill" / "f" / "trading" / "daily_simulation.schedule.yaml"


def _daily_deployment() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (daily,) = [d for d in document["deployments"] if d["name"] == "daily"]
    return daily


def test_prefect_yaml_schedules_the_daily_deployment_like_serve() -> None:
    (schedule,) = _daily_deployment()["schedules"]
    assert schedule["cron"].split() == DAILY_CRON.split()
    assert schedule["timezone"] == TIMEZONE


def test_the_windmill_schedule_fires_at_the_same_time() -> None:
    schedule = yaml.safe_load(WINDMILL_SCHEDULE.read_text())
    seconds, *fields = schedule["schedule"].split()  # Windmill crons lead with seconds
    assert seconds == "0"
    assert fields == DAILY_CRON.split()
    assert schedule["timezone"] == TIMEZONE
    assert schedule["args"]["deployment"] == "backtest/daily"


def test_served_deployments_use_the_same_schedule() -> None:
    daily, manual = deployments()
    (schedule,) = daily.schedules
    assert schedule.schedule.cron == DAILY_CRON and schedule.schedule.timezone == TIMEZONE
    assert not manual.schedules
