/**
 * Data-dependent initialisation of the latent shifts (like ActNorm's, for `μ` and `M`).
 *
 * With the flow fixed at its initial parameters, clean latents `z_x` and degraded latents
 * `z_y` from a few batches give the moment estimate of the shift covariance
 * `Σ̂ = Cov z_y − Cov z_x` (the multivariate closed form of the paper's §3.1). The estimate of a
 * difference of two sample covariances is noisy: its eigenvalues spread by about
 * `±2·√(C/n)` (times the latent variance) even when the domains do not differ. So `Σ̂` is
 * eigen-decomposed, eigenvalues below the threshold `τ = 4·√(C/n)·mean(diag Cov z_x)` are
 * treated as noise, and `M = V·diag(√λ)·Vᵀ` keeps only the significant directions, with
 * every eigenvalue raised to at least `floor²` so that `M` never sits at the stationary
 * point `M = 0`. `μ` stays 0 (its gradient is first order; training learns it).
 *
 * The formula assumes independent pixel vectors. Neighbouring latent vectors are not
 * independent (smooth content, the upsampled conditioning noise), and two disjoint photo
 * collections differ in content as well as in degradation. So the threshold is also
 * measured: the clean samples are split in two halves (alternate images), and the largest
 * |eigenvalue| of `Cov z_x(A) − Cov z_x(B)` is what a difference between two unrelated
 * sets of the same domain looks like; `τ` is at least `√2` times it (halves carry half the
 * samples; a factor 2 margin as in the formula). A direction is kept only when the
 * degraded domain differs from the clean one by more than two halves of the clean domain
 * differ from each other.
 *
 * This starts each latent's shift at the right scale and shape: latents and directions
 * that carry the degradation start with a matching covariance, the others near zero,
 * instead of a fixed `shiftInit` that would either hide the degradation or inject noise
 * into directions (e.g. low frequencies of the coarse latent) that the data do not
 * support. Training then refines everything jointly.
 *
 * The contractions of `config.contractShift` are not set from these moments: on photo
 * crops the smallest eigenvalue of `Cov z_y − Cov z_x` is dominated by how the crops'
 * texture varies (two samples of 64 crops from the *same* photos already give eigenvalues
 * of −1.3 here, below `−τ`), and a wrong contraction would blur every sample. They start
 * at their floor and are learned.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { normals, rng } from "../core/random.ts";
import { type Matrix, symmetricEigen } from "../linalg/dense.ts";
import type { LatentShiftParams } from "../layers/latentShift.ts";
import type { ModelConfig } from "./config.ts";
import { type DeflowParams, encode } from "./network.ts";
import { packShiftLatents } from "./shiftLatents.ts";

/** One chunk of images for {@linkcode initShiftsFromData} (the caller disposes it). */
export interface ShiftInitChunk {
  /** Images NHWC (dequantised like training data). */
  readonly x: tf.Tensor4D;
  /** Their conditioning inputs. */
  readonly cond: tf.Tensor4D;
  /** 1 for degraded samples, 0 for clean ones, `[N]`. */
  readonly degradedMask: tf.Tensor1D;
}

/** Options of {@linkcode initShiftsFromData}. */
export interface ShiftInitOptions {
  /** Seed of the symmetry-breaking noise added to `M`. */
  readonly seed: number;
  /** Smallest scale of any direction of `M` (default `config.shiftInit / 10`). */
  readonly floor?: number;
  /** Multiple of `√(C/n)` below which eigenvalues count as noise (default 4). */
  readonly threshold?: number;
}

