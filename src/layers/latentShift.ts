/**
 * DeFlow's shared latent Gaussian shift (DeFlow paper, §3).
 *
 * Per spatial position, over channels, with the same parameters at every position:
 * clean latents are `z_x ~ N(0, I)`; degraded latents are `z_y = z_x + u` with
 * `u ~ N(μ, Σ)`, `Σ = M·Mᵀ`, hence `z_y ~ N(μ, A)` with `A = I + M·Mᵀ`. `μ` (`[C]`) and
 * `M` (`[C, C]`) are learned.
 *
 * **Initialisation.** The paper initialises `M = 0`, but `M = 0` is a stationary point of
 * the objective: it depends on `M` only through `A`, so `∂L/∂M = (∂L/∂A + ∂L/∂Aᵀ)·M = 0`
 * there and gradient descent never leaves it (the covariance would never be learned).
 * {@linkcode LatentShiftApi.init} therefore starts from `M = scale·I` plus tiny seeded
 * noise.
 *
 * **Float64 statistics.** `A⁻¹`, `log det A` and `chol(A)` are computed in float64 by
 * {@linkcode LatentShiftApi.prepare} (asynchronous, outside the gradient tape, once per
 * update of `M`) and injected into the synchronous, differentiable functions, which
 * route exact gradients to `M` (see `src/linalg/spd.ts`). Always pass the statistics
 * prepared from the same parameters.
 *
 * Row convention: a latent pixel is a row vector `z` (`[C]`), so `M·n` is computed as
 * `n·Mᵀ`.
 *
 * @module
 */
import { tf } from "../tf.ts";
import {
  type Bijector,
  bijector,
  channelShape,
  checkInput,
  type Shape4,
} from "../core/bijector.ts";
import { NonFiniteError, ShapeError, showShape } from "../core/errors.ts";
import type { Layer } from "../core/layer.ts";
import { normals, rng, tfSeed } from "../core/random.ts";
import {
  disposeSpd,
  spdCholesky,
  spdInverseLogDet,
  type SpdStats,
  spdStats64,
  spdStatsFromMatrix,
} from "../linalg/spd.ts";
import { matmul, transpose } from "../linalg/dense.ts";
import { fromMatrix, toMatrix } from "../linalg/tensor.ts";
import { matMul } from "../nn/fastOps.ts";
import { type ShiftEigen, shiftEigenFromMatrix } from "./scaledShift.ts";

/** The learned parameters of one latent shift (one per latent of a multi-scale flow). */
export type LatentShiftParams = {
  /** Mean `μ` of the shift, `[C]`. */
  readonly mu: tf.Tensor1D;
  /** Factor `M` of the shift covariance `Σ = M·Mᵀ`, `[C, C]`. */
  readonly m: tf.Tensor2D;
};

/**
 * Float64-computed statistics of `A = I + M·Mᵀ` (as float32 tensors) for one value of the
 * parameters, plus a square root of the posterior covariance.
 */
export interface ShiftStats extends SpdStats, ShiftEigen {
  /**
   * `S` with `S·Sᵀ = Σ·A⁻¹` (the posterior covariance): `S = M·chol(I + MᵀM)⁻ᵀ`, by the
   * push-through identity `M·Mᵀ·(I + M·Mᵀ)⁻¹ = M·(I + MᵀM)⁻¹·Mᵀ`. Defined even when `Σ` is
   * singular (where a Cholesky factor of `Σ·A⁻¹` would not exist). Not differentiable.
   */
  readonly postSqrt: tf.Tensor2D;
}

/**
 * Statistics of `B = jitter·I + M·Mᵀ` for the paired likelihood (eq. 5), with the
 * eigen-decomposition of `M·Mᵀ` (for the per-position scaled shift).
 */
export type PairedStats = SpdStats & ShiftEigen;

/** Options of the samplers. */
export interface ShiftSampleOptions {
  /** Temperature `τ ≥ 0` (default 1). */
  readonly temperature?: number;
  /** Integer seed of the Gaussian noise. */
  readonly seed: number;
}

/** Options of {@linkcode LatentShiftApi.preparePaired}. */
export interface PairedOptions {
  /** Ridge added to `Σ` so that it is invertible (default `1e-4`). */
  readonly jitter?: number;
}

/** Options of {@linkcode LatentShiftApi.init}. */
export interface LatentShiftOptions {
  /** Channels of the latent. */
  readonly channels: number;
  /** Scale of the initial `M` (default 0.1; must be finite and non-zero). */
  readonly scale?: number;
}

/**
 * The latent shift as one record of pure functions; as a {@linkcode Layer}, its bijector
 * (the whitening map) takes the prepared statistics as a further argument.
 */
