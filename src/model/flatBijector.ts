/**
 * The whole DeFlow network as one {@linkcode Bijector}: images `[N, H, W, C]` ↔ all latents
 * packed into `[N, 1, 1, H·W·C]` (each latent flattened, in latent order), conditioned on
 * the conditioning input `conditionInput(x)` (`[N, H/k, W/k, C]`). Lets the generic law
 * kit check the full model (round trips, log-det against the autodiff Jacobian, ...).
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type Bijector, bijector, checkInput, type Shape4 } from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { ModelConfig } from "./config.ts";
import { networkLayout } from "./layout.ts";
import { decode, type DeflowParams, encode } from "./network.ts";

/**
 * The full flow for images of `height × width` as a bijector on packed latents. Decoding
 * on WebGPU needs parameters from `withInverses`.
 */
export const deflowBijector = (
  params: DeflowParams,
  config: ModelConfig,
  size: { readonly height: number; readonly width: number },
): Bijector => {
  const layout = networkLayout(config, size.height, size.width);
  const sizes = layout.latents.map((l) => l.height * l.width * l.channels);
  const dims = size.height * size.width * config.imageChannels;
  const name = "deflow";
  const needCond = (c: tf.Tensor4D | undefined): tf.Tensor4D => {
    if (!c) throw new ShapeError(`${name}: the conditioning input is required as condition`);
    return c;
  };
  return bijector({
    name,
    forward: (x, cond) =>
      tf.tidy(() => {
        checkInput(name, x, config.imageChannels);
        if (x.shape[1] !== size.height || x.shape[2] !== size.width) {
          throw new ShapeError(
            `${name}: built for ${size.height}×${size.width} images, got ${showShape(x.shape)}`,
          );
        }
        const { latents, logDet } = encode(params, config, x, needCond(cond));
        const n = x.shape[0];
        const flat = tf.concat(latents.map((z) => tf.reshape(z, [n, -1])), 1);
        return { y: tf.reshape(flat, [n, 1, 1, dims]) as tf.Tensor4D, logDet };
      }),
    inverse: (y, cond) =>
      tf.tidy(() => {
        checkInput(name, y, dims);
        const n = y.shape[0];
        const parts = tf.split(tf.reshape(y, [n, dims]), sizes, 1);
        const latents = parts.map((p, i) => {
          const l = layout.latents[i];
          return tf.reshape(p, [n, l.height, l.width, l.channels]) as tf.Tensor4D;
        });
        const { x, logDet } = decode(params, config, latents, needCond(cond));
        return { y: x, logDet };
      }),
    forwardShape: (s: Shape4): Shape4 => {
      if (s[1] !== size.height || s[2] !== size.width || s[3] !== config.imageChannels) {
        throw new ShapeError(
          `${name}: expected [N, ${size.height}, ${size.width}, ${config.imageChannels}], got ${
            showShape(s)
          }`,
        );
      }
      return [s[0], 1, 1, dims];
    },
    inverseShape: (s: Shape4): Shape4 => {
      if (s[1] !== 1 || s[2] !== 1 || s[3] !== dims) {
        throw new ShapeError(
          `${name}: expected packed latents [N, 1, 1, ${dims}], got ${showShape(s)}`,
        );
      }
      return [s[0], size.height, size.width, config.imageChannels];
    },
  });
};
