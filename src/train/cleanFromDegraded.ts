/**
 * Clean-domain photos made from the degraded ones: each degraded photo downscaled by a
 * factor large enough to remove its degradation, as the DeFlow paper does on DPED-RWSR
 * ("we include bicubic downsampled noisy images in the clean domain").
 *
 * Why: a user's clean and degraded collections are different scenes. The shared flow fits
 * the clean collection's content, and whatever texture the degraded scenes have beyond it
 * is fitted by the latent shift and later added to clean photos as if it were noise.
 * Downscaled copies of the degraded photos give the clean domain the degraded scenes'
 * content (at a coarser scale), with the degradation averaged away by the same
 * antialiased bicubic filter the domain-invariant condition uses.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { bicubicDownscale, downscaledSide } from "../image/resize.ts";
import { imageToTensor, type RgbImage, rgbImage, toBytes } from "../image/io.ts";

/** Whether the copy of `im` downscaled by `factor` is at least `minSide` on both sides. */
export const copyFits = (im: RgbImage, factor: number, minSide: number): boolean =>
  downscaledSide(im.height, factor) >= minSide && downscaledSide(im.width, factor) >= minSide;

/**
 * Every image downscaled by `factor` (MATLAB-style antialiased bicubic, see
 * {@linkcode bicubicDownscale}), clamped to [0, 1] and rounded to 8 bits like a stored
 * photo. Images whose downscaled copy would be smaller than `minSide` on either side are
 * left out. `factor` must be a finite number > 1. Async (reads tensors back, so it works on
 * WebGPU); no tensor is left behind.
 */
export const downscaledCopies = async (
  images: readonly RgbImage[],
  factor: number,
  minSide: number,
): Promise<RgbImage[]> => {
  if (!(Number.isFinite(factor) && factor > 1)) {
    throw new RangeError(`downscaledCopies: factor must be a finite number > 1, got ${factor}`);
  }
  const out: RgbImage[] = [];
  for (const im of images) {
    if (!copyFits(im, factor, minSide)) continue;
    const small = tf.tidy(() => bicubicDownscale(imageToTensor(im), factor));
    const data = await small.data() as Float32Array;
    small.dispose();
    const [, h, w] = small.shape;
    out.push(rgbImage(w, h, data.map((v) => toBytes(v) / 255)));
  }
  return out;
};
