// Unit tests of the Prefect scripts with `fetch` stubbed: header shapes (Bearer for Prefect Cloud),
// URL building, argument validation, error messages. The same scripts run against a real Prefect
// server in prefect_e2e.test.ts.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { main as fetchResults } from "../f/trading/fetch_simulation_results.ts";
import { main as poll } from "../f/trading/poll_simulation_status.ts";
import {
  apiRoot,
  PrefectError,
  prefectHeaders,
  prefectRequest,
  readDeployment,
  retryDelayMs,
  retryPolicy,
} from "../f/trading/prefect_client.ts";
import { buildParameters, defaultIdempotencyKey, main as trigger, parseDay } from "../f/trading/trigger_simulation.ts";

const CLOUD = { base_url: "https://api.prefect.cloud/api/accounts/a/workspaces/w/", api_key: "pnu_key" };
const RUN_ID = "0b6c3d1e-2f4a-4b5c-8d6e-7f8091a2b3c4";
const realFetch = globalThis.fetch;

type Call = { url: string; method: string; headers: Record<string, string>; body: any };
let calls: Call[] = [];
let routes: Record<string, () => Response> = {};

beforeEach(() => {
  calls = [];
  routes = {};
  globalThis.fetch = (async (url: string, init: any) => {
    calls.push({ url, method: init.method, headers: init.headers, body: init.body && JSON.parse(init.body) });
    const route = routes[`${init.method} ${url.replace(apiRoot(CLOUD), "")}`];
    return route ? route() : new Response('{"detail":"Not Found"}', { status: 404 });
  }) as any;
});
afterEach(() => {
  globalThis.fetch = realFetch;
});

const deployment = (properties: string[] = ["start", "end", "models", "config", "replay"]) =>
  Response.json({
    id: "dep-1",
    parameter_openapi_schema: { properties: Object.fromEntries(properties.map((p) => [p, {}])) },
  });

describe("headers and URLs", () => {
  test("an API key is sent as Bearer and wins over an auth string", () => {
    expect(prefectHeaders({ base_url: "x", api_key: "k", auth_string: "u:p" }).Authorization).toBe("Bearer k");
  });
  test("an auth string is sent as Basic base64(user:pass), UTF-8 encoded", () => {
    expect(prefectHeaders({ base_url: "x", auth_string: "user:pass" }).Authorization).toBe(
      `Basic ${Buffer.from("user:pass").toString("base64")}`,
    );
    expect(prefectHeaders({ base_url: "x", auth_string: "ü:é" }).Authorization).toBe(
      `Basic ${Buffer.from("ü:é", "utf8").toString("base64")}`,
    );
  });
  test("no credentials, no Authorization header", () => {
    expect(prefectHeaders({ base_url: "x" }).Authorization).toBeUndefined();
  });
  test("the base URL must be http(s) and loses its trailing slashes", () => {
    expect(apiRoot({ base_url: "http://h:4200/api//" })).toBe("http://h:4200/api");
    expect(() => apiRoot({ base_url: "h:4200" })).toThrow("http(s)");
    expect(() => apiRoot({ base_url: "not a url" })).toThrow("not a URL");
  });
});

