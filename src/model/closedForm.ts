/**
 * The closed-form maximum-likelihood solution of DeFlow's Gaussian special case
 * (paper §3.1 and appendices A/B): clean `x ~ N(μx, σx²)`, degraded
 * `y = x' + u` with `u ~ N(μu, σu²)` independent of `x'`, from unpaired samples.
 *
 * DeFlow with a single affine flow `f(v) = (v − μx)/σx` and a latent shift `(μ, M)`
 * reaches this solution with `μ = μu/σx`, `M² = σu²/σx²`, which makes it an exact
 * end-to-end test of the training objective. The multivariate version
 * ({@linkcode closedFormMleCov}) gives the per-pixel channel covariances that an affine
 * flow (ActNorm + 1x1 convolution) with a full latent shift recovers.
 *
 * Everything here is plain float64 arithmetic on arrays: no tensors.
 *
 * @module
 */
import { cholesky } from "../linalg/dense.ts";

/**
 * A `C×C` covariance matrix, row-major float64 (`data[i·C + j]`); structurally the
 * `Matrix` of `linalg`, so it can be passed to its functions.
 */
export interface CovarianceMatrix {
  /** Number of rows (C). */
  readonly rows: number;
  /** Number of columns (C). */
  readonly cols: number;
  /** Entries, row-major. */
  readonly data: Float64Array;
}

/**
 * How the two domains are weighted in the log-likelihood.
 * - `"samples"`: the sum over all `n + m` samples (the plain MLE of the paper's §3.1);
 * - `"domains"`: the mean over each domain, added (DeFlow's objective
 *   `−E_x[…] − E_y[…]`, which weights both domains equally whatever `n` and `m`).
 *
 * They differ only in the no-noise regime (`s_y² < s_x²`) when `n ≠ m`.
 */
export type DomainWeighting = "samples" | "domains";

/** Options of {@linkcode closedFormMle}. */
export interface ClosedFormOptions {
  /** Domain weighting of the likelihood (default `"samples"`, as in the paper's §3.1). */
  readonly weighting?: DomainWeighting;
}

/** The 1-D maximum-likelihood estimate (variances, not standard deviations). */
export interface GaussianShiftMle {
  /** Clean mean `μx = m_x`. */
  readonly muX: number;
  /** Clean variance `σx²`. */
  readonly varX: number;
  /** Noise mean `μu = m_y − m_x`. */
  readonly muU: number;
  /** Noise variance `σu² ≥ 0`. */
  readonly varU: number;
  /**
   * `"noise"` when `s_y² ≥ s_x²` (`σx² = s_x²`, `σu² = s_y² − s_x²`), `"no-noise"`
   * otherwise (`σu² = 0`, `σx²` the pooled variance).
   */
  readonly regime: "noise" | "no-noise";
  /** The latent shift mean a unit-variance affine flow learns: `μ = μu/σx`. */
  readonly shiftMu: number;
  /** The squared latent shift factor it learns: `M² = σu²/σx²`. */
  readonly shiftM2: number;
  /** Empirical statistics: means and biased variances of both samples. */
  readonly empirical: EmpiricalStats;
}

/** Empirical statistics of the two 1-D samples. */
export interface EmpiricalStats {
  /** Number of clean samples. */
  readonly n: number;
  /** Number of degraded samples. */
  readonly m: number;
  /** Clean sample mean `m_x`. */
  readonly meanX: number;
  /** Degraded sample mean `m_y`. */
  readonly meanY: number;
  /** Biased clean sample variance `s_x²`. */
  readonly varX: number;
  /** Biased degraded sample variance `s_y²`. */
  readonly varY: number;
}

/** Parameters of the 1-D Gaussian shift model for {@linkcode gaussianShiftNll}. */
export interface GaussianShiftParams {
  /** Clean mean. */
  readonly muX: number;
  /** Clean variance (> 0). */
  readonly varX: number;
  /** Noise mean. */
  readonly muU: number;
  /** Noise variance (≥ 0). */
  readonly varU: number;
}

const LOG_2PI = Math.log(2 * Math.PI);

const meanVar = (v: ArrayLike<number>, what: string): { mean: number; variance: number } => {
  if (v.length < 2) {
    throw new RangeError(`closedFormMle: ${what} needs at least 2 samples, got ${v.length}`);
  }
  let s = 0;
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) {
      throw new RangeError(`closedFormMle: ${what}[${i}] = ${v[i]} is not finite`);
    }
    s += v[i];
  }
  const mean = s / v.length;
  let q = 0;
  for (let i = 0; i < v.length; i++) q += (v[i] - mean) * (v[i] - mean);
  return { mean, variance: q / v.length };
};

/**
 * The closed-form MLE of the paper's §3.1 from clean samples `xs` (n) and unpaired degraded
 * samples `ys` (m): `μx = m_x`, `μu = m_y − m_x`, and with biased variances `s_x², s_y²`
 * - if `s_y² ≥ s_x²`: `σx² = s_x²`, `σu² = s_y² − s_x²`;
 * - else: `σu² = 0`, `σx² = (n·s_x² + m·s_y²)/(n + m)` (`"samples"` weighting) or
 *   `(s_x² + s_y²)/2` (`"domains"` weighting, DeFlow's objective).
 *
 * Throws a RangeError for fewer than 2 samples, a non-finite value or a zero variance.
 */
