/**
 * `degrade(…, { noiseAt: "prior" })`: the deterministic part of the translation at the
 * image, the shift's noise decoded at a typical latent of the same condition. τ = 0 is
 * still the identity; without noise (M ≈ 0) it is the ordinary translation; with noise it
 * differs from it, stays finite and in range; bad values are refused; nothing leaks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import type { DeflowParams } from "../src/model/network.ts";
import { degrade, prepareSampler, restore } from "../src/model/sample.ts";
import { disposeParams } from "../src/core/params.ts";
import {
  gpuTest,
  maxAbsDiff,
  noLeak,
  perturbedModel,
  read,
  tinyConfig,
  useBackend,
} from "./_helpers.ts";

for (const jointShift of [false, true]) {
  Deno.test(`noiseAt "prior" (jointShift ${jointShift})`, gpuTest, async () => {
    await useBackend();
    const config = tinyConfig({ jointShift });
    const base = perturbedModel(config, 11, 0.05);
    const withM = (scale: number): DeflowParams => ({
      ...base,
      shifts: base.shifts.map((s, i) => ({
        mu: tf.randomNormal(s.mu.shape, 0, 0.2, "float32", 70 + i) as tf.Tensor1D,
        m: tf.mul(tf.randomNormal(s.m.shape, 0, 0.5, "float32", 80 + i), scale) as tf.Tensor2D,
      })),
    });
    const noisy = withM(1);
    const quiet = withM(1e-6);
    await noLeak("noiseAt prior", async () => {
      const x = tf.randomUniform([2, 16, 16, 3], 0.1, 0.9, "float32", 8) as tf.Tensor4D;
      const xv = await read(x);
      const sN = await prepareSampler(noisy, config);
      const sQ = await prepareSampler(quiet, config);
      const run = async (
        s: typeof sN,
        o: { temperature?: number; noiseAt?: "input" | "prior" },
      ) => {
        const [y] = degrade(s, x, { seed: 3, ...o });
        const v = await read(y);
        y.dispose();
        return v;
      };
      // τ = 0: the identity either way.
      assert.ok(maxAbsDiff(await run(sN, { temperature: 0, noiseAt: "prior" }), xv) < 1e-4);
      // No noise: the same as the ordinary translation (the deterministic parts agree),
      // which moves the image (μ ≠ 0).
      const qPrior = await run(sQ, { noiseAt: "prior" });
      const qInput = await run(sQ, { noiseAt: "input" });
      assert.ok(maxAbsDiff(qPrior, qInput) < 1e-3, "deterministic parts differ");
      assert.ok(maxAbsDiff(qInput, xv) > 1e-3, "μ did not move the image");
      // With noise: a different sample, finite and in range; same seed, same output.
      const nPrior = await run(sN, { noiseAt: "prior" });
      assert.ok(nPrior.every((v) => v >= 0 && v <= 1));
      assert.ok(maxAbsDiff(nPrior, await run(sN, { noiseAt: "input" })) > 1e-3);
      assert.equal(maxAbsDiff(nPrior, await run(sN, { noiseAt: "prior" })), 0);
      assert.ok(maxAbsDiff(nPrior, qPrior) > 1e-3, "the noise did not reach the output");
      // Bad values are refused; restore ignores the option.
      assert.throws(
        // deno-lint-ignore no-explicit-any
        () => degrade(sN, x, { noiseAt: "latent" as any }),
        /noiseAt must be "input" or "prior"/,
      );
      const [r] = restore(sN, x, { seed: 2, noiseAt: "prior" });
      assert.ok((await read(r)).every(Number.isFinite));
      sN.dispose();
      sQ.dispose();
      tf.dispose([x, r]);
    });
    tf.dispose([
      ...noisy.shifts.flatMap((s) => [s.mu, s.m]),
      ...quiet.shifts.flatMap((s) => [s.mu, s.m]),
    ]);
    disposeParams(base);
  });
}
