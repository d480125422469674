"""The house rules of the layout, read from the source: who may import whom, where Prefect lives,
that `agent_tools/` holds only what an agent uses, and that functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "models",
    "configs",
    "market_data",
    "analysis",
    "agent_tools",
    "agents",
    "tasks",
    "flows",
    "website",
    "deployments",
]
# Which project packages each package may import (itself always). Domain code stays below the
# orchestration layer so a notebook or a test can use it without a Prefect server.
MAY_IMPORT = {
    "models": set(),
    "configs": {"models"},
    "market_data": {"models", "configs"},
    # configs: the shipped table of knowledge cutoffs (ARCHITECTURE.md's analysis row).
    "analysis": {"models", "configs"},
    "agent_tools": {"models"},
    "agents": {"agent_tools", "market_data", "models", "configs"},
    # flows.plan and flows.parameters are plain data shared with the tasks of a run.
    "tasks": {"agents", "agent_tools", "market_data", "models", "configs", "flows.plan"},
    "flows": {"tasks", "agents", "agent_tools", "market_data", "analysis", "models", "configs"},
    "website": {"analysis", "models", "configs"},
    "deployments": set(PACKAGES),
}
PREFECT_ALLOWED = {"flows", "tasks", "deployments"}
MAX_FUNCTION_LINES = 60
LONG_REASON = "long:"  # a comment with this, on or just above the `def`, says why it is longer


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[str]:
    """Every absolute module a file imports, submodules of `from pkg import mod` included."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_the_layers_below_them(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    wrong = set()
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top not in PACKAGES or top in allowed:
                continue
            if any(name == a or name.startswith(a + ".") for a in allowed):
                continue
            wrong.add(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(sorted(wrong))


@pytest.mark.parametrize("package", sorted(set(PACKAGES) - PREFECT_ALLOWED))
def test_prefect_stays_in_flows_tasks_and_deployments(package: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _modules(package)
        if any(name.split(".")[0] == "prefect" for name in _imports(path))
    ]
    assert not offenders


def test_every_agent_tools_module_is_used_by_the_agent_session() -> None:
    files = {_module_name(p): p for package in PACKAGES for p in _modules(package)}
    reached, todo = set(), ["agents.session"]
    while todo:
        module = todo.pop()
        if module in reached or module not in files:
            continue
        reached.add(module)
        todo.extend(_imports(files[module]))
    unused = sorted(m for m in files if m.startswith("agent_tools.") and m not in reached)
    assert not unused, f"not used by an agent session: {unused}"


def _long_functions(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        if node.end_lineno - node.lineno + 1 <= MAX_FUNCTION_LINES:
            continue
        if any(LONG_REASON in line for line in lines[max(first - 3, 0) : node.lineno]):
            continue
        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return found


def test_functions_are_short_or_say_why_not() -> None:
    sources = [p for package in [*PACKAGES, "benchmarks"] for p in _modules(package)]
    assert sources
    long = [entry for path in sources for entry in _long_functions(path)]
    assert not long, f"over {MAX_FUNCTION_LINES} lines without a `# {LONG_REASON}` reason: {long}"
