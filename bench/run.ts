/**
 * deflow benchmark: `deno task bench [--backend wasm,webgpu] [--quick] [--only a,b]
 * [--reps N] [--warmup N] [--out path.json]`.
 *
 * For every backend and workload (see `bench/workloads.ts`) it runs warm-up repetitions,
 * then timed repetitions, and reports the median milliseconds (each repetition ends with
 * an awaited scalar read, so queued GPU work is included). Prints one table and writes
 * JSON (default `out/bench/bench.json`).
 *
 * @module
 */
import { tf } from "../src/tf.ts";
import { type BackendInfo, type BackendName, initBackend } from "../src/core/backend.ts";
import { allWorkloads, type Metric, type Workload } from "./workloads.ts";

/** Parsed command line. */
export interface BenchArgs {
  /** Backends to run, in order. */
  readonly backends: readonly BackendName[];
  /** Fewer repetitions; heavy workloads skipped on software WebGPU. */
  readonly quick: boolean;
  /** Only workloads whose name contains one of these substrings (empty: all). */
  readonly only: readonly string[];
  /** Timed repetitions override. */
  readonly reps?: number;
  /** Warm-up repetitions override. */
  readonly warmup?: number;
  /** JSON output path. */
  readonly out: string;
}

/** Parse `Deno.args`-style arguments. */
export const parseArgs = (args: readonly string[]): BenchArgs => {
  let backends: BackendName[] = ["wasm", "webgpu"];
  let quick = false;
  let only: string[] = [];
  let reps: number | undefined;
  let warmup: number | undefined;
  let out = "out/bench/bench.json";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [key, inline] = a.includes("=") ? a.split(/=(.*)/s, 2) : [a, undefined];
    const val = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`bench: ${key} needs a value`);
      return v;
    };
    if (key === "--quick") quick = true;
    else if (key === "--backend") {
      backends = val().split(",").filter((s) => s) as BackendName[];
      for (const b of backends) {
        if (b !== "wasm" && b !== "webgpu" && b !== "cpu") {
          throw new Error(`bench: unknown backend "${b}" (wasm, webgpu or cpu)`);
        }
      }
    } else if (key === "--only") only = val().split(",").filter((s) => s);
    else if (key === "--reps") reps = Number(val());
    else if (key === "--warmup") warmup = Number(val());
    else if (key === "--out") out = val();
    else if (key === "--help" || key === "-h") {
      console.log(
        "usage: deno task bench [--backend wasm,webgpu] [--quick] [--only names] " +
          "[--reps N] [--warmup N] [--out file.json]",
      );
      Deno.exit(0);
    } else throw new Error(`bench: unknown argument "${a}"`);
  }
  return { backends, quick, only, reps, warmup, out };
};

/** Median of a non-empty list. */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** One measured row. */
export interface BenchRow {
  /** Workload name. */
  readonly workload: string;
  /** Backend. */
  readonly backend: string;
  /** Input shape in words. */
  readonly shape: string;
  /** Median ms per metric. */
  readonly ms: Partial<Record<Metric, number>>;
  /** Minimum ms per metric (less sensitive to other load on a shared machine). */
  readonly min: Partial<Record<Metric, number>>;
  /** All timed samples per metric (ms). */
  readonly samples: Partial<Record<Metric, number[]>>;
  /** Megapixels per second of the `sample` metric. */
  readonly mpPerS?: number;
  /** Timed repetitions per metric. */
  readonly reps: number;
  /** Skipped reason or extra information. */
  readonly note?: string;
}

const METRICS: readonly Metric[] = ["fwd", "fwdBwd", "step", "sample"];

const repsFor = (
  w: Workload,
  info: BackendInfo,
  args: BenchArgs,
): { warmup: number; reps: number } => {
  const soft = info.backend === "webgpu" && info.softwareAdapter;
  let warmup = 2;
  let reps = 10;
  if (w.heavy) [warmup, reps] = [1, 3];
  if (args.quick) [warmup, reps] = w.heavy ? [1, 2] : [1, 5];
  if (soft) [warmup, reps] = [1, args.quick ? 2 : Math.min(reps, 3)];
  return { warmup: args.warmup ?? warmup, reps: args.reps ?? reps };
};

