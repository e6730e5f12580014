/**
 * `constantPriorScale`: the split priors' log-scale is a constant per channel. With additive
 * couplings the whole network's log-det then depends on the condition only, not on the
 * image, while the network stays nonlinear in the image (unlike `linearCoupling`). Each
 * option alone leaves the log-det content-dependent; the checks below fail for both, so they
 * can tell the combination from either half. The split's own laws with a constant scale run
 * in the registry (`test/registry_test.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { configOrThrow, decodeConfig, decodeStoredConfig } from "../src/model/config.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import {
  decodeWithFeatures,
  disposeInverses,
  encodeWithFeatures,
  levelFeatures,
  withInverses,
} from "../src/model/network.ts";
import { disposeParams } from "../src/core/params.ts";
import { settings } from "../src/train/setting.ts";
import {
  gpuTest,
  maxAbsDiff,
  noLeak,
  perturbedModel,
  read,
  tinyConfig,
  useBackend,
} from "./_helpers.ts";

/**
 * For two different images under the same conditioning features: how far their log-dets
 * differ, how far the encoding of their mean is from the mean of their encodings (0 for a
 * flow affine in the image), and the round trip's error.
 */
const contentDependence = async (config: ModelConfig) => {
  const params = await withInverses(perturbedModel(config, 7, 0.1));
  try {
    const x1 = tf.randomUniform([1, 16, 16, 3], 0, 1, "float32", 11) as tf.Tensor4D;
    const x2 = tf.randomUniform([1, 16, 16, 3], 0, 1, "float32", 12) as tf.Tensor4D;
    const cond = conditionInput(x1, { factor: config.conditionFactor, seed: 3 });
    const feats = levelFeatures(params, config, cond, 16, 16);
    const mid = tf.tidy(() => tf.mul(tf.add(x1, x2), 0.5) as tf.Tensor4D);
    const e1 = encodeWithFeatures(params, config, x1, feats);
    const e2 = encodeWithFeatures(params, config, x2, feats);
    const em = encodeWithFeatures(params, config, mid, feats);
    let affine = 0;
    for (let i = 0; i < em.latents.length; i++) {
      const avg = tf.tidy(() => tf.mul(tf.add(e1.latents[i], e2.latents[i]), 0.5));
      affine = Math.max(affine, maxAbsDiff(await read(em.latents[i]), await read(avg)));
      avg.dispose();
    }
    const back = decodeWithFeatures(params, config, e1.latents, feats);
    const roundTrip = maxAbsDiff(await read(back.x), await read(x1));
    const logDet = maxAbsDiff(await read(e1.logDet), await read(e2.logDet));
    const inverseLogDet = maxAbsDiff(
      await read(back.logDet),
      (await read(e1.logDet)).map((v) => -v),
    );
    tf.dispose([x1, x2, cond, ...feats, mid, back.x, back.logDet]);
    for (const e of [e1, e2, em]) tf.dispose([...e.latents, e.logDet]);
    return { logDet, affine, roundTrip, inverseLogDet };
  } finally {
    disposeInverses(params);
    disposeParams(params);
  }
};

Deno.test(
  "constantPriorScale: with additive couplings the log-det ignores the image, the flow stays nonlinear",
  gpuTest,
  async () => {
    await useBackend();
    const both = await noLeak(
      "additive couplings, constant prior scales",
      () => contentDependence(tinyConfig({ additiveCoupling: true, constantPriorScale: true })),
    );
    assert.ok(both.logDet < 1e-3, `log-det depends on the image: ${both.logDet}`);
    assert.ok(both.affine > 1e-2, `the flow came out affine in the image: ${both.affine}`);
    assert.ok(both.roundTrip < 1e-3, `round trip error ${both.roundTrip}`);
    assert.ok(
      both.inverseLogDet < 1e-2,
      `decode's log-det is not −encode's: ${both.inverseLogDet}`,
    );
    // Either half alone leaves a content-dependent scale: the split priors' or the couplings'.
    const additive = await contentDependence(tinyConfig({ additiveCoupling: true }));
    assert.ok(additive.logDet > 1e-3, `split priors' log-det: ${additive.logDet}`);
    const constant = await contentDependence(tinyConfig({ constantPriorScale: true }));
    assert.ok(constant.logDet > 1e-3, `affine couplings' log-det: ${constant.logDet}`);
  },
);

Deno.test("constantPriorScale: config, old checkpoints and the paper setting", () => {
  assert.ok(decodeConfig({ constantPriorScale: "yes" })._tag === "Left");
  assert.equal(configOrThrow({}).constantPriorScale, false);
  assert.equal(configOrThrow({ constantPriorScale: true }).constantPriorScale, true);
  const stored = decodeStoredConfig({ levels: 3, additiveCoupling: true });
  assert.ok(stored._tag === "Right" && stored.right.constantPriorScale === false);
  assert.ok(settings.paper.config.additiveCoupling && settings.paper.config.constantPriorScale);
  assert.ok(!settings.paper.config.linearCoupling, "the paper setting's flow must stay nonlinear");
});
