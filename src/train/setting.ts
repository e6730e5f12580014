/**
 * The training setting for a degraded collection: which model config and which
 * clean-domain option fit the kind of degradation its photos show.
 *
 * Two settings, each the best measured on its kind of degradation (examples/fidelity/README.md):
 *
 * - `"noise"` — uncompressed noise (grain, Poisson–Gaussian, blur + noise): a flow affine in
 *   the image with one gain everywhere (`linearCoupling`, `jointShift`, `stationaryScale`),
 *   and the degraded photos downscaled by 4 added to the clean domain
 *   (`cleanFromDegraded: 4`), so the shared flow learns the degraded scenes' content and
 *   the shift only the noise. Sample it over every offset of the block grid
 *   (`gridOffsets: 4^levels`). Trained for 2000 iterations by default.
 * - `"paper"` — the paper's multi-scale flow with this library's defaults
 *   ({@linkcode defaultConfig}), better where JPEG compressed the photos: a stationary
 *   Gaussian cannot place JPEG's artefacts on its 8×8 grid. Its couplings are additive and
 *   its split priors' scales constant (`additiveCoupling`, `constantPriorScale`), so that no
 *   layer's gain depends on the photo's own content, only on the condition: with the
 *   paper's affine couplings the flow expands flat regions and the translation decodes too
 *   little noise there (examples/fidelity/README.md, _A gain that does not depend on the
 *   photo_). Trained for 600 iterations by default (about 7.5 minutes on a free core):
 *   measured again with these gains, 1200 and 2000 iterations bring the noise level and the
 *   spectra a little closer to the real ones but cross no target, and at 1200 the pairs do a little worse downstream
 *   (examples/fidelity/README.md, _Why 600 iterations_); with the affine couplings longer
 *   runs made the noise too strong.
 *
 * {@linkcode chooseSetting} picks between them from the degraded photos alone, by whether
 * they carry JPEG's block grid ({@linkcode collectionBlockGridScore}).
 *
 * @module
 */
import { defaultConfig, type ModelConfig } from "../model/config.ts";
import { collectionBlockGridScore } from "../eval/blockGrid.ts";
import type { RgbImage } from "../image/io.ts";
import { copyFits } from "./cleanFromDegraded.ts";

/** The name of a training setting. */
export type SettingName = "noise" | "paper";

/** A training setting: model config, the clean-domain option and the training length. */
export interface TrainingSetting {
  /** Its name. */
  readonly name: SettingName;
  /** The model config. */
  readonly config: ModelConfig;
  /** `cleanFromDegraded` of the training run (0: off). */
  readonly cleanFromDegraded: number;
  /**
   * Iterations of a fresh run when none are asked for: the length measured best for this
   * setting within 30 minutes of one CPU core (examples/fidelity/README.md).
   */
  readonly iterations: number;
}

/** The factor the `"noise"` setting downscales degraded photos by (the condition's). */
export const NOISE_CLEAN_FROM_DEGRADED = 4;

/** The two settings (see the module notes). */
export const settings: { readonly [K in SettingName]: TrainingSetting } = {
  noise: {
    name: "noise",
    config: { ...defaultConfig, linearCoupling: true, jointShift: true, stationaryScale: true },
    cleanFromDegraded: NOISE_CLEAN_FROM_DEGRADED,
    iterations: 2000,
  },
  paper: {
    name: "paper",
    config: { ...defaultConfig, additiveCoupling: true, constantPriorScale: true },
    cleanFromDegraded: 0,
    iterations: 600,
  },
};

/**
 * A collection block-grid score at or above this means JPEG compressed the degraded photos:
 * above the bundled photos' 1.01–1.02 without compression, below their 1.07 at JPEG q90
 * (see {@linkcode collectionBlockGridScore}). Noise followed by light JPEG (q90 and above)
 * scores below it and is treated as noise.
 */
export const JPEG_GRID_THRESHOLD = 1.05;

/** What {@linkcode chooseSetting} decided, and why. */
export interface SettingChoice {
  /** The setting (its `cleanFromDegraded` is 0 when no downscaled copy would fit a crop). */
  readonly setting: TrainingSetting;
  /** The degraded collection's block-grid score. */
  readonly score: number;
  /** One line for the user: the measurement and the decision. */
  readonly reason: string;
}

/**
 * Choose the training setting for a degraded collection: `"paper"` when its photos carry
 * JPEG's 8×8 block grid (score ≥ {@linkcode JPEG_GRID_THRESHOLD}), `"noise"` otherwise. In
 * the `"noise"` setting the downscaled copies are only used when at least one of them is
 * as large as a training crop (`crop` pixels a side); otherwise `cleanFromDegraded` is 0
 * and the reason says so.
 */
export const chooseSetting = (degraded: readonly RgbImage[], crop: number): SettingChoice => {
  const score = collectionBlockGridScore(degraded);
  const measured = `JPEG block-grid score of the degraded images ${score.toFixed(3)}`;
  if (score >= JPEG_GRID_THRESHOLD) {
    return {
      setting: settings.paper,
      score,
      reason: `${measured} (≥ ${JPEG_GRID_THRESHOLD}: JPEG-compressed): the paper's flow`,
    };
  }
  const { setting, copies } = withFittingCopies(settings.noise, degraded, crop);
  return {
    setting,
    score,
    reason: `${measured} (< ${JPEG_GRID_THRESHOLD}: not JPEG-compressed): the noise setting, ` +
      (copies ??
        `clean domain also from the degraded images downscaled by ${setting.cleanFromDegraded}`),
  };
};

/**
 * `s` with its downscaled copies dropped (`cleanFromDegraded: 0`) when no degraded image's
 * copy would be `crop` pixels a side; `copies` says so, and is absent when nothing changed.
 */
const withFittingCopies = (
  s: TrainingSetting,
  degraded: readonly RgbImage[],
  crop: number,
): { setting: TrainingSetting; copies?: string } => {
  const f = s.cleanFromDegraded;
  if (f === 0 || degraded.some((im) => copyFits(im, f, crop))) return { setting: s };
  return {
    setting: { ...s, cleanFromDegraded: 0 },
    copies: `without the degraded images downscaled by ${f} (none would be ${crop} pixels a side)`,
  };
};

/**
 * The setting named `name` for a degraded collection: `"auto"` is {@linkcode chooseSetting};
 * a named setting is taken as it is, except that its downscaled copies are dropped (and the
 * reason says so) when none would be `crop` pixels a side.
 */
export const pickSetting = (
  name: "auto" | SettingName,
  degraded: readonly RgbImage[],
  crop: number,
): { readonly setting: TrainingSetting; readonly reason: string } => {
  if (name === "auto") return chooseSetting(degraded, crop);
  const { setting, copies } = withFittingCopies(settings[name], degraded, crop);
  return { setting, reason: copies ? `as asked, ${copies}` : "as asked" };
};
