/**
 * What sampling over every offset of the block grid costs, and what sharing one
 * condition's decode across the fields saves (`degrade` with `gridOffsets`, a
 * `stationaryScale` model: one decode per field under shared features, whose linear
 * couplings' and injectors' networks run once, instead of a decode with and without noise
 * under each field's own). The same function is run both ways: the
 * noise setting's model, and that model written as one whose scales could depend on the
 * condition (its conditioners' raw-scale outputs given zero weights), which takes the
 * per-field path. Also `gridOffsets` 1 for reference. One 128×128 image, interleaved,
 * `--rounds N` (default 7) after one warm-up round; prints medians and ranges of the times
 * and of the per-round ratios (absolute times on shared machines are noise).
 *
 * `deno run -A bench/grid_offsets.ts [--rounds N] [--offsets K] [--size S]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../src/tf.ts";
import { initBackend } from "../src/core/backend.ts";
import { mapParams } from "../src/core/params.ts";
import { initParams } from "../src/model/network.ts";
import { degrade, prepareSampler } from "../src/model/sample.ts";
import { settings } from "../src/train/setting.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "7" },
    offsets: { type: "string", default: "64" },
    size: { type: "string", default: "128" },
  },
});
const rounds = Number(values.rounds), offsets = Number(values.offsets), size = Number(values.size);
if (![rounds, offsets, size].every((v) => Number.isInteger(v) && v >= 1) || size % 8 !== 0) {
  console.error("grid_offsets: --rounds, --offsets positive integers, --size a multiple of 8");
  Deno.exit(2);
}
await initBackend();
const config = settings.noise.config;
const params = initParams(config, 1);
const keepEven = (t: tf.Tensor) =>
  tf.tidy(() => {
    const k = t.shape[t.rank - 1]!;
    return tf.mul(t, tf.tensor1d(Array.from({ length: k }, (_, i) => (i % 2 ? 0 : 1))));
  });
const general = mapParams(
  params,
  (t, path) =>
    path.endsWith(".net.conv3.w") || path.endsWith(".net.conv3.logs") ? keepEven(t) : tf.clone(t),
);
const shared = await prepareSampler(params, config);
const perField = await prepareSampler(general, { ...config, stationaryScale: false });
const x = tf.randomUniform([1, size, size, 3], 0, 1, "float32", 3) as tf.Tensor4D;

const time = async (run: () => tf.Tensor4D[]): Promise<number> => {
  const t0 = performance.now();
  const ys = run();
  await Promise.all(ys.map((y) => y.data()));
  const ms = performance.now() - t0;
  tf.dispose(ys);
  return ms;
};
const cases = {
  shared: () => degrade(shared, x, { seed: 1, gridOffsets: offsets }),
  perField: () => degrade(perField, x, { seed: 1, gridOffsets: offsets }),
  one: () => degrade(shared, x, { seed: 1 }),
};
const times: Record<keyof typeof cases, number[]> = { shared: [], perField: [], one: [] };
for (let r = 0; r <= rounds; r++) {
  for (const k of Object.keys(cases) as (keyof typeof cases)[]) {
    const ms = await time(cases[k]);
    if (r > 0) times[k].push(ms);
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const range = (v: number[]) => `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}`;
const ratio = times.perField.map((p, i) => p / times.shared[i]);
console.log(`| ${size}×${size}, ${rounds} rounds | median ms | range |`);
console.log("|---|---|---|");
for (const k of Object.keys(times) as (keyof typeof times)[]) {
  const label = k === "one" ? "gridOffsets 1" : `gridOffsets ${offsets}, ${k}`;
  console.log(`| ${label} | ${median(times[k]).toFixed(0)} | ${range(times[k].map((v) => v))} |`);
}
console.log(
  `per-field / shared: median ${median(ratio).toFixed(2)}× (range ${range(ratio)}); ` +
    `shared / one field: ${(median(times.shared) / median(times.one)).toFixed(1)}×`,
);
x.dispose();
