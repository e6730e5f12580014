/**
 * Full-reference fidelity metrics: PSNR and SSIM (Wang, Bovik, Sheikh, Simoncelli 2004).
 *
 * SSIM follows the reference `ssim_index.m`: an 11×11 Gaussian window with σ = 1.5,
 * `K1 = 0.01`, `K2 = 0.03`, dynamic range `L = 1`, local statistics with the window's
 * weights (population variances), 'valid' filtering (no padding), and the mean of the SSIM
 * map. Colour images: `channel: "rgb"` (default) averages the three per-channel mean
 * SSIMs; `"luma"` uses `Y = 0.299R + 0.587G + 0.114B`. No downsampling is applied.
 *
 * @module
 */
import type { RgbImage } from "../image/io.ts";

const sameSize = (fn: string, a: RgbImage, b: RgbImage): void => {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(`${fn}: sizes differ (${a.width}×${a.height} vs ${b.width}×${b.height})`);
  }
};

/** Mean squared error over all pixels and channels. */
export const mse = (a: RgbImage, b: RgbImage): number => {
  sameSize("mse", a, b);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += (a.data[i] - b.data[i]) ** 2;
  return s / a.data.length;
};

/** PSNR in dB, `10·log10(peak² / MSE)` over all channels; `Infinity` for identical images. */
export const psnr = (a: RgbImage, b: RgbImage, peak = 1): number =>
  10 * Math.log10((peak * peak) / mse(a, b));

/** The 11-tap 1-D Gaussian of σ 1.5, normalised to sum 1 (its outer product is the window). */
export const ssimWindow1d = (size = 11, sigma = 1.5): Float64Array => {
  const r = (size - 1) / 2;
  const g = Float64Array.from(
    { length: size },
    (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)),
  );
  const s = g.reduce((p, v) => p + v, 0);
  return g.map((v) => v / s);
};

/** Separable 'valid' filtering of a w×h plane. */
const filterValid = (p: Float64Array, w: number, h: number, g: Float64Array): Float64Array => {
  const k = g.length, ow = w - k + 1, oh = h - k + 1;
  const t = new Float64Array(h * ow);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += g[i] * p[y * w + x + i];
      t[y * ow + x] = s;
    }
  }
  const o = new Float64Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += g[i] * t[(y + i) * ow + x];
      o[y * ow + x] = s;
    }
  }
  return o;
};

/** Mean SSIM of two planes (w×h, values on a dynamic range of 1). */
export const ssimPlane = (a: Float64Array, b: Float64Array, w: number, h: number): number => {
  const g = ssimWindow1d();
  if (w < g.length || h < g.length) {
    throw new RangeError(`ssim: image ${w}×${h} is smaller than the 11×11 window`);
  }
  const c1 = 0.01 ** 2, c2 = 0.03 ** 2;
  const n = w * h;
  const aa = new Float64Array(n), bb = new Float64Array(n), ab = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    aa[i] = a[i] * a[i];
    bb[i] = b[i] * b[i];
    ab[i] = a[i] * b[i];
  }
  const [ma, mb, saa, sbb, sab] = [a, b, aa, bb, ab].map((p) => filterValid(p, w, h, g));
  let s = 0;
  for (let i = 0; i < ma.length; i++) {
    const va = saa[i] - ma[i] * ma[i], vb = sbb[i] - mb[i] * mb[i], cab = sab[i] - ma[i] * mb[i];
    s += ((2 * ma[i] * mb[i] + c1) * (2 * cab + c2)) /
      ((ma[i] * ma[i] + mb[i] * mb[i] + c1) * (va + vb + c2));
  }
  return s / ma.length;
};

/** Options of {@linkcode ssim}. */
export interface SsimOptions {
  /** `"rgb"`: mean of per-channel SSIM (default); `"luma"`: SSIM of BT.601 luma. */
  readonly channel?: "rgb" | "luma";
}

/** Mean SSIM of two images of the same size (see the module notes). */
export const ssim = (a: RgbImage, b: RgbImage, opts: SsimOptions = {}): number => {
  sameSize("ssim", a, b);
  const n = a.width * a.height;
  const plane = (img: RgbImage, c: number | "luma") => {
    const p = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      p[i] = c === "luma"
        ? 0.299 * img.data[3 * i] + 0.587 * img.data[3 * i + 1] + 0.114 * img.data[3 * i + 2]
        : img.data[3 * i + c];
    }
    return p;
  };
  if ((opts.channel ?? "rgb") === "luma") {
    return ssimPlane(plane(a, "luma"), plane(b, "luma"), a.width, a.height);
  }
  let s = 0;
  for (let c = 0; c < 3; c++) s += ssimPlane(plane(a, c), plane(b, c), a.width, a.height);
  return s / 3;
};
