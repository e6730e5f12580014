/**
 * The multi-scale composition of a flow's levels: the one place where the walk through
 * the levels is written.
 *
 * A level is a bijector (squeeze → transition steps → flow steps → optional split, see
 * `levelBijector` in network.ts) with the number of channels it keeps for the next level
 * and the number it emits as a latent. Encoding runs the levels finest first; after a
 * level that emits, the last `emitted` channels leave as a latent and the first `kept`
 * channels go on; the output of the last level is the final latent. Decoding is the exact
 * reverse: concatenate each emitted latent back before inverting its level. Both return
 * the summed per-sample log-det of the levels.
 *
 * Every use of the network goes through these functions: `encode` / `decode` and the
 * objective (network.ts), the ActNorm data initialisation (`initActNorms`, through
 * {@linkcode multiScaleScan}, the walk that `multiScaleEncode` is made of), the sampler
 * (with its per-tile shared injectors, sample.ts) and the law-kit view of the whole model
 * (flatBijector.ts).
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type Bijector, sumLogDets } from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";

/** One level of a multi-scale flow. */
export interface ScaleLevel {
  /** The level's bijector (forward = image→latent), conditioned on the level's features. */
  readonly bijector: Bijector;
  /** Channels passed on to the next level (all of them when the level does not split). */
  readonly kept: number;
  /** Channels emitted as a latent (0 when the level does not split). */
  readonly emitted: number;
}

/** Latents (split latents in level order, then the final one) with the total log-det. */
export type MultiScaleLatents = {
  /** Latents, NHWC. */
  readonly latents: tf.Tensor4D[];
  /** Per-sample `log|det ∂z/∂x|` summed over the levels, `[N]`. */
  readonly logDet: tf.Tensor1D;
};

/** How many latents `levels` produce: one per splitting level, plus the final one. */
export const latentCount = (levels: readonly ScaleLevel[]): number =>
  levels.filter((l) => l.emitted > 0).length + 1;

const checkFeatures = (levels: readonly LevelSizes[], features: readonly tf.Tensor4D[]) => {
  if (features.length < levels.length) {
    throw new ShapeError(
      `multiScale: ${features.length} feature maps for ${levels.length} levels`,
    );
  }
};

/** What a level passes on and emits: the sizes the level walk needs. */
export type LevelSizes = Pick<ScaleLevel, "kept" | "emitted">;

/**
 * One level's run in the image→latent direction on its input `h` and features: the
 * level's output and log-det, and a `value` the walk collects (e.g. re-initialised
 * parameters).
 */
export interface LevelRun<T> {
  /** The level's output (all its channels, before the split-off latent leaves). */
  readonly y: tf.Tensor4D;
  /** The level's per-sample log-det, `[N]`. */
  readonly logDet: tf.Tensor1D;
  /** What the caller collects from this level. */
  readonly value: T;
}

/**
 * The level walk, image→latent: level `i` runs as `run(i, h, features[i])` on the
 * channels the previous level kept; after a level that emits, its last `emitted`
 * channels leave as a latent. Returns the latents, the summed log-det and every level's
 * `value` (tensors in a `value` are kept, like the latents; the caller owns them).
 * {@linkcode multiScaleEncode} is this walk with each level's bijector.
 */
export const multiScaleScan = <T>(
  levels: readonly LevelSizes[],
  run: (i: number, h: tf.Tensor4D, feature: tf.Tensor4D) => LevelRun<T>,
  x: tf.Tensor4D,
  features: readonly tf.Tensor4D[],
): MultiScaleLatents & { readonly values: T[] } =>
  tf.tidy(() => {
    checkFeatures(levels, features);
    let h = x;
    const latents: tf.Tensor4D[] = [];
    const lds: tf.Tensor1D[] = [];
    const values: T[] = [];
    levels.forEach((level, i) => {
      const r = run(i, h, features[i]);
      lds.push(r.logDet);
      values.push(r.value);
      if (level.emitted > 0) {
        const [n, hh, ww, c] = r.y.shape;
        if (c !== level.kept + level.emitted) {
          throw new ShapeError(
            `multiScale: level ${i + 1} output ${showShape(r.y.shape)} does not split into ` +
              `${level.kept} kept + ${level.emitted} emitted channels`,
          );
        }
        latents.push(tf.slice(r.y, [0, 0, 0, level.kept], [n, hh, ww, level.emitted]));
        h = tf.slice(r.y, [0, 0, 0, 0], [n, hh, ww, level.kept]);
      } else {
        h = r.y;
      }
    });
    latents.push(h);
    return { latents, logDet: sumLogDets(lds), values } as unknown as tf.TensorContainer;
  }) as unknown as MultiScaleLatents & { readonly values: T[] };

/** Image-side tensor → all latents (level `i` sees `features[i]`). */
export const multiScaleEncode = (
  levels: readonly ScaleLevel[],
  x: tf.Tensor4D,
  features: readonly tf.Tensor4D[],
): MultiScaleLatents => {
  const { latents, logDet } = multiScaleScan(
    levels,
    (i, h, feature) => ({ ...levels[i].bijector.forward(h, feature), value: null }),
    x,
    features,
  );
  return { latents, logDet };
};

/** All latents → image-side tensor, with the log-det of this (generative) direction. */
export const multiScaleDecode = (
  levels: readonly ScaleLevel[],
  latents: readonly tf.Tensor4D[],
  features: readonly tf.Tensor4D[],
): { readonly x: tf.Tensor4D; readonly logDet: tf.Tensor1D } =>
  tf.tidy(() => {
    checkFeatures(levels, features);
    if (latents.length !== latentCount(levels)) {
      throw new ShapeError(
        `multiScale: ${latents.length} latents given, the levels make ${latentCount(levels)}`,
      );
    }
    let h: tf.Tensor4D = latents[latents.length - 1];
    let k = latents.length - 2;
    const lds: tf.Tensor1D[] = [];
    for (let i = levels.length - 1; i >= 0; i--) {
      if (levels[i].emitted > 0) h = tf.concat([h, latents[k--]], 3);
      const r = levels[i].bijector.inverse(h, features[i]);
      lds.push(r.logDet);
      h = r.y;
    }
    return { x: h, logDet: sumLogDets(lds) };
  });
