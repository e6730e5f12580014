/**
 * A **contraction** of the degraded domain's latent, for degradations that remove detail.
 *
 * DeFlow's degraded latent is `z_y = z_x + u`, `u ⟂ z_x`, so its covariance `I + Σ` is
 * never narrower than the clean one: a degradation that lowers the latent variance in some
 * directions (JPEG quantises high frequencies away, blur smooths them) cannot be
 * represented, and the likelihood settles on adding noise there instead. Here the degraded
 * latent is
 *
 *   `z_y = μ + G·(z_x + ũ)`, `G = (I + K·Kᵀ)⁻¹`,
 *
 * where `ũ` is the shift's zero-mean noise (`a_p·M·n`) and `G` is symmetric with
 * eigenvalues in `(0, 1]`: it shrinks `z_x` in the directions the degradation removes and
 * leaves the others alone (`K = 0` is the paper's shift). The density follows by a change
 * of variables: with `w = G⁻¹·(z_y − μ) + μ = (I + K·Kᵀ)·(z_y − μ) + μ`,
 *
 *   `log p(z_y) = log p_shift(w) + log det(I + K·Kᵀ)` per position,
 *
 * where `p_shift` is the shift's own density (`N(μ, I + a_p²·M·Mᵀ)`). As for `M`, the
 * objective depends on `K` only through `K·Kᵀ`, so `K = 0` is a stationary point: `K`
 * starts at a small non-zero matrix.
 *
 * **Computation.** `log det(I + K·Kᵀ)` and its gradient `2·(I + K·Kᵀ)⁻¹·K` are computed in
 * float64 outside the gradient tape, once per update of `K` ({@linkcode prepareContraction},
 * like the shift's eigen-decomposition); inside the tape the term is
 * `c + Σ P ⊙ (K − K₀)` with the prepared constants `c`, `P` and `K₀ = K`, whose value is
 * `c` and whose gradient in `K` is `P`, exactly.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type Bijector, bijector, channelShape } from "../core/bijector.ts";
import { NonFiniteError, ShapeError, showShape } from "../core/errors.ts";
import { normals, rng } from "../core/random.ts";
import { matmul, type Matrix, symmetricEigen, transpose } from "../linalg/dense.ts";
import { fromMatrix, toMatrix } from "../linalg/tensor.ts";
import { matMul } from "../nn/fastOps.ts";

/** Parameters of one latent's contraction: `G = (I + K·Kᵀ)⁻¹`. */
export type LatentContractionParams = {
  /** `K`, `[C, C]`. */
  readonly k: tf.Tensor2D;
};

/** Float64 quantities of one contraction, prepared once per update of `K`. */
export interface ContractionStats {
  /** `K` when prepared (a constant copy), `[C, C]`. */
  readonly k0: tf.Tensor2D;
  /** `log det(I + K·Kᵀ)`. */
  readonly logDet: number;
  /** Its gradient in `K`: `2·(I + K·Kᵀ)⁻¹·K`, `[C, C]`. */
  readonly logDetGrad: tf.Tensor2D;
  /** `G = (I + K·Kᵀ)⁻¹` (symmetric), `[C, C]`. */
  readonly contraction: tf.Tensor2D;
  /** `G⁻¹ = I + K·Kᵀ` (symmetric), `[C, C]`. */
  readonly expansion: tf.Tensor2D;
  /** Eigenvalues of `G` (ascending contraction: smallest first), for reports. */
  readonly gains: readonly number[];
}

/** Options of {@linkcode initContraction}. */
export interface ContractionInitOptions {
  /** Latent channels `C`. */
  readonly channels: number;
  /** Scale of the initial `K` (`scale·I` plus 10 % of it as noise); > 0. */
  readonly scale: number;
  /** Seed of the symmetry-breaking noise. */
  readonly seed: number;
}