export interface LatentShiftApi
  extends Layer<LatentShiftParams, LatentShiftOptions, [stats: SpdStats]> {
  /**
   * Initial parameters for `channels` channels: `μ = 0`, `M = scale·(I + 0.1·N)` with `N`
   * standard normal from `seed`. `M` must not be 0 (a stationary point of the objective).
   */
  readonly init: (options: LatentShiftOptions & { readonly seed: number }) => LatentShiftParams;
  /** Float64 statistics of `A = I + M·Mᵀ` (asynchronous read of `M`). Free with `disposeStats`. */
  readonly prepare: (p: LatentShiftParams) => Promise<ShiftStats>;
  /** Dispose the tensors of {@linkcode ShiftStats} or {@linkcode PairedStats}. */
  readonly disposeStats: (stats: SpdStats) => void;
  /** Per-sample `log N(z; 0, I)` summed over H, W, C (with the `−½·log 2π` terms), `[N]`. */
  readonly logProbClean: (z: tf.Tensor4D) => tf.Tensor1D;
  /**
   * Per-sample `Σ_positions log N(z_pixel; μ, A)`, `[N]`; differentiable w.r.t. `p.mu`,
   * `p.m` and `z`.
   */
  readonly logProbDegraded: (
    p: LatentShiftParams,
    stats: SpdStats,
    z: tf.Tensor4D,
  ) => tf.Tensor1D;
  /** `τ·u`, `u = μ + M·n`, `n ~ N(0, I)` independently per pixel; shape `[N, H, W, C]`. */
  readonly sample: (
    p: LatentShiftParams,
    shape: Shape4,
    options: ShiftSampleOptions,
  ) => tf.Tensor4D;
  /**
   * Posterior of the clean latent given a degraded one:
   * `z_x | z_y ~ N(A⁻¹(z_y − μ), Σ·A⁻¹)`. Returns the per-pixel mean `[N, H, W, C]` and the
   * shared covariance `[C, C]` (both differentiable w.r.t. the parameters).
   */
  readonly posterior: (
    p: LatentShiftParams,
    stats: SpdStats,
    zy: tf.Tensor4D,
  ) => { mean: tf.Tensor4D; cov: tf.Tensor2D };
  /** A posterior sample `mean + τ·S·n` with `S·Sᵀ = Σ·A⁻¹` (`stats.postSqrt`). */
  readonly samplePosterior: (
    p: LatentShiftParams,
    stats: ShiftStats,
    zy: tf.Tensor4D,
    options: ShiftSampleOptions,
  ) => tf.Tensor4D;
  /** Float64 statistics of `B = jitter·I + M·Mᵀ` for {@linkcode LatentShiftApi.pairedLogProb}. */
  readonly preparePaired: (p: LatentShiftParams, options?: PairedOptions) => Promise<PairedStats>;
  /**
   * Paired likelihood (eq. 5 without the flow's log-det): per-sample
   * `Σ_positions log N(z_y; z_x + μ, Σ + jitter·I)`, `[N]`; differentiable w.r.t. the
   * parameters and both latents.
   */
  readonly pairedLogProb: (
    p: LatentShiftParams,
    stats: PairedStats,
    zy: tf.Tensor4D,
    zx: tf.Tensor4D,
  ) => tf.Tensor1D;
  /**
   * The whitening bijector: forward `ε = L⁻¹(z − μ)` with `L = chol(A)`, log-det
   * `−H·W·½·log det A`; inverse `z = L·ε + μ`. So
   * `logProbDegraded(z) = logProbClean(ε) + logDet`. Differentiable w.r.t. the parameters.
   */
  readonly bijector: (p: LatentShiftParams, stats: SpdStats) => Bijector;
}

const LOG_2PI = Math.log(2 * Math.PI);

const channelsOf = (name: string, p: LatentShiftParams): number => {
  const c = p.mu.shape[0];
  if (p.mu.rank !== 1 || p.m.rank !== 2 || p.m.shape[0] !== c || p.m.shape[1] !== c) {
    throw new ShapeError(
      `${name}: parameters do not fit: mu ${showShape(p.mu.shape)}, m ${showShape(p.m.shape)} ` +
        `(expected [C] and [C, C])`,
    );
  }
  return c;
};

const checkStatsFit = (name: string, c: number, stats: SpdStats): void => {
  if (stats.aInv.shape[0] !== c) {
    throw new ShapeError(
      `${name}: statistics are for ${stats.aInv.shape[0]} channels, parameters have ${c}`,
    );
  }
};

const checkTemperature = (name: string, t: number): number => {
  if (!Number.isFinite(t) || t < 0) {
    throw new RangeError(`${name}: temperature must be a finite number ≥ 0, got ${t}`);
  }
  return t;
};

