/**
 * Data-parallel training (src/parallel): the pooled loss and gradients, and a pooled
 * training step, equal the single-thread `lossAndGrads` / `trainStep` within float32
 * tolerance; the row sharding covers every row once.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import { disposeParams, leaves, mapParams } from "../src/core/params.ts";
import { configOrThrow } from "../src/model/config.ts";
import { initParams } from "../src/model/network.ts";
import { adamInit } from "../src/train/adam.ts";
import { lossAndGrads, trainStep } from "../src/train/step.ts";
import { createGradientPool, shardRows } from "../src/parallel/pool.ts";
import { parallelTrainStep } from "../src/parallel/step.ts";
import { gpuTest, maxAbsDiff, useBackend } from "./_helpers.ts";

const tiny = configOrThrow({
  levels: 2,
  steps: 1,
  transitionSteps: 1,
  splitLevels: [1],
  hidden: 8,
  injectorHidden: 8,
  conditionFactor: 2,
  encoder: { nf: 4, nb: 1, gc: 4 },
});

const perturbedModel = (seed: number) => {
  const base = initParams(tiny, seed);
  const p = mapParams(
    base,
    (t, path) =>
      path.split(".").includes("const")
        ? tf.clone(t)
        : tf.tidy(() => tf.add(t, tf.randomNormal(t.shape, 0, 0.1, "float32", seed + path.length))),
  );
  disposeParams(base);
  return p;
};

const arrays = (ts: readonly tf.Tensor[]): Promise<number[][]> =>
  Promise.all(ts.map(async (t) => Array.from(await t.data())));

const assertClose = (a: number[][], b: number[][], rel: number, what: string) => {
  assert.equal(a.length, b.length, `${what}: count`);
  for (let i = 0; i < a.length; i++) {
    const scale = Math.max(1e-3, ...b[i].map(Math.abs));
    const d = maxAbsDiff(a[i], b[i]);
    assert.ok(d <= rel * scale, `${what} ${i}: differs by ${d} (scale ${scale})`);
  }
};

Deno.test("shardRows covers 0..n-1 once, in order, in at most k near-equal shards", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 8 }), (n, k) => {
      const s = shardRows(n, k);
      assert.ok(s.length === Math.min(n, k));
      let next = 0;
      for (const [b, size] of s) {
        assert.equal(b, next);
        assert.ok(size >= 1);
        next += size;
      }
      assert.equal(next, n);
      const sizes = s.map(([, z]) => z);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    }),
    { seed: 42, numRuns: 100 },
  );
});

Deno.test(
  "gradient pool (2 threads) equals single-thread lossAndGrads and trainStep",
  gpuTest,
  async () => {
    await useBackend("wasm");
    const pool = await createGradientPool({ threads: 2 });
    try {
      const params = perturbedModel(3);
      const x = tf.randomUniform([3, 8, 8, 3], 0, 1, "float32", 4) as tf.Tensor4D;
      const mask = tf.tensor1d([0, 1, 1]);
      const batch = { x, degradedMask: mask };
      const ref = await lossAndGrads(params, tiny, batch, 5);
      const par = await pool.lossAndGrads(params, tiny, batch, 5);
      assertClose(
        await arrays([par.loss, par.perSample]),
        await arrays([ref.loss, ref.perSample]),
        1e-5,
        "loss/perSample",
      );
      assertClose(await arrays(par.grads), await arrays(ref.grads), 1e-4, "gradient");
      // A different seed must change the result (the shards really use the step seed).
      const other = await pool.lossAndGrads(params, tiny, batch, 6);
      assert.ok(Math.abs((await other.loss.data())[0] - (await ref.loss.data())[0]) > 1e-6);
      tf.dispose([ref.loss, ref.perSample, ...ref.grads, par.loss, par.perSample, ...par.grads]);
      tf.dispose([other.loss, other.perSample, ...other.grads]);

      // One full step each from identical states.
      const p1 = perturbedModel(3);
      const p2 = perturbedModel(3);
      const s1 = { params: p1, adam: adamInit(p1) };
      const s2 = { params: p2, adam: adamInit(p2) };
      const opts = { lr: 1e-3, seed: 9 };
      const r1 = await trainStep(s1, tiny, batch, opts);
      const r2 = await parallelTrainStep(pool, s2, tiny, batch, opts);
      assert.ok(Math.abs(r1.loss - r2.loss) < 1e-5 * Math.abs(r1.loss));
      assert.ok(Math.abs(r1.clean - r2.clean) < 1e-4 && Math.abs(r1.degraded - r2.degraded) < 1e-4);
      assertClose(
        await arrays(leaves(r2.state.params)),
        await arrays(leaves(r1.state.params)),
        1e-4,
        "updated parameter",
      );
      for (const r of [r1, r2]) {
        disposeParams(r.state.params);
        tf.dispose([...r.state.adam.m, ...r.state.adam.v]);
      }
      tf.dispose([x, mask]);
      disposeParams(params);
    } finally {
      pool.close();
      await useBackend("webgpu");
    }
  },
);