/** A fresh contraction, `K = scale·(I + 0.1·noise)`: `G ≈ (1 + scale²)⁻¹·I`. */
export const initContraction = (o: ContractionInitOptions): LatentContractionParams => {
  if (!Number.isInteger(o.channels) || o.channels < 1) {
    throw new RangeError(`latentContraction.init: channels must be a positive integer`);
  }
  if (!(Number.isFinite(o.scale) && o.scale > 0)) {
    throw new RangeError(`latentContraction.init: scale must be finite and > 0, got ${o.scale}`);
  }
  const c = o.channels;
  const [noise] = normals(rng(o.seed), c * c);
  const k = new Float32Array(c * c);
  for (let i = 0; i < c * c; i++) k[i] = o.scale * ((i % (c + 1) === 0 ? 1 : 0) + 0.1 * noise[i]);
  return { k: tf.tensor2d(k, [c, c]) };
};

/** {@linkcode ContractionStats} from an already-read float64 `K`. */
export const contractionStatsFromMatrix = (k: Matrix): ContractionStats => {
  const c = k.rows;
  if (k.cols !== c) throw new ShapeError(`latentContraction: K must be square, got ${c}×${k.cols}`);
  if (!k.data.every(Number.isFinite)) {
    throw new NonFiniteError(`latentContraction: K contains NaN or Infinity`);
  }
  const { values, vectors } = symmetricEigen(matmul(k, transpose(k)));
  const lam = Array.from(values, (v) => Math.max(v, 0));
  // V·diag(f(λ))·Vᵀ as one matrix product (the columns of V scaled by f(λ)).
  const fn = (f: (l: number) => number): Matrix => {
    const fl = lam.map(f);
    const scaled = vectors.data.map((v, idx) => v * fl[idx % c]);
    return matmul({ rows: c, cols: c, data: scaled }, transpose(vectors));
  };
  const g = fn((l) => 1 / (1 + l));
  const gk = matmul(g, k);
  return {
    k0: fromMatrix(k),
    logDet: lam.reduce((a, l) => a + Math.log1p(l), 0),
    logDetGrad: fromMatrix({ rows: c, cols: c, data: gk.data.map((v) => 2 * v) }),
    contraction: fromMatrix(g),
    expansion: fromMatrix(fn((l) => 1 + l)),
    gains: lam.map((l) => 1 / (1 + l)).sort((a, b) => a - b),
  };
};

/** Read `K` and prepare {@linkcode ContractionStats} (outside the gradient tape). */
export const prepareContraction = async (
  p: LatentContractionParams,
): Promise<ContractionStats> => contractionStatsFromMatrix(await toMatrix(p.k));

/** Dispose the tensors of {@linkcode ContractionStats}. */
export const disposeContractionStats = (s: ContractionStats): void => {
  tf.dispose([s.k0, s.logDetGrad, s.contraction, s.expansion]);
};

const checkLatent = (name: string, s: ContractionStats, z: tf.Tensor, mu: tf.Tensor1D) => {
  const c = s.k0.shape[0];
  if (z.rank !== 4 || z.shape[3] !== c || mu.shape[0] !== c) {
    throw new ShapeError(
      `${name}: latent ${showShape(z.shape)} and μ ${showShape(mu.shape)} must have the ` +
        `contraction's ${c} channels`,
    );
  }
};

/** `A·rows` for NHWC `z` and a symmetric `[C, C]` matrix (per position). */
const perPosition = (z: tf.Tensor4D, a: tf.Tensor2D): tf.Tensor4D => {
  const [n, h, w, c] = z.shape;
  return tf.reshape(matMul(tf.reshape(z, [n * h * w, c]) as tf.Tensor2D, a), [n, h, w, c]);
};

/**
 * The change of variables of the degraded density: `w = (I + K·Kᵀ)·(z_y − μ) + μ`
 * (differentiable in `K`, `z_y` and `μ`) and the per-position log-det `log det(I + K·Kᵀ)`
 * (a scalar, exact value and gradient from `stats`, which must be prepared from this `K`).
 */
