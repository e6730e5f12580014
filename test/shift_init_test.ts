/**
 * Data-dependent latent-shift initialisation: identical domains leave M at its floor;
 * a noisier degraded domain gives M the scale of the extra latent variance.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { initActNorms, initParams } from "../src/model/network.ts";
import { initShiftsFromData } from "../src/model/shiftInit.ts";
import { noLeak, tinyConfig, useBackend } from "./_helpers.ts";

const tiny = tinyConfig();

const run = async (noise: number) => {
  const base = initParams(tiny, 5);
  const smooth = (seed: number) =>
    tf.tidy(() => {
      const lo = tf.randomUniform([8, 4, 4, 3], 0.2, 0.8, "float32", seed) as tf.Tensor4D;
      return tf.image.resizeBilinear(lo, [16, 16]) as tf.Tensor4D;
    });
  const x0 = smooth(1);
  const c0 = conditionInput(x0, { factor: 2, seed: 2 });
  const params = initActNorms(base, tiny, x0, c0, true);
  c0.dispose();
  const result = await initShiftsFromData(
    params,
    tiny,
    4,
    (i) => {
      const clean = smooth(10 + i);
      const other = smooth(20 + i);
      const noisy = tf.tidy(() =>
        tf.add(other, tf.randomNormal(other.shape, 0, noise, "float32", 30 + i))
      ) as tf.Tensor4D;
      const x = tf.concat([clean, noisy], 0) as tf.Tensor4D;
      tf.dispose([clean, other, noisy]);
      return {
        x,
        cond: conditionInput(x, { factor: 2, seed: 40 + i }),
        degradedMask: tf.tensor1d([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]),
      };
    },
    (c) => tf.dispose([c.x, c.cond, c.degradedMask]),
    { seed: 3, floor: 0.01 },
  );
  tf.dispose(x0);
  disposeParams(result.params);
  return result.latents;
};

Deno.test("initShiftsFromData: M at the floor without a degradation, at its scale with one", async () => {
  await useBackend("wasm");
  await noLeak("shift init", async () => {
    const none = await run(0);
    for (const l of none) {
      assert.equal(l.kept, 0, `no direction should pass the noise threshold: ${JSON.stringify(l)}`);
      assert.ok(l.rmsScale < 0.02, `M should stay at the floor, got ${l.rmsScale}`);
    }
    const noisy = await run(0.1);
    assert.ok(noisy.some((l) => l.kept > 0), "the noise should be detected");
    assert.ok(Math.max(...noisy.map((l) => l.rmsScale)) > 0.2, JSON.stringify(noisy));
  });
  await useBackend("webgpu");
});
