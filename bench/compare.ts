/**
 * Run the tfjs bench and the PyTorch reference in one go and print tfjs/PyTorch ratios
 * per workload and metric (ratios, not absolute times, are what holds on shared machines).
 * Not part of CI.
 *
 *   deno run -A bench/compare.ts [--quick] [--backend wasm,webgpu] [--only names]
 *     [--threads 2] [--device cpu|cuda] [--python /usr/bin/python3] [--outdir out/bench]
 *     [--skip-run]   (only recompute the ratios from existing JSON files)
 *
 * Writes `<outdir>/bench.json`, `<outdir>/torch.json` and `<outdir>/compare.json`.
 *
 * @module
 */

/** A row as written by bench/run.ts and torch_bench.py. */
interface Row {
  readonly workload: string;
  readonly backend: string;
  readonly ms: Record<string, number>;
  readonly min?: Record<string, number>;
  readonly note?: string;
}

/** One ratio line. */
export interface Ratio {
  /** Workload name. */
  readonly workload: string;
  /** Metric (fwd, fwdBwd, step, sample). */
  readonly metric: string;
  /** PyTorch median ms. */
  readonly torchMs: number;
  /** Per tfjs backend: median ms, ratio of medians, ratio of minima. */
  readonly tfjs: Record<string, { ms: number; ratio: number; ratioMin?: number }>;
}

/** Ratios tfjs/PyTorch for every (workload, metric) both sides measured. */
export const ratios = (tfjsRows: readonly Row[], torchRows: readonly Row[]): Ratio[] => {
  const out: Ratio[] = [];
  for (const t of torchRows) {
    for (const [metric, torchMs] of Object.entries(t.ms)) {
      const tfjs: Ratio["tfjs"] = {};
      for (const r of tfjsRows.filter((r) => r.workload === t.workload)) {
        const ms = r.ms[metric];
        if (ms === undefined) continue;
        const a = r.min?.[metric];
        const b = t.min?.[metric];
        tfjs[r.backend] = {
          ms,
          ratio: ms / torchMs,
          ratioMin: a !== undefined && b !== undefined ? a / b : undefined,
        };
      }
      out.push({ workload: t.workload, metric, torchMs, tfjs });
    }
  }
  return out;
};

const run = async (cmd: string, args: string[]): Promise<void> => {
  console.error(`compare: ${cmd} ${args.join(" ")}`);
  const p = new Deno.Command(cmd, { args, stdout: "null", stderr: "inherit" }).spawn();
  const st = await p.status;
  if (!st.success) throw new Error(`compare: ${cmd} exited with ${st.code}`);
};

const main = async (): Promise<void> => {
  const a = [...Deno.args];
  const take = (flag: string, def?: string): string | undefined => {
    const i = a.indexOf(flag);
    if (i < 0) return def;
    const v = a[i + 1];
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
  const backend = take("--backend", "wasm,webgpu") as string;
  const only = take("--only");
  const threads = take("--threads", "2") as string;
  const device = take("--device", "cpu") as string;
  const python = take("--python", "/usr/bin/python3") as string;
  const outdir = take("--outdir", "out/bench") as string;
  if (a.length) throw new Error(`compare: unknown arguments ${a.join(" ")}`);
  await Deno.mkdir(outdir, { recursive: true });
  const benchJson = `${outdir}/bench.json`;
  const torchJson = `${outdir}/torch.json`;
  const here = new URL(".", import.meta.url).pathname;
  if (!skipRun) {
    const common = [...(quick ? ["--quick"] : []), ...(only ? ["--only", only] : [])];
    await run(python, [
      `${here}reference/torch_bench.py`,
      ...common,
      "--threads",
      threads,
      "--device",
      device,
      "--out",
      torchJson,
    ]);
    await run(Deno.execPath(), [
      "run",
      "-A",
      `${here}run.ts`,
      "--backend",
      backend,
      ...common,
      "--out",
      benchJson,
    ]);
  }
  const tfjs = JSON.parse(await Deno.readTextFile(benchJson));
  const torch = JSON.parse(await Deno.readTextFile(torchJson));
  const rs = ratios(tfjs.rows, torch.rows);
  const backends = [...new Set(rs.flatMap((r) => Object.keys(r.tfjs)))];
  const head = [
    "workload",
    "metric",
    `torch ms (${torch.device}, ${torch.threads} thr)`,
    ...backends.flatMap((b) => [`${b} ms`, `${b}/torch`, `${b}/torch (min)`]),
  ];
  const f = (v: number | undefined, d = 1) =>
    v === undefined ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(d);
  const body = rs.map((r) => [
    r.workload,
    r.metric,
    f(r.torchMs),
    ...backends.flatMap((b) => {
      const x = r.tfjs[b];
      return x ? [f(x.ms), f(x.ratio, 2), f(x.ratioMin, 2)] : ["-", "-", "-"];
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (c: string[]) =>
    c.map((s, i) => (i < 2 ? s.padEnd(widths[i]) : s.padStart(widths[i]))).join(" | ");
  console.log(
    [line(head), widths.map((w) => "-".repeat(w)).join("-|-"), ...body.map(line)].join("\n"),
  );
  const skipped = tfjs.rows.filter((r: Row) => Object.keys(r.ms).length === 0);
  for (const r of skipped) console.log(`note: ${r.backend} ${r.workload}: ${r.note}`);
  await Deno.writeTextFile(
    `${outdir}/compare.json`,
    JSON.stringify(
      {
        tfjs: tfjs.backends,
        torch: { version: torch.torch, device: torch.device, threads: torch.threads },
        ratios: rs,
      },
      null,
      2,
    ) + "\n",
  );
};

if (import.meta.main) await main();
