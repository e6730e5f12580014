/**
 * `gridOffsets` (cycle spinning of the sampled noise over the flow's block grid): distinct
 * seeded offsets; τ = 0 is still the identity; the noise's variance is kept; its variance
 * per grid phase, which repeats with the `2^L` blocks for one offset, evens out over all
 * offsets; only models with `linearCoupling` accept it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { degrade, gridOffsetList, prepareSampler, restore } from "../src/model/sample.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { conditionShiftScales, latentShiftScales, levelFeatures } from "../src/model/network.ts";
import { disposeParams, flattenParams, mapParams } from "../src/core/params.ts";
import {
  gpuTest,
  maxAbsDiff,
  noLeak,
  perturbedModel,
  read,
  tinyConfig,
  useBackend,
} from "./_helpers.ts";

Deno.test("gridOffsetList: distinct offsets in range, seeded", () => {
  const all = gridOffsetList(8, 64, 5);
  assert.equal(new Set(all.map(([y, x]) => `${y},${x}`)).size, 64);
  assert.ok(all.every(([y, x]) => y >= 0 && y < 8 && x >= 0 && x < 8));
  assert.deepEqual(gridOffsetList(8, 4, 5), gridOffsetList(8, 4, 5));
  assert.notDeepEqual(gridOffsetList(8, 4, 5), gridOffsetList(8, 4, 6));
  assert.throws(() => gridOffsetList(4, 17, 1), RangeError);
  assert.throws(() => gridOffsetList(4, 0, 1), RangeError);
});

/** Variance of `y − x` per grid phase `(i mod m, j mod m)` over samples and positions. */
const phaseVariances = (noise: Float32Array[], size: number, m: number): number[] => {
  const sum = new Float64Array(m * m), sq = new Float64Array(m * m), cnt = new Float64Array(m * m);
  for (const d of noise) {
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        const ph = (i % m) * m + (j % m);
        for (let c = 0; c < 3; c++) {
          const v = d[(i * size + j) * 3 + c];
          sum[ph] += v;
          sq[ph] += v * v;
          cnt[ph]++;
        }
      }
    }
  }
  return Array.from(sum, (s, k) => sq[k] / cnt[k] - (s / cnt[k]) ** 2);
};

const spread = (v: number[]) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, cv: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) / mean };
};

Deno.test(
  "gridOffsets: identity at τ = 0, variance kept, the block-periodic variance evens out",
  gpuTest,
  async () => {
    await useBackend("wasm"); // a sampler statistic over many samples (the layers' laws run on WebGPU)
    // No conditioning noise: the deterministic part is then the same in every sample.
    const config = tinyConfig({ linearCoupling: true, jointShift: true, conditionNoise: 0 });
    const m = 4; // 2^levels of the tiny config
    const params = perturbedModel(config, 3, 0.1);
    const sampler = await prepareSampler(params, config);
    const size = 32;
    await noLeak("grid offsets", async () => {
      // A flat image: the noise's variance may then only depend on the grid phase.
      const x = tf.fill([1, size, size, 3], 0.5) as tf.Tensor4D;
      const xv = await read(x);
      const [same] = degrade(sampler, x, { temperature: 0, gridOffsets: 4, seed: 1 });
      assert.ok(maxAbsDiff(await read(same), xv) < 1e-4, "τ = 0 moved the image");
      const noise = async (k: number) => {
        const out: Float32Array[] = [];
        for (let s = 0; s < 32; s++) {
          const [y] = degrade(sampler, x, { temperature: 0.1, gridOffsets: k, seed: 100 + s });
          const yv = await read(y);
          out.push(Float32Array.from(yv, (v, i) => v - xv[i]));
          y.dispose();
        }
        const r = spread(phaseVariances(out, size, m));
        return r;
      };
      const one = await noise(1);
      const all = await noise(m * m);
      assert.ok(one.mean > 1e-5, `no noise at τ = 0.3 (${one.mean})`);
      assert.ok(
        Math.abs(all.mean / one.mean - 1) < 0.3,
        `variance not kept: ${all.mean} vs ${one.mean}`,
      );
      assert.ok(
        all.cv < 0.5 * one.cv,
        `phase variance spread ${all.cv} not below half of one offset's ${one.cv}`,
      );
      // Restoring ignores the option.
      const [r1] = restore(sampler, x, { seed: 4, gridOffsets: 4 });
      const [r2] = restore(sampler, x, { seed: 4 });
      assert.ok(maxAbsDiff(await read(r1), await read(r2)) < 1e-6);
      tf.dispose([x, same, r1, r2]);
    });
    sampler.dispose();
    disposeParams(params);
  },
);

