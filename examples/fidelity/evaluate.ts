/**
 * The fidelity table of one family: statistics of DeFlow samples, of fitted white noise and
 * of a second sample of the true process (the floor), each as a distance to the real
 * degradation of the same held-out clean crops (lower is better).
 *
 * @module
 */
import { tf } from "../../src/tf.ts";
import { imagesToTensor, type RgbImage, tensorToImages } from "../../src/image/io.ts";
import {
  degrade,
  type DomainNormalization,
  prepareSampler,
  type SampleOptions,
} from "../../src/model/sample.ts";
import type { DeflowParams } from "../../src/model/network.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import { compareSets, fitWhiteNoiseSigmas } from "../../src/eval/report.ts";
import { type Degradation, degradeImages } from "../../src/degrade/types.ts";
import { foldIn } from "../../src/core/random.ts";
import { cropsOf } from "./scenes.ts";
import { downscaledCopies } from "../../src/train/cleanFromDegraded.ts";
import { difference, noiseStd } from "../../src/eval/stats.ts";
import {
  flatRegionNoise,
  patchCovariance,
  relativeFrobenius,
  signalDependence,
  signalDependenceDistance,
} from "../../src/eval/structure.ts";

/** Per-channel values. */
export type Rgb3 = [number, number, number];

/** What one method's samples measure (values), for the table's "values" part. */
export interface MethodValues {
  /** White-noise-equivalent noise std per channel (high-pass residual, unpaired). */
  readonly noiseStd: Rgb3;
  /** The same in the flattest quarter of the clean partners' 8×8 blocks. */
  readonly flatNoise: Rgb3;
  /** Mean of `degraded − clean` per channel. */
  readonly residualMean: Rgb3;
  /** Std of `degraded − clean` per channel. */
  readonly residualStd: Rgb3;
  /** 8×8 blockiness of the images. */
  readonly blockiness: number;
  /** Std of `degraded − clean` per clean-luminance bin. */
  readonly signalStd: number[];
}

/** Distances of one method to the real degradation (lower is better). */
export interface MethodDistances {
  /** Max over channels of |g − r| / r, noise level. */
  readonly noiseLevel: number;
  /** Max over channels of |g − r| / r, flat-region noise level. */
  readonly flatNoise: number;
  /** Max over channels of |g − r|, residual mean. */
  readonly residualMean: number;
  /** Frobenius distance of the high-pass residual's channel correlations. */
  readonly correlation: number;
  /** Log-spectral distance (dB) of the high-pass residual spectra. */
  readonly spectrum: number;
  /** Mean |log ratio| of the signal-dependence curves. */
  readonly signalDependence: number;
  /** |g − r| of 8×8 blockiness. */
  readonly blockiness: number;
  /** Relative Frobenius distance of the 4×4×3 patch covariances of `degraded − clean`. */
  readonly patchCov: number;
  /** Max over channels of |g − r| / r, std of `degraded − clean`. */
  readonly pairedStd: number;
  /** Frobenius distance of the channel correlations of `degraded − clean`. */
  readonly pairedCorrelation: number;
  /** Log-spectral distance (dB) of the spectra of `degraded − clean`. */
  readonly pairedSpectrum: number;
}

/** The statistics in table order, with labels. */
export const distanceLabels: readonly [keyof MethodDistances, string][] = [
  ["noiseLevel", "noise level (rel., worst channel)"],
  ["flatNoise", "noise in flat regions (rel., worst ch.)"],
  ["residualMean", "residual mean (abs., worst channel)"],
  ["correlation", "cross-channel correlation (Frob.)"],
  ["spectrum", "residual spectrum (LSD, dB)"],
  ["signalDependence", "signal dependence (mean |log ratio|)"],
  ["blockiness", "8×8 blockiness (abs.)"],
  ["patchCov", "4×4 patch covariance (rel. Frob.)"],
  ["pairedStd", "paired: std of y − x (rel., worst ch.)"],
  ["pairedCorrelation", "paired: correlation of y − x (Frob.)"],
  ["pairedSpectrum", "paired: spectrum of y − x (LSD, dB)"],
];

