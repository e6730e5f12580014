/**
 * Kernel profile of one workload's forward+backward: `deno run -A bench/profile.ts
 * [--backend wasm] [--workload affineCoupling] [--metric fwdBwd] [--top 15]`.
 *
 * Uses `tf.profile` (per-kernel wall time) over one repetition after a warm-up and
 * prints the kernels grouped by name and input shapes, sorted by total time.
 *
 * @module
 */
import { tf } from "../src/tf.ts";
import { type BackendName, initBackend } from "../src/core/backend.ts";
import { allWorkloads, type Metric } from "./workloads.ts";

/** One aggregated kernel entry. */
export interface KernelStat {
  /** Kernel name and input shapes. */
  readonly key: string;
  /** Number of calls. */
  readonly calls: number;
  /** Total ms. */
  readonly ms: number;
}

const main = async (): Promise<void> => {
  const arg = (flag: string, def: string): string => {
    const i = Deno.args.indexOf(flag);
    return i >= 0 ? Deno.args[i + 1] : def;
  };
  const backend = arg("--backend", "wasm") as BackendName;
  const name = arg("--workload", "affineCoupling");
  const metric = arg("--metric", "fwdBwd") as Metric;
  const top = Number(arg("--top", "15"));
  const byName = Deno.args.includes("--by-name");
  await initBackend({ backend });
  const w = allWorkloads.find((x) => x.name === name);
  if (!w) throw new Error(`profile: no workload ${name}`);
  const prep = await w.setup();
  if (typeof prep === "string") throw new Error(prep);
  const run = prep.runs[metric];
  if (!run) throw new Error(`profile: ${name} has no ${metric}`);
  await run();
  await run();
  const t0 = performance.now();
  await run();
  const wall = performance.now() - t0;
  const info = await tf.profile(() => run() as unknown as tf.TensorContainer);
  // tf.profile awaits the (async) repetition and each kernel's time.
  const kernels = info.kernels;
  const stats = new Map<string, { calls: number; ms: number }>();
  let total = 0;
  for (const k of kernels) {
    const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    const key = byName ? k.name : `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(" ")}`;
    const s = stats.get(key) ?? { calls: 0, ms: 0 };
    stats.set(key, { calls: s.calls + 1, ms: s.ms + ms });
    total += ms;
  }
  const rows = [...stats.entries()].map(([key, s]) => ({ key, ...s })).sort((a, b) => b.ms - a.ms);
  console.log(
    `${backend} ${name} ${metric}: wall ${wall.toFixed(1)} ms (unprofiled), ` +
      `${kernels.length} kernels, kernel sum ${total.toFixed(1)} ms`,
  );
  for (const r of rows.slice(0, top)) {
    console.log(
      `${r.ms.toFixed(1).padStart(8)} ms ${(100 * r.ms / total).toFixed(1).padStart(5)}% ` +
        `${String(r.calls).padStart(4)}× ${r.key}`,
    );
  }
  prep.dispose();
};

if (import.meta.main) await main();
