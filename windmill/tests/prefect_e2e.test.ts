// The Prefect scripts and the daily flow against a REAL Prefect server serving the backtest
// deployments with basic auth. tests/windmill/test_bun.py starts the server and `aitrader serve`
// (offline config: synthetic market, built-in strategies) and passes:
//   WINDMILL_E2E_API_URL      the server's API root, e.g. http://127.0.0.1:4321/api
//   WINDMILL_E2E_AUTH_STRING  its PREFECT_SERVER_API_AUTH_STRING (user:pass)
//   WINDMILL_E2E_OUT          a folder for results that pytest checks against the project store
// Without them the tests are skipped (pytest makes sure they are set, so they never skip there).
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { main as fetchResults } from "../f/trading/fetch_simulation_results.ts";
import { main as poll } from "../f/trading/poll_simulation_status.ts";
import { prefectRequest } from "../f/trading/prefect_client.ts";
import { main as trigger } from "../f/trading/trigger_simulation.ts";
import { runFlow } from "./flow_runner.ts";

const API_URL = process.env.WINDMILL_E2E_API_URL ?? "";
const AUTH = process.env.WINDMILL_E2E_AUTH_STRING ?? "";
const OUT = process.env.WINDMILL_E2E_OUT ?? "";
const prefect = { base_url: API_URL, auth_string: AUTH };
const MODELS = ["equal-weight", "momentum", "random"]; // tests/test_deployment_e2e.offline_config
const BENCHMARK = "QQQ";
const RUN_TIMEOUT_MS = 240_000;
const FLOW = join(import.meta.dir, "../f/trading/daily_simulation__flow/flow.yaml");
const unique = () => `e2e-${Date.now()}-${Math.random().toString(16).slice(2)}`;

/** Polls with the real poll script until the run is final. */
async function untilDone(flowRunId: string) {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const status = await poll(prefect, flowRunId);
    if (status.done) return status;
    await Bun.sleep(500);
  }
  throw new Error(`flow run ${flowRunId} not final after ${RUN_TIMEOUT_MS} ms`);
}

async function flowRunCount(): Promise<number> {
  return prefectRequest(prefect, "POST", "/flow_runs/count", {});
}

