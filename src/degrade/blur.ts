/**
 * Gaussian blur, clipping and 8-bit quantisation.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { checkImageTensor, type Degradation } from "./types.ts";

/** A normalised 1-D Gaussian kernel (sum 1) of radius `r`. */
const gauss1d = (sigma: number, r: number): number[] => {
  const g = Array.from(
    { length: 2 * r + 1 },
    (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)),
  );
  const s = g.reduce((a, b) => a + b, 0);
  return g.map((v) => v / s);
};

/**
 * Gaussian blur with standard deviation `sigma` pixels, kernel radius `ceil(3σ)` by
 * default, separable, with reflect padding (so a constant image stays constant).
 * Deterministic (the seed is ignored). The image must be larger than the radius.
 */
export const gaussianBlur = (
  opts: { readonly sigma: number; readonly radius?: number },
): Degradation => {
  if (!(opts.sigma > 0)) throw new RangeError(`gaussianBlur: sigma must be > 0, got ${opts.sigma}`);
  const r = opts.radius ?? Math.max(1, Math.ceil(3 * opts.sigma));
  const g = gauss1d(opts.sigma, r);
  return {
    name: "gaussianBlur",
    params: { sigma: opts.sigma, radius: r },
    apply: (x: tf.Tensor4D, _seed: number): Promise<tf.Tensor4D> => {
      checkImageTensor("gaussianBlur", x);
      if (x.shape[1] <= r || x.shape[2] <= r) {
        throw new ShapeError(
          `gaussianBlur: image ${showShape(x.shape)} must be larger than the radius ${r}`,
        );
      }
      return Promise.resolve(tf.tidy(() => {
        const p = tf.mirrorPad(x, [[0, 0], [r, r], [r, r], [0, 0]], "reflect");
        const kx = tf.tile(tf.reshape(tf.tensor1d(g, "float32"), [1, 2 * r + 1, 1, 1]), [
          1,
          1,
          3,
          1,
        ]);
        const ky = tf.tile(tf.reshape(tf.tensor1d(g, "float32"), [2 * r + 1, 1, 1, 1]), [
          1,
          1,
          3,
          1,
        ]);
        const h = tf.depthwiseConv2d(p, kx as tf.Tensor4D, 1, "valid");
        return tf.depthwiseConv2d(h, ky as tf.Tensor4D, 1, "valid");
      }));
    },
  };
};

/** Clip values to [0, 1]. Deterministic. */
export const clip01 = (): Degradation => ({
  name: "clip01",
  params: {},
  apply: (x: tf.Tensor4D, _seed: number): Promise<tf.Tensor4D> => {
    checkImageTensor("clip01", x);
    return Promise.resolve(tf.clipByValue(x, 0, 1));
  },
});

/** Clip to [0, 1] and round to the nearest of the 256 levels `k/255` (ties to even). Deterministic. */
export const quantize8 = (): Degradation => ({
  name: "quantize8",
  params: {},
  apply: (x: tf.Tensor4D, _seed: number): Promise<tf.Tensor4D> => {
    checkImageTensor("quantize8", x);
    return Promise.resolve(
      tf.tidy(() => tf.div(tf.round(tf.mul(tf.clipByValue(x, 0, 1), 255)), 255)),
    );
  },
});
