// Start a run of a Prefect deployment of the backtest flow. Every argument is checked before
// anything is sent, and the run is created with an idempotency key, so a retried Windmill step or
// flow gets the same Prefect flow run back instead of a second backtest.
import {
  parseDeploymentName,
  prefectCall,
  readDeployment,
  type PrefectConnection,
} from "./prefect_client.ts";

/** The backtest flow's parameters besides the dates, and a check of each value. */
const PARAMETER_CHECKS: Record<string, [string, (value: unknown) => boolean]> = {
  models: [
    "a non-empty list of model names",
    (v) => Array.isArray(v) && v.length > 0 && v.every((m) => typeof m === "string" && m !== ""),
  ],
  config: ["a config file path", (v) => typeof v === "string" && v.trim() !== ""],
  replay: ["true or false", (v) => typeof v === "boolean"],
  budget_usd: ["a positive number", (v) => typeof v === "number" && Number.isFinite(v) && v > 0],
  budget_tokens: ["a positive integer", (v) => Number.isInteger(v) && (v as number) > 0],
};

/** `value` as a YYYY-MM-DD date that exists on the calendar, or null when empty. */
export function parseDay(value: string, name: string): string | null {
  if (value === "" || value === null || value === undefined) return null;
  const match = typeof value === "string" ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(value) : null;
  if (!match) throw new Error(`${name} must be a date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  const [year, month, day] = match.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  // Date.UTC rolls 2025-02-30 over to March: a real date survives the round trip unchanged.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    throw new Error(`${name} is not a calendar date: ${value}`);
  }
  return value;
}

/** The flow run parameters: dates and extra parameters, checked; throws on the first problem. */
export function buildParameters(start: string, end: string, parameters: object): Record<string, unknown> {
  const first = parseDay(start, "start");
  const last = parseDay(end, "end");
  if (first && last && first > last) throw new Error(`start ${first} is after end ${last}`);
  if (parameters === null || typeof parameters !== "object" || Array.isArray(parameters)) {
    throw new Error(`parameters must be an object, got ${JSON.stringify(parameters)}`);
  }
  const extra = parameters as Record<string, unknown>;
  for (const [name, value] of Object.entries(extra)) {
    if (name === "start" || name === "end") {
      throw new Error(`pass ${name} as its own argument, not inside parameters`);
    }
    const check = PARAMETER_CHECKS[name];
    if (!check) {
      const known = Object.keys(PARAMETER_CHECKS).join(", ");
      throw new Error(`unknown parameter ${JSON.stringify(name)}; known: start, end, ${known}`);
    }
    if (!check[1](value)) throw new Error(`parameter ${name} must be ${check[0]}, got ${JSON.stringify(value)}`);
  }
  return { ...(first ? { start: first } : {}), ...(last ? { end: last } : {}), ...extra };
}

/** JSON with sorted keys, so equal parameters always hash the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** The default idempotency key: one Prefect run per deployment, UTC day and parameter set. */
export async function defaultIdempotencyKey(
  deployment: string,
  parameters: Record<string, unknown>,
  now: Date = new Date(),
): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical(parameters)));
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  return `windmill/${deployment}/${now.toISOString().slice(0, 10)}/${hex.slice(0, 16)}`;
}

export async function main(
  prefect_api: RT.PrefectApi,
  deployment: string = "backtest/daily",
  start: string = "",
  end: string = "",
  parameters: object = {},
  idempotency_key: string = "",
) {
  // Everything is validated before the first request.
  parseDeploymentName(deployment);
  const runParameters = buildParameters(start, end, parameters ?? {});
  const key = idempotency_key || (await defaultIdempotencyKey(deployment, runParameters));
  const connection = prefect_api as PrefectConnection;

  const found = await readDeployment(connection, deployment);
  // A deployment of another flow could take other parameters: refuse what it does not declare.
  const declared = found.parameter_openapi_schema?.properties;
  if (declared) {
    const undeclared = Object.keys(runParameters).filter((name) => !(name in declared));
    if (undeclared.length) {
      throw new Error(`deployment ${deployment} does not take parameter(s): ${undeclared.join(", ")}`);
    }
  }
  const { status, data: run } = await prefectCall(connection, "POST", `/deployments/${found.id}/create_flow_run`, {
    parameters: runParameters,
    idempotency_key: key,
    tags: ["windmill"],
  });
  return {
    flow_run_id: run.id as string,
    flow_run_name: run.name as string,
    deployment,
    deployment_id: found.id as string,
    parameters: runParameters,
    idempotency_key: key,
    // Prefect answers 201 for a new run and 200 when the key already named one.
    created: status === 201,
    state_type: (run.state?.type ?? run.state_type ?? null) as string | null,
  };
}
