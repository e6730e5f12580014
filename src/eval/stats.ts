/**
 * Image statistics for judging degradations, in plain float64 on {@linkcode RgbImage}s.
 *
 * - High-pass residual: `r = x − B·x` with the 3×3 binomial blur `B = [1 2 1]ᵀ[1 2 1]/16`,
 *   on the interior pixels only (no padding), per channel. For white noise of variance σ²
 *   the residual has variance `g·σ²` with `g = Σ(δ − B)² = 41/64`
 *   ({@linkcode HIGH_PASS_WHITE_GAIN}); dividing by `g` gives a *white-noise-equivalent*
 *   noise level. Image content (edges, texture) also leaks into the residual, equally for
 *   sets of similar photos, so compare sets of comparable content.
 * - Channel statistics: pooled mean and covariance of a field's three channels over all
 *   pixels of a set, and the correlation matrix from the covariance.
 * - Radially averaged power spectrum: fields are cut into non-overlapping `patch × patch`
 *   tiles (no window), each channel's `|FFT|²/patch²` is averaged over tiles and channels
 *   and over rings of radial frequency `(b/(2·bins), (b+1)/(2·bins)]` cycles/pixel (DC and
 *   the corners beyond 0.5 are left out). White noise of variance v gives v in every bin.
 * - Log-spectral distance between two spectra: `sqrt(mean_b (10·log10(P_b/Q_b))²)` in dB.
 * - JPEG blockiness: on luminance `Y = 0.299R + 0.587G + 0.114B`, the mean |difference| of
 *   neighbouring pixels across 8×8 block boundaries (grid anchored at the top-left pixel)
 *   divided by the mean |difference| within blocks, horizontal and vertical pooled.
 *   About 1 without blocking, larger with it.
 *
 * @module
 */
import type { RgbImage } from "../image/io.ts";
import { powerSpectrum2d } from "./fft.ts";

/** A 3-channel float64 field (interleaved like {@linkcode RgbImage}). */
export interface Field {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** `width · height · 3` values. */
  readonly data: Float64Array;
}

/** Variance gain of the 3×3 binomial high-pass for white noise: `Σ(δ − B)² = 41/64`. */
export const HIGH_PASS_WHITE_GAIN: number = 41 / 64;

/** An image as a float64 field. */
export const toField = (img: RgbImage): Field => ({
  width: img.width,
  height: img.height,
  data: Float64Array.from(img.data),
});

/** High-pass residual `x − B·x` on the `(W−2) × (H−2)` interior (see the module notes). */
export const highPassResidual = (img: RgbImage | Field): Field => {
  const { width: w, height: h, data: d } = img;
  if (w < 3 || h < 3) throw new RangeError(`highPassResidual: image ${w}×${h} is under 3×3`);
  const ow = w - 2, oh = h - 2;
  const out = new Float64Array(ow * oh * 3);
  const k = [1, 2, 1];
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let i = 0; i < 3; i++) {
          for (let j = 0; j < 3; j++) s += k[i] * k[j] * d[((y + i) * w + x + j) * 3 + c];
        }
        out[(y * ow + x) * 3 + c] = d[((y + 1) * w + x + 1) * 3 + c] - s / 16;
      }
    }
  }
  return { width: ow, height: oh, data: out };
};

/** `a − b` for two images of the same size. */
export const difference = (a: RgbImage | Field, b: RgbImage | Field): Field => {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(
      `difference: sizes differ (${a.width}×${a.height} vs ${b.width}×${b.height})`,
    );
  }
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] - b.data[i];
  return { width: a.width, height: a.height, data: out };
};

/** Pooled per-channel mean and 3×3 covariance (population, 1/N) of a set of fields. */
export interface ChannelStats {
  /** Number of pixels pooled. */
  readonly count: number;
  /** Channel means. */
  readonly mean: [number, number, number];
  /** Channel covariance, rows. */
  readonly cov: number[][];
}

/** Pool the channel mean and covariance over every pixel of every field. */
export const channelStats = (fields: readonly Field[]): ChannelStats => {
  let n = 0;
  const s = [0, 0, 0];
  for (const f of fields) {
    for (let i = 0; i < f.data.length; i += 3) for (let c = 0; c < 3; c++) s[c] += f.data[i + c];
    n += f.data.length / 3;
  }
  if (n === 0) throw new RangeError("channelStats: no pixels");
  const m = s.map((v) => v / n) as [number, number, number];
  const cov = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  for (const f of fields) {
    for (let i = 0; i < f.data.length; i += 3) {
      for (let a = 0; a < 3; a++) {
        const da = f.data[i + a] - m[a];
        for (let b = a; b < 3; b++) cov[a][b] += da * (f.data[i + b] - m[b]);
      }
    }
  }
  for (let a = 0; a < 3; a++) {
    for (let b = a; b < 3; b++) {
      cov[a][b] /= n;
      cov[b][a] = cov[a][b];
    }
  }
  return { count: n, mean: m, cov };
};

/** Correlation matrix from a covariance (a zero-variance channel gets 0 off-diagonal). */
export const correlationFromCov = (cov: readonly (readonly number[])[]): number[][] =>
  cov.map((row, i) =>
    row.map((v, j) => {
      if (i === j) return 1;
      const d = Math.sqrt(cov[i][i] * cov[j][j]);
      return d > 0 ? v / d : 0;
    })
  );

