// Prints the `main` signature of every script under f/ as Windmill's own parsers read it:
// {"f/trading/x.ts": {"args": [{name, typ, default, has_default}, ...]}, ...}.
// tests/windmill/test_wiring.py compares them with the .script.yaml files and flow.yaml.
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import * as ts from "windmill-parser-wasm-ts";
import * as py from "windmill-parser-wasm-py";

const root = join(import.meta.dir, "..");
const wasm = (name: string) => readFileSync(join(root, "node_modules", name, "windmill_parser_wasm_bg.wasm"));
ts.initSync({ module: wasm("windmill-parser-wasm-ts") });
py.initSync({ module: wasm("windmill-parser-wasm-py") });

const signatures: Record<string, unknown> = {};
for (const file of new Bun.Glob("f/**/*.{ts,py}").scanSync({ cwd: root })) {
  const code = readFileSync(join(root, file), "utf8");
  const parsed = JSON.parse(file.endsWith(".py") ? py.parse_python(code) : ts.parse_deno(code));
  signatures[relative(".", file)] = parsed;
}
console.log(JSON.stringify(signatures, null, 1));