export const closedFormMle = (
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  options: ClosedFormOptions = {},
): GaussianShiftMle => {
  const weighting = options.weighting ?? "samples";
  if (weighting !== "samples" && weighting !== "domains") {
    throw new RangeError(`closedFormMle: unknown weighting "${weighting}"`);
  }
  const x = meanVar(xs, "xs");
  const y = meanVar(ys, "ys");
  if (!(x.variance > 0) || !(y.variance > 0)) {
    throw new RangeError(
      `closedFormMle: both samples need a positive variance (s_x² = ${x.variance}, ` +
        `s_y² = ${y.variance})`,
    );
  }
  const n = xs.length;
  const m = ys.length;
  const noise = y.variance >= x.variance;
  const [wx, wy] = weighting === "samples" ? [n, m] : [1, 1];
  const varX = noise ? x.variance : (wx * x.variance + wy * y.variance) / (wx + wy);
  const varU = noise ? y.variance - x.variance : 0;
  const muU = y.mean - x.mean;
  return {
    muX: x.mean,
    varX,
    muU,
    varU,
    regime: noise ? "noise" : "no-noise",
    shiftMu: muU / Math.sqrt(varX),
    shiftM2: varU / varX,
    empirical: { n, m, meanX: x.mean, meanY: y.mean, varX: x.variance, varY: y.variance },
  };
};

/**
 * Per-domain mean negative log-likelihood (nats per sample) of the 1-D model: clean
 * `N(μx, σx²)` on `xs`, degraded `N(μx + μu, σx² + σu²)` on `ys`. DeFlow's objective
 * with an affine flow equals `clean + degraded` (change of variables), and
 * {@linkcode closedFormMle} minimises `clean + degraded` (`"domains"`) or
 * `n·clean + m·degraded` (`"samples"`).
 */
export const gaussianShiftNll = (
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  p: GaussianShiftParams,
): { readonly clean: number; readonly degraded: number } => {
  if (!(p.varX > 0) || !(p.varU >= 0)) {
    throw new RangeError(
      `gaussianShiftNll: need varX > 0 and varU ≥ 0, got varX = ${p.varX}, varU = ${p.varU}`,
    );
  }
  const nll = (v: ArrayLike<number>, mean: number, variance: number): number => {
    let q = 0;
    for (let i = 0; i < v.length; i++) q += (v[i] - mean) * (v[i] - mean);
    return 0.5 * (LOG_2PI + Math.log(variance)) + q / (2 * variance * v.length);
  };
  return {
    clean: nll(xs, p.muX, p.varX),
    degraded: nll(ys, p.muX + p.muU, p.varX + p.varU),
  };
};

/** The multivariate estimate of {@linkcode closedFormMleCov}. */
export interface GaussianShiftMleCov {
  /** Clean mean, `[C]`. */
  readonly meanX: Float64Array;
  /** Clean covariance `S_x` (biased), `C×C`. */
  readonly covX: CovarianceMatrix;
  /** Noise mean `m_y − m_x`, `[C]`. */
  readonly meanU: Float64Array;
  /** Noise covariance `S_y − S_x`, `C×C` (the MLE only when `positiveDefinite`). */
  readonly covU: CovarianceMatrix;
  /** Degraded covariance `S_y` (biased), `C×C`. */
  readonly covY: CovarianceMatrix;
  /**
   * True when `S_y − S_x` is positive definite: then (`covX`, `covU`) is the MLE of the
   * clean/noise Gaussians under any domain weighting. Otherwise the MLE puts `covU` on
   * the boundary of the PSD cone and `covU` here is NOT it.
   */
  readonly positiveDefinite: boolean;
}

const meanCov = (
  v: ArrayLike<number>,
  c: number,
  what: string,
): { mean: Float64Array; cov: CovarianceMatrix } => {
  if (!Number.isInteger(c) || c < 1) {
    throw new RangeError(`closedFormMleCov: channels must be a positive integer, got ${c}`);
  }
  if (v.length % c !== 0 || v.length / c < 2) {
    throw new RangeError(
      `closedFormMleCov: ${what} has ${v.length} values, not a multiple ≥ 2 of ${c} channels`,
    );
  }
  const n = v.length / c;
  const mean = new Float64Array(c);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) {
      throw new RangeError(`closedFormMleCov: ${what}[${i}] = ${v[i]} is not finite`);
    }
    mean[i % c] += v[i] / n;
  }
  const cov = new Float64Array(c * c);
  for (let s = 0; s < n; s++) {
    for (let a = 0; a < c; a++) {
      const da = v[s * c + a] - mean[a];
      for (let b = 0; b < c; b++) cov[a * c + b] += (da * (v[s * c + b] - mean[b])) / n;
    }
  }
  return { mean, cov: { rows: c, cols: c, data: cov } };
};

/**
 * Multivariate version of {@linkcode closedFormMle} for per-pixel channel vectors:
 * `xs` and `ys` hold samples of `channels` values each, channel fastest (the layout of
 * an NHWC tensor's data, every pixel one sample). Returns the empirical means and biased
 * covariances, the noise estimate `S_y − S_x` and whether it is positive definite.
 */
export const closedFormMleCov = (
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  channels: number,
): GaussianShiftMleCov => {
  const x = meanCov(xs, channels, "xs");
  const y = meanCov(ys, channels, "ys");
  const covU: CovarianceMatrix = {
    rows: channels,
    cols: channels,
    data: y.cov.data.map((v, i) => v - x.cov.data[i]),
  };
  let positiveDefinite = true;
  try {
    cholesky(covU);
  } catch {
    positiveDefinite = false;
  }
  return {
    meanX: x.mean,
    covX: x.cov,
    meanU: y.mean.map((v, i) => v - x.mean[i]),
    covU,
    covY: y.cov,
    positiveDefinite,
  };
};
