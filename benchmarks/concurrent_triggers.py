"""REST triggers against a Prefect server on its default SQLite database, idle and under load.

    .venv/bin/python benchmarks/concurrent_triggers.py [--rounds 2] [--runs 10] [--postgres [URL]]

Starts a dedicated Prefect server (`aitrader server`, SQLite in a temporary PREFECT_HOME) and
serves the project's deployments on it (`aitrader serve --paused-schedule`), then measures
`POST /api/deployments/{id}/create_flow_run` on the `backtest/manual` deployment:

  baseline     ten calls one after another on the idle server, plain httpx, no retry;
  idle x10     ten simultaneous plain calls (threads) on the idle server;
  load seq.    ten plain calls one after another while `--runs` `aitrader backtest` CLI runs
               (default config, 2025-01-02 to 2025-03-31, each with its own temporary store)
               are busy against the same server;
  load plain   ten simultaneous plain calls under the same load;
  load retry   the same with the retrying client of docs/concurrency.md (its Python block is
               read from that page and run as written);
  load wmill   the same with the retry policy of the Windmill client (attempts and delays read
               from windmill/f/trading/prefect_client.ts).
The four loaded scenarios take turns, `--rounds` times. The CLI runs that fail are reported.

The whole sequence then runs again on a fresh server with PREFECT_SERVER_DATABASE_TIMEOUT=60
(the only server setting Prefect 3.9.1 applies to its SQLite connections; default 10 s), and,
with `--postgres`, on a server on a scratch PostgreSQL database. It prints one row per scenario
(calls, 503s, other errors, 503s the retrying client absorbed, p50/p95 latency, p50 against the
baseline p50 measured first in this run) and, per server, the 503s it answered to all of its
clients under load by endpoint (from its log, with PREFECT_SERVER_LOG_RETRYABLE_ERRORS=true).

The triggered runs are created Scheduled a day ahead, so the served runner does not start them
and every scenario meets the same load (the create call itself is the same insert either way).
Every process started here gets its own process group and is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "concurrency.md"
DEPLOYMENT = "backtest/manual"  # deployments/serve.py: flow `backtest`, deployment `manual`
# Sixty trading days: each CLI run stays busy through the measurement (a January run alone takes
# about 25 s here, and some of ten would finish before the last one starts).
CLI_DATES = ("--start", "2025-01-02", "--end", "2025-03-31")
SETTING = ("PREFECT_SERVER_DATABASE_TIMEOUT", "60")
LOCKED = "Encountered retryable exception in request"


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`aitrader ARGUMENTS` in its own process group, output to `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "deployments", *arguments],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group started for `process`, SIGKILL it if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # children left behind in the group
        os.killpg(process.pid, signal.SIGKILL)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what}: the process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if predicate():
                return
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def base_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    return env


@contextlib.contextmanager
def prefect_server(
    folder: Path, arguments: list[str], settings: dict[str, str]
) -> Iterator[tuple[str, Path]]:
    """`aitrader server ARGUMENTS` (SQLite in `folder` by default); yields its API URL and log."""
    home = folder / "server-home"
    home.mkdir(parents=True)
    env = {**base_env(home), "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true", **settings}
    port = free_port()
    log = folder / "server.log"
    process = start(["server", "--port", str(port), "--no-ui", *arguments], env, log)
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/health").status_code == 200, 180, "the server", process
        )
        yield url, log
    finally:
        stop(process)


@contextlib.contextmanager
def served_deployments(api_url: str, folder: Path, retrying) -> Iterator[str]:
    """`aitrader serve --paused-schedule` against the server; yields the manual deployment id."""
    home = folder / "serve-home"
    home.mkdir()
    env = {
        **base_env(home),
        "PREFECT_API_URL": api_url,
        "DATABASE_URL": f"sqlite:///{folder / 'serve-store.db'}",
    }
    process = start(["serve", "--paused-schedule"], env, folder / "serve.log")
    try:
        with retrying(api_url) as api:
            path = f"/deployments/name/{DEPLOYMENT}"
            wait_until(
                lambda: api.get(path).status_code == 200, 120, "the served deployments", process
            )
            yield api.get(path).json()["id"]
    finally:
        stop(process)


@contextlib.contextmanager
def busy_backtests(api_url: str, folder: Path, count: int) -> Iterator[list[subprocess.Popen]]:
    """`count` `aitrader backtest` CLI runs against the server, each with its own store."""
    processes = []
    try:
        for i in range(count):
            work = folder / f"cli-{i}"
            (work / "home").mkdir(parents=True)
            env = {
                **base_env(work / "home"),
                "PREFECT_API_URL": api_url,
                "DATABASE_URL": f"sqlite:///{work / 'store.db'}",
            }
            arguments = ["backtest", *CLI_DATES, "--reports", str(work / "reports")]
            processes.append(start(arguments, env, work / "out.log"))
        yield processes
    finally:
        for process in processes:
            stop(process)


# --- the calls -----------------------------------------------------------------------------------


def documented_client() -> dict:
    """The first Python block of docs/concurrency.md, run as written: `prefect_api`, `trigger`."""
    match = re.search(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)
    if match is None:
        raise SystemExit(f"{DOC} has no Python block")
    namespace: dict = {"__name__": "docs_concurrency"}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)
    return namespace


def trigger_body() -> dict:
    """A manual backtest a day ahead (Scheduled), so the served runner leaves it alone."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return {
        "parameters": {"start": "2025-01-02", "end": "2025-01-03"},
        "tags": ["bench"],
        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": tomorrow}},
    }


