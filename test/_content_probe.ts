/**
 * Probes of a whole network's dependence on the image content, shared by the tests of the
 * options that remove it (`linearCoupling`, `constantPriorScale`).
 *
 * @module
 */
import { tf } from "../src/tf.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import {
  decodeWithFeatures,
  disposeInverses,
  encodeWithFeatures,
  levelFeatures,
  withInverses,
} from "../src/model/network.ts";
import type { DeflowParams } from "../src/model/network.ts";
import { disposeParams } from "../src/core/params.ts";
import { maxAbsDiff, perturbedModel, read } from "./_helpers.ts";

/**
 * The image displacement that the latent displacement `d` decodes to: `decode(z + d) − x`,
 * where `latents` (`z`) encode `x` under `features`.
 */
export const decodedDisplacement = (
  params: DeflowParams,
  config: ModelConfig,
  x: tf.Tensor4D,
  latents: readonly tf.Tensor4D[],
  d: readonly tf.Tensor[],
  features: readonly tf.Tensor4D[],
): tf.Tensor4D =>
  tf.tidy(() => {
    const moved = latents.map((z, i) => tf.add(z, d[i]) as tf.Tensor4D);
    return tf.sub(decodeWithFeatures(params, config, moved, features).x, x) as tf.Tensor4D;
  });

/**
 * For two images with the same conditioning features: the largest deviation of the
 * encoding from affine (`f((x₁+x₂)/2)` vs the mean of `f(x₁)`, `f(x₂)`), of a latent
 * displacement's decoded effect between the two images, and of the log-dets.
 */
export const affinity = async (config: ModelConfig) => {
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
    const d = e1.latents.map((z, i) => tf.randomNormal(z.shape, 0, 0.5, "float32", 20 + i));
    const r1 = decodedDisplacement(params, config, x1, e1.latents, d, feats);
    const r2 = decodedDisplacement(params, config, x2, e2.latents, d, feats);
    const displacement = maxAbsDiff(await read(r1), await read(r2));
    const rScale = Math.max(...(await read(r1)).map(Math.abs));
    const logDet = maxAbsDiff(await read(e1.logDet), await read(e2.logDet));
    const back = decodeWithFeatures(params, config, e1.latents, feats);
    const roundTrip = maxAbsDiff(await read(back.x), await read(x1));
    const ld1 = await read(e1.logDet);
    const inverseLogDet = maxAbsDiff(await read(back.logDet), ld1.map((v) => -v));
    tf.dispose([back.x, back.logDet]);
    tf.dispose([x1, x2, cond, ...feats, mid, ...d, r1, r2]);
    for (const e of [e1, e2, em]) tf.dispose([...e.latents, e.logDet]);
    return { affine, displacement, rScale, logDet, roundTrip, inverseLogDet };
  } finally {
    disposeInverses(params);
    disposeParams(params);
  }
};