/** Per-channel white-noise-equivalent noise std of images (high-pass residual, pooled). */
export const noiseStd = (imgs: readonly (RgbImage | Field)[]): [number, number, number] => {
  const st = channelStats(imgs.map(highPassResidual));
  return [0, 1, 2].map((c) => Math.sqrt(st.cov[c][c] / HIGH_PASS_WHITE_GAIN)) as [
    number,
    number,
    number,
  ];
};

/** A radially averaged power spectrum. */
export interface RadialSpectrum {
  /** Upper edge of each frequency ring, cycles/pixel (the last is 0.5). */
  readonly freqs: number[];
  /** Mean power in each ring. */
  readonly power: number[];
  /** Number of tiles averaged. */
  readonly tiles: number;
}

/** Options of {@linkcode radialSpectrum}. */
export interface SpectrumOptions {
  /** Tile side, a power of 2 (default 32). */
  readonly patch?: number;
  /** Number of rings, at most `patch/2` (default `patch/2`). */
  readonly bins?: number;
}

/** Radially averaged power spectrum of a set of fields (see the module notes). */
export const radialSpectrum = (
  fields: readonly Field[],
  opts: SpectrumOptions = {},
): RadialSpectrum => {
  const n = opts.patch ?? 32;
  const bins = opts.bins ?? n / 2;
  if (n < 2 || (n & (n - 1)) !== 0) throw new RangeError(`radialSpectrum: patch ${n} not 2^k`);
  if (!Number.isInteger(bins) || bins < 1 || bins > n / 2) {
    throw new RangeError(`radialSpectrum: bins must be an integer in 1..${n / 2}, got ${bins}`);
  }
  const binOf = new Int32Array(n * n).fill(-1);
  const perBin = new Float64Array(bins);
  for (let v = 0; v < n; v++) {
    for (let u = 0; u < n; u++) {
      const fy = (((v + n / 2) % n) - n / 2) / n, fx = (((u + n / 2) % n) - n / 2) / n;
      const r = Math.hypot(fx, fy);
      if (r === 0 || r > 0.5 + 1e-12) continue;
      const b = Math.min(bins - 1, Math.ceil(r * 2 * bins - 1e-9) - 1);
      binOf[v * n + u] = b;
      perBin[b]++;
    }
  }
  const acc = new Float64Array(bins);
  let tiles = 0;
  const tile = new Float64Array(n * n);
  for (const f of fields) {
    for (let ty = 0; ty + n <= f.height; ty += n) {
      for (let tx = 0; tx + n <= f.width; tx += n) {
        tiles++;
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < n; y++) {
            for (let x = 0; x < n; x++) {
              tile[y * n + x] = f.data[((ty + y) * f.width + tx + x) * 3 + c];
            }
          }
          const p = powerSpectrum2d(tile, n);
          for (let i = 0; i < n * n; i++) if (binOf[i] >= 0) acc[binOf[i]] += p[i];
        }
      }
    }
  }
  if (tiles === 0) {
    throw new RangeError(`radialSpectrum: every image is smaller than one ${n}×${n} tile`);
  }
  return {
    freqs: Array.from({ length: bins }, (_, b) => (b + 1) / (2 * bins)),
    power: Array.from(acc, (s, b) => s / (perBin[b] * tiles * 3)),
    tiles,
  };
};

/** Log-spectral distance in dB: `sqrt(mean_b (10·log10(p_b/q_b))²)` (powers floored at 1e-30). */
export const logSpectralDistance = (p: readonly number[], q: readonly number[]): number => {
  if (p.length !== q.length || p.length === 0) {
    throw new RangeError(`logSpectralDistance: lengths ${p.length} and ${q.length}`);
  }
  let s = 0;
  for (let i = 0; i < p.length; i++) {
    const d = 10 * Math.log10(Math.max(p[i], 1e-30) / Math.max(q[i], 1e-30));
    s += d * d;
  }
  return Math.sqrt(s / p.length);
};

/** 8×8 blockiness of a set (pooled; see the module notes). */
export const blockiness = (imgs: readonly (RgbImage | Field)[]): number => {
  let sb = 0, nb = 0, sw = 0, nw = 0;
  for (const im of imgs) {
    const { width: w, height: h, data: d } = im;
    const lum = (x: number, y: number) => {
      const i = (y * w + x) * 3;
      return 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    };
    for (let y = 0; y < h; y++) {
      for (let x = 0; x + 1 < w; x++) {
        const g = Math.abs(lum(x + 1, y) - lum(x, y));
        if ((x + 1) % 8 === 0) (sb += g, nb++);
        else (sw += g, nw++);
      }
    }
    for (let y = 0; y + 1 < h; y++) {
      for (let x = 0; x < w; x++) {
        const g = Math.abs(lum(x, y + 1) - lum(x, y));
        if ((y + 1) % 8 === 0) (sb += g, nb++);
        else (sw += g, nw++);
      }
    }
  }
  if (nb === 0 || nw === 0) {
    throw new RangeError("blockiness: images need at least 9 pixels a side");
  }
  const within = sw / nw;
  return within > 0 ? sb / nb / within : (sb > 0 ? Infinity : 1);
};