/** What the initialisation found for one latent. */
export interface LatentShiftInitInfo {
  /** Channels of the latent. */
  readonly channels: number;
  /** Clean and degraded sample counts (pixel vectors). */
  readonly samples: readonly [number, number];
  /** Largest eigenvalue of `Cov z_y − Cov z_x`. */
  readonly maxEigenvalue: number;
  /** Smallest eigenvalue of `Cov z_y − Cov z_x` (negative: the degraded latent is narrower). */
  readonly minEigenvalue: number;
  /** The noise threshold `τ` used. */
  readonly threshold: number;
  /** Largest |eigenvalue| of the split-half clean covariance difference (the measured null). */
  readonly nullEigenvalue: number;
  /** Directions kept (eigenvalue above `τ`). */
  readonly kept: number;
  /** Root-mean-square scale of the resulting `M` (`√(tr(MMᵀ)/C)`). */
  readonly rmsScale: number;
}

/** The result of {@linkcode initShiftsFromData}. */
export interface ShiftInit {
  /**
   * New parameters: the same tensors except every `shifts[i]` (fresh `mu`, `m`). The
   * contractions of `config.contractShift` are left at their initial `K` (see the module doc).
   */
  readonly params: DeflowParams;
  /** Per-latent summary, in latent order. */
  readonly latents: readonly LatentShiftInitInfo[];
}

interface Moments {
  n: number;
  sum: Float64Array;
  outer: Float64Array;
}

const emptyMoments = (c: number): Moments => ({
  n: 0,
  sum: new Float64Array(c),
  outer: new Float64Array(c * c),
});

const accumulate = (m: Moments, data: Float32Array, c: number, rows: Iterable<number>) => {
  for (const r of rows) {
    const o = r * c;
    m.n++;
    for (let i = 0; i < c; i++) {
      const vi = data[o + i];
      m.sum[i] += vi;
      const oi = i * c;
      for (let j = 0; j <= i; j++) m.outer[oi + j] += vi * data[o + j];
    }
  }
};

const covariance = (m: Moments, c: number): Float64Array => {
  const cov = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j <= i; j++) {
      const v = m.outer[i * c + j] / m.n - (m.sum[i] / m.n) * (m.sum[j] / m.n);
      cov[i * c + j] = v;
      cov[j * c + i] = v;
    }
  }
  return cov;
};

/** Merge two moment accumulators. */
const merged = (a: Moments, b: Moments): Moments => ({
  n: a.n + b.n,
  sum: a.sum.map((v, i) => v + b.sum[i]),
  outer: a.outer.map((v, i) => v + b.outer[i]),
});

/** Largest |eigenvalue| of `Cov(a) − Cov(b)` (0 when a half has under 2 samples). */
const nullEdge = (a: Moments, b: Moments, c: number): number => {
  if (a.n < 2 || b.n < 2) return 0;
  const ca = covariance(a, c), cb = covariance(b, c);
  const { values } = symmetricEigen({ rows: c, cols: c, data: ca.map((v, i) => v - cb[i]) });
  return Math.max(...Array.from(values, Math.abs));
};

const shiftFromMoments = (
  mxHalves: readonly [Moments, Moments],
  my: Moments,
  c: number,
  floor: number,
  thresholdMultiple: number,
  seed: number,
): { m: Float32Array; info: LatentShiftInitInfo } => {
  const mx = merged(mxHalves[0], mxHalves[1]);
  const cx = covariance(mx, c);
  const cy = covariance(my, c);
  const diff: Matrix = { rows: c, cols: c, data: cy.map((v, i) => v - cx[i]) };
  let meanVar = 0;
  for (let i = 0; i < c; i++) meanVar += cx[i * c + i] / c;
  const n = Math.min(mx.n, my.n);
  const nullEigenvalue = nullEdge(mxHalves[0], mxHalves[1], c);
  const tau = Math.max(
    thresholdMultiple * Math.sqrt(c / Math.max(1, n)) * meanVar,
    Math.SQRT2 * nullEigenvalue,
  );
  const { values, vectors } = symmetricEigen(diff);
  const roots = Array.from(values, (l) => Math.max(l > tau ? Math.sqrt(l) : 0, floor));
  const [noise] = normals(rng(seed), c * c);
  const m = new Float32Array(c * c);
  let tr = 0;
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k < c; k++) {
        s += vectors.data[i * c + k] * roots[k] * vectors.data[j * c + k];
      }
      // A little noise (10% of the floor) breaks the symmetry of M = Mᵀ.
      m[i * c + j] = s + 0.1 * floor * noise[i * c + j];
      tr += m[i * c + j] ** 2;
    }
  }
  const info: LatentShiftInitInfo = {
    channels: c,
    samples: [mx.n, my.n],
    maxEigenvalue: values[0],
    minEigenvalue: values[c - 1],
    threshold: tau,
    nullEigenvalue,
    kept: values.filter((l) => l > tau).length,
    rmsScale: Math.sqrt(tr / c),
  };
  return { m, info };
};

