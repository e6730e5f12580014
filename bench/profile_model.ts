/**
 * Time and kernel-profile the model-level hot paths on wasm: `lossAndGrads` of
 * src/train/step.ts on an N×S×S batch and `degrade` of src/model/sample.ts on one
 * S'×S' image.
 *
 *   deno run -A bench/profile_model.ts [train|sample|both] [--config default|paper]
 *     [--n 8] [--size 64] [--ssize 256] [--tile T] [--reps 3] [--top 25] [--by-name]
 *     [--no-prof]
 *
 * Prints the median/min wall time over `reps` repetitions (after one warm-up), sampling
 * throughput in MP/s, and (unless `--no-prof`) the kernels of one profiled repetition
 * grouped by name (and input shapes unless `--by-name`), sorted by total time.
 * ("unnamed scope" rows are custom-gradient wrappers and contain other kernels' time.)
 *
 * @module
 */
import { tf } from "../src/tf.ts";
import { initBackend } from "../src/core/backend.ts";
import { defaultConfig, paperConfig } from "../src/model/config.ts";
import { initActNorms, initParams } from "../src/model/network.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { lossAndGrads } from "../src/train/step.ts";
import { degrade, prepareSampler } from "../src/model/sample.ts";
import { leaves, type ParamTree } from "../src/core/params.ts";

const arg = (f: string, d: string) => {
  const i = Deno.args.indexOf(f);
  return i >= 0 ? Deno.args[i + 1] : d;
};
const what = Deno.args[0] ?? "both";
const top = Number(arg("--top", "25"));
const byName = Deno.args.includes("--by-name");
const noProf = Deno.args.includes("--no-prof");
const n = Number(arg("--n", "8"));
const size = Number(arg("--size", "64"));
const ssize = Number(arg("--ssize", "256"));
const reps = Number(arg("--reps", "3"));
const cfgName = arg("--config", "default");
const config = cfgName === "paper" ? paperConfig : defaultConfig;
await initBackend({ backend: "wasm", log: false });

const report = async (label: string, run: () => Promise<void>): Promise<number> => {
  await run();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  console.log(`${label}: median ${ts[ts.length >> 1].toFixed(1)} ms, min ${ts[0].toFixed(1)} ms`);
  if (noProf) return ts[ts.length >> 1];
  const info = await tf.profile(() => run() as unknown as tf.TensorContainer);
  const stats = new Map<string, { calls: number; ms: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    const key = byName ? k.name : `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(" ")}`;
    const s = stats.get(key) ?? { calls: 0, ms: 0 };
    stats.set(key, { calls: s.calls + 1, ms: s.ms + ms });
    total += ms;
  }
  const rows = [...stats.entries()].sort((a, b) => b[1].ms - a[1].ms);
  console.log(`  ${info.kernels.length} kernels, kernel sum ${total.toFixed(1)} ms`);
  for (const [k, s] of rows.slice(0, top)) {
    console.log(
      `${s.ms.toFixed(1).padStart(8)} ms ${(100 * s.ms / total).toFixed(1).padStart(5)}% ${
        String(s.calls).padStart(4)
      }× ${k}`,
    );
  }
  return ts[ts.length >> 1];
};

const x = tf.randomUniform([n, size, size, 3], 0, 1, "float32", 21) as tf.Tensor4D;
const c0 = conditionInput(x, { factor: config.conditionFactor, seed: 1 });
const p0 = initParams(config, 3);
const params = initActNorms(p0, config, x, c0, true);
c0.dispose();
const mask = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 2));
if (what === "train" || what === "both") {
  let it = 0;
  await report(`lossAndGrads ${cfgName} ${n}×${size}×${size}`, async () => {
    const r = await lossAndGrads(params, config, { x, degradedMask: mask }, it++);
    await r.loss.data();
    const last = r.grads[0];
    await last.data();
    tf.dispose([r.loss, r.perSample, ...r.grads]);
  });
}
if (what === "sample" || what === "both") {
  const xs = tf.randomUniform([1, ssize, ssize, 3], 0, 1, "float32", 31) as tf.Tensor4D;
  const sampler = await prepareSampler(params, config);
  let it = 0;
  const tile = Number(arg("--tile", "0")) || undefined;
  const ms = await report(`degrade ${ssize}×${ssize} tile ${tile ?? "default"}`, async () => {
    const [y] = degrade(sampler, xs, { seed: it++, tile });
    await y.data();
    y.dispose();
  });
  console.log(`  sampling ${(ssize * ssize / 1e6 / (ms / 1000)).toFixed(3)} MP/s`);
  sampler.dispose();
  xs.dispose();
}
tf.dispose([x, mask, ...leaves(params as unknown as ParamTree)]);
