// Read a completed backtest flow run's results from its Prefect artifacts: the `leaderboard`
// table (one row per model plus the benchmark) and the `daily-values` table (one row per model
// and trading day). A flow's return value cannot be read over REST, so artifacts are the contract.
import {
  checkFlowRunId,
  prefectRequest,
  readFlowRun,
  type PrefectConnection,
} from "./prefect_client.ts";

export const LEADERBOARD_KEY = "leaderboard";
export const DAILY_VALUES_KEY = "daily-values";

/** The newest table artifact of `key` in the run, parsed; null when the run has none. */
async function readTable(connection: PrefectConnection, flowRunId: string, key: string) {
  const found = await prefectRequest(connection, "POST", "/artifacts/filter", {
    artifacts: { flow_run_id: { any_: [flowRunId] }, key: { any_: [key] } },
    sort: "CREATED_DESC",
    limit: 1,
  });
  if (!Array.isArray(found) || found.length === 0) return null;
  const artifact = found[0];
  // A table artifact's data is a JSON string of the rows.
  const rows = typeof artifact.data === "string" ? JSON.parse(artifact.data) : artifact.data;
  if (!Array.isArray(rows)) throw new Error(`artifact ${key} of flow run ${flowRunId} is not a table`);
  return { rows: rows as Record<string, unknown>[], description: (artifact.description ?? "") as string };
}

export async function main(prefect_api: RT.PrefectApi, flow_run_id: string) {
  checkFlowRunId(flow_run_id);
  const connection = prefect_api as PrefectConnection;
  const run = await readFlowRun(connection, flow_run_id);
  const stateType: string = run.state?.type ?? run.state_type;
  const stateName: string = run.state?.name ?? run.state_name;
  if (stateType !== "COMPLETED") {
    const why = run.state?.message ? `: ${run.state.message}` : "";
    throw new Error(`flow run ${flow_run_id} is ${stateType} (${stateName}), not completed${why}`);
  }
  const upToDate = stateName === "UpToDate";
  const leaderboard = await readTable(connection, flow_run_id, LEADERBOARD_KEY);
  const dailyValues = await readTable(connection, flow_run_id, DAILY_VALUES_KEY);
  // Every completed run that simulated something publishes both; only "UpToDate" has neither.
  if (!upToDate && (!leaderboard || !dailyValues)) {
    const missing = [!leaderboard && LEADERBOARD_KEY, !dailyValues && DAILY_VALUES_KEY].filter(Boolean);
    throw new Error(`flow run ${flow_run_id} completed without its ${missing.join(" and ")} artifact(s)`);
  }
  return {
    flow_run_id,
    flow_run_name: run.name as string,
    deployment_id: (run.deployment_id ?? null) as string | null,
    parameters: (run.parameters ?? {}) as Record<string, unknown>,
    state_name: stateName,
    up_to_date: upToDate,
    start_time: (run.start_time ?? null) as string | null,
    end_time: (run.end_time ?? null) as string | null,
    title: leaderboard?.description ?? "",
    leaderboard: leaderboard?.rows ?? [],
    daily_values: dailyValues?.rows ?? [],
  };
}