/** Weekdays from start to end: the trading days are these less the exchange's holidays. */
function weekdays(start: string, end: string): string[] {
  const days: string[] = [];
  for (let d = new Date(`${start}T00:00:00Z`); d <= new Date(`${end}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1)) {
    if (d.getUTCDay() !== 0 && d.getUTCDay() !== 6) days.push(d.toISOString().slice(0, 10));
  }
  return days;
}

/** The checks every successful fetch must pass: the artifacts describe exactly this run. */
function checkResults(results: Awaited<ReturnType<typeof fetchResults>>, start: string, end: string) {
  expect(results.leaderboard.map((r: any) => r.model).sort()).toEqual([...MODELS, BENCHMARK].sort());
  // Every model has one row per trading day of the range, first and last day included
  // (pytest checks the exact days against the project's store).
  const values = results.daily_values as any[];
  const days = [...new Set(values.map((v) => v.day))].sort();
  expect(days[0]).toBe(start);
  expect(days.at(-1)).toBe(end);
  expect(days.every((d) => weekdays(start, end).includes(d))).toBe(true);
  expect(values.length).toBe(days.length * MODELS.length);
  for (const model of MODELS) expect(values.filter((v) => v.model === model).length).toBe(days.length);
  expect(values.every((v) => v.status === "completed")).toBe(true);
  for (const model of MODELS) {
    // The leaderboard's final value is the model's portfolio value on the last day of the run.
    const last = values.filter((v) => v.model === model && v.day === end)[0];
    const row = results.leaderboard.find((r: any) => r.model === model) as any;
    expect(row.final_value).toBeCloseTo(last.value, 2);
    expect(row.rank).toBeGreaterThanOrEqual(1);
  }
  expect(results.parameters).toMatchObject({ start, end });
}

describe.skipIf(!API_URL)("against a real Prefect server", () => {
  test(
    "trigger, poll to COMPLETED and fetch the run's own leaderboard and daily values",
    async () => {
      const [start, end] = ["2025-01-06", "2025-01-10"];
      const key = unique();
      const started = await trigger(prefect, "backtest/manual", start, end, {}, key);
      expect(started.created).toBe(true);
      const again = await trigger(prefect, "backtest/manual", start, end, {}, key);
      expect(again).toMatchObject({ flow_run_id: started.flow_run_id, created: false });

      const status = await untilDone(started.flow_run_id);
      expect(status).toMatchObject({ state_type: "COMPLETED", state_name: "Completed", ok: true, up_to_date: false });
      const results = await fetchResults(prefect, started.flow_run_id);
      checkResults(results, start, end);
      writeFileSync(join(OUT, "fetched.json"), JSON.stringify(results));
    },
    RUN_TIMEOUT_MS + 30_000,
  );

  test(
    "the daily flow's wiring runs end to end: trigger, poll loop, check, fetch, then store",
    async () => {
      const [start, end] = ["2025-01-13", "2025-01-17"];
      let stored: { path: string; args: Record<string, any> } | null = null;
      const outcome = await runFlow(
        FLOW,
        { deployment: "backtest/manual", start, end, idempotency_key: unique() },
        {
          resources: { "f/trading/prefect": prefect },
          sleepMs: 500,
          python: async (path, args) => {
            stored = { path, args };
            return { stored: true };
          },
        },
      );
      expect(outcome.error).toBeUndefined();
      expect(outcome.ok).toBe(true);
      const polls = outcome.results.wait_done as any[];
      expect(polls.at(-1)).toMatchObject({ done: true, ok: true });
      expect(polls.slice(0, -1).every((p) => !p.done)).toBe(true); // the loop stopped at the first final state
      expect(stored!.path).toBe("f/trading/store_simulation_results");
      expect(stored!.args.database).toBe("f/trading/trading_db");
      checkResults(stored!.args.results, start, end);
      writeFileSync(join(OUT, "flow_store_input.json"), JSON.stringify(stored!.args));
    },
    RUN_TIMEOUT_MS + 60_000,
  );

  test(
    "a run that fails in Prefect fails the flow at the check step, with Prefect's reason",
    async () => {
      const missing = "/nonexistent/windmill-e2e-config.yaml";
      let pythonCalled = false;
      const outcome = await runFlow(
        FLOW,
        { deployment: "backtest/manual", start: "2025-01-06", end: "2025-01-07", parameters: { config: missing } },
        {
          resources: { "f/trading/prefect": prefect },
          sleepMs: 500,
          python: async () => {
            pythonCalled = true;
          },
        },
      );
      expect(outcome.ok).toBe(false);
      expect(outcome.error!.step_id).toBe("check");
      expect(outcome.error!.message).toContain("ended FAILED");
      expect(outcome.error!.message).toContain(missing); // Prefect's own failure message
      expect(outcome.failureArgs).toEqual({ message: outcome.error!.message, step_id: "check" });
      expect(outcome.results.fetch).toBeUndefined();
      expect(pythonCalled).toBe(false);

      // The scripts on their own tell the same story.
      const runId = (outcome.results.trigger as any).flow_run_id;
      expect(await poll(prefect, runId)).toMatchObject({ state_type: "FAILED", done: true, ok: false });
      await expect(fetchResults(prefect, runId)).rejects.toThrow(/is FAILED \(Failed\), not completed: .*windmill-e2e-config/);
    },
    RUN_TIMEOUT_MS + 30_000,
  );

  test("a missing deployment or flow run is a clear error", async () => {
    const before = await flowRunCount();
    await expect(trigger(prefect, "backtest/no-such-deployment", "2025-01-06", "2025-01-07")).rejects.toThrow(
      'Prefect deployment "backtest/no-such-deployment" not found',
    );
    await expect(trigger(prefect, "no-such-flow/manual")).rejects.toThrow("not found");
    await expect(poll(prefect, "00000000-0000-4000-8000-000000000000")).rejects.toThrow(
      "Prefect flow run 00000000-0000-4000-8000-000000000000 not found",
    );
    expect(await flowRunCount()).toBe(before);
  });

  test("wrong or missing credentials get a 401 that names the credentials", async () => {
    const attempts = [
      { base_url: API_URL, auth_string: "wrong:password" },
      { base_url: API_URL },
      { base_url: API_URL, api_key: AUTH }, // a self-hosted server takes Basic, not Bearer
    ];
    for (const connection of attempts) {
      const error = await trigger(connection, "backtest/manual", "2025-01-06", "2025-01-07").catch((e) => e);
      expect(error.status).toBe(401);
      expect(error.message).toContain("refused the credentials (401)");
    }
  });

  test("invalid input is refused before anything reaches the server", async () => {
    const before = await flowRunCount();
    const invalid: [string, string, string, object][] = [
      ["backtest/manual", "2025-02-30", "", {}],
      ["backtest/manual", "2025-01-10", "2025-01-06", {}],
      ["backtest/manual", "", "", { strategy: "momentum" }],
      ["manual", "", "", {}],
    ];
    for (const [deployment, start, end, parameters] of invalid) {
      await expect(trigger(prefect, deployment, start, end, parameters)).rejects.toThrow();
    }
    // The server never saw them: an unreachable URL gives the same validation errors.
    const dead = { base_url: "http://127.0.0.1:9/api" };
    await expect(trigger(dead, "backtest/manual", "2025-02-30")).rejects.toThrow("not a calendar date");
    expect(await flowRunCount()).toBe(before);
  });
});
