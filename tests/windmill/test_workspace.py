"""The Windmill workspace files: `wmill lint`, and the wiring `wmill lint` cannot see.

Each script's `main` signature (read by Windmill's own parsers) must match its hand-written
`.script.yaml` schema, every flow step must pass exactly its script's parameters, the flow's
expressions may only read earlier steps and declared inputs, and the schedule, resources and
dashboard app must point at things that exist.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import yaml

from tests.windmill.conftest import WINDMILL, js_tool

TRADING = WINDMILL / "f" / "trading"
FLOW = TRADING / "daily_simulation__flow" / "flow.yaml"
SCHEDULE = TRADING / "daily_simulation.schedule.yaml"
APP = TRADING / "performance_dashboard__app" / "app.yaml"
BUILTIN_RESOURCE_TYPES = {"postgresql"}  # types every Windmill workspace has


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@cache
def signatures() -> dict[str, list[dict]]:
    """Every script's `main` arguments by workspace path, as Windmill's parsers read them."""
    bun = js_tool("bun")
    done = subprocess.run(
        [str(bun), "tests/signatures.ts"],
        cwd=WINDMILL,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    parsed = json.loads(done.stdout)
    return {
        re.sub(r"\.(ts|py)$", "", path): result["args"]
        for path, result in parsed.items()
        if result.get("auto_kind") != "lib"  # shared modules have no main
    }


def expected_property(arg: dict) -> dict:
    """The JSON schema property Windmill derives from a parsed argument."""
    typ = arg["typ"]
    if isinstance(typ, dict) and "resource" in typ:
        return {"type": "object", "format": f"resource-{typ['resource']}"}
    if isinstance(typ, dict) and "str" in typ:
        return {"type": "string", **({"enum": typ["str"]} if typ["str"] else {})}
    if isinstance(typ, dict) and "object" in typ:
        return {"type": "object"}
    if isinstance(typ, dict) and "list" in typ:
        return {"type": "array"}
    return {"type": {"int": "integer", "float": "number", "bool": "boolean"}[typ]}


def script_modules(modules: list[dict]) -> list[dict]:
    """Every module of a flow, loops' inner modules included, in order."""
    found = []
    for module in modules:
        found.append(module)
        found.extend(script_modules(module["value"].get("modules", [])))
    return found


def test_every_workspace_file_is_valid_yaml() -> None:
    # `wmill lint` validates only flows, schedules and triggers; a push reads all of these.
    files = [*WINDMILL.glob("*.yaml"), *(WINDMILL / "f").rglob("*.yaml")]
    assert len(files) >= 15
    for path in files:
        assert isinstance(load(path), dict), path


