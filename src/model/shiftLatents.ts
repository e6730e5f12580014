/**
 * The latents as the latent shift sees them. Without `config.jointShift` these are the
 * network's latents themselves, one shift each. With it, every latent is folded onto the
 * coarsest grid (`2^L × 2^L` image blocks, space-to-depth) and the folded latents are
 * stacked along the channels into one latent of `3·4^L` values per block, which has one
 * shift. Folding and stacking only reorder values, so densities are unchanged (no
 * log-det) and {@linkcode unpackShiftLatents} undoes {@linkcode packShiftLatents} exactly.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { Shape4 } from "../core/bijector.ts";
import type { ModelConfig } from "./config.ts";
import { latentChannels, latentLevels } from "./layout.ts";

/** Fold `[N, H, W, C]` to `[N, H/b, W/b, b·b·C]` (each `b × b` patch becomes one vector). */
export const foldBlocks = (z: tf.Tensor4D, b: number): tf.Tensor4D => {
  if (b === 1) return z;
  const [n, h, w, c] = z.shape;
  if (h % b !== 0 || w % b !== 0) {
    throw new ShapeError(`foldBlocks: ${showShape(z.shape)} does not tile into ${b}×${b} blocks`);
  }
  return tf.tidy(() =>
    tf.reshape(
      tf.transpose(tf.reshape(z, [n, h / b, b, w / b, b, c]), [0, 1, 3, 2, 4, 5]),
      [n, h / b, w / b, b * b * c],
    )
  );
};

/** The inverse of {@linkcode foldBlocks}: `[N, h, w, b·b·C]` → `[N, h·b, w·b, C]`. */
export const unfoldBlocks = (v: tf.Tensor4D, b: number): tf.Tensor4D => {
  if (b === 1) return v;
  const [n, h, w, d] = v.shape;
  if (d % (b * b) !== 0) {
    throw new ShapeError(`unfoldBlocks: ${d} channels are not a multiple of ${b * b}`);
  }
  const c = d / (b * b);
  return tf.tidy(() =>
    tf.reshape(
      tf.transpose(tf.reshape(v, [n, h, w, b, b, c]), [0, 1, 3, 2, 4, 5]),
      [n, h * b, w * b, c],
    )
  );
};

/** Block side (in latent positions) by which each latent is folded under `jointShift`. */
const foldFactors = (config: ModelConfig): number[] =>
  latentLevels(config).map((l) => 2 ** (config.levels - l));

/** Channels of the shift latents (the sizes of the latent shifts), in order. */
export const shiftLatentChannels = (config: ModelConfig): number[] => {
  const channels = latentChannels(config);
  if (!config.jointShift) return channels;
  const f = foldFactors(config);
  return [channels.reduce((sum, c, i) => sum + c * f[i] * f[i], 0)];
};

/** The level (1-based) whose resolution each shift latent has (its scale head's features). */
export const shiftLatentLevels = (config: ModelConfig): number[] =>
  config.jointShift ? [config.levels] : latentLevels(config);

/** The shapes of the shift latents for network latents of the given shapes. */
export const shiftLatentShapes = (
  config: ModelConfig,
  shapes: readonly Shape4[],
): Shape4[] => {
  if (!config.jointShift) return [...shapes];
  const f = foldFactors(config);
  const [n, h, w] = shapes[shapes.length - 1];
  return [[n, h, w, shapes.reduce((sum, s, i) => sum + s[3] * f[i] * f[i], 0)]];
};

/**
 * The network's latents → the shift latents. Without `jointShift`, the same array (no
 * new tensors); with it, one new tensor.
 */
export const packShiftLatents = (
  config: ModelConfig,
  latents: readonly tf.Tensor4D[],
): readonly tf.Tensor4D[] => {
  if (!config.jointShift) return latents;
  const f = foldFactors(config);
  if (latents.length !== f.length) {
    throw new ShapeError(`deflow: ${latents.length} latents given, expected ${f.length}`);
  }
  return [tf.tidy(() => tf.concat(latents.map((z, i) => foldBlocks(z, f[i])), 3) as tf.Tensor4D)];
};

/**
 * The shift latents → the network's latents of the given shapes (the inverse of
 * {@linkcode packShiftLatents}). Without `jointShift`, the same array.
 */
export const unpackShiftLatents = (
  config: ModelConfig,
  shifted: readonly tf.Tensor4D[],
  shapes: readonly Shape4[],
): readonly tf.Tensor4D[] => {
  if (!config.jointShift) return shifted;
  const f = foldFactors(config);
  const sizes = shapes.map((s, i) => s[3] * f[i] * f[i]);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (shifted.length !== 1 || shifted[0].shape[3] !== total) {
    throw new ShapeError(
      `deflow: expected one joint shift latent of ${total} channels, got ${
        shifted.map((s) => showShape(s.shape)).join(", ")
      }`,
    );
  }
  return tf.tidy(() =>
    tf.split(shifted[0], sizes, 3).map((v, i) => unfoldBlocks(v as tf.Tensor4D, f[i]))
  );
};