const runWorkload = async (
  w: Workload,
  info: BackendInfo,
  args: BenchArgs,
): Promise<BenchRow> => {
  const base = { workload: w.name, backend: info.backend, shape: w.shape };
  if (args.quick && w.heavy && info.backend === "webgpu" && info.softwareAdapter) {
    return {
      ...base,
      ms: {},
      min: {},
      samples: {},
      reps: 0,
      note: "skipped: heavy on software WebGPU (--quick)",
    };
  }
  const before = tf.memory().numTensors;
  const prep = await w.setup();
  if (typeof prep === "string") {
    return { ...base, ms: {}, min: {}, samples: {}, reps: 0, note: prep };
  }
  const { warmup, reps } = repsFor(w, info, args);
  const ms: Partial<Record<Metric, number>> = {};
  const min: Partial<Record<Metric, number>> = {};
  const samples: Partial<Record<Metric, number[]>> = {};
  try {
    for (const m of METRICS) {
      const run = prep.runs[m];
      if (!run) continue;
      for (let i = 0; i < warmup; i++) await run();
      const ts: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await run();
        ts.push(performance.now() - t0);
      }
      ms[m] = median(ts);
      min[m] = Math.min(...ts);
      samples[m] = ts;
    }
  } finally {
    prep.dispose();
  }
  const leaked = tf.memory().numTensors - before;
  const notes = [prep.note, leaked !== 0 ? `tensor count changed by ${leaked}` : undefined]
    .filter((s) => s);
  const mpPerS = ms.sample !== undefined && prep.megapixels !== undefined
    ? prep.megapixels / (ms.sample / 1000)
    : undefined;
  return {
    ...base,
    ms,
    min,
    samples,
    mpPerS,
    reps,
    note: notes.length ? notes.join("; ") : undefined,
  };
};

const fmt = (v: number | undefined, digits = 1): string =>
  v === undefined ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(digits);

/** Render rows as one aligned text table. */
export const renderTable = (rows: readonly BenchRow[]): string => {
  const head = [
    "workload",
    "backend",
    "shape",
    "fwd ms",
    "fwd+bwd ms",
    "step ms",
    "sample ms",
    "MP/s",
    "reps",
    "note",
  ];
  const body = rows.map((r) => [
    r.workload,
    r.backend,
    r.shape,
    fmt(r.ms.fwd),
    fmt(r.ms.fwdBwd),
    fmt(r.ms.step),
    fmt(r.ms.sample),
    r.mpPerS === undefined ? "-" : r.mpPerS.toFixed(3),
    String(r.reps),
    r.note ?? "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= 3 && i <= 8 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(
      " | ",
    )
      .trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(line)].join("\n");
};

const main = async (): Promise<void> => {
  const args = parseArgs(Deno.args);
  const workloads = allWorkloads.filter((w) =>
    args.only.length === 0 || args.only.some((o) => w.name.includes(o))
  );
  const rows: BenchRow[] = [];
  const backends: Record<string, unknown>[] = [];
  for (const b of args.backends) {
    let info: BackendInfo;
    try {
      info = await initBackend({ backend: b });
    } catch (e) {
      console.error(`bench: backend ${b} unavailable: ${(e as Error).message}`);
      rows.push({
        workload: "*",
        backend: b,
        shape: "",
        ms: {},
        min: {},
        samples: {},
        reps: 0,
        note: `unavailable: ${(e as Error).message}`,
      });
      continue;
    }
    const flags = b === "wasm"
      ? {
        wasmSimd: tf.env().getBool("WASM_HAS_SIMD_SUPPORT"),
        wasmThreads: tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT"),
      }
      : {};
    backends.push({ ...info, ...flags });
    for (const w of workloads) {
      const t0 = performance.now();
      let row: BenchRow;
      try {
        row = await runWorkload(w, info, args);
      } catch (e) {
        row = {
          workload: w.name,
          backend: b,
          shape: w.shape,
          ms: {},
          min: {},
          samples: {},
          reps: 0,
          note: `error: ${(e as Error).message.split("\n")[0]}`,
        };
      }
      rows.push(row);
      console.error(
        `bench: ${b} ${w.name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
  }
  console.log(renderTable(rows));
  const outUrl = args.out;
  const dir = outUrl.includes("/") ? outUrl.slice(0, outUrl.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true });
  const json = {
    tool: "deflow bench (tfjs)",
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    tfjs: tf.version_core,
    quick: args.quick,
    backends,
    rows,
  };
  await Deno.writeTextFile(outUrl, JSON.stringify(json, null, 2) + "\n");
  console.error(`bench: wrote ${outUrl}`);
};

if (import.meta.main) await main();