def test_wmill_lint_is_clean() -> None:
    wmill = js_tool("wmill")
    done = subprocess.run(
        [str(wmill), "lint"], cwd=WINDMILL, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Lint passed" in done.stdout
    assert "2 valid" in done.stdout  # the flow and the schedule were both validated


def test_wmill_lint_catches_a_broken_flow(tmp_path: Path) -> None:
    wmill = js_tool("wmill")
    root = tmp_path / "windmill"
    shutil.copytree(WINDMILL / "f", root / "f")
    shutil.copy(WINDMILL / "wmill.yaml", root)
    flow = root / "f" / "trading" / "daily_simulation__flow" / "flow.yaml"
    broken = load(flow)
    del broken["value"]["modules"][1]["value"]["skip_failures"]  # required on a while-loop
    flow.write_text(yaml.safe_dump(broken))
    done = subprocess.run([str(wmill), "lint"], cwd=root, capture_output=True, text=True)
    assert done.returncode != 0
    assert "skip_failures" in done.stdout + done.stderr


def test_script_metadata_matches_the_main_signatures() -> None:
    found = signatures()
    assert set(found) == {
        "f/trading/trigger_simulation",
        "f/trading/poll_simulation_status",
        "f/trading/fetch_simulation_results",
        "f/trading/store_simulation_results",
        "f/trading/get_latest_performance",
    }
    for path, args in found.items():
        schema = load(WINDMILL / f"{path}.script.yaml")["schema"]
        names = [a["name"] for a in args]
        assert schema["order"] == names, path
        assert list(schema["properties"]) == names, path
        assert schema["required"] == [a["name"] for a in args if not a["has_default"]], path
        for arg in args:
            written = schema["properties"][arg["name"]]
            expected = expected_property(arg)
            assert {k: written.get(k) for k in expected} == expected, (path, arg["name"])
            if arg["has_default"]:
                assert written["default"] == arg["default"], (path, arg["name"])
            else:
                assert "default" not in written, (path, arg["name"])


def test_flow_steps_pass_exactly_their_scripts_parameters() -> None:
    flow = load(FLOW)
    steps = [m for m in script_modules(flow["value"]["modules"]) if m["value"]["type"] == "script"]
    assert [m["id"] for m in steps] == ["trigger", "poll", "fetch", "store"]
    for module in steps:
        path = module["value"]["path"]
        assert path in signatures(), f"{module['id']} runs {path}, which is no script"
        parameters = [a["name"] for a in signatures()[path]]
        assert list(module["value"]["input_transforms"]) == parameters, module["id"]


def test_flow_expressions_read_only_earlier_steps_and_declared_inputs() -> None:
    flow = load(FLOW)
    inputs = set(flow["schema"]["properties"])
    assert flow["schema"]["order"] == list(flow["schema"]["properties"])
    seen: set[str] = set()
    loop_ids = {"wait_done"}

    def check(expr: str, where: str, extra: set[str] = frozenset()) -> None:
        for step in re.findall(r"\bresults\.(\w+)", expr):
            assert step in seen | extra, f"{where} reads results.{step} before it runs"
        for name in re.findall(r"\bflow_input\.(\w+)", expr):
            assert name in inputs | {"iter"}, f"{where} reads undeclared flow_input.{name}"

    for module in flow["value"]["modules"]:
        inner = script_modules(module["value"].get("modules", []))
        for step in [module, *inner]:
            for name, transform in step["value"].get("input_transforms", {}).items():
                if transform["type"] == "javascript":
                    check(transform["expr"], f"{step['id']}.{name}")
            if "stop_after_if" in step:
                check(step["stop_after_if"]["expr"], f"{step['id']}.stop_after_if")
        seen.add(module["id"])
    assert seen >= loop_ids
    # The poll loop stops on the poll step itself (a stop on the loop module never sees it),
    # and the failure handler reads the error.
    (poll,) = flow["value"]["modules"][1]["value"]["modules"]
    assert "result.done" in poll["stop_after_if"]["expr"]
    failure = flow["value"]["failure_module"]["value"]["input_transforms"]
    assert {t["expr"] for t in failure.values()} == {"error.message", "error.step_id"}


def test_static_resource_references_exist_with_the_right_type() -> None:
    flow = load(FLOW)
    for module in script_modules(flow["value"]["modules"]):
        if module["value"]["type"] != "script":
            continue
        args = {a["name"]: a for a in signatures()[module["value"]["path"]]}
        for name, transform in module["value"]["input_transforms"].items():
            value = transform.get("value")
            if transform["type"] != "static" or not str(value).startswith("$res:"):
                continue
            resource = load(WINDMILL / f"{value.removeprefix('$res:')}.resource.yaml")
            assert args[name]["typ"] == {"resource": resource["resource_type"]}, module["id"]
    # The store step names its database by path: that resource must exist and be PostgreSQL.
    database = load(TRADING / "trading_db.resource.yaml")
    assert database["resource_type"] == "postgresql"
    for resource in TRADING.glob("*.resource.yaml"):
        kind = load(resource)["resource_type"]
        assert kind in BUILTIN_RESOURCE_TYPES or (WINDMILL / f"{kind}.resource-type.yaml").exists()


def test_prefect_resource_type_matches_rt_namespace() -> None:
    schema = load(WINDMILL / "prefect_api.resource-type.yaml")["schema"]
    assert schema["required"] == ["base_url"]
    declared = re.search(r"type PrefectApi = \{(.*?)\};", (WINDMILL / "rt.d.ts").read_text(), re.S)
    fields = dict(re.findall(r"(\w+)(\??):", declared.group(1)))
    assert fields == {"base_url": "", "api_key": "?", "auth_string": "?"}
    assert list(schema["properties"]) == list(fields)


def test_schedule_runs_the_flow_just_after_the_new_york_open_on_weekdays() -> None:
    schedule = load(SCHEDULE)
    seconds, minutes, hours, day, month, weekdays = schedule["schedule"].split()
    assert (seconds, minutes, hours, day, month, weekdays) == ("0", "35", "9", "*", "*", "1-5")
    assert schedule["timezone"] == "America/New_York"
    assert schedule["is_flow"] is True and schedule["enabled"] is True
    assert (WINDMILL / f"{schedule['script_path']}__flow" / "flow.yaml") == FLOW
    assert set(schedule["args"]) == set(load(FLOW)["schema"]["properties"])


def test_dashboard_runnables_call_get_latest_performance_with_its_parameters() -> None:
    app = load(APP)
    components = {c["id"]: c["data"] for c in app["value"]["grid"]}
    assert components["perf_table"]["type"] == "aggridcomponent"
    assert components["value_chart"]["type"] == "chartjscomponentv2"
    assert components["value_chart"]["configuration"]["type"]["value"] == "line"
    shapes = {}
    for name, component in components.items():
        source = component["componentInput"]
        runnable = source["runnable"]
        assert runnable["type"] == "runnableByPath" and runnable["runType"] == "script"
        parameters = [a["name"] for a in signatures()[runnable["path"]]]
        assert list(source["fields"]) == parameters, name
        assert list(runnable["schema"]["properties"]) == parameters, name
        shapes[name] = source["fields"]["shape"]["value"]
    assert shapes == {"perf_table": "table", "value_chart": "chart"}


def test_sync_settings() -> None:
    settings = load(WINDMILL / "wmill.yaml")
    assert settings["defaultTs"] == "bun"
    assert settings["includes"] == ["f/trading/**"]
    assert settings["includeSchedules"] is True
    assert settings["skipSecrets"] is True
    assert settings["nonDottedPaths"] is True
    # Nothing secret is committed: the resources reference workspace variables.
    for resource in TRADING.glob("*.resource.yaml"):
        value = load(resource)["value"]
        for key in ("api_key", "auth_string", "password"):
            secret = str(value.get(key, ""))
            assert secret == "" or secret.startswith("$var:"), (resource, key)
