/**
 * DeFlow's domain-invariant conditioning input: `bicubic_down_k(x) + N(0, σ²)`.
 *
 * Strong bicubic downsampling (MATLAB `imresize` style, antialiased) removes most of the
 * degradation, and the added Gaussian noise hides what is left, so clean and degraded
 * images give conditions from (nearly) the same distribution. The paper uses k = 4
 * (8 for the strongest degradations) and σ = 0.03.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { tfSeed } from "../core/random.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { bicubicDownscale } from "../image/resize.ts";

/** Options of {@linkcode conditionInput}. */
export interface ConditionOptions {
  /** Downsampling factor k (2, 4 or 8). */
  readonly factor: 2 | 4 | 8;
  /** Standard deviation σ of the added Gaussian noise (default 0.03; 0 adds none). */
  readonly noiseStd?: number;
  /** Integer seed of the noise. */
  readonly seed: number;
}

/**
 * The conditioning input `h₀ = bicubic_down_k(x) + n`, `n ~ N(0, σ²)` (seeded): a tensor
 * `[N, H/k, W/k, C]`. Throws a ShapeError when H or W is not divisible by `k`.
 * Differentiable in `x`; the caller owns the result.
 */
export const conditionInput = (x: tf.Tensor4D, options: ConditionOptions): tf.Tensor4D => {
  const name = "conditionInput";
  const { factor, seed } = options;
  const noiseStd = options.noiseStd ?? 0.03;
  if (factor !== 2 && factor !== 4 && factor !== 8) {
    throw new RangeError(`${name}: factor must be 2, 4 or 8, got ${factor}`);
  }
  if (!(noiseStd >= 0) || !Number.isFinite(noiseStd)) {
    throw new RangeError(`${name}: noiseStd must be finite and ≥ 0, got ${noiseStd}`);
  }
  if (!Number.isInteger(seed)) {
    throw new RangeError(`${name}: seed must be an integer, got ${seed}`);
  }
  if (x.rank !== 4) {
    throw new ShapeError(`${name}: expected an NHWC tensor of rank 4, got ${showShape(x.shape)}`);
  }
  const [, h, w] = x.shape;
  if (h % factor !== 0 || w % factor !== 0) {
    throw new ShapeError(
      `${name}: height ${h} and width ${w} must be divisible by the factor ${factor} ` +
        `(input ${showShape(x.shape)})`,
    );
  }
  return tf.tidy(() => {
    const down = bicubicDownscale(x, factor);
    if (noiseStd === 0) return down;
    const noise = tf.randomNormal(down.shape, 0, noiseStd, "float32", tfSeed(seed));
    return tf.add(down, noise);
  });
};