/**
 * Initialise every latent shift from chunks of clean and degraded images (both domains
 * must appear). `chunk(i)` is called for `i = 0 … chunks − 1`; the caller disposes what it
 * returns after the call returns the next one (each chunk is disposed by this function's
 * caller-provided `release`). Disposes the replaced shift tensors of `params`.
 */
export const initShiftsFromData = async (
  params: DeflowParams,
  config: ModelConfig,
  chunks: number,
  chunk: (i: number) => ShiftInitChunk,
  release: (c: ShiftInitChunk) => void,
  options: ShiftInitOptions,
): Promise<ShiftInit> => {
  const floor = options.floor ?? config.shiftInit / 10;
  const channels = params.shifts.map((s) => s.mu.shape[0]);
  // Clean moments in two halves (alternate clean images), for the measured threshold.
  const mx = channels.map((c) => [emptyMoments(c), emptyMoments(c)] as [Moments, Moments]);
  const my = channels.map(emptyMoments);
  let cleanSeen = 0;
  for (let i = 0; i < chunks; i++) {
    const c = chunk(i);
    const mask = await c.degradedMask.data();
    const encoded = encode(params, config, c.x, c.cond);
    const latents = packShiftLatents(config, encoded.latents);
    const logDet = encoded.logDet;
    // The ordinal of each clean sample within this chunk (its half is the parity).
    const cleanBefore = Array.from(mask, (_, s) => mask.slice(0, s).filter((v) => v < 0.5).length);
    try {
      for (let l = 0; l < latents.length; l++) {
        const z = latents[l];
        const data = (await z.data()) as Float32Array;
        const per = z.shape[1] * z.shape[2];
        const cc = channels[l];
        for (let s = 0; s < z.shape[0]; s++) {
          const rows = Array.from({ length: per }, (_, k) => s * per + k);
          const half = (cleanSeen + cleanBefore[s]) % 2;
          accumulate(mask[s] >= 0.5 ? my[l] : mx[l][half], data, cc, rows);
        }
      }
      for (let s = 0; s < mask.length; s++) if (mask[s] < 0.5) cleanSeen++;
    } finally {
      tf.dispose([...new Set([...latents, ...encoded.latents]), logDet]);
      release(c);
    }
  }
  const results = channels.map((c, l) => {
    if (mx[l][0].n + mx[l][1].n < 2 || my[l].n < 2) {
      throw new Error("initShiftsFromData: both domains need samples in the chunks");
    }
    return shiftFromMoments(
      mx[l],
      my[l],
      c,
      floor,
      options.threshold ?? 4,
      options.seed + l,
    );
  });
  const finite = results.every((r) => r.m.every(Number.isFinite));
  const shifts = params.shifts.map((old, l): LatentShiftParams => {
    if (!finite) return old;
    const fresh = {
      mu: tf.zerosLike(old.mu),
      m: tf.tensor2d(results[l].m, [channels[l], channels[l]]),
    };
    tf.dispose([old.mu, old.m]);
    return fresh;
  });
  return { params: { ...params, shifts }, latents: results.map((r) => r.info) };
};
