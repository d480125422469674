// Read the state of a Prefect flow run once. The Windmill flow calls this in a while-loop until
// `done` is true; `ok` tells whether the backtest completed (Completed, Partial or UpToDate).
import { FINAL_STATES, readFlowRun, type PrefectConnection } from "./prefect_client.ts";

export async function main(prefect_api: RT.PrefectApi, flow_run_id: string) {
  const run = await readFlowRun(prefect_api as PrefectConnection, flow_run_id);
  const stateType: string = run.state?.type ?? run.state_type;
  const stateName: string = run.state?.name ?? run.state_name;
  return {
    flow_run_id,
    flow_run_name: run.name as string,
    state_type: stateType,
    state_name: stateName,
    message: (run.state?.message ?? null) as string | null,
    done: FINAL_STATES.includes(stateType),
    ok: stateType === "COMPLETED",
    // A catch-up with nothing left to simulate completes as "UpToDate" and publishes no results.
    up_to_date: stateType === "COMPLETED" && stateName === "UpToDate",
    start_time: (run.start_time ?? null) as string | null,
    end_time: (run.end_time ?? null) as string | null,
  };
}