export const contractionToShift = (
  p: LatentContractionParams,
  stats: ContractionStats,
  zy: tf.Tensor4D,
  mu: tf.Tensor1D,
): { readonly w: tf.Tensor4D; readonly logDetPerPosition: tf.Scalar } =>
  tf.tidy(() => {
    checkLatent("latentContraction.toShift", stats, zy, mu);
    if (p.k.shape.join(",") !== stats.k0.shape.join(",")) {
      throw new ShapeError(
        `latentContraction.toShift: K ${showShape(p.k.shape)} does not fit its statistics`,
      );
    }
    const c = p.k.shape[0];
    const expansion = tf.add(tf.eye(c), tf.matMul(p.k, p.k, false, true)) as tf.Tensor2D;
    const w = tf.add(perPosition(tf.sub(zy, mu) as tf.Tensor4D, expansion), mu) as tf.Tensor4D;
    const logDet = tf.add(
      stats.logDet,
      tf.sum(tf.mul(stats.logDetGrad, tf.sub(p.k, stats.k0))),
    ) as tf.Scalar;
    return { w, logDetPerPosition: logDet };
  });

/**
 * Degrade a clean latent with temperature `τ`: `z_y = z + τ·(G − I)·z + G·ũ + τ·μ`, where `u = ũ + τ·μ` is the shift's sample at
 * temperature `τ` (`ũ` its noise part). At `τ = 1` this is `μ + G·(z + ũ)`; at `τ = 0` it
 * is `z`; with `K = 0` it is the plain `z + u`.
 */
export const contractSample = (
  stats: ContractionStats,
  z: tf.Tensor4D,
  u: tf.Tensor4D,
  mu: tf.Tensor1D,
  temperature: number,
): tf.Tensor4D =>
  tf.tidy(() => {
    checkLatent("latentContraction.sample", stats, z, mu);
    const g = stats.contraction;
    const tmu = tf.mul(mu, temperature);
    const noise = tf.sub(u, tmu) as tf.Tensor4D;
    const pulled = tf.mul(tf.sub(perPosition(z, g), z), temperature);
    return tf.add(tf.add(tf.add(z, pulled), perPosition(noise, g)), tmu) as tf.Tensor4D;
  });

/**
 * The degraded latent in the shift's variables, `w = G⁻¹·(z_y − μ) + μ` (for the
 * posterior of the clean latent and the paired likelihood), from prepared statistics.
 */
export const expandLatent = (
  stats: ContractionStats,
  zy: tf.Tensor4D,
  mu: tf.Tensor1D,
): tf.Tensor4D =>
  tf.tidy(() => {
    checkLatent("latentContraction.expand", stats, zy, mu);
    return tf.add(perPosition(tf.sub(zy, mu) as tf.Tensor4D, stats.expansion), mu) as tf.Tensor4D;
  });

/**
 * The change of variables as a bijector on latents `[N, H, W, C]`: forward (the encoding
 * direction) `w = G⁻¹·(z_y − μ) + μ` with per-sample log-det `H·W·log det(I + K·Kᵀ)`,
 * inverse `z_y = μ + G·(w − μ)`. `stats` must be prepared from the `K` in use.
 */
export const contractionBijector = (stats: ContractionStats, mu: tf.Tensor1D): Bijector => {
  const name = "latentContraction";
  const c = stats.k0.shape[0];
  const shape = channelShape(name, c);
  const logDet = (z: tf.Tensor4D, sign: number): tf.Tensor1D =>
    tf.fill([z.shape[0]], sign * stats.logDet * z.shape[1] * z.shape[2]) as tf.Tensor1D;
  return bijector({
    name,
    forward: (z) =>
      tf.tidy(() => {
        checkLatent(name, stats, z, mu);
        return { y: expandLatent(stats, z, mu), logDet: logDet(z, 1) };
      }),
    inverse: (w) =>
      tf.tidy(() => {
        checkLatent(name, stats, w, mu);
        const y = tf.add(perPosition(tf.sub(w, mu) as tf.Tensor4D, stats.contraction), mu);
        return { y: y as tf.Tensor4D, logDet: logDet(w, -1) };
      }),
    forwardShape: shape,
    inverseShape: shape,
  });
};
