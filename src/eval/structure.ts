/**
 * Paired statistics of a degradation's *structure*, on sets of `(degraded, clean)` pairs
 * in plain float64: where the noise is (flat regions), how it depends on the signal, and
 * its joint spatial × channel covariance in small patches.
 *
 * - **Flat-region noise**: the white-noise-equivalent std of the high-pass residual of the
 *   degraded images, per channel, over the 8×8 blocks whose *clean* partner is flattest
 *   (lowest high-pass energy; the `fraction` flattest blocks of the whole clean set).
 *   In flat regions the residual is noise, not content, so this is the noise a viewer sees.
 * - **Signal dependence**: the std of `degraded − clean` per channel in bins of the clean
 *   luminance (default 8 equal bins of [0, 1]); bins with fewer than `minCount` pixels are
 *   NaN. Shot noise rises with brightness; additive noise is flat.
 * - **Patch covariance**: the covariance of `degraded − clean` over `p × p × 3` patches on
 *   the grid of stride `p` anchored at the top-left pixel (default p = 4; with the 8-px
 *   JPEG grid, patches see both block-interior and boundary positions).
 *
 * @module
 */
import type { RgbImage } from "../image/io.ts";
import { HIGH_PASS_WHITE_GAIN, highPassResidual } from "./stats.ts";

/** Three per-channel numbers (R, G, B). */
type Rgb3 = [number, number, number];

const checkPairs = (what: string, deg: readonly RgbImage[], clean: readonly RgbImage[]) => {
  if (deg.length === 0) throw new RangeError(`${what}: the set is empty`);
  if (deg.length !== clean.length) {
    throw new RangeError(`${what}: ${deg.length} degraded images but ${clean.length} clean`);
  }
  deg.forEach((d, i) => {
    if (d.width !== clean[i].width || d.height !== clean[i].height) {
      throw new RangeError(
        `${what}: pair ${i} sizes differ (${d.width}×${d.height} vs ${clean[i].width}×${
          clean[i].height
        })`,
      );
    }
  });
};

/** High-pass energy (sum of squares, all channels) of each 8×8 block of an interior residual. */
const blockEnergies = (img: RgbImage): { energy: number[]; bw: number; bh: number } => {
  const r = highPassResidual(img);
  const bw = Math.floor(r.width / 8), bh = Math.floor(r.height / 8);
  const energy = new Array<number>(bw * bh).fill(0);
  for (let by = 0; by < bh; by++) {
    for (let bx = 0; bx < bw; bx++) {
      let s = 0;
      for (let y = by * 8; y < by * 8 + 8; y++) {
        for (let x = bx * 8; x < bx * 8 + 8; x++) {
          for (let c = 0; c < 3; c++) s += r.data[(y * r.width + x) * 3 + c] ** 2;
        }
      }
      energy[by * bw + bx] = s;
    }
  }
  return { energy, bw, bh };
};

/**
 * White-noise-equivalent noise std per channel of `degraded` in the flattest `fraction`
 * of 8×8 blocks of its `clean` partners (see the module notes). Blocks are on the
 * high-pass residual's interior grid.
 */
export const flatRegionNoise = (
  degraded: readonly RgbImage[],
  clean: readonly RgbImage[],
  fraction = 0.25,
): Rgb3 => {
  checkPairs("flatRegionNoise", degraded, clean);
  if (!(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`flatRegionNoise: fraction must be in (0, 1], got ${fraction}`);
  }
  const blocks = clean.map(blockEnergies);
  const all = blocks.flatMap((b) => b.energy).sort((a, b) => a - b);
  if (all.length === 0) throw new RangeError("flatRegionNoise: images need ≥ 10 px a side");
  const threshold = all[Math.max(0, Math.ceil(fraction * all.length) - 1)];
  const s = [0, 0, 0], ss = [0, 0, 0];
  let n = 0;
  degraded.forEach((d, i) => {
    const r = highPassResidual(d);
    const { energy, bw, bh } = blocks[i];
    for (let by = 0; by < bh; by++) {
      for (let bx = 0; bx < bw; bx++) {
        if (energy[by * bw + bx] > threshold) continue;
        for (let y = by * 8; y < by * 8 + 8; y++) {
          for (let x = bx * 8; x < bx * 8 + 8; x++) {
            for (let c = 0; c < 3; c++) {
              const v = r.data[(y * r.width + x) * 3 + c];
              s[c] += v;
              ss[c] += v * v;
            }
            n++;
          }
        }
      }
    }
  });
  return [0, 1, 2].map((c) =>
    Math.sqrt(Math.max(0, ss[c] / n - (s[c] / n) ** 2) / HIGH_PASS_WHITE_GAIN)
  ) as Rgb3;
};