describe("trigger", () => {
  test("creates the run on the Cloud URL with Bearer auth and an idempotency key", async () => {
    routes["GET /deployments/name/backtest/daily"] = () => deployment();
    routes["POST /deployments/dep-1/create_flow_run"] = () =>
      Response.json({ id: RUN_ID, name: "catch-up", state: { type: "SCHEDULED" } }, { status: 201 });
    const result = await trigger(CLOUD, "backtest/daily", "2025-01-06", "2025-01-10", { models: ["momentum"] });
    expect(calls.map((c) => c.url)).toEqual([
      "https://api.prefect.cloud/api/accounts/a/workspaces/w/deployments/name/backtest/daily",
      "https://api.prefect.cloud/api/accounts/a/workspaces/w/deployments/dep-1/create_flow_run",
    ]);
    expect(calls.every((c) => c.headers.Authorization === "Bearer pnu_key")).toBe(true);
    expect(calls[1].body.parameters).toEqual({ start: "2025-01-06", end: "2025-01-10", models: ["momentum"] });
    expect(calls[1].body.idempotency_key).toBe(result.idempotency_key);
    expect(result.idempotency_key).toMatch(/^windmill\/backtest\/daily\/\d{4}-\d{2}-\d{2}\/[0-9a-f]{16}$/);
    expect(result).toMatchObject({ flow_run_id: RUN_ID, created: true, state_type: "SCHEDULED" });
  });

  test("a 200 answer means the key named an existing run", async () => {
    routes["GET /deployments/name/backtest/daily"] = () => deployment();
    routes["POST /deployments/dep-1/create_flow_run"] = () => Response.json({ id: RUN_ID }, { status: 200 });
    const result = await trigger(CLOUD, "backtest/daily", "", "", {}, "my-key");
    expect(result.created).toBe(false);
    expect(calls[1].body).toEqual({ parameters: {}, idempotency_key: "my-key", tags: ["windmill"] });
  });

  test("the default key depends on the day and the parameters, not on their order", async () => {
    const day = new Date("2025-03-04T11:00:00Z");
    const a = await defaultIdempotencyKey("backtest/daily", { start: "2025-01-06", models: ["a"] }, day);
    const b = await defaultIdempotencyKey("backtest/daily", { models: ["a"], start: "2025-01-06" }, day);
    const c = await defaultIdempotencyKey("backtest/daily", { start: "2025-01-07", models: ["a"] }, day);
    const d = await defaultIdempotencyKey("backtest/daily", { start: "2025-01-06", models: ["a"] }, new Date("2025-03-05"));
    expect(a).toBe(b);
    expect(new Set([a, c, d]).size).toBe(3);
    expect(a.startsWith("windmill/backtest/daily/2025-03-04/")).toBe(true);
  });

  test("a parameter the deployment does not declare is refused before the run is created", async () => {
    routes["GET /deployments/name/backtest/daily"] = () => deployment(["start", "end"]);
    await expect(trigger(CLOUD, "backtest/daily", "", "", { replay: true })).rejects.toThrow(
      "does not take parameter(s): replay",
    );
    expect(calls.map((c) => c.method)).toEqual(["GET"]);
  });

  const invalid: [string, any[], string][] = [
    ["no slash", ["backtest"], "<flow name>/<deployment name>"],
    ["two slashes", ["backtest/daily/x"], "<flow name>/<deployment name>"],
    ["empty flow", ["/daily"], "<flow name>/<deployment name>"],
    ["padded", ["backtest/ daily"], "<flow name>/<deployment name>"],
    ["a day that does not exist", ["backtest/daily", "2025-02-30"], "start is not a calendar date"],
    ["month 13", ["backtest/daily", "", "2025-13-01"], "end is not a calendar date"],
    ["no dashes", ["backtest/daily", "20250106"], "start must be a date YYYY-MM-DD"],
    ["short month", ["backtest/daily", "2025-1-06"], "start must be a date YYYY-MM-DD"],
    ["start after end", ["backtest/daily", "2025-01-10", "2025-01-06"], "start 2025-01-10 is after end 2025-01-06"],
    ["unknown parameter", ["backtest/daily", "", "", { modles: ["a"] }], 'unknown parameter "modles"'],
    ["dates inside parameters", ["backtest/daily", "", "", { start: "2025-01-06" }], "pass start as its own argument"],
    ["models not a list", ["backtest/daily", "", "", { models: "momentum" }], "models must be a non-empty list"],
    ["replay not a boolean", ["backtest/daily", "", "", { replay: "yes" }], "replay must be true or false"],
    ["negative budget", ["backtest/daily", "", "", { budget_usd: -1 }], "budget_usd must be a positive number"],
    ["fractional tokens", ["backtest/daily", "", "", { budget_tokens: 1.5 }], "budget_tokens must be a positive integer"],
    ["parameters a list", ["backtest/daily", "", "", []], "parameters must be an object"],
  ];
  for (const [name, args, message] of invalid) {
    test(`refuses ${name} and sends nothing`, async () => {
      await expect((trigger as any)(CLOUD, ...args)).rejects.toThrow(message);
      expect(calls).toEqual([]);
    });
  }

  test("parseDay and buildParameters accept real dates and drop empty ones", () => {
    expect(parseDay("2024-02-29", "start")).toBe("2024-02-29"); // a leap day
    expect(() => parseDay("2025-02-29", "start")).toThrow("not a calendar date");
    expect(buildParameters("", "2025-01-10", { replay: false })).toEqual({ end: "2025-01-10", replay: false });
  });
});

