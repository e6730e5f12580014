/**
 * The law kit in the browser (`kit.html`): runs the registry of every exported layer and
 * combinator (`./registry.ts`) through `@x/deflow/testing` on the browser's WebGPU and
 * shows one row per case and law. The outcome is also left on `globalThis.__kit` for the
 * browser test. `?runs=N` sets the fast-check runs per case (default 3, as the Deno test);
 * `?only=TEXT` runs the cases whose name contains TEXT.
 *
 * @module
 */
import { tf } from "../../src/tf.ts";
import { initBackend } from "../../src/core/backend.ts";
import { checkBijectorLaws, type LawReport } from "../../src/testing/mod.ts";
import { registry } from "./registry.ts";
import { describeAdapter, webgpuAdapterInfo } from "./gpu.ts";
import { doc, type El } from "./dom.ts";

/** What the page reports when it is done (read by `test/browser_test.ts`). */
export interface KitOutcome {
  /** True once every case has run (or setting up failed). */
  readonly done: boolean;
  /** The tfjs backend the laws ran on. */
  readonly backend: string;
  /** The adapter the WebGPU backend's device came from (vendor, architecture, …). */
  readonly adapter: Record<string, string>;
  /** One entry per case. */
  readonly cases: { name: string; passed: boolean; millis: number; laws: LawReport["laws"] }[];
  /** Set up error, if any. */
  readonly error?: string;
}

const g = globalThis as unknown as { __kit?: KitOutcome };
const document = doc();
const $ = (id: string): El => document.getElementById(id);

const row = (cells: string[], cls = ""): El => {
  const tr = document.createElement("tr");
  if (cls) tr.className = cls;
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
};

const run = async (): Promise<void> => {
  const runs = Number(new URLSearchParams(location.search).get("runs") ?? "3");
  const info = await initBackend({ backend: "webgpu", log: false });
  const adapter = webgpuAdapterInfo();
  $("backend").textContent = `backend ${tf.getBackend()} · adapter ${describeAdapter(adapter)}` +
    ` (${info.softwareAdapter ? "software" : "hardware"})`;
  const only = new URLSearchParams(location.search).get("only");
  const cases_ = only ? registry.filter((c) => c.name.includes(only)) : registry;
  const table = $("laws");
  const cases: KitOutcome["cases"] = [];
  let failed = 0;
  for (const c of cases_) {
    $("status").textContent = `running ${c.name} (${cases.length + 1}/${cases_.length})…`;
    const r = await checkBijectorLaws(c, { numRuns: runs, throwOnFailure: false });
    cases.push({ name: r.name, passed: r.passed, millis: r.millis, laws: r.laws });
    if (!r.passed) failed++;
    table.appendChild(
      row(
        [r.name, r.passed ? "passed" : "FAILED", "", "", `${r.millis.toFixed(0)} ms`, ""],
        "case",
      ),
    );
    for (const l of r.laws) {
      table.appendChild(
        row(
          ["", l.law, l.status, String(l.runs), l.maxRatio.toFixed(3), l.note ?? ""],
          l.status,
        ),
      );
    }
  }
  $("status").textContent = `${cases_.length - failed} of ${cases_.length} cases passed ` +
    `on ${tf.getBackend()} (${runs} runs each)`;
  g.__kit = { done: true, backend: tf.getBackend(), adapter, cases };
};

run().catch((e) => {
  const msg = e instanceof Error ? e.message : String(e);
  $("status").textContent = `error: ${msg}`;
  g.__kit = { done: true, backend: tf.getBackend() ?? "none", adapter: {}, cases: [], error: msg };
});