/** The result of {@linkcode signalDependence}. */
export interface SignalDependence {
  /** Upper edges of the clean-luminance bins. */
  readonly edges: number[];
  /** Std of `degraded − clean` per bin, averaged over channels (NaN for sparse bins). */
  readonly std: number[];
  /** Pixels per bin. */
  readonly count: number[];
}

/** Std of `degraded − clean` in bins of clean luminance (see the module notes). */
export const signalDependence = (
  degraded: readonly RgbImage[],
  clean: readonly RgbImage[],
  bins = 8,
  minCount = 500,
): SignalDependence => {
  checkPairs("signalDependence", degraded, clean);
  const s = new Float64Array(bins * 3), ss = new Float64Array(bins * 3);
  const count = new Array<number>(bins).fill(0);
  degraded.forEach((d, i) => {
    const c = clean[i].data;
    for (let p = 0; p < c.length; p += 3) {
      const lum = 0.299 * c[p] + 0.587 * c[p + 1] + 0.114 * c[p + 2];
      const b = Math.min(bins - 1, Math.max(0, Math.floor(lum * bins)));
      count[b]++;
      for (let k = 0; k < 3; k++) {
        const v = d.data[p + k] - c[p + k];
        s[b * 3 + k] += v;
        ss[b * 3 + k] += v * v;
      }
    }
  });
  const std = count.map((n, b) => {
    if (n < minCount) return NaN;
    let acc = 0;
    for (let k = 0; k < 3; k++) {
      acc += Math.sqrt(Math.max(0, ss[b * 3 + k] / n - (s[b * 3 + k] / n) ** 2));
    }
    return acc / 3;
  });
  return { edges: Array.from({ length: bins }, (_, b) => (b + 1) / bins), std, count };
};

/**
 * Distance of two signal-dependence curves: the mean over bins valid in both of
 * `|log(a/b)|` (a factor-of-e error in every bin gives 1). NaN when no bin is valid in both.
 */
export const signalDependenceDistance = (a: SignalDependence, b: SignalDependence): number => {
  let s = 0, n = 0;
  for (let i = 0; i < Math.min(a.std.length, b.std.length); i++) {
    if (a.std[i] > 0 && b.std[i] > 0) {
      s += Math.abs(Math.log(a.std[i] / b.std[i]));
      n++;
    }
  }
  return n ? s / n : NaN;
};

/** Covariance (population) of `degraded − clean` over `p×p×3` patches on a stride-`p` grid. */
export const patchCovariance = (
  degraded: readonly RgbImage[],
  clean: readonly RgbImage[],
  p = 4,
): number[][] => {
  checkPairs("patchCovariance", degraded, clean);
  const dim = p * p * 3;
  const mean = new Float64Array(dim);
  const cross = new Float64Array(dim * dim);
  const v = new Float64Array(dim);
  let n = 0;
  degraded.forEach((d, i) => {
    const c = clean[i].data, w = d.width;
    for (let y0 = 0; y0 + p <= d.height; y0 += p) {
      for (let x0 = 0; x0 + p <= w; x0 += p) {
        let k = 0;
        for (let y = y0; y < y0 + p; y++) {
          for (let x = x0; x < x0 + p; x++) {
            const o = (y * w + x) * 3;
            for (let ch = 0; ch < 3; ch++) v[k++] = d.data[o + ch] - c[o + ch];
          }
        }
        for (let a = 0; a < dim; a++) {
          mean[a] += v[a];
          for (let b = a; b < dim; b++) cross[a * dim + b] += v[a] * v[b];
        }
        n++;
      }
    }
  });
  if (n === 0) throw new RangeError(`patchCovariance: images are smaller than ${p}×${p}`);
  const cov: number[][] = Array.from({ length: dim }, () => new Array<number>(dim).fill(0));
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const val = cross[a * dim + b] / n - (mean[a] / n) * (mean[b] / n);
      cov[a][b] = val;
      cov[b][a] = val;
    }
  }
  return cov;
};

/** Relative Frobenius distance `‖A − B‖ / ‖B‖` (B the reference). */
export const relativeFrobenius = (
  a: readonly (readonly number[])[],
  b: readonly (readonly number[])[],
): number => {
  let num = 0, den = 0;
  b.forEach((row, i) =>
    row.forEach((v, j) => {
      num += (a[i][j] - v) ** 2;
      den += v * v;
    })
  );
  return den > 0 ? Math.sqrt(num / den) : (num > 0 ? Infinity : 0);
};