describe("errors", () => {
  test("a missing deployment says so", async () => {
    await expect(readDeployment(CLOUD, "backtest/nope")).rejects.toThrow(
      'Prefect deployment "backtest/nope" not found',
    );
  });
  test("401 names the credentials to check", async () => {
    routes["GET /deployments/name/backtest/daily"] = () => new Response('{"exception_message":"Unauthorized"}', { status: 401 });
    const error = await trigger(CLOUD, "backtest/daily").catch((e) => e);
    expect(error).toBeInstanceOf(PrefectError);
    expect(error.status).toBe(401);
    expect(error.message).toContain("refused the credentials (401)");
  });
  test("a server error keeps its status and body", async () => {
    routes["GET /flow_runs/" + RUN_ID] = () => new Response("boom", { status: 500 });
    await expect(poll(CLOUD, RUN_ID)).rejects.toThrow(`Prefect GET /flow_runs/${RUN_ID} failed with 500: boom`);
  });
  test("a busy server (503, as a locked SQLite server answers) is retried, then believed", async () => {
    const patience = { ...retryPolicy };
    retryPolicy.baseDelayMs = 1;
    retryPolicy.maxDelayMs = 4;
    try {
      let busy = 2;
      routes["GET /health"] = () =>
        busy-- > 0 ? new Response("database is locked", { status: 503 }) : Response.json(true);
      expect(await prefectRequest(CLOUD, "GET", "/health")).toBe(true);
      expect(calls.length).toBe(3);

      calls = [];
      routes["GET /health"] = () => new Response("database is locked", { status: 503 });
      await expect(prefectRequest(CLOUD, "GET", "/health")).rejects.toThrow("failed with 503");
      expect(calls.length).toBe(retryPolicy.attempts);
    } finally {
      Object.assign(retryPolicy, patience);
    }
  });
  test("busy retries back off, capped, with jitter either side", () => {
    const delays = (random: () => number) => [1, 2, 3, 4, 5, 10].map((n) => retryDelayMs(n, random));
    expect(delays(() => 0.5)).toEqual([500, 1_000, 2_000, 4_000, 4_000, 4_000]);
    expect(delays(() => 0)).toEqual([250, 500, 1_000, 2_000, 2_000, 2_000]);
    expect(delays(() => 1)).toEqual([750, 1_500, 3_000, 6_000, 6_000, 6_000]);
    // Ten retries wait about 31.5 s in all: the patience a busy SQLite server needed.
    const total = [...Array(retryPolicy.attempts - 1).keys()].reduce((sum, i) => sum + retryDelayMs(i + 1, () => 0.5), 0);
    expect(total).toBe(31_500);
  });
  test("a request that hangs times out", async () => {
    globalThis.fetch = ((_url: string, init: any) =>
      new Promise((_resolve, reject) =>
        init.signal.addEventListener("abort", () => reject(init.signal.reason)),
      )) as any;
    const error = await prefectRequest(CLOUD, "GET", "/health", undefined, 50).catch((e) => e);
    expect(error).toBeInstanceOf(PrefectError);
    expect(error.message).toContain("timed out after 50 ms");
  });
  test("a flow run id that is not a UUID is refused before sending", async () => {
    await expect(poll(CLOUD, "latest")).rejects.toThrow("must be a Prefect flow run UUID");
    await expect(fetchResults(CLOUD, "../deployments")).rejects.toThrow("must be a Prefect flow run UUID");
    expect(calls).toEqual([]);
  });
});

describe("poll and fetch", () => {
  const run = (type: string, name: string, message = "") => () =>
    Response.json({ id: RUN_ID, name: "r", state: { type, name, message }, parameters: {} });

  test("poll maps Prefect states to done / ok / up_to_date", async () => {
    const cases: [string, string, object][] = [
      ["SCHEDULED", "Late", { done: false, ok: false }],
      ["RUNNING", "Running", { done: false, ok: false }],
      ["COMPLETED", "Partial", { done: true, ok: true, up_to_date: false }],
      ["COMPLETED", "UpToDate", { done: true, ok: true, up_to_date: true }],
      ["CRASHED", "Crashed", { done: true, ok: false }],
    ];
    for (const [type, name, expected] of cases) {
      routes[`GET /flow_runs/${RUN_ID}`] = run(type, name);
      expect(await poll(CLOUD, RUN_ID)).toMatchObject({ state_type: type, state_name: name, ...expected });
    }
  });

  test("fetch refuses a run that did not complete, with Prefect's message", async () => {
    routes[`GET /flow_runs/${RUN_ID}`] = run("FAILED", "Failed", "config not found");
    await expect(fetchResults(CLOUD, RUN_ID)).rejects.toThrow("is FAILED (Failed), not completed: config not found");
  });

  test("fetch of a completed run without its artifacts is an error, unless it was up to date", async () => {
    routes["POST /artifacts/filter"] = () => Response.json([]);
    routes[`GET /flow_runs/${RUN_ID}`] = run("COMPLETED", "Completed");
    await expect(fetchResults(CLOUD, RUN_ID)).rejects.toThrow("without its leaderboard and daily-values artifact(s)");
    routes[`GET /flow_runs/${RUN_ID}`] = run("COMPLETED", "UpToDate");
    expect(await fetchResults(CLOUD, RUN_ID)).toMatchObject({ up_to_date: true, leaderboard: [], daily_values: [] });
  });

  test("fetch parses the table artifacts' JSON and filters by run and key", async () => {
    routes[`GET /flow_runs/${RUN_ID}`] = run("COMPLETED", "Completed");
    routes["POST /artifacts/filter"] = () => {
      const key = calls.at(-1)!.body.artifacts.key.any_[0];
      return Response.json([{ key, description: "t", data: JSON.stringify([{ model: key }]) }]);
    };
    const result = await fetchResults(CLOUD, RUN_ID);
    expect(result.leaderboard).toEqual([{ model: "leaderboard" }]);
    expect(result.daily_values).toEqual([{ model: "daily-values" }]);
    expect(calls[1].body.artifacts.flow_run_id).toEqual({ any_: [RUN_ID] });
  });
});
