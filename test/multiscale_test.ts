/**
 * The multi-scale composition (`src/model/multiScale.ts`): the one walk through the
 * levels that encode, decode, the objective and the sampler share. Round trip with
 * cancelling log-dets, the latents' shapes, clear errors on mismatched inputs, and the
 * sampler's per-tile injector sharing (`scaleLevels` with features) giving exactly the
 * plain levels' result.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { latentCount, multiScaleDecode, multiScaleEncode } from "../src/model/multiScale.ts";
import { levelFeatures, scaleLevels, withInverses } from "../src/model/network.ts";
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
