/**
 * tfjs vs PyTorch, interleaved: `deno run -A bench/compare.ts [--quick]`. Not part of CI.
 *
 * Absolute times on a shared 2-core machine swing by 2× from one minute to the next, so
 * this measures RATIOS close in time and reports their distribution:
 *
 * 1. It starts one long-lived `bench/run.ts --serve` per tfjs backend and one
 *    `bench/reference/torch_bench.py --serve`; each prepares every workload once (process
 *    start-up, imports and setup are never timed) and runs warm-up repetitions once.
 * 2. Calibration: per workload/metric, PyTorch runs `--calib-rounds` batches at each thread
 *    count of `--threads` (default 1,2), alternating which goes first; the thread count with
 *    the lower median is used from then on (reported as `torch thr`, with both medians);
 *    no new calibration round starts after `--calib-s` seconds on one row. A
 *    count > 4× slower than the best in its first estimate is not calibrated further.
 *    PyTorch runs with `OMP_WAIT_POLICY=PASSIVE` unless the variable is set: with the
 *    default spinning, 2 threads on 2 busy cores were 10–50× slower than 1.
 * 3. Rounds (`--rounds`, 10 with --quick, 20 otherwise): in round k every workload/metric runs one batch on each side, tfjs
 *    first in even rounds and PyTorch first in odd ones. A batch is a few repetitions
 *    (about `--target-ms` long, from the warm-up time); its median is that side's time in
 *    that round, and tfjs/PyTorch of the same round is one ratio.
 * 4. Per workload/metric/backend: the median of the per-round ratios, its interquartile
 *    range and min–max, the number of rounds, and the median times of each side.
 *
 *   deno run -A bench/compare.ts [--quick] [--light] [--rounds N] [--calib-rounds N]
 *     [--calib-s S] [--target-ms T] [--backend wasm[,webgpu]] [--only names]
 *     [--threads 1,2] [--device cpu|cuda]
 *     [--python /usr/bin/python3] [--outdir out/bench]
 *     [--skip-run]   (only reprint the table from an existing compare.json)
 *
 * `--quick`: 10 rounds, ≤ 3 calibration rounds in ≤ 10 s, ~100 ms batches; the default is
 * 20 rounds, ≤ 5 calibration rounds in ≤ 60 s, ~400 ms batches. The two paper-sized
 * workloads take most of the time (--quick: 7 min on 2 cores while other jobs ran, load
 * average 6–10); `--light` leaves them out. Prints one table and writes
 * `<outdir>/compare.json` (settings, per-round times and ratios, the summary).
 *
 * @module
 */

/** A reply of a `--serve` process. */
type Reply = Record<string, unknown> & { error?: string; skip?: string };

/** One `--serve` process (tfjs backend or PyTorch), answering one request at a time. */
class Server {
  readonly #proc: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncGenerator<string>;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    console.error(`compare: ${cmd} ${args.join(" ")}`);
    this.#proc = new Deno.Command(cmd, {
      args,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#proc.stdin.getWriter();
    this.#lines = lines(this.#proc.stdout);
  }

  /** Send one request and wait for its `@@bench` reply (other stdout lines go to stderr). */
  async request(req: Record<string, unknown>): Promise<Reply> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    for (;;) {
      const { value, done } = await this.#lines.next();
      if (done) throw new Error(`compare: ${this.name} exited (request ${JSON.stringify(req)})`);
      if (value.startsWith("@@bench ")) return JSON.parse(value.slice(8));
      if (value.trim()) console.error(`${this.name}: ${value}`);
    }
  }

  /** Ask it to quit and wait for the exit. */
  async close(): Promise<void> {
    try {
      await this.request({ op: "quit" });
      await this.#writer.close();
    } catch {
      // already gone
    }
    await this.#proc.status;
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

/** Quantile with linear interpolation (type 7) of a non-empty list. */
export const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
};

/** Median of a non-empty list. */
export const median = (xs: readonly number[]): number => quantile(xs, 0.5);

/** Distribution of per-round values. */
export interface Spread {
  /** Median. */
  readonly median: number;
  /** 25th percentile. */
  readonly q25: number;
  /** 75th percentile. */
  readonly q75: number;
  /** Minimum. */
  readonly min: number;
  /** Maximum. */
  readonly max: number;
  /** Number of values (rounds). */
  readonly n: number;
}

/** Median, quartiles and range of a non-empty list. */
export const spread = (xs: readonly number[]): Spread => ({
  median: median(xs),
  q25: quantile(xs, 0.25),
  q75: quantile(xs, 0.75),
  min: Math.min(...xs),
  max: Math.max(...xs),
  n: xs.length,
});