/** One method's row. */
export interface MethodResult {
  /** Measured values. */
  readonly values: MethodValues;
  /** Distances to the real degradation. */
  readonly distances: MethodDistances;
}

const relMax = (g: readonly number[], r: readonly number[]) =>
  Math.max(...[0, 1, 2].map((c) => Math.abs(g[c] - r[c]) / Math.max(r[c], 1e-12)));
const absMax = (g: readonly number[], r: readonly number[]) =>
  Math.max(...[0, 1, 2].map((c) => Math.abs(g[c] - r[c])));

/** Values of one set of `(degraded, clean)` pairs. */
export const measure = (deg: readonly RgbImage[], clean: readonly RgbImage[]): MethodValues => {
  const rep = compareSets(deg, deg, clean);
  return {
    noiseStd: rep.generated.noiseStd,
    flatNoise: flatRegionNoise(deg, clean),
    residualMean: rep.generated.paired!.mean,
    residualStd: rep.generated.paired!.std,
    blockiness: rep.generated.blockiness,
    signalStd: signalDependence(deg, clean).std,
  };
};

/** Compare a method's samples with the real degradation of the same clean crops. */
export const compareMethod = (
  generated: readonly RgbImage[],
  real: readonly RgbImage[],
  clean: readonly RgbImage[],
  realValues: MethodValues = measure(real, clean),
): MethodResult => {
  const rep = compareSets(generated, real, clean);
  const values = measure(generated, clean);
  const sdG = signalDependence(generated, clean), sdR = signalDependence(real, clean);
  const p = rep.distances.paired!;
  return {
    values,
    distances: {
      noiseLevel: relMax(values.noiseStd, realValues.noiseStd),
      flatNoise: relMax(values.flatNoise, realValues.flatNoise),
      residualMean: absMax(values.residualMean, realValues.residualMean),
      correlation: rep.distances.correlation,
      spectrum: rep.distances.spectrumLsdDb,
      signalDependence: signalDependenceDistance(sdG, sdR),
      blockiness: rep.distances.blockiness,
      patchCov: relativeFrobenius(patchCovariance(generated, clean), patchCovariance(real, clean)),
      pairedStd: relMax(values.residualStd, realValues.residualStd),
      pairedCorrelation: p.correlation,
      pairedSpectrum: p.spectrumLsdDb,
    },
  };
};

/**
 * The fitted white-noise baseline: `quantize8(clean + N(0, σ_c²))` with per-channel σ fitted
 * on the unpaired training domains ({@linkcode fitWhiteNoiseSigmas}).
 */
export const whiteNoiseBaseline = async (
  clean: readonly RgbImage[],
  sigmas: Rgb3,
  seed: number,
): Promise<RgbImage[]> => {
  const x = imagesToTensor(clean);
  const y = tf.tidy(() => {
    const n = tf.mul(tf.randomNormal(x.shape, 0, 1, "float32", seed), tf.tensor1d(sigmas));
    return tf.div(tf.round(tf.mul(tf.clipByValue(tf.add(x, n), 0, 1), 255)), 255) as tf.Tensor4D;
  });
  const out = await tensorToImages(y);
  tf.dispose([x, y]);
  return out;
};

export { fitWhiteNoiseSigmas };

/**
 * DeFlow samples (τ = 1) of clean crops, rounded to 8 bits as `deflow degrade` writes them:
 * what a user gets. `seed` is the sampling seed.
 */
export const sampleDeflow = async (
  params: DeflowParams,
  config: ModelConfig,
  normalization: DomainNormalization | undefined,
  clean: readonly RgbImage[],
  seed: number,
  sampling: Pick<SampleOptions, "noiseAt" | "gridOffsets"> = {},
): Promise<RgbImage[]> => {
  const sampler = await prepareSampler(params, config, normalization);
  const x = imagesToTensor(clean);
  const [y] = degrade(sampler, x, { temperature: 1, seed, ...sampling });
  const y8 = tf.tidy(() => tf.div(tf.round(tf.mul(tf.clipByValue(y, 0, 1), 255)), 255));
  const ours = await tensorToImages(y8);
  tf.dispose([x, y, y8]);
  sampler.dispose();
  return ours;
};