@dataclass
class Outcome:
    status: int | str  # the HTTP status, or the exception's name
    seconds: float


def plain_call(api_url: str, deployment_id: str) -> Callable[[], Outcome]:
    """One plain httpx POST, no retry, as a script or another scheduler would send it."""
    client = httpx.Client(base_url=api_url, timeout=60)
    body = {**trigger_body(), "idempotency_key": f"bench-{uuid.uuid4()}"}

    def call() -> Outcome:
        started = time.perf_counter()
        try:
            with client:
                response = client.post(f"/deployments/{deployment_id}/create_flow_run", json=body)
            return Outcome(response.status_code, time.perf_counter() - started)
        except httpx.HTTPError as exc:
            return Outcome(type(exc).__name__, time.perf_counter() - started)

    return call


WINDMILL = ROOT / "windmill" / "f" / "trading" / "prefect_client.ts"


@dataclass(frozen=True)
class WindmillPolicy:
    """The Windmill client's retry policy, as written in prefect_client.ts."""

    statuses: set[int]
    attempts: int
    base_delay: float  # seconds, like the cap
    max_delay: float
    jitter: float

    def delay(self, attempt: int) -> float:
        """`retryDelayMs`: doubling from the base up to the cap, then ±jitter at random."""
        delay = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return delay * (1 + self.jitter * (2 * random.random() - 1))


def windmill_policy() -> WindmillPolicy:
    """The retry statuses, attempts, delays and jitter of the Windmill client, read from it."""
    source = WINDMILL.read_text()
    statuses = re.search(r"RETRY_STATUSES = \[([\d, ]+)\]", source)
    policy = re.search(
        r"retryPolicy = \{ attempts: (\d+), baseDelayMs: ([\d_]+), "
        r"maxDelayMs: ([\d_]+), jitter: ([\d.]+) \}",
        source,
    )
    if statuses is None or policy is None:
        raise SystemExit(f"{WINDMILL}: RETRY_STATUSES or retryPolicy no longer as expected")
    attempts, base, cap, jitter = policy.groups()
    return WindmillPolicy(
        statuses={int(code) for code in statuses.group(1).split(",")},
        attempts=int(attempts),
        base_delay=int(base.replace("_", "")) / 1000,
        max_delay=int(cap.replace("_", "")) / 1000,
        jitter=float(jitter),
    )