/** One measured (workload, metric): settings and per-round medians of each side. */
export interface Job {
  /** Workload name. */
  readonly workload: string;
  /** Metric (fwd, fwdBwd, step, sample). */
  readonly metric: string;
  /** PyTorch thread count used in the rounds. */
  torchThreads: number;
  /** Calibration: median ms per tried thread count. */
  readonly calibration: Record<string, number>;
  /** Repetitions per batch, per side (tfjs backends and "torch"). */
  readonly reps: Record<string, number>;
  /** Per round: the batch median (ms) per side; a missing side failed in that round. */
  readonly rounds: Record<string, number>[];
  /** Notes (skips, errors). */
  readonly notes: string[];
}

/** Summary line of one (workload, metric). */
export interface Summary {
  /** Workload name. */
  readonly workload: string;
  /** Metric. */
  readonly metric: string;
  /** PyTorch thread count used. */
  readonly torchThreads: number;
  /** Calibration medians per thread count (ms). */
  readonly calibration: Record<string, number>;
  /** Median over rounds of PyTorch's batch medians (ms). */
  readonly torchMs?: number;
  /** Per tfjs backend: median ms over rounds and the spread of per-round ratios. */
  readonly tfjs: Record<string, { ms: number; ratio: Spread }>;
  /** Notes. */
  readonly notes: string[];
}

/** Per-round ratios tfjs/PyTorch summarised per job and backend. */
export const summarise = (jobs: readonly Job[], backends: readonly string[]): Summary[] =>
  jobs.map((j) => {
    const torch = j.rounds.map((r) => r.torch).filter((v) => v !== undefined);
    const tfjs: Summary["tfjs"] = {};
    for (const b of backends) {
      const both = j.rounds.filter((r) => r[b] !== undefined && r.torch !== undefined);
      if (!both.length) continue;
      tfjs[b] = {
        ms: median(both.map((r) => r[b])),
        ratio: spread(both.map((r) => r[b] / r.torch)),
      };
    }
    return {
      workload: j.workload,
      metric: j.metric,
      torchThreads: j.torchThreads,
      calibration: j.calibration,
      torchMs: torch.length ? median(torch) : undefined,
      tfjs,
      notes: j.notes,
    };
  });

const fmt = (v: number | undefined, d = 1): string =>
  v === undefined ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(d);

