/**
 * Additive noise operators: Gaussian with a 3×3 channel covariance, spatially correlated
 * Gaussian noise, and signal-dependent Poisson–Gaussian noise (Gaussian approximation).
 *
 * None of them clips: compose with {@linkcode clip01} or {@linkcode quantize8} for that.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { tfSeed } from "../core/random.ts";
import { cholesky, fromRows } from "../linalg/dense.ts";
import { checkImageTensor, type Degradation } from "./types.ts";

/** A 3×3 covariance matrix as rows. */
export type Cov3 = readonly (readonly number[])[];

/** `Lᵀ` (as rows) of the Cholesky factor of a 3×3 SPD covariance; checks symmetry. */
const cholT = (name: string, cov: Cov3): number[][] => {
  if (cov.length !== 3 || cov.some((r) => r.length !== 3)) {
    throw new RangeError(`${name}: cov must be 3×3, got ${JSON.stringify(cov)}`);
  }
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      if (Math.abs(cov[i][j] - cov[j][i]) > 1e-12 * (1 + Math.abs(cov[i][j]))) {
        throw new RangeError(`${name}: cov is not symmetric: ${JSON.stringify(cov)}`);
      }
    }
  }
  // Zero covariance is allowed (no noise): use L = 0.
  if (cov.every((r) => r.every((v) => v === 0))) return [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  let l;
  try {
    l = cholesky(fromRows(cov.map((r) => [...r])));
  } catch {
    throw new RangeError(`${name}: cov is not positive definite: ${JSON.stringify(cov)}`);
  }
  return [0, 1, 2].map((i) => [0, 1, 2].map((j) => l.data[j * 3 + i]));
};

/** `σ²·I`, the covariance of white noise with standard deviation `sigma` in every channel. */
export const isotropicCov = (sigma: number): number[][] => [
  [sigma * sigma, 0, 0],
  [0, sigma * sigma, 0],
  [0, 0, sigma * sigma],
];

/** Mix unit-variance channels: `n · Lᵀ`, so the result has covariance `L·Lᵀ = cov`. */
const mixChannels = (n: tf.Tensor4D, lt: number[][]): tf.Tensor4D =>
  tf.tidy(() => {
    const flat = tf.reshape(n, [-1, 3]);
    return tf.reshape(tf.matMul(flat, tf.tensor2d(lt, [3, 3], "float32")), n.shape);
  });

/**
 * Additive Gaussian noise `y = x + n`, `n ~ N(0, cov)` independently at every pixel, with a
 * full 3×3 covariance between the R, G, B channels (`cov` in [0, 1]² units).
 */
export const gaussianNoise = (opts: { readonly cov: Cov3 }): Degradation => {
  const lt = cholT("gaussianNoise", opts.cov);
  return {
    name: "gaussianNoise",
    params: { cov: opts.cov.map((r) => [...r]) },
    apply: (x: tf.Tensor4D, seed: number): Promise<tf.Tensor4D> => {
      checkImageTensor("gaussianNoise", x);
      return Promise.resolve(tf.tidy(() => {
        const n = tf.randomNormal(x.shape, 0, 1, "float32", tfSeed(seed)) as tf.Tensor4D;
        return tf.add(x, mixChannels(n, lt));
      }));
    },
  };
};

/** A normalised 2-D Gaussian kernel (sum 1), size `2·radius + 1`, radius `ceil(3σ)` by default. */
export const gaussianKernel2d = (sigma: number, radius?: number): number[][] => {
  if (!(sigma > 0)) throw new RangeError(`gaussianKernel2d: sigma must be > 0, got ${sigma}`);
  const r = radius ?? Math.max(1, Math.ceil(3 * sigma));
  const g = Array.from(
    { length: 2 * r + 1 },
    (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)),
  );
  const s = g.reduce((a, b) => a + b, 0);
  return g.map((a) => g.map((b) => (a * b) / (s * s)));
};

/**
 * Spatially correlated Gaussian noise: white noise filtered by `kernel` (any size; it is
 * rescaled to unit L2 norm so the filtered noise has unit variance), then mixed across
 * channels so every pixel's noise has covariance `cov` (default: `std²·I`). The white noise
 * is drawn on a border-extended field and filtered with 'valid' padding, so the noise is
 * stationary up to the image edges. Its power spectrum is `∝ |K(f)|²`.
 */
export const correlatedNoise = (opts: {
  readonly kernel: readonly (readonly number[])[];
  readonly std?: number;
  readonly cov?: Cov3;
}): Degradation => {
  const k = opts.kernel;
  const kh = k.length, kw = k[0]?.length ?? 0;
  if (kh === 0 || kw === 0 || k.some((r) => r.length !== kw)) {
    throw new RangeError(`correlatedNoise: kernel must be a non-empty rectangle`);
  }
  if ((opts.std === undefined) === (opts.cov === undefined)) {
    throw new RangeError("correlatedNoise: give exactly one of std and cov");
  }
  const cov = opts.cov ?? isotropicCov(opts.std!);
  const lt = cholT("correlatedNoise", cov);
  const norm = Math.sqrt(k.flat().reduce((s, v) => s + v * v, 0));
  if (!(norm > 0)) throw new RangeError("correlatedNoise: kernel is all zeros");
  const kn = k.map((r) => r.map((v) => v / norm));
  return {
    name: "correlatedNoise",
    params: { kernel: k.map((r) => [...r]), cov: cov.map((r) => [...r]) },
    apply: (x: tf.Tensor4D, seed: number): Promise<tf.Tensor4D> => {
      checkImageTensor("correlatedNoise", x);
      const [n, h, w] = x.shape;
      return Promise.resolve(tf.tidy(() => {
        const white = tf.randomNormal(
          [n, h + kh - 1, w + kw - 1, 3],
          0,
          1,
          "float32",
          tfSeed(seed),
        );
        const filt = tf.tile(tf.reshape(tf.tensor2d(kn, [kh, kw], "float32"), [kh, kw, 1, 1]), [
          1,
          1,
          3,
          1,
        ]) as tf.Tensor4D;
        const unit = tf.depthwiseConv2d(white as tf.Tensor4D, filt, 1, "valid");
        return tf.add(x, mixChannels(unit, lt));
      }));
    },
  };
};

/**
 * Signal-dependent Poisson–Gaussian noise, Gaussian approximation:
 * `y = x + sqrt(a·max(x, 0) + b²) · n`, `n ~ N(0, 1)` independent per pixel and channel.
 * `a` is the Poisson (shot-noise) gain — a photon count `x/a` scaled by `a` has variance
 * `a·x` — and `b` the standard deviation of the signal-independent read noise. The
 * Gaussian approximation is accurate when `x/a` is more than a few photons.
 */
export const poissonGaussianNoise = (
  opts: { readonly a: number; readonly b: number },
): Degradation => {
  if (!(opts.a >= 0) || !(opts.b >= 0)) {
    throw new RangeError(
      `poissonGaussianNoise: need a ≥ 0 and b ≥ 0, got a=${opts.a}, b=${opts.b}`,
    );
  }
  return {
    name: "poissonGaussianNoise",
    params: { a: opts.a, b: opts.b },
    apply: (x: tf.Tensor4D, seed: number): Promise<tf.Tensor4D> => {
      checkImageTensor("poissonGaussianNoise", x);
      return Promise.resolve(tf.tidy(() => {
        const n = tf.randomNormal(x.shape, 0, 1, "float32", tfSeed(seed));
        const v = tf.add(tf.mul(tf.relu(x), opts.a), opts.b * opts.b);
        return tf.add(x, tf.mul(tf.sqrt(v), n));
      }));
    },
  };
};
