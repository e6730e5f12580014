/**
 * Compare a set of generated degraded images with a set of real degraded ones, and the
 * tuned white-noise baseline.
 *
 * Unpaired statistics (always): white-noise-equivalent noise level per channel,
 * cross-channel correlation of the high-pass residual, radially averaged power spectrum of
 * the residual, 8×8 blockiness (definitions in `stats.ts`). Paired statistics (when the
 * clean images are given): the same on `degraded − clean` (mean, std, correlation,
 * spectrum, blockiness, no high-pass), plus PSNR and SSIM against the clean image. All
 * numbers are plain JSON.
 *
 * @module
 */
import type { RgbImage } from "../image/io.ts";
import { psnr, ssim } from "./metrics.ts";
import {
  blockiness,
  channelStats,
  correlationFromCov,
  difference,
  type Field,
  HIGH_PASS_WHITE_GAIN,
  highPassResidual,
  logSpectralDistance,
  noiseStd,
  radialSpectrum,
  type SpectrumOptions,
} from "./stats.ts";

/** Three per-channel numbers (R, G, B). */
export type Rgb3 = [number, number, number];

/** Statistics of `degraded − clean` over a paired set. */
export interface PairedStats {
  /** Mean of the difference per channel. */
  readonly mean: Rgb3;
  /** Std of the difference per channel. */
  readonly std: Rgb3;
  /** Cross-channel correlation of the difference. */
  readonly correlation: number[][];
  /** Radial power spectrum of the difference (same rings as the report's `freqs`). */
  readonly spectrum: number[];
  /** 8×8 blockiness of the difference. */
  readonly blockiness: number;
  /** Mean PSNR (dB) of degraded vs clean (finite pairs only). */
  readonly psnr: number;
  /** Mean SSIM (RGB average) of degraded vs clean. */
  readonly ssim: number;
}

/** Statistics of one set of images. */
export interface SetStats {
  /** Number of images. */
  readonly count: number;
  /** White-noise-equivalent noise std of the high-pass residual, per channel. */
  readonly noiseStd: Rgb3;
  /** Cross-channel correlation of the high-pass residual. */
  readonly residualCorrelation: number[][];
  /** Radial power spectrum of the high-pass residual. */
  readonly spectrum: number[];
  /** 8×8 blockiness of the images. */
  readonly blockiness: number;
  /** Statistics of `degraded − clean`, when clean partners were given. */
  readonly paired?: PairedStats;
}

/** Distances between the generated and real statistics (0 = identical). */
export interface SetDistances {
  /** |generated − real| noise std per channel. */
  readonly noiseStd: Rgb3;
  /** Mean over channels of |generated − real| / real noise std. */
  readonly noiseStdRelative: number;
  /** Frobenius norm of the difference of residual correlation matrices. */
  readonly correlation: number;
  /** Log-spectral distance (dB) of the residual spectra. */
  readonly spectrumLsdDb: number;
  /** |generated − real| blockiness. */
  readonly blockiness: number;
  /** The same on `degraded − clean`, when both sets are paired. */
  readonly paired?: {
    readonly std: Rgb3;
    readonly mean: Rgb3;
    readonly correlation: number;
    readonly spectrumLsdDb: number;
    readonly blockiness: number;
    readonly psnr: number;
    readonly ssim: number;
  };
}

/** The result of {@linkcode compareSets}; JSON-serialisable. */
export interface FidelityReport {
  /** Upper edges of the spectrum rings, cycles/pixel. */
  readonly freqs: number[];
  /** Generated set. */
  readonly generated: SetStats;
  /** Real degraded set. */
  readonly real: SetStats;
  /** The clean set's own unpaired statistics, when given (a noise-free reference level). */
  readonly clean?: SetStats;
  /** Generated vs real. */
  readonly distances: SetDistances;
}

/** Options of {@linkcode compareSets}. */
export interface CompareOptions extends SpectrumOptions {
  /**
   * Clean partners of the real images. Default: the `clean` argument (both sets were made
   * from the same clean images); `null`: the real set is unpaired.
   */
  readonly realClean?: readonly RgbImage[] | null;
}

const frob = (a: number[][], b: number[][]): number =>
  Math.sqrt(a.reduce((s, r, i) => s + r.reduce((t, v, j) => t + (v - b[i][j]) ** 2, 0), 0));
const absDiff3 = (a: Rgb3, b: Rgb3): Rgb3 => [0, 1, 2].map((c) => Math.abs(a[c] - b[c])) as Rgb3;

