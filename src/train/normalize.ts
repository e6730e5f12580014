/**
 * Optional degraded-domain normalisation (the authors' AIM setting): before
 * training, the degraded images are mapped per channel to the clean set's mean and std,
 * `y' = (y − m_d)/s_d · s_c + m_c`. The {@linkcode DomainNormalization} record is stored
 * in the checkpoint's training state (`normalization`), so that `degrade()` maps its
 * samples back to the degraded domain's statistics and `restore()` normalises its input.
 *
 * Statistics are float64 over every pixel of every image (all images weigh by their
 * pixel count). A channel whose std is below 1e-6 (a constant channel) uses 1e-6.
 *
 * @module
 */
import { type RgbImage, rgbImage } from "../image/io.ts";
import type { DomainNormalization } from "../model/sample.ts";

/** Per-channel mean and std of an image set. */
export interface ChannelMoments {
  /** Mean per channel (R, G, B). */
  readonly mean: readonly number[];
  /** Standard deviation per channel (population, floored at 1e-6). */
  readonly std: readonly number[];
}

/** Smallest std used when normalising (avoids dividing by zero on constant channels). */
export const MIN_STD = 1e-6;

// The stored record's codec lives with the model loader that validates it.
export { DomainNormalizationCodec } from "../io/model.ts";

/** Per-channel mean and std (float64) over all pixels of `images`. Throws on an empty set. */
export const channelMoments = (images: readonly RgbImage[], what = "images"): ChannelMoments => {
  if (images.length === 0) throw new RangeError(`channelMoments: the ${what} set is empty`);
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  let n = 0;
  for (const im of images) {
    const d = im.data;
    for (let i = 0; i < d.length; i += 3) {
      for (let c = 0; c < 3; c++) {
        const v = d[i + c];
        sum[c] += v;
        sq[c] += v * v;
      }
    }
    n += d.length / 3;
  }
  const mean = sum.map((s) => s / n);
  const std = sq.map((s, c) => Math.max(MIN_STD, Math.sqrt(Math.max(0, s / n - mean[c] ** 2))));
  return { mean, std };
};

/** The normalisation taking the degraded set's channel statistics to the clean set's. */
export const computeNormalization = (
  clean: readonly RgbImage[],
  degraded: readonly RgbImage[],
): DomainNormalization => ({
  clean: channelMoments(clean, "clean"),
  degraded: channelMoments(degraded, "degraded"),
});

const mapChannels = (
  im: RgbImage,
  from: ChannelMoments,
  to: ChannelMoments,
): RgbImage => {
  const a = [0, 1, 2].map((c) => to.std[c] / Math.max(MIN_STD, from.std[c]));
  const b = [0, 1, 2].map((c) => to.mean[c] - from.mean[c] * a[c]);
  const out = new Float32Array(im.data.length);
  for (let i = 0; i < out.length; i += 3) {
    for (let c = 0; c < 3; c++) out[i + c] = im.data[i + c] * a[c] + b[c];
  }
  return rgbImage(im.width, im.height, out);
};

/**
 * Degraded images mapped to the clean domain's statistics: `(y − m_d)/s_d · s_c + m_c`
 * per channel (new images; values are not clipped). What training sees.
 */
export const normalizeDegraded = (
  images: readonly RgbImage[],
  norm: DomainNormalization,
): RgbImage[] => images.map((im) => mapChannels(im, norm.degraded, norm.clean));

/** The inverse of {@linkcode normalizeDegraded}: back to the degraded domain's statistics. */
export const denormalizeDegraded = (
  images: readonly RgbImage[],
  norm: DomainNormalization,
): RgbImage[] => images.map((im) => mapChannels(im, norm.clean, norm.degraded));
