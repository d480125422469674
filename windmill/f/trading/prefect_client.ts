// Shared Prefect REST client for the trading scripts. No `main`: Windmill treats this file as
// shared code that other scripts import relatively.

/** The `prefect_api` resource (see prefect_api.resource-type.yaml). */
export type PrefectConnection = {
  base_url: string;
  api_key?: string;
  auth_string?: string;
};

/** Prefect's final run states: a run in one of these never changes again. */
export const FINAL_STATES = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"];

/** Milliseconds one request may take before it is aborted (the flow step retries). */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Answers that mean "busy, try again": a SQLite-backed server answers 503 when its database is
 * locked, and Prefect's own Python client retries these too. Every call here is safe to repeat
 * (reads, filters, and run creation with an idempotency key). */
export const RETRY_STATUSES = [429, 502, 503];

/** How often and how patiently a busy answer is retried (Retry-After wins when it is given):
 * delays double from the base up to the cap, each ±jitter at random so that simultaneous
 * callers do not return together. Four attempts 1, 2, 4 s apart lost a quarter of the calls to a
 * busy SQLite server; this policy, the one docs/concurrency.md measured, lost none. */
export const retryPolicy = { attempts: 11, baseDelayMs: 500, maxDelayMs: 4_000, jitter: 0.5 };

/** The wait before attempt `attempt + 1`, in ms, without Retry-After. */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const delay = Math.min(retryPolicy.baseDelayMs * 2 ** (attempt - 1), retryPolicy.maxDelayMs);
  return delay * (1 + retryPolicy.jitter * (2 * random() - 1));
}

/** A Prefect API call that failed; `status` is the HTTP status (0 when there was no answer). */
export class PrefectError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "PrefectError";
  }
}

/** Request headers: Bearer for an API key (Prefect Cloud), else Basic for an auth string. */
export function prefectHeaders(connection: PrefectConnection): Record<string, string> {
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    Accept: "application/json",
  };
  if (connection.api_key) {
    headers.Authorization = `Bearer ${connection.api_key}`;
  } else if (connection.auth_string) {
    // btoa only takes Latin-1: encode as UTF-8 first, as Prefect's server decodes it.
    const bytes = new TextEncoder().encode(connection.auth_string);
    headers.Authorization = `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }
  return headers;
}

/** The API root without trailing slashes; rejects anything that is not an http(s) URL. */
export function apiRoot(connection: PrefectConnection): string {
  const raw = (connection?.base_url ?? "").trim();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`prefect_api.base_url is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`prefect_api.base_url must be http(s), got ${url.protocol}`);
  }
  return raw.replace(/\/+$/, "");
}

function explain(status: number, method: string, path: string, body: string): string {
  const detail = body.length > 500 ? `${body.slice(0, 500)}…` : body;
  if (status === 401 || status === 403) {
    return (
      `Prefect refused the credentials (${status}) for ${method} ${path}: check the ` +
      `prefect_api resource's api_key (Prefect Cloud) or auth_string (self-hosted). ${detail}`
    );
  }
  return `Prefect ${method} ${path} failed with ${status}: ${detail}`;
}

/** One JSON call to the Prefect API with its HTTP status; throws PrefectError on HTTP errors
 * and timeouts. */
export async function prefectCall(
  connection: PrefectConnection,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  timeoutMs: number = REQUEST_TIMEOUT_MS,
): Promise<{ status: number; data: any }> {
  const url = apiRoot(connection) + path;
  let response: Response;
  for (let attempt = 1; ; attempt++) {
    try {
      response = await fetch(url, {
        method,
        headers: prefectHeaders(connection),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error: any) {
      const why = error?.name === "TimeoutError" ? `timed out after ${timeoutMs} ms` : error?.message;
      throw new PrefectError(`Prefect ${method} ${path} got no answer from ${url}: ${why}`, 0);
    }
    if (!RETRY_STATUSES.includes(response.status) || attempt >= retryPolicy.attempts) break;
    await response.body?.cancel();
    const retryAfterS = Number(response.headers.get("Retry-After"));
    const delayMs = retryAfterS > 0 ? retryAfterS * 1_000 : retryDelayMs(attempt);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  const text = await response.text();
  if (!response.ok) {
    throw new PrefectError(explain(response.status, method, path, text), response.status);
  }
  if (!text) return { status: response.status, data: null };
  try {
    return { status: response.status, data: JSON.parse(text) };
  } catch {
    const start = text.slice(0, 200);
    throw new PrefectError(`Prefect ${method} ${path} answered non-JSON: ${start}`, response.status);
  }
}

/** One JSON call to the Prefect API; its parsed answer. */
export async function prefectRequest(
  connection: PrefectConnection,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  timeoutMs: number = REQUEST_TIMEOUT_MS,
): Promise<any> {
  return (await prefectCall(connection, method, path, body, timeoutMs)).data;
}

/** "flow/deployment" split in two; throws on anything else. */
export function parseDeploymentName(name: string): { flow: string; deployment: string } {
  const parts = typeof name === "string" ? name.split("/") : [];
  if (parts.length !== 2 || parts.some((part) => part.trim() === "" || part !== part.trim())) {
    throw new Error(`deployment must be "<flow name>/<deployment name>", got ${JSON.stringify(name)}`);
  }
  return { flow: parts[0], deployment: parts[1] };
}

/** A deployment by "flow/deployment"; a 404 becomes a clear "not found" error. */
export async function readDeployment(connection: PrefectConnection, name: string): Promise<any> {
  const { flow, deployment } = parseDeploymentName(name);
  const path = `/deployments/name/${encodeURIComponent(flow)}/${encodeURIComponent(deployment)}`;
  try {
    return await prefectRequest(connection, "GET", path);
  } catch (error) {
    if (error instanceof PrefectError && error.status === 404) {
      throw new PrefectError(
        `Prefect deployment ${JSON.stringify(name)} not found: is it served or deployed on ` +
          `${apiRoot(connection)}?`,
        404,
      );
    }
    throw error;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Throws unless `id` looks like a Prefect flow run id (a UUID). */
export function checkFlowRunId(id: string): string {
  if (typeof id !== "string" || !UUID.test(id)) {
    throw new Error(`flow_run_id must be a Prefect flow run UUID, got ${JSON.stringify(id)}`);
  }
  return id;
}

/** A flow run by id; a 404 becomes a clear "not found" error. */
export async function readFlowRun(connection: PrefectConnection, flowRunId: string): Promise<any> {
  checkFlowRunId(flowRunId);
  try {
    return await prefectRequest(connection, "GET", `/flow_runs/${flowRunId}`);
  } catch (error) {
    if (error instanceof PrefectError && error.status === 404) {
      throw new PrefectError(`Prefect flow run ${flowRunId} not found`, 404);
    }
    throw error;
  }
}
