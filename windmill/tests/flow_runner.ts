// A tiny stand-in for Windmill's flow executor, enough for f/trading/daily_simulation__flow:
// steps in order, `input_transforms` (static values with `$res:` references, JavaScript exprs over
// flow_input / results / error), workspace scripts, inline bun scripts, a while-loop with
// `stop_after_if`, and the failure module. It is a test helper, not Windmill: it checks that the
// flow's wiring and expressions work with the real scripts, which `wmill lint` cannot.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as parser from "windmill-parser-wasm-ts";

const ROOT = join(import.meta.dir, "..");
parser.initSync({
  module: readFileSync(join(ROOT, "node_modules/windmill-parser-wasm-ts/windmill_parser_wasm_bg.wasm")),
});

export type RunnerOptions = {
  /** Values of `$res:<path>` references. */
  resources: Record<string, unknown>;
  /** Stands in for each `sleep` (Windmill sleeps 60 s between polls). */
  sleepMs: number;
  /** Runs a Python step (bun cannot): gets the workspace path and the evaluated arguments. */
  python: (path: string, args: Record<string, unknown>) => Promise<unknown>;
  /** Gives up on a while-loop after this many iterations (a runaway loop is a test failure). */
  maxIterations?: number;
};

export type FlowOutcome = {
  ok: boolean;
  results: Record<string, unknown>;
  /** The step that threw and its message, as the failure module's `error` sees them. */
  error?: { step_id: string; message: string };
  /** The failure module's evaluated arguments. */
  failureArgs?: Record<string, unknown>;
};

class StepError extends Error {
  constructor(
    readonly stepId: string,
    readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

function evaluate(expr: string, scope: Record<string, unknown>): unknown {
  const names = Object.keys(scope);
  return new Function(...names, `return (${expr});`)(...names.map((n) => scope[n]));
}

function evaluateArgs(
  transforms: Record<string, any>,
  scope: Record<string, unknown>,
  resources: Record<string, unknown>,
): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const [name, transform] of Object.entries(transforms ?? {})) {
    if (transform.type === "static") {
      const value = transform.value;
      if (typeof value === "string" && value.startsWith("$res:")) {
        const path = value.slice("$res:".length);
        if (!(path in resources)) throw new Error(`no resource ${path} given to the runner`);
        args[name] = resources[path];
      } else {
        args[name] = value;
      }
    } else if (transform.type === "javascript") {
      args[name] = evaluate(transform.expr, scope);
    } else {
      throw new Error(`input transform type ${transform.type} is not supported by the runner`);
    }
  }
  return args;
}

/** Calls `main` of TypeScript `code` (at `file`) with named arguments, in its parameter order. */
async function callTypeScript(file: string, code: string, args: Record<string, unknown>) {
  const signature = JSON.parse(parser.parse_deno(code)) as { args: { name: string }[] };
  const module = await import(file);
  return module.main(...signature.args.map((a) => args[a.name]));
}

async function runModule(
  module: any,
  scope: { flow_input: any; results: Record<string, unknown> },
  options: RunnerOptions,
  scratch: string,
): Promise<unknown> {
  const value = module.value;
  const args = () => evaluateArgs(value.input_transforms, scope, options.resources);
  switch (value.type) {
    case "script": {
      const base = join(ROOT, value.path);
      try {
        const code = readFileSync(`${base}.ts`, "utf8");
        return await callTypeScript(`${base}.ts`, code, args());
      } catch (error: any) {
        if (error?.code !== "ENOENT") throw error;
      }
      readFileSync(`${base}.py`); // a clear ENOENT when the path names no script at all
      return options.python(value.path, args());
    }
    case "rawscript": {
      if (value.language !== "bun") throw new Error(`inline ${value.language} is not supported by the runner`);
      const file = join(scratch, `${module.id}.ts`);
      writeFileSync(file, value.content);
      return callTypeScript(file, value.content, args());
    }
    case "whileloopflow": {
      const iterations: unknown[] = [];
      for (let index = 0; ; index++) {
        if (index >= (options.maxIterations ?? 1000)) throw new Error(`loop ${module.id} never stopped`);
        const inner = { ...scope, flow_input: { ...scope.flow_input, iter: { index, value: index } } };
        let last: unknown = null;
        let stop = false;
        for (const step of value.modules) {
          if (step.sleep) await Bun.sleep(options.sleepMs);
          last = await runModule(step, inner, options, scratch);
          if (step.stop_after_if && evaluate(step.stop_after_if.expr, { ...inner, result: last })) stop = true;
        }
        iterations.push(last);
        if (stop) return iterations;
      }
    }
    default:
      throw new Error(`module type ${value.type} is not supported by the runner`);
  }
}

/** Runs the flow in `flowFile` with `flowInput`; a failing step runs the failure module's inputs. */
export async function runFlow(
  flowFile: string,
  flowInput: Record<string, unknown>,
  options: RunnerOptions,
): Promise<FlowOutcome> {
  const flow = Bun.YAML.parse(readFileSync(flowFile, "utf8")) as any;
  const results: Record<string, unknown> = {};
  const scratch = mkdtempSync(join(tmpdir(), "flow-runner-"));
  // Defaults from the flow's schema fill what the caller leaves out, as Windmill does.
  const input: Record<string, unknown> = {};
  for (const [name, property] of Object.entries<any>(flow.schema?.properties ?? {})) {
    input[name] = name in flowInput ? flowInput[name] : property.default;
  }
  try {
    for (const module of flow.value.modules) {
      const scope = { flow_input: input, results };
      try {
        results[module.id] = await runModule(module, scope, options, scratch);
      } catch (error) {
        throw new StepError(module.id, error);
      }
      const stop = module.stop_after_if;
      if (stop && evaluate(stop.expr, { ...scope, result: results[module.id] })) {
        if (stop.error_message) throw new StepError(module.id, new Error(stop.error_message));
        break;
      }
    }
    return { ok: true, results };
  } catch (error) {
    if (!(error instanceof StepError)) throw error;
    const failure = { step_id: error.stepId, message: error.message, name: "Error" };
    const failureArgs = evaluateArgs(
      flow.value.failure_module?.value?.input_transforms,
      { flow_input: input, results, error: failure },
      options.resources,
    );
    return { ok: false, results, error: { step_id: error.stepId, message: error.message }, failureArgs };
  }
}
