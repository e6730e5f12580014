/**
 * Tone curves for camera-like pipelines: the sRGB transfer function and its inverse as
 * degradation operators, so that noise can be added in linear light
 * (`compose(srgbToLinear(), poissonGaussianNoise(…), linearToSrgb(), jpegCompress(…))`).
 * Both clamp their input to [0, 1] first (noise may leave the range), and are deterministic.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { checkImageTensor, type Degradation } from "./types.ts";

/** sRGB-encoded values → linear light (IEC 61966-2-1), after clamping to [0, 1]. */
export const srgbToLinear = (): Degradation => ({
  name: "srgbToLinear",
  params: {},
  apply: (x: tf.Tensor4D, _seed: number): Promise<tf.Tensor4D> => {
    checkImageTensor("srgbToLinear", x);
    return Promise.resolve(tf.tidy(() => {
      const c = tf.clipByValue(x, 0, 1);
      const low = tf.div(c, 12.92);
      const high = tf.pow(tf.div(tf.add(c, 0.055), 1.055), 2.4);
      return tf.where(tf.lessEqual(c, 0.04045), low, high) as tf.Tensor4D;
    }));
  },
});

/** Linear light → sRGB-encoded values (IEC 61966-2-1), after clamping to [0, 1]. */
export const linearToSrgb = (): Degradation => ({
  name: "linearToSrgb",
  params: {},
  apply: (x: tf.Tensor4D, _seed: number): Promise<tf.Tensor4D> => {
    checkImageTensor("linearToSrgb", x);
    return Promise.resolve(tf.tidy(() => {
      const c = tf.clipByValue(x, 0, 1);
      const low = tf.mul(c, 12.92);
      const high = tf.sub(tf.mul(tf.pow(c, 1 / 2.4), 1.055), 0.055);
      return tf.where(tf.lessEqual(c, 0.0031308), low, high) as tf.Tensor4D;
    }));
  },
});