const pairedStats = (
  deg: readonly RgbImage[],
  clean: readonly RgbImage[],
  opts: SpectrumOptions,
  what: string,
): PairedStats => {
  if (deg.length !== clean.length) {
    throw new RangeError(`compareSets: ${deg.length} ${what} images but ${clean.length} clean`);
  }
  const diffs: Field[] = deg.map((d, i) => {
    if (d.width !== clean[i].width || d.height !== clean[i].height) {
      throw new RangeError(
        `compareSets: ${what} image ${i} is ${d.width}×${d.height}, its clean partner ` +
          `${clean[i].width}×${clean[i].height}`,
      );
    }
    return difference(d, clean[i]);
  });
  const st = channelStats(diffs);
  const ps = deg.map((d, i) => psnr(d, clean[i])).filter(Number.isFinite);
  return {
    mean: st.mean,
    std: [0, 1, 2].map((c) => Math.sqrt(st.cov[c][c])) as Rgb3,
    correlation: correlationFromCov(st.cov),
    spectrum: radialSpectrum(diffs, opts).power,
    blockiness: blockiness(diffs),
    psnr: ps.length === 0 ? Infinity : ps.reduce((a, b) => a + b, 0) / ps.length,
    ssim: deg.reduce((s, d, i) => s + ssim(d, clean[i]), 0) / deg.length,
  };
};

/** Unpaired (and optionally paired) statistics of one set. */
export const setStats = (
  imgs: readonly RgbImage[],
  clean?: readonly RgbImage[] | null,
  opts: SpectrumOptions = {},
  what = "degraded",
): SetStats => {
  if (imgs.length === 0) throw new RangeError(`compareSets: the ${what} set is empty`);
  const res = imgs.map(highPassResidual);
  const st = channelStats(res);
  return {
    count: imgs.length,
    noiseStd: noiseStd(imgs),
    residualCorrelation: correlationFromCov(st.cov),
    spectrum: radialSpectrum(res, opts).power,
    blockiness: blockiness(imgs),
    ...(clean ? { paired: pairedStats(imgs, clean, opts, what) } : {}),
  };
};

/**
 * Compare generated degraded images with real degraded ones. `clean`, when given, are
 * the clean partners of the generated images (and, unless `opts.realClean` says
 * otherwise, of the real ones too); they add the paired statistics and the clean set's
 * own unpaired statistics.
 */
export const compareSets = (
  generated: readonly RgbImage[],
  real: readonly RgbImage[],
  clean?: readonly RgbImage[],
  opts: CompareOptions = {},
): FidelityReport => {
  const sopts: SpectrumOptions = { patch: opts.patch, bins: opts.bins };
  const realClean = opts.realClean === undefined ? clean : opts.realClean ?? undefined;
  const g = setStats(generated, clean, sopts, "generated");
  const r = setStats(real, realClean, sopts, "real");
  const c = clean ? setStats(clean, undefined, sopts, "clean") : undefined;
  const patch = opts.patch ?? 32, bins = opts.bins ?? patch / 2;
  const distances: SetDistances = {
    noiseStd: absDiff3(g.noiseStd, r.noiseStd),
    noiseStdRelative: [0, 1, 2].reduce(
      (s, k) => s + Math.abs(g.noiseStd[k] - r.noiseStd[k]) / Math.max(r.noiseStd[k], 1e-12),
      0,
    ) / 3,
    correlation: frob(g.residualCorrelation, r.residualCorrelation),
    spectrumLsdDb: logSpectralDistance(g.spectrum, r.spectrum),
    blockiness: Math.abs(g.blockiness - r.blockiness),
    ...(g.paired && r.paired
      ? {
        paired: {
          std: absDiff3(g.paired.std, r.paired.std),
          mean: absDiff3(g.paired.mean, r.paired.mean),
          correlation: frob(g.paired.correlation, r.paired.correlation),
          spectrumLsdDb: logSpectralDistance(g.paired.spectrum, r.paired.spectrum),
          blockiness: Math.abs(g.paired.blockiness - r.paired.blockiness),
          psnr: Math.abs(g.paired.psnr - r.paired.psnr),
          ssim: Math.abs(g.paired.ssim - r.paired.ssim),
        },
      }
      : {}),
  };
  return {
    freqs: Array.from({ length: bins }, (_, b) => (b + 1) / (2 * bins)),
    generated: g,
    real: r,
    ...(c ? { clean: c } : {}),
    distances,
  };
};

