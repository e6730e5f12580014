/**
 * deflow benchmark: `deno task bench [--backend wasm,webgpu] [--quick] [--only a,b]
 * [--reps N] [--warmup N] [--out path.json]`.
 *
 * For every backend and workload (see `bench/workloads.ts`) it runs warm-up repetitions,
 * then timed repetitions, and reports the median milliseconds (each repetition ends with
 * an awaited scalar read, so queued GPU work is included). Prints one table and writes
 * JSON (default `out/bench/bench.json`). One cheap round of one workload:
 * `--only trainStep.default --warmup 1 --reps 3` (process start-up, backend init and the
 * workload's setup are never inside a timing; warm-up runs once per process).
 *
 * `--serve --backend wasm` keeps one backend and every prepared workload alive and answers
 * JSON requests, one per stdin line, each with one stdout line `@@bench {...}`:
 * `{"op":"info"}`, `{"op":"setup","workload":w}` (returns its metrics, or `skip`),
 * `{"op":"run","workload":w,"metric":m,"reps":n}` (returns the `samples` in ms),
 * `{"op":"dispose","workload":w}`, `{"op":"quit"}`. `bench/compare.ts` drives one such
 * process per tfjs backend and one `torch_bench.py --serve`, interleaving them in rounds.
 *
 * @module
 */
import { tf } from "../src/tf.ts";
import { type BackendInfo, type BackendName, initBackend } from "../src/core/backend.ts";
import { allWorkloads, type Metric, type Prepared, type Workload } from "./workloads.ts";

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
  /** Answer requests on stdin instead of running the table (see the module doc). */
  readonly serve: boolean;
}

/** Parse `Deno.args`-style arguments. */
export const parseArgs = (args: readonly string[]): BenchArgs => {
  let backends: BackendName[] = ["wasm", "webgpu"];
  let quick = false;
  let only: string[] = [];
  let reps: number | undefined;
  let warmup: number | undefined;
  let out = "out/bench/bench.json";
  let serve = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [key, inline] = a.includes("=") ? a.split(/=(.*)/s, 2) : [a, undefined];
    const val = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`bench: ${key} needs a value`);
      return v;
    };
    if (key === "--quick") quick = true;
    else if (key === "--serve") serve = true;
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
          "[--reps N] [--warmup N] [--out file.json] | --serve --backend wasm",
      );
      Deno.exit(0);
    } else throw new Error(`bench: unknown argument "${a}"`);
  }
  return { backends, quick, only, reps, warmup, out, serve };
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
      const ts = await timeReps(run, reps);
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

/** Time `reps` awaited repetitions of `run` (ms each). */
const timeReps = async (run: () => Promise<void>, reps: number): Promise<number[]> => {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    ts.push(performance.now() - t0);
  }
  return ts;
};

/** A request of the `--serve` protocol. */
interface Request {
  readonly op: "info" | "setup" | "run" | "dispose" | "quit";
  readonly workload?: string;
  readonly metric?: Metric;
  readonly reps?: number;
}

/** Lines of stdin, decoded. */
async function* stdinLines(): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf.trim()) yield buf;
}

/**
 * `--serve`: one backend, prepared workloads kept alive between requests, so a round of one
 * workload costs only its repetitions (see the module doc for the protocol).
 */
const serve = async (args: BenchArgs): Promise<void> => {
  const reply = (o: unknown) => console.log(`@@bench ${JSON.stringify(o)}`);
  if (args.backends.length !== 1) throw new Error("bench: --serve takes exactly one --backend");
  const b = args.backends[0];
  let info: BackendInfo | undefined;
  let unavailable: string | undefined;
  try {
    info = await initBackend({ backend: b });
  } catch (e) {
    unavailable = (e as Error).message;
  }
  const prepared = new Map<string, Prepared>();
  for await (const line of stdinLines()) {
    if (!line.trim()) continue;
    let req: Request;
    try {
      req = JSON.parse(line);
    } catch {
      reply({ error: `bad request ${line.slice(0, 80)}` });
      continue;
    }
    try {
      if (req.op === "quit") {
        reply({ ok: true });
        break;
      } else if (req.op === "info") {
        const flags = b === "wasm" && info
          ? {
            wasmSimd: tf.env().getBool("WASM_HAS_SIMD_SUPPORT"),
            wasmThreads: tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT"),
          }
          : {};
        reply({
          backend: b,
          unavailable,
          info: info ? { ...info, ...flags } : undefined,
          tfjs: tf.version_core,
          deno: Deno.version.deno,
          workloads: allWorkloads.map((w) => w.name),
          heavy: allWorkloads.filter((w) => w.heavy).map((w) => w.name),
        });
      } else if (!info) {
        reply({ error: `backend ${b} unavailable: ${unavailable}` });
      } else if (req.op === "setup") {
        const w = allWorkloads.find((x) => x.name === req.workload);
        if (!w) throw new Error(`unknown workload ${req.workload}`);
        if (args.quick && w.heavy && info.backend === "webgpu" && info.softwareAdapter) {
          reply({ skip: "skipped: heavy on software WebGPU (--quick)" });
          continue;
        }
        let p = prepared.get(w.name);
        if (!p) {
          const r = await w.setup();
          if (typeof r === "string") {
            reply({ skip: r });
            continue;
          }
          p = r;
          prepared.set(w.name, p);
        }
        reply({ shape: w.shape, metrics: Object.keys(p.runs), note: p.note });
      } else if (req.op === "run") {
        const p = prepared.get(req.workload ?? "");
        const run = p?.runs[req.metric as Metric];
        if (!run) throw new Error(`not set up: ${req.workload} ${req.metric}`);
        reply({ samples: await timeReps(run, Math.max(1, req.reps ?? 1)) });
      } else if (req.op === "dispose") {
        prepared.get(req.workload ?? "")?.dispose();
        prepared.delete(req.workload ?? "");
        reply({ ok: true });
      } else reply({ error: `unknown op ${(req as { op: string }).op}` });
    } catch (e) {
      reply({ error: (e as Error).message.split("\n")[0] });
    }
  }
  for (const p of prepared.values()) p.dispose();
};

const main = async (): Promise<void> => {
  const args = parseArgs(Deno.args);
  if (args.serve) {
    await serve(args);
    Deno.exit(0);
  }
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
