"""How long `aitrader backtest` takes to answer, from a shell, in the cases a user meets first.

    .venv/bin/python benchmarks/answer_times.py [--repeat 3]

In a fresh store (`AITRADER_HOME` and `DATABASE_URL` in a temporary folder, no PREFECT_API_URL)
it times, each as a whole process: (1) a refused input (a date that does not exist), (2) a one-day
backtest in a new PREFECT_HOME on a machine that has never run one (a new `AITRADER_CACHE`: the
migrated template of Prefect's database is built first, deployments/ephemeral_server.py), (3) the
same in another new PREFECT_HOME (the template is copied), (4) a catch-up, which starts the
temporary server on the database it kept, and (5) the same catch-up once up to date, answered from
the store. It prints the median of each and its ratio to (3), whose target is under 10 s, and the
peak memory of the client process of (3) (target under 300 MiB; the server is another process).
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
# The command run in a Python that reports its own peak memory (the client's, not the server's).
MEASURED = (
    "import resource, runpy, sys\n"
    "sys.argv = ['aitrader', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('deployments', run_name='__main__')\n"
    "finally:\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    print(f'peak client memory: {peak / 1024:.0f} MiB', file=sys.stderr)\n"
)
PEAK = re.compile(r"peak client memory: (\d+) MiB")


def timed(arguments: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return time.perf_counter() - started, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    peaks = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="answer-times-") as folder:
            env = {
                **os.environ,
                "AITRADER_HOME": folder,
                "AITRADER_CACHE": f"{folder}/cache",
                "DATABASE_URL": f"sqlite:///{folder}/aitrader.db",
                "PREFECT_HOME": f"{folder}/prefect",
            }
            env.pop("PREFECT_API_URL", None)
            one_day = ["backtest", "--start", "2025-01-02", "--end", "2025-01-02"]
            times["refused"].append(timed(["backtest", "--start", "2025-02-30"], env)[0])
            times["first"].append(timed(one_day, env)[0])
            env["PREFECT_HOME"] = f"{folder}/prefect-2"  # a new home: its database is copied
            env["DATABASE_URL"] = f"sqlite:///{folder}/aitrader-2.db"
            elapsed, output = timed(one_day, env)
            times["copied"].append(elapsed)
            peaks += [float(peak) for peak in PEAK.findall(output)]
            # The config's end is 2025-03-31: catch up once, then ask again (nothing to do).
            times["kept"].append(timed(["backtest"], env)[0])
            times["up_to_date"].append(timed(["backtest"], env)[0])
    baseline = statistics.median(times["copied"])
    print(f"{'answer':<58} {'median s':>9} {'/ (3)':>6}")
    for name, label in ROWS.items():
        median = statistics.median(times[name])
        print(f"{label:<58} {median:>9.2f} {median / baseline:>6.2f}")
    print(f"peak client memory of (3), median: {statistics.median(peaks):.0f} MiB")


ROWS = {
    "refused": "(1) refused input (2025-02-30)",
    "first": "(2) one-day backtest, new PREFECT_HOME, template built",
    "copied": "(3) one-day backtest, new PREFECT_HOME, template copied",
    "kept": "(4) catch-up to 2025-03-31, its Prefect database kept",
    "up_to_date": "(5) up-to-date catch-up (no Prefect)",
}


if __name__ == "__main__":
    main()
