"""How long `aitrader backtest` takes to answer when nothing needs Prefect, against a run that
needs the temporary Prefect server, measured in the same run.

    .venv/bin/python benchmarks/answer_times.py [--repeat 3]

In a fresh store (`AITRADER_HOME` and `DATABASE_URL` in a temporary folder, no PREFECT_API_URL)
it times, each as a whole process from a shell: (1) a refused input (a date that does not exist),
(2) a one-day backtest, which starts the temporary Prefect server cold (it migrates a new
database first), (3) a catch-up, which starts it again on the database it kept, and (4) the same
catch-up once up to date, answered from the store. It prints the median of each and its ratio to the
cold run; the targets are under 2 s for (1) and (3) and under 5 s for the server's own start.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_STARTED = re.compile(r"(\d\d):(\d\d):(\d\d\.\d+) \| INFO +\| prefect - Starting temporary")
FLOW_BEGAN = re.compile(r"(\d\d):(\d\d):(\d\d\.\d+) \| INFO +\| Flow run .* - Beginning flow run")


def timed(arguments: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "deployments", *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return time.perf_counter() - started, done.stdout + done.stderr


def seconds(match: re.Match) -> float:
    hours, minutes, secs = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def server_start(output: str) -> float | None:
    """From the server's start to the flow run's first line, as the log shows it."""
    start, began = SERVER_STARTED.search(output), FLOW_BEGAN.search(output)
    return seconds(began) - seconds(start) if start and began else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    refused, cold, server, warm, up_to_date = [], [], [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="answer-times-") as folder:
            env = {
                **os.environ,
                "AITRADER_HOME": folder,
                "DATABASE_URL": f"sqlite:///{folder}/aitrader.db",
                "PREFECT_HOME": f"{folder}/prefect",
                "PREFECT_LOGGING_LEVEL": "INFO",
            }
            env.pop("PREFECT_API_URL", None)
            refused.append(timed(["backtest", "--start", "2025-02-30"], env)[0])
            elapsed, output = timed(
                ["backtest", "--start", "2025-01-02", "--end", "2025-01-02"], env
            )
            cold.append(elapsed)
            if (started := server_start(output)) is not None:
                server.append(started)
            # The config's end is 2025-03-31: catch up once, then ask again (nothing to do).
            if (started := server_start(timed(["backtest"], env)[1])) is not None:
                warm.append(started)  # the server's database exists now: no migration
            up_to_date.append(timed(["backtest"], env)[0])
    baseline = statistics.median(cold)
    print(f"{'answer':<44} {'median s':>9} {'/ cold run':>10}")
    for name, values in [
        ("refused input (2025-02-30)", refused),
        ("up-to-date catch-up (no Prefect)", up_to_date),
        ("temporary server start, new PREFECT_HOME", server),
        ("temporary server start, its database kept", warm),
        ("one-day backtest, cold temporary server", cold),
    ]:
        if values:
            median = statistics.median(values)
            print(f"{name:<44} {median:>9.2f} {median / baseline:>10.2f}")


if __name__ == "__main__":
    main()
