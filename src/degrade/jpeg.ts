/**
 * JPEG compression through a real baseline codec (`jpeg-js`).
 *
 * `jpeg-js`'s encoder always writes 4:4:4 (its SOF0 gives every component 1×1 sampling)
 * and has no option to subsample chroma. Real cameras and web images mostly use 4:2:0,
 * so `chroma: "420"` (the default) emulates it: the image is converted to JFIF YCbCr, each
 * 2×2 block of Cb and Cr is replaced by its mean (a box-filter downsample followed by
 * pixel-replication upsample, as a 4:2:0 decoder without fancy upsampling would show it),
 * and the result is encoded at 4:4:4. This removes the same chroma detail as 4:2:0; the
 * one difference is that chroma is then quantised in 8×8 blocks of full-resolution pixels
 * rather than 16×16, so chroma blocking artefacts are finer than a true 4:2:0 encoder's.
 *
 * @module
 */
import jpeg from "jpeg-js";
import { tf } from "../tf.ts";
import { checkImageTensor, type Degradation } from "./types.ts";

/** Chroma handling of {@linkcode jpegCompress}. */
export type ChromaMode = "444" | "420";

const clampByte = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** Replace each 2×2 block of chroma by its mean (partial blocks at odd edges too). */
const subsampleChroma420 = (rgba: Uint8Array, w: number, h: number): void => {
  const n = w * h;
  const y = new Float64Array(n), cb = new Float64Array(n), cr = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    y[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    cb[i] = -0.168736 * r - 0.331264 * g + 0.5 * b + 128;
    cr[i] = 0.5 * r - 0.418688 * g - 0.081312 * b + 128;
  }
  for (let by = 0; by < h; by += 2) {
    for (let bx = 0; bx < w; bx += 2) {
      let sb = 0, sr = 0, k = 0;
      for (let dy = 0; dy < 2 && by + dy < h; dy++) {
        for (let dx = 0; dx < 2 && bx + dx < w; dx++) {
          const i = (by + dy) * w + bx + dx;
          sb += cb[i];
          sr += cr[i];
          k++;
        }
      }
      for (let dy = 0; dy < 2 && by + dy < h; dy++) {
        for (let dx = 0; dx < 2 && bx + dx < w; dx++) {
          const i = (by + dy) * w + bx + dx;
          cb[i] = sb / k;
          cr[i] = sr / k;
        }
      }
    }
  }
  for (let i = 0; i < n; i++) {
    const cbi = cb[i] - 128, cri = cr[i] - 128;
    rgba[4 * i] = clampByte(y[i] + 1.402 * cri);
    rgba[4 * i + 1] = clampByte(y[i] - 0.344136 * cbi - 0.714136 * cri);
    rgba[4 * i + 2] = clampByte(y[i] + 1.772 * cbi);
  }
};

/**
 * JPEG-compress and decompress one image given as [0, 1] RGB floats (length `w·h·3`);
 * returns [0, 1] floats on the 8-bit grid.
 */
export const jpegRoundTrip = (
  rgb: Float32Array,
  w: number,
  h: number,
  quality: number,
  chroma: ChromaMode = "420",
): Float32Array => {
  const n = w * h;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgba[4 * i + c] = clampByte(rgb[3 * i + c] * 255);
    rgba[4 * i + 3] = 255;
  }
  if (chroma === "420") subsampleChroma420(rgba, w, h);
  const enc = jpeg.encode({ width: w, height: h, data: rgba }, quality);
  const dec = jpeg.decode(enc.data, { useTArray: true, formatAsRGBA: true });
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[3 * i + c] = dec.data[4 * i + c] / 255;
  }
  return out;
};

/**
 * JPEG compression at `quality` (1–100, libjpeg/IJG scaling of the standard tables) with
 * 4:4:4 or emulated 4:2:0 chroma (default; see the module notes). Values are clipped to
 * [0, 1] and quantised to 8 bits first, as any JPEG writer would. Deterministic (the
 * seed is ignored). Each image of the batch is coded separately, with the block grid
 * anchored at its top-left corner.
 */
export const jpegCompress = (opts: {
  readonly quality: number;
  readonly chroma?: ChromaMode;
}): Degradation => {
  const q = opts.quality;
  if (!Number.isInteger(q) || q < 1 || q > 100) {
    throw new RangeError(`jpegCompress: quality must be an integer in 1..100, got ${q}`);
  }
  const chroma = opts.chroma ?? "420";
  if (chroma !== "420" && chroma !== "444") {
    throw new RangeError(`jpegCompress: chroma must be "444" or "420", got ${chroma}`);
  }
  return {
    name: "jpeg",
    params: { quality: q, chroma },
    apply: async (x: tf.Tensor4D, _seed: number): Promise<tf.Tensor4D> => {
      checkImageTensor("jpegCompress", x);
      const [n, h, w] = x.shape;
      const all = await x.data() as Float32Array;
      const out = new Float32Array(all.length);
      const per = h * w * 3;
      for (let i = 0; i < n; i++) {
        out.set(jpegRoundTrip(all.subarray(i * per, (i + 1) * per), w, h, q, chroma), i * per);
      }
      return tf.tensor4d(out, x.shape, "float32");
    },
  };
};
