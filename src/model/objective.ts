/**
 * DeFlow's training objective: the marginal negative log-likelihood of both domains
 * (DeFlow paper, §3), in bits per dimension with uniform dequantisation (as the authors
 * train), and the paired
 * conditional likelihood (eq. 5) as an option.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { tfSeed } from "../core/random.ts";
import { sumLogDets } from "../core/bijector.ts";
import { latentShift, type PairedStats, type ShiftStats } from "../layers/latentShift.ts";
import { scaledLogProb, scaledPairedLogProb } from "../layers/scaledShift.ts";
import {
  type ContractionStats,
  contractionToShift,
  disposeContractionStats,
  type LatentContractionParams,
  prepareContraction,
} from "../layers/latentContraction.ts";
import { ShapeError } from "../core/errors.ts";
import type { SpdStats } from "../linalg/spd.ts";
import type { ModelConfig } from "./config.ts";
import {
  type DeflowParams,
  encodeWithFeatures,
  latentShiftScales,
  levelFeatures,
} from "./network.ts";
import { packShiftLatents } from "./shiftLatents.ts";

/**
 * Uniform dequantisation: `x + (u − ½)/bins`, `u ~ U(0, 1)` per value (seeded). The
 * continuous density of the result, times `bins^D`, bounds the discrete likelihood.
 */
export const dequantize = (x: tf.Tensor4D, bins: number, seed: number): tf.Tensor4D =>
  tf.tidy(() =>
    tf.add(x, tf.div(tf.sub(tf.randomUniform(x.shape, 0, 1, "float32", tfSeed(seed)), 0.5), bins))
  );

/** A latent's prepared statistics, with its contraction's when the model has one. */
export type WithContraction<S> = S & { readonly contraction?: ContractionStats };

/** Float64 statistics of one latent's shift and, if any, its contraction. */
export type ModelShiftStats = WithContraction<ShiftStats>;

const withContraction = async <S extends object>(
  base: Promise<S>,
  c: LatentContractionParams | undefined,
): Promise<WithContraction<S>> => {
  const stats: S = await base;
  const contraction = c ? await prepareContraction(c) : undefined;
  return { ...stats, contraction };
};

/** Float64 statistics of every latent shift (one async read of the `M` and `K` matrices). */
export const prepareShifts = (params: DeflowParams): Promise<ModelShiftStats[]> =>
  Promise.all(
    params.shifts.map((s, i) =>
      withContraction(latentShift.prepare(s), params.shiftContractions[i])
    ),
  );

/** Dispose statistics from {@linkcode prepareShifts} or {@linkcode preparePairedShifts}. */
export const disposeShiftStats = (stats: readonly WithContraction<SpdStats>[]): void => {
  for (const s of stats) {
    latentShift.disposeStats(s);
    if (s.contraction) disposeContractionStats(s.contraction);
  }
};

/**
 * The degraded latent in its shift's variables (`config.contractShift`: `w` and the
 * per-sample log-det of the change of variables; else `z` and `null`).
 */
const throughContraction = (
  params: DeflowParams,
  config: ModelConfig,
  stats: WithContraction<unknown>,
  z: tf.Tensor4D,
  i: number,
): { readonly w: tf.Tensor4D; readonly logDet: tf.Tensor | null } => {
  if (!config.contractShift) return { w: z, logDet: null };
  const p = params.shiftContractions[i];
  if (!p || !stats.contraction) {
    throw new ShapeError(
      `deflow: the config asks for contractShift but latent ${i} has no contraction ` +
        `(parameters: ${params.shiftContractions.length}; statistics: ${
          stats.contraction ? "yes" : "no"
        })`,
    );
  }
  const { w, logDetPerPosition } = contractionToShift(p, stats.contraction, z, params.shifts[i].mu);
  return { w, logDet: tf.mul(logDetPerPosition, z.shape[1] * z.shape[2]) };
};

/** Per-sample log-likelihood terms in nats. */
export type LogLikelihood = {
  /** log p(x) under the clean model N(0, I) (plus the flow's log-det), `[N]`. */
  readonly clean: tf.Tensor1D;
  /**
   * log p(x) under the degraded model N(μ, I + MMᵀ) — with `config.adaptiveShift`,
   * N(μ, I + a(h)²·MMᵀ) per position — (plus the flow's log-det), `[N]`.
   */
  readonly degraded: tf.Tensor1D;
};

/**
 * The degraded model's log-density of the shift latents (`packShiftLatents` of the flow's
 * latents; with `config.contractShift` through the contraction, with `config.adaptiveShift`
 * at the squared scales `scales2`), per sample in nats, without the flow's log-det.
 * Differentiable in the shift parameters; `stats` from {@linkcode prepareShifts}.
 */
export const degradedShiftLogProb = (
  params: DeflowParams,
  config: ModelConfig,
  stats: readonly ModelShiftStats[],
  shiftLatents: readonly tf.Tensor4D[],
  scales2: readonly tf.Tensor4D[] | null,
): tf.Tensor1D =>
  sumLogDets(
    shiftLatents.map((z, i) => {
      const { w, logDet } = throughContraction(params, config, stats[i], z, i);
      const base = scales2
        ? scaledLogProb(params.shifts[i], stats[i], w, scales2[i])
        : latentShift.logProbDegraded(params.shifts[i], stats[i], w);
      return logDet ? tf.add(base, logDet) as tf.Tensor1D : base;
    }),
  );