/** Everything the fidelity table of one trained family is made from. */
export interface TestEvaluation {
  /** The clean test crops. */
  readonly clean: RgbImage[];
  /** Their real degradation (the reference). */
  readonly real: RgbImage[];
  /** A second sample of the true process (the floor). */
  readonly floor: RgbImage[];
  /** Fitted white noise on the crops. */
  readonly white: RgbImage[];
  /** DeFlow samples of the crops. */
  readonly ours: RgbImage[];
  /** The fitted white-noise σ per channel. */
  readonly sigmas: Rgb3;
  /** The real degradation's statistics. */
  readonly realValues: MethodValues;
}

/**
 * Degrade crops of the held-out test photos every way the table compares (real, floor,
 * white noise fitted on the unpaired training sets, DeFlow), with the suite's seeds.
 */
export const evaluateOnTestCrops = async (
  op: Degradation,
  sets: {
    readonly test: readonly RgbImage[];
    readonly clean: readonly RgbImage[];
    readonly degraded: readonly RgbImage[];
  },
  model: {
    readonly params: DeflowParams;
    readonly config: ModelConfig;
    readonly normalization?: DomainNormalization;
  },
  seed: number,
  crops: { readonly size: number; readonly perImage?: number },
  sampling: Pick<SampleOptions, "noiseAt" | "gridOffsets"> = {},
): Promise<TestEvaluation> => {
  const clean = sets.test.flatMap((img) => cropsOf(img, crops.size, crops.perImage));
  const real = await degradeImages(op, clean, foldIn(seed, 2));
  const floor = await degradeImages(op, clean, foldIn(seed, 3));
  const sigmas = fitWhiteNoiseSigmas(sets.clean, sets.degraded);
  const white = await whiteNoiseBaseline(clean, sigmas, foldIn(seed, 4));
  const ours = await sampleDeflow(
    model.params,
    model.config,
    model.normalization,
    clean,
    foldIn(seed, 5),
    sampling,
  );
  return { clean, real, floor, white, ours, sigmas, realValues: measure(real, clean) };
};

/** How much of a degradation survives in the downscaled copies `cleanFromDegraded` adds. */
export interface CopyResidue {
  /** High-pass noise std per channel of `degraded − source` at full size. */
  readonly fullSize: Rgb3;
  /** The same of `copy(degraded) − copy(source)`, both downscaled by the run's factor. */
  readonly copies: Rgb3;
  /** `copies / fullSize`, worst (largest) channel: 0 when the copies are clean. */
  readonly ratio: number;
}

/**
 * Measures the assumption behind `cleanFromDegraded`: that downscaling by `factor` averages
 * the degradation away. The suite knows each degraded photo's clean source, so it can
 * downscale both exactly as the trainer does and measure the difference that remains
 * (white-noise-equivalent high-pass std, as the noise-level row). A degradation with
 * low-frequency parts (smoothed noise, JPEG's 8×8 blocks, 4:2:0 chroma) survives the
 * downscale and reaches the clean domain. (Measured with `--copies-of-source`: on
 * `smooth-jpeg` this residue is not what makes the noise come out weak; see
 * examples/fidelity/README.md.)
 */
export const copyResidue = async (
  degraded: readonly RgbImage[],
  source: readonly RgbImage[],
  factor: number,
  crop: number,
): Promise<CopyResidue> => {
  const fullSize = noiseStd(degraded.map((d, i) => difference(d, source[i])));
  const dc = await downscaledCopies(degraded, factor, crop);
  const sc = await downscaledCopies(source, factor, crop);
  const copies = noiseStd(dc.map((d, i) => difference(d, sc[i])));
  const ratio = Math.max(...copies.map((c, i) => c / fullSize[i]));
  return { fullSize, copies, ratio };
};
