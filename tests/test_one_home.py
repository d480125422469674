"""Each fact the code relies on is written in one place (issue 23): a second copy can drift.

The scan covers the project's Python source, not tests/ or benchmarks/ (their fixtures may
spell a value out) and not the YAML that defines markets and universes, which is the home of
their numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from configs.loader import default_benchmark
from configs.markets import DEFAULT_MARKET, default_market, load_market
from models.book import TradingRules, trades_as_original
from models.trials import TrialRef

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"tests", "benchmarks", ".venv", "node_modules"}

# fact -> (a pattern that writes it, the only files allowed to)
HOMES: dict[str, tuple[str, set[str]]] = {
    "the finish signal": (r"^FINISH_SIGNAL\s*=", {"agents/prompt.py"}),
    "the quantity type": (r"^Quantity\s*=", {"models/book.py"}),
    "the cash tolerance": (r"^CASH_EPSILON\s*=", {"models/book.py"}),
    # A trial's suffix is formatted, and a label split back, by TrialRef alone.
    "the trial suffix": (r"#t\{", {"models/trials.py"}),
    "reading a trial label": (r"""\b(r?split|r?partition)\(\s*["']#["']""", {"models/trials.py"}),
    # The "what can I afford" rule: a floor of cash over price outside affordable_steps.
    "what cash affords": (r"floor\(\s*\(\s*(cash|budget)\s*\+", {"models/costs.py"}),
    # flows/parameters.py words a trigger's errors its own way: field labels and the value given.
    "a validation error in one line": (
        r"\.errors\(\)",
        {"models/errors.py", "flows/parameters.py"},
    ),
    # The original's rules are asked through one predicate, never by comparing with defaults.
    "the original's rules": (
        r"[=!]=\s*(TradingRules|Sizing)\(\)|[=!]=\s*DEFAULT_MARKET",
        {"models/book.py"},
    ),
    # Benchmark and starting cash come from the market's definition (configs/*.yaml). The store's
    # run rows and a bare session context sit below configs in the layers and cannot read it.
    "the default benchmark": (
        r"""["']QQQ["']""",
        {"models/tables.py", "agent_tools/context.py"},
    ),
    "the default starting cash": (
        r"cash\b.*\b10_?000(\.0)?\b",
        {"models/tables.py"},
    ),
}


def _source_files() -> list[Path]:
    return [path for path in ROOT.rglob("*.py") if not SKIPPED & set(path.relative_to(ROOT).parts)]


def _writers(pattern: str) -> set[str]:
    """The source files with a line matching `pattern`."""
    regex = re.compile(pattern, re.MULTILINE)
    return {
        str(path.relative_to(ROOT))
        for path in _source_files()
        if regex.search(path.read_text(encoding="utf-8"))
    }


@pytest.mark.parametrize("fact", sorted(HOMES))
def test_each_fact_has_one_home(fact: str) -> None:
    pattern, homes = HOMES[fact]
    writers = _writers(pattern)
    assert writers - homes == set(), f"{fact} is written outside its home: {sorted(writers)}"
    assert writers, f"{fact}: its home no longer matches {pattern!r}; update this test"


def test_the_scan_finds_a_second_copy(tmp_path: Path) -> None:
    # The patterns catch the copies this test exists for (each was in the code before).
    copies = {
        "the finish signal": 'FINISH_SIGNAL = "<FINISH_SIGNAL>"\n',
        "the quantity type": "Quantity = int | float\n",
        "the trial suffix": 'return model if trial == 1 else f"{model}#t{trial}"\n',
        "reading a trial label": 'model = column.split("#")[0]\n',
        "what cash affords": "shares = math.floor((cash + CASH_EPSILON) / price)\n",
        "the original's rules": "if self == Sizing():\n",
        "the default benchmark": '    benchmark: str = "QQQ"\n',
        "the default starting cash": "    initial_cash: float = 10_000.0\n",
    }
    for fact, line in copies.items():
        assert re.search(HOMES[fact][0], line, re.MULTILINE), fact


def test_a_trial_has_one_spelling() -> None:
    assert TrialRef(model="dice").label == "dice"  # trial 1: the name of a run without trials
    assert TrialRef(model="dice", trial=2).label == "dice#t2"
    assert TrialRef.parse("dice#t2") == TrialRef(model="dice", trial=2)
    assert TrialRef.parse("dice#3") == TrialRef(model="dice", trial=3)  # runs stored before
    assert TrialRef.parse("dice") == TrialRef(model="dice")


def test_the_defaults_are_the_default_markets() -> None:
    market = default_market()
    assert market.name == DEFAULT_MARKET and market.original
    assert default_benchmark() == "QQQ" and market.initial_cash == 10_000
    # The original's rules: nasdaq100 without costs, daily; not its hourly twin, not with costs.
    assert not market.original_compat  # the shipped nasdaq100 charges costs
    assert market.with_costs(None).original_compat
    assert not load_market("nasdaq100-hourly").with_costs(None).original_compat
    assert not load_market("sse50").original and not load_market("sse50").original_compat
    assert trades_as_original(TradingRules(), hourly=False)