const latentTerms = (
  params: DeflowParams,
  config: ModelConfig,
  stats: readonly ModelShiftStats[],
  latents: readonly tf.Tensor4D[],
  scales2: readonly tf.Tensor4D[] | null,
): { clean: tf.Tensor1D; degraded: tf.Tensor1D } => ({
  clean: sumLogDets(latents.map((z) => latentShift.logProbClean(z))),
  degraded: degradedShiftLogProb(
    params,
    config,
    stats,
    packShiftLatents(config, latents),
    scales2,
  ),
});

/**
 * Continuous log-density of images `x` under both domain models (nats per sample).
 * `condInput` is the conditioning input `conditionInput(x)`; `stats` come from
 * {@linkcode prepareShifts} for the current parameters. Differentiable in the parameters.
 */
export const logLikelihood = (
  params: DeflowParams,
  config: ModelConfig,
  stats: readonly ModelShiftStats[],
  x: tf.Tensor4D,
  condInput: tf.Tensor4D,
): LogLikelihood =>
  tf.tidy(() => {
    const feats = levelFeatures(params, config, condInput, x.shape[1], x.shape[2]);
    const { latents, logDet } = encodeWithFeatures(params, config, x, feats);
    const scales2 = latentShiftScales(params, config, feats, true);
    const t = latentTerms(params, config, stats, latents, scales2);
    return { clean: tf.add(t.clean, logDet), degraded: tf.add(t.degraded, logDet) };
  });

/** Dimensions per sample of an image batch. */
export const dimsOf = (x: tf.Tensor): number => x.shape.slice(1).reduce((a, b) => a * b, 1);

/**
 * Negative log-likelihood in bits per dimension of the discretised data:
 * `(−log p(x) + D·log(bins)) / (D·ln 2)`, per sample.
 */
export const bitsPerDim = (logp: tf.Tensor1D, dims: number, bins: number): tf.Tensor1D =>
  tf.tidy(() => tf.div(tf.sub(dims * Math.log(bins), logp), dims * Math.LN2));

/**
 * The unpaired training loss on a mixed batch: mean over samples of the bits/dim NLL,
 * each sample scored under its own domain (`degradedMask` 1 for degraded, 0 for clean).
 * Also returns the per-sample NLL (bits/dim) for logging.
 */
export const unpairedLoss = (
  params: DeflowParams,
  config: ModelConfig,
  stats: readonly ModelShiftStats[],
  x: tf.Tensor4D,
  condInput: tf.Tensor4D,
  degradedMask: tf.Tensor1D,
): { readonly loss: tf.Scalar; readonly perSample: tf.Tensor1D } =>
  tf.tidy(() => {
    const ll = logLikelihood(params, config, stats, x, condInput);
    const mixed = tf.add(
      tf.mul(ll.degraded, degradedMask),
      tf.mul(ll.clean, tf.sub(1, degradedMask)),
    ) as tf.Tensor1D;
    const perSample = bitsPerDim(mixed, dimsOf(x), config.bins);
    return { loss: tf.mean(perSample) as tf.Scalar, perSample };
  });

/** Float64 statistics for the paired likelihood (Σ + jitter·I per latent). */
export const preparePairedShifts = (
  params: DeflowParams,
  jitter = 1e-4,
): Promise<WithContraction<PairedStats>[]> =>
  Promise.all(
    params.shifts.map((s, i) =>
      withContraction(latentShift.preparePaired(s, { jitter }), params.shiftContractions[i])
    ),
  );

/**
 * Paired conditional log-likelihood (eq. 5): `log p(y | x) = log|det ∂f/∂y| +
 * Σ_latents log N(f(y; h); f(x; h) + μ, Σ)` with `h = φ(x)` (`condInput`), per sample,
 * in nats. `pairedStats` from {@linkcode preparePairedShifts}. With `config.contractShift`
 * the mean is `μ + G·f(x; h)` and the covariance `G·Σ·G`.
 */
export const pairedLogLikelihood = (
  params: DeflowParams,
  config: ModelConfig,
  pairedStats: readonly WithContraction<PairedStats>[],
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  condInput: tf.Tensor4D,
): tf.Tensor1D =>
  tf.tidy(() => {
    const feats = levelFeatures(params, config, condInput, x.shape[1], x.shape[2]);
    const ex = encodeWithFeatures(params, config, x, feats);
    const ey = encodeWithFeatures(params, config, y, feats);
    const scales2 = latentShiftScales(params, config, feats, true);
    const zx = packShiftLatents(config, ex.latents);
    const terms = packShiftLatents(config, ey.latents).map((zy, i) => {
      const { w, logDet } = throughContraction(params, config, pairedStats[i], zy, i);
      const base = scales2
        ? scaledPairedLogProb(
          params.shifts[i],
          pairedStats[i],
          w,
          zx[i],
          scales2[i],
          pairedStats[i].ridge,
        )
        : latentShift.pairedLogProb(params.shifts[i], pairedStats[i], w, zx[i]);
      return logDet ? tf.add(base, logDet) as tf.Tensor1D : base;
    });
    return tf.add(sumLogDets(terms), ey.logDet) as tf.Tensor1D;
  });