const f4 = (v: number): string =>
  !Number.isFinite(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
const f3s = (v: readonly number[]): string => v.map(f4).join(" ");
const offDiag = (m: number[][]): string => `${f4(m[0][1])} ${f4(m[0][2])} ${f4(m[1][2])}`;
const spec = (p: readonly number[]): string => {
  const pick = [0, Math.floor(p.length / 4), Math.floor(p.length / 2), p.length - 1];
  return pick.map((i) => (p[i] > 0 ? (10 * Math.log10(p[i])).toFixed(1) : "-inf")).join(" ");
};

/** A plain-text table of a report for the terminal (spectra in dB at 4 rings). */
export const formatReportTable = (report: FidelityReport): string => {
  const cols: [string, SetStats | undefined][] = [
    ["generated", report.generated],
    ["real", report.real],
    ["clean", report.clean],
  ];
  const present = cols.filter((c): c is [string, SetStats] => c[1] !== undefined);
  const d = report.distances;
  const ringIdx = [
    0,
    Math.floor(report.freqs.length / 4),
    Math.floor(report.freqs.length / 2),
    report.freqs.length - 1,
  ];
  const rows: string[][] = [["statistic", ...present.map((c) => c[0]), "distance"]];
  rows.push(["images", ...present.map((c) => String(c[1].count)), ""]);
  rows.push(["noise std R G B", ...present.map((c) => f3s(c[1].noiseStd)), f3s(d.noiseStd)]);
  rows.push(["noise std rel. diff", ...present.map(() => ""), f4(d.noiseStdRelative)]);
  rows.push([
    "resid. corr RG RB GB",
    ...present.map((c) => offDiag(c[1].residualCorrelation)),
    `${f4(d.correlation)} (Frob.)`,
  ]);
  rows.push([
    `resid. spectrum dB @${ringIdx.map((i) => report.freqs[i].toFixed(2)).join(",")}`,
    ...present.map((c) => spec(c[1].spectrum)),
    `${f4(d.spectrumLsdDb)} dB LSD`,
  ]);
  rows.push(["blockiness 8x8", ...present.map((c) => f4(c[1].blockiness)), f4(d.blockiness)]);
  const gp = report.generated.paired, rp = report.real.paired;
  if (gp || rp) {
    const pv = (f: (p: PairedStats) => string) =>
      present.map((c) => (c[1].paired ? f(c[1].paired) : ""));
    const dp = d.paired;
    rows.push(["(y − x) mean R G B", ...pv((p) => f3s(p.mean)), dp ? f3s(dp.mean) : ""]);
    rows.push(["(y − x) std R G B", ...pv((p) => f3s(p.std)), dp ? f3s(dp.std) : ""]);
    rows.push([
      "(y − x) corr RG RB GB",
      ...pv((p) => offDiag(p.correlation)),
      dp ? `${f4(dp.correlation)} (Frob.)` : "",
    ]);
    rows.push([
      "(y − x) spectrum dB",
      ...pv((p) => spec(p.spectrum)),
      dp ? `${f4(dp.spectrumLsdDb)} dB LSD` : "",
    ]);
    rows.push(["(y − x) blockiness", ...pv((p) => f4(p.blockiness)), dp ? f4(dp.blockiness) : ""]);
    rows.push(["PSNR vs clean (dB)", ...pv((p) => f4(p.psnr)), dp ? f4(dp.psnr) : ""]);
    rows.push(["SSIM vs clean", ...pv((p) => f4(p.ssim)), dp ? f4(dp.ssim) : ""]);
  }
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  const line = (r: string[]) => r.map((s, j) => s.padEnd(widths[j])).join("  ").trimEnd();
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)]
    .join("\n");
};

/**
 * Per-channel σ of the white-noise baseline: `σ_c² = max(0, v_c(degraded) − v_c(clean)) / g`
 * where `v_c` is the pooled high-pass residual variance of a set and `g` the white-noise
 * gain of the high-pass ({@linkcode HIGH_PASS_WHITE_GAIN}). Needs no pairs: the content's
 * share of the residual variance cancels when both sets hold similar photos. Clipping of
 * the degraded images to [0, 1] biases it low.
 */
export const fitWhiteNoiseSigmas = (
  cleanImages: readonly RgbImage[],
  degradedImages: readonly RgbImage[],
): Rgb3 => {
  if (cleanImages.length === 0 || degradedImages.length === 0) {
    throw new RangeError("fitWhiteNoiseSigma: both sets must be non-empty");
  }
  const vc = channelStats(cleanImages.map(highPassResidual)).cov;
  const vd = channelStats(degradedImages.map(highPassResidual)).cov;
  return [0, 1, 2].map((c) =>
    Math.sqrt(Math.max(0, vd[c][c] - vc[c][c]) / HIGH_PASS_WHITE_GAIN)
  ) as Rgb3;
};

/**
 * One σ for the white-noise baseline `clean + N(0, σ²·I)`: the channel-averaged excess
 * residual variance of the degraded set over the clean set, corrected for the high-pass
 * gain (see {@linkcode fitWhiteNoiseSigmas}).
 */
export const fitWhiteNoiseSigma = (
  cleanImages: readonly RgbImage[],
  degradedImages: readonly RgbImage[],
): number => {
  const s = fitWhiteNoiseSigmas(cleanImages, degradedImages);
  return Math.sqrt((s[0] ** 2 + s[1] ** 2 + s[2] ** 2) / 3);
};
