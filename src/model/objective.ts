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
import {
  latentShift,
  type LatentShiftParams,
  type PairedStats,
  type ShiftStats,
} from "../layers/latentShift.ts";
import { scaledLogProb, scaledPairedLogProb } from "../layers/scaledShift.ts";
import type { SpdStats } from "../linalg/spd.ts";
import type { ModelConfig } from "./config.ts";
import {
  type DeflowParams,
  encodeWithFeatures,
  latentShiftScales,
  levelFeatures,
} from "./network.ts";

/**
 * Uniform dequantisation: `x + (u − ½)/bins`, `u ~ U(0, 1)` per value (seeded). The
 * continuous density of the result, times `bins^D`, bounds the discrete likelihood.
 */
export const dequantize = (x: tf.Tensor4D, bins: number, seed: number): tf.Tensor4D =>
  tf.tidy(() =>
    tf.add(x, tf.div(tf.sub(tf.randomUniform(x.shape, 0, 1, "float32", tfSeed(seed)), 0.5), bins))
  );

/** Float64 statistics of every latent shift (one async read of the `M` matrices). */
export const prepareShifts = (params: DeflowParams): Promise<ShiftStats[]> =>
  Promise.all(params.shifts.map((s) => latentShift.prepare(s)));

/** Dispose statistics from {@linkcode prepareShifts}. */
export const disposeShiftStats = (stats: readonly SpdStats[]): void => {
  for (const s of stats) latentShift.disposeStats(s);
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

const latentTerms = (
  shifts: readonly LatentShiftParams[],
  stats: readonly ShiftStats[],
  latents: readonly tf.Tensor4D[],
  scales2: readonly tf.Tensor4D[] | null,
): { clean: tf.Tensor1D; degraded: tf.Tensor1D } => ({
  clean: sumLogDets(latents.map((z) => latentShift.logProbClean(z))),
  degraded: sumLogDets(
    latents.map((z, i) =>
      scales2
        ? scaledLogProb(shifts[i], stats[i], z, scales2[i])
        : latentShift.logProbDegraded(shifts[i], stats[i], z)
    ),
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
  stats: readonly ShiftStats[],
  x: tf.Tensor4D,
  condInput: tf.Tensor4D,
): LogLikelihood =>
  tf.tidy(() => {
    const feats = levelFeatures(params, config, condInput, x.shape[1], x.shape[2]);
    const { latents, logDet } = encodeWithFeatures(params, config, x, feats);
    const scales2 = latentShiftScales(params, config, feats, true);
    const t = latentTerms(params.shifts, stats, latents, scales2);
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
  stats: readonly ShiftStats[],
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
): Promise<PairedStats[]> =>
  Promise.all(params.shifts.map((s) => latentShift.preparePaired(s, { jitter })));

/**
 * Paired conditional log-likelihood (eq. 5): `log p(y | x) = log|det ∂f/∂y| +
 * Σ_latents log N(f(y; h); f(x; h) + μ, Σ)` with `h = φ(x)` (`condInput`), per sample,
 * in nats. `pairedStats` from {@linkcode preparePairedShifts}.
 */
export const pairedLogLikelihood = (
  params: DeflowParams,
  config: ModelConfig,
  pairedStats: readonly PairedStats[],
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  condInput: tf.Tensor4D,
): tf.Tensor1D =>
  tf.tidy(() => {
    const feats = levelFeatures(params, config, condInput, x.shape[1], x.shape[2]);
    const ex = encodeWithFeatures(params, config, x, feats);
    const ey = encodeWithFeatures(params, config, y, feats);
    const scales2 = latentShiftScales(params, config, feats, true);
    const terms = ey.latents.map((zy, i) =>
      scales2
        ? scaledPairedLogProb(
          params.shifts[i],
          pairedStats[i],
          zy,
          ex.latents[i],
          scales2[i],
          pairedStats[i].ridge,
        )
        : latentShift.pairedLogProb(params.shifts[i], pairedStats[i], zy, ex.latents[i])
    );
    return tf.add(sumLogDets(terms), ey.logDet) as tf.Tensor1D;
  });