Deno.test("gridOffsets: refused for a non-linear flow and beyond 4^levels", gpuTest, async () => {
  await useBackend();
  const x = tf.fill([1, 8, 8, 3], 0.5) as tf.Tensor4D;
  const plain = tinyConfig();
  const p1 = perturbedModel(plain, 3, 0.05);
  const s1 = await prepareSampler(p1, plain);
  assert.throws(() => degrade(s1, x, { gridOffsets: 2 }), /linearCoupling/);
  assert.throws(() => degrade(s1, x, { gridOffsets: 1.5 }), /positive integer/);
  s1.dispose();
  disposeParams(p1);
  const linear = tinyConfig({ linearCoupling: true });
  const p2 = perturbedModel(linear, 3, 0.05);
  const s2 = await prepareSampler(p2, linear);
  assert.throws(() => degrade(s2, x, { gridOffsets: 17 }), /at most 16/);
  s2.dispose();
  disposeParams(p2);
  x.dispose();
});

Deno.test(
  "gridOffsets: a stationary model shares one condition's decode across fields, exactly",
  gpuTest,
  async () => {
    await useBackend("wasm");
    const stationary = tinyConfig({
      linearCoupling: true,
      jointShift: true,
      stationaryScale: true,
    });
    const params = perturbedModel(stationary, 5, 0.1);
    // The same function as a model whose scales may depend on the condition: the networks'
    // raw-scale outputs (odd channels of the last convolution) get zero weights, so they
    // are their biases, which is what the stationary model uses.
    const general = { ...stationary, stationaryScale: false };
    const keepEven = (t: tf.Tensor) =>
      tf.tidy(() => {
        const k = t.shape[t.rank - 1]!;
        const even = tf.tensor1d(Array.from({ length: k }, (_, i) => (i % 2 ? 0 : 1)));
        return tf.mul(t, even);
      });
    // (The last convolution's output is `(x·W + b)·exp(3·logs)`; the stationary scale is
    // `b` alone, so the odd weights and the odd `logs` go to zero.)
    const same = mapParams(
      params,
      (t, path) =>
        path.endsWith(".net.conv3.w")
          ? keepEven(t)
          : path.endsWith(".net.conv3.logs")
          ? keepEven(t)
          : tf.clone(t),
    );
    assert.ok(
      flattenParams(same).some((n) => n.path.endsWith(".net.conv3.w")),
      "no conditioner found to rewrite",
    );
    const a = await prepareSampler(params, stationary);
    const b = await prepareSampler(same, general);
    const x = tf.randomUniform([1, 24, 16, 3], 0, 1, "float32", 8) as tf.Tensor4D;
    await noLeak("shared decode", async () => {
      for (const gridOffsets of [1, 4, 16]) {
        const opts = { seed: 9, temperature: 0.9, gridOffsets };
        const [ya] = degrade(a, x, opts);
        const [yb] = degrade(b, x, opts);
        const d = maxAbsDiff(await read(ya), await read(yb));
        assert.ok(d < 2e-4, `K = ${gridOffsets}: max |shared − per-field| = ${d}`);
        tf.dispose([ya, yb]);
      }
      // Two images at once, larger than the tiny ones above: each image keeps its own slices.
      const x2 = tf.randomUniform([2, 40, 32, 3], 0, 1, "float32", 10) as tf.Tensor4D;
      const opts = { seed: 11, temperature: 1, gridOffsets: 16 };
      const [ya] = degrade(a, x2, opts);
      const [yb] = degrade(b, x2, opts);
      const d = maxAbsDiff(await read(ya), await read(yb));
      assert.ok(d < 2e-4, `two images, K = 16: max |shared − per-field| = ${d}`);
      tf.dispose([x2, ya, yb]);
    });
    x.dispose();
    a.dispose();
    b.dispose();
    disposeParams(params);
    disposeParams(same);
  },
);

Deno.test("conditionShiftScales: the shift scales of levelFeatures, from the encoder alone", async () => {
  await useBackend("wasm");
  for (const jointShift of [false, true]) {
    const config = tinyConfig({ linearCoupling: true, jointShift, stationaryScale: true });
    const params = perturbedModel(config, 12, 0.1);
    await noLeak(`conditionShiftScales (jointShift ${jointShift})`, async () => {
      const x = tf.randomUniform([2, 24, 16, 3], 0, 1, "float32", 13) as tf.Tensor4D;
      const cond = conditionInput(x, { factor: config.conditionFactor, seed: 14 });
      const feats = levelFeatures(params, config, cond, 24, 16);
      const want = latentShiftScales(params, config, feats, false)!;
      const got = conditionShiftScales(params, config, cond, 24, 16, false)!;
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) {
        assert.deepEqual(got[i].shape, want[i].shape);
        const d = maxAbsDiff(await read(got[i]), await read(want[i]));
        assert.ok(d < 1e-6, `scale ${i}: ${d}`);
      }
      // The scales do depend on the condition (so the comparison can fail).
      const flipped = tf.reverse(cond, 1) as tf.Tensor4D;
      const other = conditionShiftScales(params, config, flipped, 24, 16, false)!;
      assert.ok(maxAbsDiff(await read(other[0]), await read(want[0])) > 1e-4);
      tf.dispose([x, cond, flipped, ...feats, ...want, ...got, ...other]);
    });
    disposeParams(params);
  }
});
