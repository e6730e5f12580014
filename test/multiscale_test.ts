/**
 * The multi-scale composition (`src/model/multiScale.ts`): the one walk through the
 * levels that encode, decode, the objective and the sampler share. Round trip with
 * cancelling log-dets, the latents' shapes, clear errors on mismatched inputs, and the
 * sampler's per-tile conditioner sharing (`scaleLevels` with features: the injectors', and a
 * linear flow's couplings') giving exactly the plain levels' result.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { latentCount, multiScaleDecode, multiScaleEncode } from "../src/model/multiScale.ts";
import { levelFeatures, scaleLevels, withInverses } from "../src/model/network.ts";
import { flowStep } from "../src/layers/flowStep.ts";
import { maxAbsDiff, noLeak, perturbedModel, read, tinyConfig, useBackend } from "./_helpers.ts";

const config = tinyConfig({ levels: 3, splitLevels: [1, 2], conditionResidual: false });

Deno.test("multiScale: round trip, latent shapes, log-dets cancel; shared injectors are exact", async () => {
  await useBackend("wasm");
  const params = await withInverses(perturbedModel(config, 3, 0.05));
  await noLeak("multiScale", async () => {
    const x = tf.randomUniform([2, 16, 24, 3], 0, 1, "float32", 4) as tf.Tensor4D;
    const cond = conditionInput(x, { factor: config.conditionFactor, seed: 5 });
    const feats = levelFeatures(params, config, cond, 16, 24);
    const plain = scaleLevels(params, config);
    assert.equal(latentCount(plain), 3);
    const enc = multiScaleEncode(plain, x, feats);
    assert.deepEqual(enc.latents.map((z) => z.shape), [[2, 8, 12, 6], [2, 4, 6, 12], [
      2,
      2,
      3,
      48,
    ]]);
    const dec = multiScaleDecode(plain, enc.latents, feats);
    assert.ok(maxAbsDiff(await read(dec.x), await read(x)) < 1e-4);
    const total = tf.add(enc.logDet, dec.logDet);
    const sum = await read(total);
    total.dispose();
    assert.ok(Math.max(...sum.map(Math.abs)) < 1e-2, `log-dets do not cancel: ${sum}`);
    // Levels whose injectors were computed once from the same features: identical results.
    const enc2 = tf.tidy(() => multiScaleEncode(scaleLevels(params, config, feats), x, feats));
    for (let i = 0; i < 3; i++) {
      assert.ok(maxAbsDiff(await read(enc2.latents[i]), await read(enc.latents[i])) < 1e-5);
    }
    assert.ok(maxAbsDiff(await read(enc2.logDet), await read(enc.logDet)) < 1e-3);
    // Clear errors.
    assert.throws(() => multiScaleDecode(plain, enc.latents.slice(1), feats), /3/);
    assert.throws(() => multiScaleEncode(plain, x, feats.slice(0, 2)), /feature maps/);
    tf.dispose([x, cond, ...feats, ...enc.latents, enc.logDet, dec.x, dec.logDet]);
    tf.dispose([...enc2.latents, enc2.logDet]);
  });
  disposeParams(params);
});

Deno.test("multiScale: a linear flow's couplings computed once per condition are exact", async () => {
  await useBackend("wasm");
  for (const stationaryScale of [false, true]) {
    const linear = { ...config, linearCoupling: true, stationaryScale };
    const params = await withInverses(perturbedModel(linear, 4, 0.05));
    await noLeak(`shared couplings (stationaryScale ${stationaryScale})`, async () => {
      const r = tf.tidy(() => {
        const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 6) as tf.Tensor4D;
        const cond = conditionInput(x, { factor: linear.conditionFactor, seed: 7 });
        const feats = levelFeatures(params, linear, cond, 16, 16);
        const shared = scaleLevels(params, linear, feats);
        const enc = multiScaleEncode(scaleLevels(params, linear), x, feats);
        const enc2 = multiScaleEncode(shared, x, feats);
        // Decoding other latents under the same shared levels: the plain decode's result.
        const zs = enc.latents.map((z, i) =>
          tf.add(z, tf.randomNormal(z.shape, 0, 0.5, "float32", 10 + i)) as tf.Tensor4D
        );
        const dec = multiScaleDecode(scaleLevels(params, linear), zs, feats).x;
        const dec2 = multiScaleDecode(shared, zs, feats).x;
        // The shared outputs really are used: the levels' features of another image change
        // nothing (the split priors and the residual base do not read them).
        const other = levelFeatures(
          params,
          linear,
          conditionInput(tf.reverse(x, 2) as tf.Tensor4D, {
            factor: linear.conditionFactor,
            seed: 8,
          }),
          16,
          16,
        );
        const dec3 = multiScaleDecode(shared, zs, other).x;
        const dec4 = multiScaleDecode(scaleLevels(params, linear), zs, other).x;
        return { enc, enc2, dec, dec2, dec3, dec4 };
      });
      for (let i = 0; i < 3; i++) {
        assert.ok(maxAbsDiff(await read(r.enc2.latents[i]), await read(r.enc.latents[i])) < 1e-5);
      }
      assert.ok(maxAbsDiff(await read(r.enc2.logDet), await read(r.enc.logDet)) < 1e-3);
      assert.ok(maxAbsDiff(await read(r.dec2), await read(r.dec)) < 1e-4);
      assert.ok(maxAbsDiff(await read(r.dec3), await read(r.dec2)) < 1e-4);
      // (and the features do matter when the networks run: the check above can fail)
      assert.ok(maxAbsDiff(await read(r.dec4), await read(r.dec2)) > 1e-3);
      tf.dispose(r);
    });
    disposeParams(params);
  }
  // An affine coupling's network sees the flow tensor: its output cannot be given ahead.
  const affine = await withInverses(perturbedModel(config, 3, 0.05));
  const step = affine.levels[0].steps[0];
  const out = tf.zeros([1, 8, 8, 12]) as tf.Tensor4D;
  assert.throws(() => flowStep.bijector(step, { couplingOutput: out }), /linear coupling/);
  out.dispose();
  disposeParams(affine);
});