/** `Σ_positions log N(d_pixel; 0, B)` per sample, from differentiable `B⁻¹`, `log det B`. */
const gaussianLogProb = (
  d: tf.Tensor4D,
  bInv: tf.Tensor2D,
  logDetB: tf.Scalar,
): tf.Tensor1D => {
  const [n, h, w, c] = d.shape;
  const flat = tf.reshape(d, [n * h * w, c]);
  const quad = tf.sum(tf.reshape(tf.mul(matMul(flat, bInv), flat), [n, h * w * c]), 1);
  const constant = tf.mul(tf.add(logDetB, c * LOG_2PI), -0.5 * h * w);
  return tf.add(tf.mul(quad, -0.5), constant) as tf.Tensor1D;
};

const init = (
  { channels, seed, scale = 0.1 }: LatentShiftOptions & { readonly seed: number },
): LatentShiftParams => {
  if (!Number.isInteger(channels) || channels < 1) {
    throw new RangeError(`latentShift.init: channels must be a positive integer, got ${channels}`);
  }
  if (!Number.isFinite(scale) || scale === 0) {
    throw new RangeError(
      `latentShift.init: scale must be finite and non-zero (M = 0 is a stationary point), got ${scale}`,
    );
  }
  const [noise] = normals(rng(seed), channels * channels);
  const m = new Float32Array(channels * channels);
  for (let i = 0; i < channels * channels; i++) {
    m[i] = scale * ((i % (channels + 1) === 0 ? 1 : 0) + 0.1 * noise[i]);
  }
  return { mu: tf.zeros([channels]), m: tf.tensor2d(m, [channels, channels]) };
};

const prepare = async (p: LatentShiftParams): Promise<ShiftStats> => {
  const c = channelsOf("latentShift.prepare", p);
  const mm = await toMatrix(p.m);
  if (!mm.data.every(Number.isFinite)) {
    throw new NonFiniteError(`latentShift.prepare: M (${c}×${c}) contains NaN or Infinity`);
  }
  const spd = spdStatsFromMatrix(mm, 1);
  // Posterior square root S = M·chol(I + MᵀM)⁻ᵀ (see ShiftStats.postSqrt).
  const b = spdStats64(transpose(mm), 1);
  const postSqrt = fromMatrix(matmul(mm, transpose(b.cholInv)));
  return { ...spd, ...shiftEigenFromMatrix(mm), postSqrt };
};

const disposeStats = (stats: SpdStats): void => {
  disposeSpd(stats);
  const extra = stats as Partial<ShiftStats>;
  tf.dispose([extra.postSqrt, extra.eigVectors, extra.eigValues].filter((t) => t !== undefined));
};

const logProbClean = (z: tf.Tensor4D): tf.Tensor1D =>
  tf.tidy(() => {
    const [n, h, w, c] = checkInput("latentShift.logProbClean", z);
    const quad = tf.sum(tf.reshape(tf.square(z), [n, h * w * c]), 1);
    return tf.sub(tf.mul(quad, -0.5), 0.5 * h * w * c * LOG_2PI) as tf.Tensor1D;
  });

const logProbDegraded = (
  p: LatentShiftParams,
  stats: SpdStats,
  z: tf.Tensor4D,
): tf.Tensor1D =>
  tf.tidy(() => {
    const name = "latentShift.logProbDegraded";
    const c = channelsOf(name, p);
    checkStatsFit(name, c, stats);
    checkInput(name, z, c);
    const { aInv, logDetA } = spdInverseLogDet(p.m, stats);
    return gaussianLogProb(tf.sub(z, p.mu), aInv, logDetA);
  });

const sample = (
  p: LatentShiftParams,
  shape: Shape4,
  options: ShiftSampleOptions,
): tf.Tensor4D =>
  tf.tidy(() => {
    const name = "latentShift.sample";
    const c = channelsOf(name, p);
    const [n, h, w, cs] = shape;
    if (shape.length !== 4 || cs !== c || ![n, h, w].every((v) => Number.isInteger(v) && v > 0)) {
      throw new ShapeError(`${name}: cannot sample shape ${showShape(shape)} for ${c} channels`);
    }
    const tau = checkTemperature(name, options.temperature ?? 1);
    const noise = tf.randomNormal([n * h * w, c], 0, 1, "float32", tfSeed(options.seed));
    const u = tf.add(matMul(noise, p.m, false, true), p.mu);
    return tf.reshape(tf.mul(u, tau), [n, h, w, c]);
  });

