"""README.md and docs/*.md held to the code.

Every `aitrader …` line of a shell block must name a real command and real options of the CLI;
every relative link must point at a file (and heading); the README stays short; every shell or
Python block says which test runs it or why it is not run here. The slow tests run the documented
commands and compare their output with what the pages show.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from deployments.cli import app
from models.engine import dispose_engines
from tests.conftest import (
    ROOT,
    SHARED_DATA,
    FinishedBacktest,
    quickstart_job,
    sqlite_backup,
)
from tests.test_deployment_e2e import served_deployments

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250
SHELL = {"bash", "sh", "shell", "console"}
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "$("}
BOX = str.maketrans("│┃", "  ")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass
class Block:
    """A fenced code block, the paragraph just before it and the paragraph just after it."""

    page: Path
    line: int
    language: str
    lines: list[str]
    before: str = ""
    after: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[str]:
        """Shell commands: continuation lines joined; in a text block, the `$ …` lines."""
        if self.language not in SHELL:
            return [line[2:] for line in self.lines if line.startswith("$ ")]
        commands, pending = [], ""
        for line in self.lines:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            commands.append((pending + line).strip())
            pending = ""
        return [c for c in commands if c and not c.startswith("#")]


def paragraphs(lines: list[str]) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", "\n".join(lines)) if p.strip()]


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    prose: list[str] = []
    current: Block | None = None
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if current is not None:
            if line.startswith("```"):
                found.append(current)
                current = None
            else:
                current.lines.append(line)
            continue
        if line.startswith("```"):
            if found and not found[-1].after:
                found[-1].after = next(iter(paragraphs(prose)), "")
            before = (paragraphs(prose) or [""])[-1]
            current = Block(page, number, line[3:].strip(), [], before=before)
            prose = []
        elif line.startswith("#"):
            if found and not found[-1].after:
                found[-1].after = next(iter(paragraphs(prose)), "")
            prose = []
        else:
            prose.append(line)
    if found and not found[-1].after:
        found[-1].after = next(iter(paragraphs(prose)), "")
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def aitrader_invocations(command: str) -> list[list[str]]:
    """Each `aitrader …` a shell command runs (after env assignments, or inside a container)."""
    try:
        tokens = words(command)
    except ValueError:  # an unbalanced quote: a multi-line string, never an aitrader line here
        assert not re.search(r"(^|[\s/])aitrader\s", command), command
        return []
    segments, segment = [], []
    for token in [*tokens, ";"]:
        if token in SEPARATORS:
            segments.append(segment)
            segment = []
        else:
            segment.append(token)
    found = []
    for segment in segments:
        program = next((i for i, w in enumerate(segment) if not ENV_ASSIGNMENT.match(w)), None)
        if program is None:
            continue
        # The program itself, or the command a container runs (`podman run … IMAGE aitrader …`).
        candidates = [program]
        if segment[program] in ("docker", "podman"):
            candidates = range(program + 1, len(segment))
        for index in candidates:
            if segment[index] == "aitrader" or segment[index].endswith("/bin/aitrader"):
                found.append(["aitrader", *segment[index + 1 :]])
                break
    return found


DOCUMENTED = [
    (block, invocation)
    for block in ALL_BLOCKS
    for command in block.commands()
    for invocation in aitrader_invocations(command)
]


def choices(param) -> list[str] | None:
    """The values a parameter accepts, when it is a choice (click's Choice, or an Enum in typer)."""
    kind = getattr(param, "type", None)
    if hasattr(kind, "choices"):
        return [str(c) for c in kind.choices]
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    return None


def cli_problems(arguments: list[str]) -> list[str]:
    """What of `aitrader ARGUMENTS` the real typer app does not know: commands, options, choices.

    Walks the click command tree typer builds (duck-typed: typer may bring its own click).
    """
    command = typer.main.get_command(app)
    path, positional, problems = ["aitrader"], 0, []
    rest = arguments[1:]
    while rest:
        word, rest = rest[0], rest[1:]
        if word.startswith("-") and word != "-":
            if hasattr(command, "default_view") and word != "--help":  # `aitrader results -f json`
                command = command.commands[command.default_view]
                path.append(command.name)
            name, _, inline = word.partition("=")
            options = [p for p in command.params if p.param_type_name == "option"]
            option = next((p for p in options if name in (*p.opts, *p.secondary_opts)), None)
            if option is None:
                if name != "--help":
                    problems.append(f"`{' '.join(path)}` has no option {name}")
                continue
            if option.is_flag or option.count or inline:
                continue
            value, rest = rest[:1], rest[1:]
            allowed = choices(option)
            if allowed and value and value[0] not in allowed:
                problems.append(f"{name} {value[0]}: not one of {allowed}")
            continue
        if hasattr(command, "commands"):
            if word not in command.commands:
                problems.append(f"`{' '.join(path)}` has no command {word}")
                return problems
            command, positional = command.commands[word], 0
            path.append(word)
            continue
        arguments_of = [p for p in command.params if p.param_type_name == "argument"]
        if positional < len(arguments_of):
            allowed = choices(arguments_of[positional])
            if allowed and word not in allowed:
                problems.append(f"`{' '.join(path)}` {word}: not one of {allowed}")
        positional += 1
    return problems


@pytest.mark.parametrize(
    ("block", "invocation"),
    DOCUMENTED,
    ids=[f"{b.where} {' '.join(i)}" for b, i in DOCUMENTED],
)
def test_documented_aitrader_commands_exist_in_the_cli(block: Block, invocation: list[str]):
    assert cli_problems(invocation) == [], f"{block.where}: {' '.join(invocation)}"


def test_the_docs_document_the_cli_at_all() -> None:
    assert len(DOCUMENTED) >= 30
    documented = {tuple(i[1:3]) for _, i in DOCUMENTED}
    for command in [("backtest",), ("results", "days"), ("data", "import"), ("serve",)]:
        assert any(d[: len(command)] == command for d in documented), command


def test_the_checker_catches_drift() -> None:
    assert cli_problems(["aitrader", "backtest", "--start", "2025-01-02", "-c", "x.yaml"]) == []
    assert cli_problems(["aitrader", "--db", "sqlite://", "data", "coverage", "--summary"]) == []
    assert cli_problems(["aitrader", "backtest", "--no-such-option"])
    assert cli_problems(["aitrader", "data", "nothing"])
    assert cli_problems(["aitrader", "results", "--format", "xml"])
    assert cli_problems(["aitrader", "results", "--format", "json"]) == []  # the leaderboard's
    assert cli_problems(["aitrader", "results", "runs", "--model", "x"])


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces to hyphens."""
    headings = [
        line.lstrip("#").strip()
        for line in page.read_text().splitlines()
        if re.match(r"#{1,6} ", line)
    ]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def prose_lines(page: Path) -> Iterator[tuple[int, str]]:
    fenced = False
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield number, re.sub(r"`[^`]*`", "", line)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_point_at_files(page: Path) -> None:
    broken = []
    for number, line in prose_lines(page):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{number}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{number}: {target} (no such heading)")
    assert broken == []


def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move topics to docs/"


def quick_start_blocks() -> list[Block]:
    section = re.search(
        r"^#+[^\n]*quick ?start[^\n]*\n(.*?)(?=^#+ |\Z)", README.read_text(), re.I | re.S | re.M
    )
    assert section, "README.md has no Quick start section"
    first = section.start(1)
    line = README.read_text()[:first].count("\n") + 1
    return [b for b in blocks(README) if line <= b.line <= line + section.group(1).count("\n")]


def test_quick_start_is_the_main_job_then_the_command_ci_runs() -> None:
    commands = quick_start_blocks()[0].commands()
    assert commands == ["python3 quickstart.py run", "python3 quickstart.py test"]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


COMMAND_BLOCKS = [
    b for b in ALL_BLOCKS if b.language in SHELL | {"python"} or (b.commands() and b.language)
]


@pytest.mark.parametrize("block", COMMAND_BLOCKS, ids=[b.where for b in COMMAND_BLOCKS])
def test_every_command_block_says_which_test_runs_it_or_why_not(block: Block) -> None:
    around = f"{block.before}\n{block.after}"
    following = ALL_BLOCKS[ALL_BLOCKS.index(block) + 1 :][:1]
    output = [b for b in following if b.page == block.page and b.language in ("text", "")]
    if output and not output[0].commands():  # the output shown: what follows is said of both
        around += output[0].after
    assert re.search(r"not\s+run\s+here|`tests/[\w/.:]+`", around, re.I), (
        f"{block.where}: name the test that runs this block, or say why it is not run here"
    )


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_test_the_docs_name_exists(page: Path) -> None:
    named = set(re.findall(r"`(tests/[\w/.]+)(?:::\w+)?`", page.read_text()))
    assert [n for n in sorted(named) if not (ROOT / n).exists()] == []


# --- running what the pages show -----------------------------------------------------------------


def documented(page: str, command: str) -> list[str]:
    """The words of `command`, which must be a command line of a code block of `page`."""
    lines = {c for b in ALL_BLOCKS if b.page == ROOT / page for c in b.commands()}
    assert command in lines, f"{page} no longer shows `{command}`"
    shared = "../shared/data"
    return [
        str(SHARED_DATA) + w[len(shared) :] if w.startswith(shared) else w for w in words(command)
    ]


def local(arguments: list[str]) -> list[str]:
    """Repository-relative paths made absolute, for commands run outside the repository."""
    return [str(ROOT / a) if a.startswith("configs/") else a for a in arguments]


def assert_shows(expected: list[str], output: str) -> None:
    """Each expected line's words appear, in order, in one line of `output` (`…` is a cut)."""
    actual = [line.translate(BOX).split() for line in output.splitlines()]

    def within(wanted: list[str], line: list[str]) -> bool:
        remaining = iter(line)
        return all(any(w == cell for cell in remaining) for w in wanted)

    for line in expected:
        wanted = [w for w in line.split() if w != "…"]
        assert any(within(wanted, got) for got in actual), f"not in the output: {line}\n{output}"


def sessions(page: str) -> dict[str, list[str]]:
    """The `$ command` lines of a page's text blocks, each with the output lines shown after it."""
    shown: dict[str, list[str]] = {}
    for block in (b for b in ALL_BLOCKS if b.page == ROOT / page and b.language == "text"):
        command = None
        for line in block.lines:
            if line.startswith("$ "):
                command = line[2:]
                shown[command] = []
            elif command is not None:
                shown[command].append(line)
    return shown


@pytest.fixture
def cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):
    """`aitrader …` in-process against a scratch store; returns its exit code and output."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    runner = CliRunner()

    def invoke(arguments: list[str]) -> tuple[int, str]:
        result = runner.invoke(app, arguments[1:])
        return result.exit_code, result.stdout + result.stderr

    yield invoke
    dispose_engines()


def test_the_documented_data_commands_run(cli, shared_data: Path) -> None:
    for command in [
        "aitrader data synth --seed 7 --start 2024-10-01 --end 2025-06-30",
        "aitrader data import ../shared/data/nasdaq100_daily",
        "aitrader data import-news ../shared/data/alphavantage_news_sample.json",
        "aitrader data coverage --summary --market real --format csv",
    ]:
        code, output = cli(documented("docs/market-data.md", command))
        assert code == 0, f"{command}:\n{output}"
    assert "real,1d,103,2025-06-10,2025-10-30,10279" in output


def test_the_original_run_imports_and_ranks_as_shown(cli, shared_data: Path) -> None:
    shown = sessions("docs/market-data.md")
    assert len(shown) == 4
    for command, expected in shown.items():
        code, output = cli(documented("docs/market-data.md", command))
        assert code == 0, f"{command}:\n{output}"
        assert_shows(expected, output)


def run_aitrader(arguments: list[str], env: dict[str, str], cwd: Path) -> str:
    """`aitrader ARGUMENTS` in its own process, as a user runs it; its output (exit 0 asserted)."""
    done = subprocess.run(
        [sys.executable, "-m", "deployments", *local(arguments)[1:]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{' '.join(arguments)}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("quickstart-backtest")  # shares its backtest with the crash test
def test_the_quick_start_backtest_prints_the_documented_leaderboard(
    quickstart_backtest: FinishedBacktest,
    prefect_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = "docs/backtests.md"
    job = quickstart_job()
    assert documented(page, " ".join(job)) == job

    # The job itself, as `python3 quickstart.py run` runs it: its own temporary Prefect server.
    assert_shows(quick_start_blocks()[1].lines, quickstart_backtest.output)
    (report,) = (quickstart_backtest.folder / "reports").glob("*/run-1/report.md")  # per store
    assert "| rank | model | tier |" in report.read_text()

    # The page's next commands, on a copy of its store, against the session's Prefect server.
    store = sqlite_backup(quickstart_backtest.store, tmp_path / "aitrader.db")
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "DATABASE_URL": store,
        "AITRADER_HOME": str(tmp_path),
    }
    up_to_date = "UpToDate: up to date: every model has simulated through 2025-03-31"
    assert up_to_date in (ROOT / page).read_text()
    assert up_to_date in run_aitrader(documented(page, "aitrader backtest"), env, tmp_path)
    chosen = documented(
        page, "aitrader backtest -m momentum -m random --start 2025-01-02 --end 2025-01-10"
    )
    assert "Completed: 6 day(s), 12 model-day(s)" in run_aitrader(chosen, env, tmp_path)
    replay = documented(page, "aitrader backtest --replay --start 2025-01-02 --end 2025-01-10")
    assert "Completed: 6 day(s), 18 model-day(s)" in run_aitrader(replay, env, tmp_path)

    monkeypatch.setenv("DATABASE_URL", store)
    runner = CliRunner()
    try:
        for command in [
            "aitrader results runs",
            "aitrader results leaderboard --risk-free-rate 0.04 --format json",
            "aitrader results days --model momentum --start 2025-01-02 --end 2025-01-10"
            " --format csv",
            "aitrader results details --model equal-weight --day 2025-01-02",
        ]:
            result = runner.invoke(app, documented(page, command)[1:])
            assert result.exit_code == 0 and result.stdout.strip(), f"{command}:\n{result.output}"
    finally:
        dispose_engines()


@pytest.mark.slow
def test_the_real_data_backtest_runs_as_documented(
    prefect_server: str, tmp_path: Path, shared_data: Path
) -> None:
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'aitrader.db'}",
    }
    page = "docs/backtests.md"
    run_aitrader(
        documented(page, "aitrader data import ../shared/data/nasdaq100_daily"), env, tmp_path
    )
    output = run_aitrader(
        documented(page, "aitrader backtest --config configs/nasdaq100-real.yaml"), env, tmp_path
    )
    done = "Completed: 22 day(s), 66 model-day(s)"
    assert done in (ROOT / page).read_text()
    assert done in output and "QQQ" in output, output
    # The baseline is invested on real prices too: under 5 % cash after its first session.
    days = json.loads(
        run_aitrader(
            ["aitrader", "results", "days", "--model", "equal-weight", "-f", "json"], env, tmp_path
        )
    )
    first = min(days, key=lambda d: d["day"])
    assert first["cash"] < 0.05 * first["value"], first


@pytest.mark.slow
def test_prefect_deployment_run_watch_exits_as_documented(prefect_server: str, tmp_path: Path):
    command = (
        "prefect deployment run 'backtest/manual' --param start=2025-01-02 "
        "--param end=2025-01-10 --watch"
    )
    arguments = documented("docs/deployments.md", command)
    refused = [
        a.replace("start=2025-01-02", "start=2025-02-01").replace(
            "end=2025-01-10", "end=2025-01-01"
        )
        for a in arguments
    ]
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}

    def prefect(words_: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "prefect", *words_[1:]],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    with served_deployments(prefect_server, store, tmp_path):
        good, bad = prefect(arguments), prefect(refused)
    assert good.returncode == 0 and "'Completed'" in good.stdout, good.stdout + good.stderr
    assert bad.returncode == 1 and "'Failed'" in bad.stdout, bad.stdout + bad.stderr