class WindmillRetries(httpx.HTTPTransport):
    """The Windmill client's loop (prefect_client.ts `prefectCall`): Retry-After when positive,
    else its `retryDelayMs`, up to `attempts` attempts in all."""

    def __init__(self, log: logging.Logger) -> None:
        super().__init__()
        self.log = log
        self.policy = windmill_policy()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, self.policy.attempts + 1):
            response = super().handle_request(request)
            if response.status_code not in self.policy.statuses or attempt >= self.policy.attempts:
                return response
            response.close()
            try:
                after = float(response.headers.get("Retry-After", "0"))
            except ValueError:
                after = 0
            delay = after if after > 0 else self.policy.delay(attempt)
            self.log.info("%s: %s, retry in %.1f s", request.url.path, response.status_code, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")


def retrying_call(doc: dict, client: httpx.Client, deployment_id: str) -> Callable[[], Outcome]:
    """The documented `trigger` through a retrying `client`."""
    key = f"bench-{uuid.uuid4()}"

    def call() -> Outcome:
        started = time.perf_counter()
        try:
            with client:
                created = doc["trigger"](client, deployment_id, key, **trigger_body())
            assert created["id"]
            return Outcome(201, time.perf_counter() - started)
        except httpx.HTTPStatusError as exc:
            return Outcome(exc.response.status_code, time.perf_counter() - started)
        except httpx.HTTPError as exc:
            return Outcome(type(exc).__name__, time.perf_counter() - started)

    return call


def sequential(calls: list[Callable[[], Outcome]]) -> list[Outcome]:
    return [call() for call in calls]


def simultaneous(calls: list[Callable[[], Outcome]]) -> list[Outcome]:
    """Every call in its own thread, released together."""
    barrier = threading.Barrier(len(calls))
    results: list[Outcome | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


class RetryCounter(logging.Handler):
    """Counts the retries the documented client logs (one record per busy answer retried)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


# --- the scenarios -------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    server: str
    outcomes: list[Outcome] = field(default_factory=list)
    retried: int | None = None

    @property
    def n503(self) -> int:
        return sum(o.status == 503 for o in self.outcomes)

    @property
    def other(self) -> int:
        return sum(o.status not in (200, 201, 503) for o in self.outcomes)

    def percentile(self, q: float) -> float:
        ordered = sorted(o.seconds for o in self.outcomes)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def running_backtests(api: httpx.Client) -> int:
    """Top-level flow runs without a deployment (the CLI runs) that are RUNNING now."""
    body = {
        "flow_runs": {
            "state": {"type": {"any_": ["RUNNING"]}},
            "deployment_id": {"is_null_": True},
            "parent_task_run_id": {"is_null_": True},
        }
    }
    return api.post("/flow_runs/count", json=body).json()


def busy_answers(log: str) -> Counter:
    """The 503s the server logged, by API endpoint (`module.function` of prefect/server/api)."""
    found: Counter = Counter()
    for record in log.split(LOCKED)[1:]:
        where = re.findall(r'prefect/server/api/(\w+)\.py", line \d+, in (\w+)', record)
        endpoint = next((f"{m}.{f}" for m, f in where if m != "server"), "other")
        found[endpoint] += 1
    return found


@dataclass
class Server:
    label: str
    arguments: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


# long: one benchmark round, read top to bottom as the table it prints: start, load, measure, stop.
def measure(server: Server, folder: Path, doc: dict, counter: RetryCounter, args) -> tuple:
    """Every scenario against one fresh server; the rows and a note on the loaded window."""
    n, label = args.calls, server.label
    baseline = Row("baseline: sequential, idle, plain", label)
    idle = Row(f"{n} simultaneous, idle, plain", label)
    one_by_one = Row(f"sequential + {args.runs} CLI runs, plain", label)
    plain = Row(f"{n} simultaneous + {args.runs} CLI runs, plain", label)
    retry = Row(f"{n} simultaneous + {args.runs} CLI runs, retrying", label, retried=0)
    windmill = Row(f"{n} simultaneous + {args.runs} CLI runs, Windmill's retries", label, retried=0)
    with (
        prefect_server(folder, server.arguments, server.settings) as (api_url, server_log),
        served_deployments(api_url, folder, doc["prefect_api"]) as deployment_id,
    ):

        def plain_calls() -> list[Callable[[], Outcome]]:
            return [plain_call(api_url, deployment_id) for _ in range(n)]

        def retrying_calls() -> list[Callable[[], Outcome]]:
            clients = [doc["prefect_api"](api_url, timeout=60) for _ in range(n)]
            return [retrying_call(doc, client, deployment_id) for client in clients]

        def windmill_calls() -> list[Callable[[], Outcome]]:
            clients = [
                httpx.Client(base_url=api_url, transport=WindmillRetries(doc["log"]), timeout=60)
                for _ in range(n)
            ]
            return [retrying_call(doc, client, deployment_id) for client in clients]

        baseline.outcomes = sequential(plain_calls())
        idle.outcomes = simultaneous(plain_calls())
        logged_before = len(server_log.read_text().split(LOCKED))
        started = time.monotonic()
        with (
            busy_backtests(api_url, folder, args.runs) as clis,
            doc["prefect_api"](api_url) as api,
        ):
            # Until every CLI run still alive has its flow run RUNNING, 60 s at most (on a loaded
            # machine some take minutes; the note below says how many were busy).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and running_backtests(api) < sum(
                p.poll() is None for p in clis
            ):
                time.sleep(1)
            ramp = time.monotonic() - started
            alive, busy = [], []
            for _ in range(args.rounds):
                for row, run, calls in (
                    (one_by_one, sequential, plain_calls),
                    (plain, simultaneous, plain_calls),
                    (retry, simultaneous, retrying_calls),
                    (windmill, simultaneous, windmill_calls),
                ):
                    alive.append(sum(p.poll() is None for p in clis))
                    busy.append(running_backtests(api))
                    before = counter.count
                    row.outcomes += run(calls())
                    if row.retried is not None:
                        row.retried += counter.count - before
            window = time.monotonic() - started - ramp
            ended = [(i, p.returncode) for i, p in enumerate(clis) if p.poll() is not None]
            failures = [
                f"cli-{i} exit {code}: {last_line(folder / f'cli-{i}' / 'out.log')}"
                for i, code in ended
                if code != 0
            ]
        logged = LOCKED.join(server_log.read_text().split(LOCKED)[logged_before - 1 :])
    by_endpoint = ", ".join(f"{e} {c}" for e, c in busy_answers(logged).most_common())
    note = (
        f"{label}: the CLI runs took {ramp:.0f} s to reach {args.runs} running flow runs; during"
        f" the {window:.0f} s of loaded rounds {min(alive)}-{max(alive)} CLI processes were alive"
        f" and {min(busy)}-{max(busy)} CLI flow runs RUNNING. 503s the server answered from ramp"
        f" to end, by endpoint (the CLI runs' included): {by_endpoint or 'none'}."
    )
    note += (
        f" CLI runs that ended before the last round did: {len(ended)}, failed: {len(failures)}"
        + "".join(f"; {f}" for f in failures)
        + "."
    )
    return [baseline, idle, one_by_one, plain, retry, windmill], note


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def table(rows: list[Row], baseline: float) -> str:
    header = (
        "scenario",
        "server",
        "calls",
        "503s",
        "other errors",
        "retried 503s",
        "p50 ms",
        "p95 ms",
        "p50 / baseline p50",
    )
    lines = [header]
    for row in rows:
        p50 = row.percentile(0.5)
        lines.append(
            (
                row.scenario,
                row.server,
                str(len(row.outcomes)),
                str(row.n503),
                str(row.other),
                "-" if row.retried is None else str(row.retried),
                f"{1000 * p50:.0f}",
                f"{1000 * row.percentile(0.95):.0f}",
                f"{p50 / baseline:.1f}x",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        pairs = enumerate(zip(line, widths, strict=True))
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in pairs]
        out.append("| " + " | ".join(cells) + " |")
        if number == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server of `url`, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(url).set(drivername="postgresql+psycopg")
    name = f"prefect_bench_triggers_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def execute(statement: str) -> None:
        with admin.connect() as connection:
            connection.execute(text(statement))

    execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    execute(f"CREATE DATABASE {name}")
    try:
        yield (
            make_url(url)
            .set(drivername="postgresql", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10, help="calls per round (default 10)")
    parser.add_argument("--runs", type=int, default=10, help="busy CLI runs (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="loaded rounds (default 2)")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql://postgres@127.0.0.1:5432/postgres",
        metavar="URL",
        help="also measure a server on a scratch database of this PostgreSQL server"
        " (default postgresql://postgres@127.0.0.1:5432/postgres); about 2 more minutes",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()

    doc = documented_client()
    counter = RetryCounter()
    retry_log = logging.getLogger(doc["log"].name)
    retry_log.addHandler(counter)
    retry_log.setLevel(logging.INFO)
    retry_log.propagate = False

    folder = Path(tempfile.mkdtemp(prefix="aitrader-concurrent-triggers-"))
    began = time.monotonic()
    rows, notes = [], []
    servers = [
        Server("SQLite, defaults"),
        Server(f"SQLite, {SETTING[0]}={SETTING[1]}", settings=dict([SETTING])),
    ]
    try:
        with contextlib.ExitStack() as stack:
            if args.postgres:
                database = stack.enter_context(postgres_database(args.postgres))
                servers.append(Server("PostgreSQL", arguments=["--database-url", database]))
            for number, server in enumerate(servers):
                part = folder / f"server-{number}"
                part.mkdir()
                more, note = measure(server, part, doc, counter, args)
                rows += more
                notes.append(note)
                print(
                    f"... {server.label}: done at {time.monotonic() - began:.0f} s", file=sys.stderr
                )
    finally:
        if args.keep:
            print(f"logs kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    baseline = rows[0].percentile(0.5)
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"create_flow_run on {DEPLOYMENT}; {os.cpu_count()} CPUs; {stamp}")
    print(table(rows, baseline))
    for note in notes:
        print(f"- {note}")
    print(f"- total {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