const posterior = (
  p: LatentShiftParams,
  stats: SpdStats,
  zy: tf.Tensor4D,
): { mean: tf.Tensor4D; cov: tf.Tensor2D } =>
  tf.tidy(() => {
    const name = "latentShift.posterior";
    const c = channelsOf(name, p);
    checkStatsFit(name, c, stats);
    const [n, h, w] = checkInput(name, zy, c);
    const { aInv } = spdInverseLogDet(p.m, stats);
    const d = tf.reshape(tf.sub(zy, p.mu), [n * h * w, c]);
    const mean = tf.reshape(matMul(d, aInv), [n, h, w, c]) as tf.Tensor4D;
    const cov: tf.Tensor2D = tf.matMul(tf.matMul(p.m, p.m, false, true), aInv);
    return { mean, cov };
  });

const samplePosterior = (
  p: LatentShiftParams,
  stats: ShiftStats,
  zy: tf.Tensor4D,
  options: ShiftSampleOptions,
): tf.Tensor4D =>
  tf.tidy(() => {
    const name = "latentShift.samplePosterior";
    const tau = checkTemperature(name, options.temperature ?? 1);
    if (!stats.postSqrt) {
      throw new Error(
        `${name}: statistics lack postSqrt (use latentShift.prepare, not preparePaired)`,
      );
    }
    const { mean, cov } = posterior(p, stats, zy);
    cov.dispose();
    const [n, h, w, c] = mean.shape;
    const noise = tf.randomNormal([n * h * w, c], 0, 1, "float32", tfSeed(options.seed));
    const e = matMul(noise, stats.postSqrt, false, true);
    return tf.add(mean, tf.reshape(tf.mul(e, tau), [n, h, w, c]));
  });

const preparePaired = async (
  p: LatentShiftParams,
  options: PairedOptions = {},
): Promise<PairedStats> => {
  channelsOf("latentShift.preparePaired", p);
  const jitter = options.jitter ?? 1e-4;
  if (!Number.isFinite(jitter) || jitter <= 0) {
    throw new RangeError(`latentShift.preparePaired: jitter must be finite and > 0, got ${jitter}`);
  }
  const mm = await toMatrix(p.m);
  return { ...spdStatsFromMatrix(mm, jitter), ...shiftEigenFromMatrix(mm) };
};

const pairedLogProb = (
  p: LatentShiftParams,
  stats: PairedStats,
  zy: tf.Tensor4D,
  zx: tf.Tensor4D,
): tf.Tensor1D =>
  tf.tidy(() => {
    const name = "latentShift.pairedLogProb";
    const c = channelsOf(name, p);
    checkStatsFit(name, c, stats);
    const sy = checkInput(name, zy, c, "z_y");
    const sx = checkInput(name, zx, c, "z_x");
    if (sy.join(",") !== sx.join(",")) {
      throw new ShapeError(`${name}: z_y ${showShape(sy)} and z_x ${showShape(sx)} differ`);
    }
    const { aInv, logDetA } = spdInverseLogDet(p.m, stats);
    return gaussianLogProb(tf.sub(tf.sub(zy, zx), p.mu), aInv, logDetA);
  });

const shiftBijector = (p: LatentShiftParams, stats: SpdStats): Bijector => {
  const name = "latentShift";
  const c = channelsOf(name, p);
  checkStatsFit(name, c, stats);
  const shapeCheck = channelShape(name, c);
  const logDetOf = (n: number, hw: number, sign: number): tf.Tensor1D => {
    const { logDetA } = spdInverseLogDet(p.m, stats);
    return tf.mul(tf.ones([n]), tf.mul(logDetA, 0.5 * sign * hw)) as tf.Tensor1D;
  };
  return bijector({
    name,
    forward: (z) =>
      tf.tidy(() => {
        const [n, h, w] = checkInput(name, z, c);
        const { cholInv } = spdCholesky(p.m, stats);
        const d = tf.reshape(tf.sub(z, p.mu), [n * h * w, c]);
        const y = tf.reshape(matMul(d, cholInv, false, true), [n, h, w, c]) as tf.Tensor4D;
        return { y, logDet: logDetOf(n, h * w, -1) };
      }),
    inverse: (eps) =>
      tf.tidy(() => {
        const [n, h, w] = checkInput(name, eps, c);
        const { chol } = spdCholesky(p.m, stats);
        const e = tf.reshape(eps, [n * h * w, c]);
        const y = tf.reshape(tf.add(matMul(e, chol, false, true), p.mu), [
          n,
          h,
          w,
          c,
        ]) as tf.Tensor4D;
        return { y, logDet: logDetOf(n, h * w, 1) };
      }),
    forwardShape: shapeCheck,
    inverseShape: shapeCheck,
  });
};

/** DeFlow's latent shift: initialisation, densities, samplers, posterior and bijector. */
export const latentShift: LatentShiftApi = {
  init,
  prepare,
  disposeStats,
  logProbClean,
  logProbDegraded,
  sample,
  posterior,
  samplePosterior,
  preparePaired,
  pairedLogProb,
  bijector: shiftBijector,
};