/** The printed table. */
export const renderTable = (rows: readonly Summary[], backends: readonly string[]): string => {
  const head = [
    "workload",
    "metric",
    "torch thr (ms per thr)",
    "torch ms",
    ...backends.flatMap((b) => [
      `${b} ms`,
      `${b}/torch median`,
      "IQR",
      "min–max",
      "rounds",
    ]),
  ];
  const body = rows.map((r) => [
    r.workload,
    r.metric,
    `${r.torchThreads} (${
      Object.entries(r.calibration).map(([t, ms]) => `${t}: ${fmt(ms)}`).join(", ") || "-"
    })`,
    fmt(r.torchMs),
    ...backends.flatMap((b) => {
      const x = r.tfjs[b];
      if (!x) return ["-", "-", "-", "-", "0"];
      const s = x.ratio;
      return [
        fmt(x.ms),
        `${s.median.toFixed(2)}×`,
        `${s.q25.toFixed(2)}–${s.q75.toFixed(2)}`,
        `${s.min.toFixed(2)}–${s.max.toFixed(2)}`,
        String(s.n),
      ];
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (c: string[]) =>
    c.map((s, i) => (i < 3 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join(" | ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(line)].join(
    "\n",
  );
};

/** Settings of one comparison. */
interface Settings {
  readonly quick: boolean;
  readonly rounds: number;
  readonly calibRounds: number;
  readonly targetMs: number;
  readonly maxReps: number;
  readonly warmup: number;
  readonly threads: number[];
  readonly calibS: number;
  readonly light: boolean;
}

const clampReps = (ms: number, s: Settings): number =>
  Math.max(1, Math.min(s.maxReps, Math.round(s.targetMs / Math.max(ms, 1e-3))));

const secs = (t0: number): string => `${((performance.now() - t0) / 1000).toFixed(0)} s`;

const main = async (): Promise<void> => {
  const a = [...Deno.args];
  const take = (flag: string, def?: string): string | undefined => {
    const i = a.indexOf(flag);
    if (i < 0) return def;
    const v = a[i + 1];
    if (v === undefined) throw new Error(`compare: ${flag} needs a value`);
    a.splice(i, 2);
    return v;
  };
  const has = (flag: string): boolean => {
    const i = a.indexOf(flag);
    if (i >= 0) a.splice(i, 1);
    return i >= 0;
  };
  const quick = has("--quick");
  const skipRun = has("--skip-run");
  const backends = (take("--backend", "wasm") as string).split(",").filter((s) => s);
  const only = (take("--only", "") as string).split(",").filter((s) => s);
  const device = take("--device", "cpu") as string;
  const python = take("--python", "/usr/bin/python3") as string;
  const outdir = take("--outdir", "out/bench") as string;
  const ompWait = Deno.env.get("OMP_WAIT_POLICY") ?? "PASSIVE";
  const s: Settings = {
    quick,
    rounds: Number(take("--rounds", quick ? "10" : "20")),
    calibRounds: Number(take("--calib-rounds", quick ? "3" : "5")),
    targetMs: Number(take("--target-ms", quick ? "100" : "400")),
    maxReps: quick ? 30 : 100,
    warmup: quick ? 1 : 2,
    threads: (take("--threads", "1,2") as string).split(",").map(Number),
    calibS: Number(take("--calib-s", quick ? "10" : "60")),
    light: has("--light"),
  };
  if (a.length) throw new Error(`compare: unknown arguments ${a.join(" ")}`);
  if (!(s.rounds >= 1) || !(s.calibRounds >= 1) || !(s.targetMs > 0)) {
    throw new Error("compare: --rounds, --calib-rounds and --target-ms must be positive");
  }
  if (s.threads.some((t) => !Number.isInteger(t) || t < 1)) {
    throw new Error("compare: --threads takes positive integers, e.g. 1,2");
  }
  await Deno.mkdir(outdir, { recursive: true });
  const outJson = `${outdir}/compare.json`;
  if (skipRun) {
    const old = JSON.parse(await Deno.readTextFile(outJson));
    const rows = summarise(old.jobs, old.backends);
    console.log(renderTable(rows, old.backends));
    return;
  }

  const here = new URL(".", import.meta.url).pathname;
  const t0 = performance.now();
  const torch = new Server("torch", python, [
    `${here}reference/torch_bench.py`,
    "--serve",
    "--device",
    device,
    "--threads",
    String(s.threads[0]),
  ], { OMP_WAIT_POLICY: ompWait });
  const tfjs = backends.map((b) =>
    new Server(b, Deno.execPath(), [
      "run",
      "-A",
      `${here}run.ts`,
      "--serve",
      "--backend",
      b,
      ...(quick ? ["--quick"] : []),
    ])
  );
  const jobs: Job[] = [];
  const notes: string[] = [];
  const live: string[] = [];
  const tfjsInfo: Record<string, unknown> = {};
  let torchInfo: Reply = {};
  try {
    torchInfo = await torch.request({ op: "info" });
    const names: string[] = [];
    for (const srv of tfjs) {
      const info = await srv.request({ op: "info" });
      tfjsInfo[srv.name] = info.info ?? { unavailable: info.unavailable };
      if (info.unavailable) {
        notes.push(`${srv.name} unavailable: ${info.unavailable}`);
        continue;
      }
      live.push(srv.name);
      for (const w of info.workloads as string[]) {
        if (!names.includes(w) && !(s.light && (info.heavy as string[]).includes(w))) names.push(w);
      }
    }
    const torchNames = torchInfo.workloads as string[];
    const workloads = names.filter((w) =>
      torchNames.includes(w) && (only.length === 0 || only.some((o) => w.includes(o)))
    );
    const sides = tfjs.filter((t) => live.includes(t.name));
    const batch = async (srv: Server, job: Job, reps: number, threads?: number) => {
      const r = await srv.request({
        op: "run",
        workload: job.workload,
        metric: job.metric,
        reps,
        threads,
      });
      if (r.error) throw new Error(`${srv.name} ${job.workload} ${job.metric}: ${r.error}`);
      return r.samples as number[];
    };
    /** ms per repetition: one, then the median of up to 5 more when they are cheap. */
    const estimate = async (srv: Server, job: Job, threads?: number) => {
      const one = (await batch(srv, job, 1, threads))[0];
      const more = Math.min(5, clampReps(one, s));
      return more > 1 ? median(await batch(srv, job, more, threads)) : one;
    };

    // Phase 1: setup, warm-up, rep counts, PyTorch thread calibration.
    for (const w of workloads) {
      const ts = await torch.request({ op: "setup", workload: w });
      if (ts.error) {
        notes.push(`torch ${w}: ${ts.error}`);
        continue;
      }
      const tfjsMetrics = new Map<string, string[]>();
      const wNotes: string[] = [];
      for (const srv of sides) {
        const r = await srv.request({ op: "setup", workload: w });
        if (r.error || r.skip) wNotes.push(`${srv.name}: ${r.error ?? r.skip}`);
        else tfjsMetrics.set(srv.name, r.metrics as string[]);
      }
      for (const m of ts.metrics as string[]) {
        const job: Job = {
          workload: w,
          metric: m,
          torchThreads: s.threads[0],
          calibration: {},
          reps: {},
          rounds: [],
          notes: [...wNotes],
        };
        try {
          for (const srv of sides) {
            if (!tfjsMetrics.get(srv.name)?.includes(m)) continue;
            const warm = await batch(srv, job, s.warmup);
            const last = warm[warm.length - 1];
            // A warm-up repetition ≥ 2 batches long already says: one repetition per batch.
            job.reps[srv.name] = last >= 2 * s.targetMs
              ? 1
              : clampReps(await estimate(srv, job), s);
          }
          if (Object.keys(job.reps).length === 0) {
            notes.push(`${w} ${m}: no tfjs backend ran it (${wNotes.join("; ")})`);
            continue;
          }
          // Warm-up at the first thread count, then an estimate at each.
          const c0 = performance.now();
          await batch(torch, job, s.warmup, s.threads[0]);
          const est: Record<number, number> = {};
          for (const t of s.threads) est[t] = await estimate(torch, job, t);
          const best = Math.min(...Object.values(est));
          job.reps.torch = clampReps(best, s);
          if (s.threads.length > 1) {
            // A thread count > 4× slower than the best in its estimate is not calibrated
            // further (oversubscribed OpenMP can be 10–50× slower: minutes per batch).
            const tried = s.threads.filter((t) => est[t] <= 4 * best);
            const per: Record<number, number[]> = {};
            for (const t of tried) per[t] = [est[t]];
            for (let k = 1; k < s.calibRounds; k++) {
              if (performance.now() - c0 > 1000 * s.calibS) break;
              const order = k % 2 ? [...tried].reverse() : tried;
              for (const t of order) {
                per[t].push(median(await batch(torch, job, clampReps(est[t], s), t)));
              }
            }
            for (const t of s.threads) {
              job.calibration[t] = per[t] ? median(per[t]) : est[t];
              if (!per[t]) job.notes.push(`torch ${t} thr: ${fmt(est[t])} ms once, not calibrated`);
            }
            job.torchThreads = s.threads.reduce((b, t) =>
              job.calibration[t] < job.calibration[b] ? t : b
            );
          }
        } catch (e) {
          notes.push((e as Error).message);
          continue;
        }
        jobs.push(job);
        console.error(
          `compare: prepared ${w} ${m} (${secs(t0)}): reps ${JSON.stringify(job.reps)}` +
            (s.threads.length > 1
              ? `, torch ${job.torchThreads} thr (${
                s.threads.map((t) => `${t}: ${fmt(job.calibration[t])} ms`).join(", ")
              })`
              : ""),
        );
      }
    }

    // Phase 2: interleaved rounds.
    for (let k = 0; k < s.rounds; k++) {
      for (const job of jobs) {
        const round: Record<string, number> = {};
        const order: Server[] = [...sides.filter((x) => job.reps[x.name] !== undefined), torch];
        if (k % 2) order.reverse();
        for (const srv of order) {
          try {
            const isTorch = srv === torch;
            const samples = await batch(
              srv,
              job,
              job.reps[isTorch ? "torch" : srv.name],
              isTorch ? job.torchThreads : undefined,
            );
            round[isTorch ? "torch" : srv.name] = median(samples);
          } catch (e) {
            job.notes.push(`round ${k}: ${(e as Error).message}`);
          }
        }
        job.rounds.push(round);
      }
      console.error(`compare: round ${k + 1}/${s.rounds} done (${secs(t0)})`);
    }
  } finally {
    await Promise.all([torch, ...tfjs].map((x) => x.close()));
  }

  const rows = summarise(jobs, live);
  console.log(renderTable(rows, live));
  for (const n of notes) console.log(`note: ${n}`);
  for (const r of rows) for (const n of new Set(r.notes)) console.log(`note: ${r.workload}: ${n}`);
  console.log(
    `${s.rounds} rounds, tfjs first in even rounds; ratio = tfjs / PyTorch batch medians of ` +
      `the same round; PyTorch thread count per row from ≤ ${s.calibRounds} calibration rounds ` +
      `(${secs(t0)} in all)`,
  );
  await Deno.writeTextFile(
    outJson,
    JSON.stringify(
      {
        tool: "deflow bench/compare.ts (interleaved rounds)",
        date: new Date().toISOString(),
        settings: s,
        backends: live,
        tfjs: tfjsInfo,
        torch: {
          version: torchInfo.torch,
          device: torchInfo.device,
          threadsTried: s.threads,
          ompWaitPolicy: ompWait,
        },
        summary: rows,
        jobs,
        notes,
        seconds: (performance.now() - t0) / 1000,
      },
      null,
      2,
    ) + "\n",
  );
  console.error(`compare: wrote ${outJson}`);
};

if (import.meta.main) await main();
