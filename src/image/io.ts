/**
 * Image files: read PNG and JPEG into float RGB images, write 8-bit PNG, and convert
 * between {@linkcode RgbImage} and NHWC tensors `[1, H, W, 3]`.
 *
 * Decoding is pure JavaScript (`fast-png`, `jpeg-js`). Every PNG flavour is turned into
 * RGB floats in [0, 1]: grayscale is replicated to three channels, palettes are expanded,
 * alpha (and `tRNS` transparency) is discarded, 1/2/4/16-bit samples are scaled by their
 * maximum value (16-bit data thus keeps its precision as floats). No colour management is
 * applied: values are the stored sRGB-encoded code values.
 *
 * **Hostile files.** Before anything is decompressed, a PNG's chunk structure is walked:
 * every chunk's CRC is checked, `IHDR` must come first and `IEND` last with nothing after
 * it, and a truncated chunk is reported as such. The image size is read from the PNG
 * `IHDR` or the JPEG frame header and refused above {@linkcode DEFAULT_MAX_PIXELS} (80
 * megapixels; `maxPixels` raises it) before any pixel buffer is allocated.
 *
 * **Writing.** {@linkcode writePng} writes through a temporary file and a rename (see
 * `io/atomic.ts`): never through a symbolic link at the destination, and an existing file
 * is kept when `overwrite: false`.
 *
 * @module
 */
import { decode as decodePngRaw, encode as encodePngRaw } from "fast-png";
import jpeg from "jpeg-js";
import { either as E } from "fp-ts";
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { crc32 } from "../io/crc32.ts";
import { type AtomicWriteOptions, writeFileAtomic } from "../io/atomic.ts";

/** Largest decoded image accepted by default: 80 megapixels (about 1 GB as float RGB). */
export const DEFAULT_MAX_PIXELS = 80_000_000;

/** Options of {@linkcode decodeImage} and {@linkcode readImage}. */
export interface DecodeOptions {
  /** Largest `width · height` accepted (default {@linkcode DEFAULT_MAX_PIXELS}). */
  readonly maxPixels?: number;
}

/** Why a file is refused before decoding: thrown inside decodeImage, reported as is. */
class Refused extends Error {
  constructor(message: string, readonly tooLarge = false) {
    super(message);
  }
}

const u32 = (b: Uint8Array, o: number): number =>
  ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

const chunkName = (b: Uint8Array, o: number): string =>
  String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]).replace(/[^\x20-\x7e]/g, "?");

const checkSize = (width: number, height: number, maxPixels: number): void => {
  if (width < 1 || height < 1) throw new Refused(`image size ${width}×${height} is empty`);
  if (width * height > maxPixels) {
    throw new Refused(
      `${width}×${height} is ${(width * height / 1e6).toFixed(1)} megapixels, over the ` +
        `limit of ${maxPixels / 1e6} (raise maxPixels / --max-megapixels to accept it)`,
      true,
    );
  }
};

/**
 * Walk a PNG's chunks before decoding: CRCs, IHDR first, IEND last with nothing after it,
 * no truncated chunk, and the size limit. Throws a {@linkcode Refused} with one line.
 */
const checkPngStructure = (b: Uint8Array, maxPixels: number): void => {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (b.length < 8 || sig.some((v, i) => b[i] !== v)) {
    throw new Refused("damaged PNG signature");
  }
  let off = 8;
  let first = true;
  while (true) {
    if (off === b.length) throw new Refused("PNG has no IEND chunk (truncated file?)");
    if (off + 12 > b.length) {
      throw new Refused(`truncated PNG: ${b.length - off} stray bytes at byte ${off}`);
    }
    const len = u32(b, off);
    const name = chunkName(b, off + 4);
    if (len > 0x7fffffff || off + 12 + len > b.length) {
      throw new Refused(
        `truncated PNG: chunk "${name}" at byte ${off} declares ${len} bytes, ` +
          `the file has ${Math.max(0, b.length - off - 12)} left`,
      );
    }
    const want = u32(b, off + 8 + len);
    if (crc32(b.subarray(off + 4, off + 8 + len)) !== want) {
      throw new Refused(`PNG chunk "${name}" at byte ${off} fails its CRC check (corrupt file)`);
    }
    if (first) {
      if (name !== "IHDR" || len !== 13) throw new Refused("PNG does not start with IHDR");
      checkSize(u32(b, off + 8), u32(b, off + 12), maxPixels);
      first = false;
    }
    off += 12 + len;
    if (name === "IEND") {
      if (off !== b.length) {
        throw new Refused(`PNG has ${b.length - off} bytes after its IEND chunk`);
      }
      return;
    }
  }
};

/**
 * The frame size in a JPEG's SOF header (found by walking the markers), checked, and an
 * end-of-image marker after it (a truncated file has none).
 */
const checkJpegSize = (b: Uint8Array, maxPixels: number): void => {
  let off = 2;
  while (off + 4 <= b.length) {
    if (b[off] !== 0xff) throw new Refused(`corrupt JPEG: no marker at byte ${off}`);
    const marker = b[off + 1];
    if (marker === 0xff) {
      off++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      off += 2;
      continue;
    }
    const len = (b[off + 2] << 8) | b[off + 3];
    const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (sof) {
      if (off + 9 > b.length) break;
      const height = (b[off + 5] << 8) | b[off + 6];
      const width = (b[off + 7] << 8) | b[off + 8];
      checkSize(width, height, maxPixels);
      for (let i = off + 2; i + 1 < b.length; i++) {
        if (b[i] === 0xff && b[i + 1] === 0xd9) return;
      }
      throw new Refused("truncated JPEG: no end-of-image marker after the frame header");
    }
    if (marker === 0xd9 || marker === 0xda) break; // end or scan before any frame header
    off += 2 + len;
  }
  throw new Refused("truncated or corrupt JPEG: no frame header (SOF) found");
};

/** An RGB image: `data` is row-major, RGB interleaved, values nominally in [0, 1]. */
export interface RgbImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** `width · height · 3` samples, `data[(y·width + x)·3 + c]`. */
  readonly data: Float32Array;
}

/** Make an {@linkcode RgbImage}, checking that `data` has `width · height · 3` samples. */
export const rgbImage = (width: number, height: number, data: Float32Array): RgbImage => {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`rgbImage: size must be positive integers, got ${width}×${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new RangeError(
      `rgbImage: ${width}×${height} needs ${width * height * 3} samples, got ${data.length}`,
    );
  }
  return { width, height, data };
};

/** A constant-colour image. */
export const filledImage = (
  width: number,
  height: number,
  rgb: readonly [number, number, number],
): RgbImage => {
  const data = new Float32Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = rgb[0];
    data[3 * i + 1] = rgb[1];
    data[3 * i + 2] = rgb[2];
  }
  return rgbImage(width, height, data);
};

const isPng = (b: Uint8Array): boolean =>
  b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isJpeg = (b: Uint8Array): boolean => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8;

/** Unpack `depth`-bit samples (1, 2, 4) stored with rows padded to whole bytes. */
const unpackBits = (
  data: ArrayLike<number>,
  width: number,
  height: number,
  channels: number,
  depth: number,
): Float32Array => {
  const perRow = width * channels;
  const rowBytes = Math.ceil((perRow * depth) / 8);
  const max = (1 << depth) - 1;
  const out = new Float32Array(perRow * height);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < perRow; i++) {
      const bit = i * depth;
      const byte = data[y * rowBytes + (bit >> 3)];
      const shift = 8 - depth - (bit & 7);
      out[y * perRow + i] = ((byte >> shift) & max) / max;
    }
  }
  return out;
};

const decodePngBytes = (bytes: Uint8Array, maxPixels: number): RgbImage => {
  checkPngStructure(bytes, maxPixels);
  const png = decodePngRaw(bytes);
  const { width, height, depth } = png;
  const n = width * height;
  if (png.palette) {
    const pal = png.palette;
    const cs = pal[0]?.length ?? 3;
    // Indexed images: expand through the palette (8-bit entries).
    const rgbx = unpackBits8(png.data, width, height, depth);
    const out = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const e = pal[rgbx[i]];
      if (e === undefined) throw new Error(`palette index ${rgbx[i]} out of range`);
      for (let c = 0; c < 3; c++) out[3 * i + c] = e[Math.min(c, cs - 1)] / 255;
    }
    return rgbImage(width, height, out);
  }
  const ch = png.channels;
  const samples = depth < 8 ? unpackBits(png.data, width, height, ch, depth) : (() => {
    const max = depth === 16 ? 65535 : 255;
    const f = new Float32Array(png.data.length);
    for (let i = 0; i < f.length; i++) f[i] = png.data[i] / max;
    return f;
  })();
  if (samples.length !== n * ch) {
    throw new Error(`decoded ${samples.length} samples, expected ${n * ch}`);
  }
  const out = new Float32Array(n * 3);
  const gray = ch <= 2; // 1 = gray, 2 = gray + alpha, 3 = RGB, 4 = RGBA
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[3 * i + c] = samples[i * ch + (gray ? 0 : c)];
  }
  return rgbImage(width, height, out);
};

/** Palette indices (1/2/4/8-bit, rows padded to bytes) as integers. */
const unpackBits8 = (
  data: ArrayLike<number>,
  width: number,
  height: number,
  depth: number,
): Uint8Array => {
  if (depth === 8) return Uint8Array.from(data as ArrayLike<number>);
  const rowBytes = Math.ceil((width * depth) / 8);
  const max = (1 << depth) - 1;
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = data[y * rowBytes + (bit >> 3)];
      out[y * width + x] = (byte >> (8 - depth - (bit & 7))) & max;
    }
  }
  return out;
};

const decodeJpegBytes = (bytes: Uint8Array, maxPixels: number): RgbImage => {
  checkJpegSize(bytes, maxPixels);
  const img = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: true,
    maxResolutionInMP: Math.max(1, maxPixels / 1e6),
    maxMemoryUsageInMB: Math.max(2048, Math.ceil((maxPixels * 8) / 2 ** 20)),
  });
  const n = img.width * img.height;
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    out[3 * i] = img.data[4 * i] / 255;
    out[3 * i + 1] = img.data[4 * i + 1] / 255;
    out[3 * i + 2] = img.data[4 * i + 2] / 255;
  }
  return rgbImage(img.width, img.height, out);
};

/** An error's message with its causes (`a: b: c`), on one line. */
const describeError = (e: unknown): string => {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur !== undefined && cur !== null; i++) {
    const m = (cur instanceof Error ? cur.message : String(cur)).split("\n")[0].trim()
      .replace(/:$/, "");
    if (m !== "" && !parts.includes(m)) parts.push(m);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(": ") || "unknown error";
};

/**
 * Decode PNG or JPEG bytes (format found from the signature, not the name). PNG chunk
 * CRCs and structure and the image size (`maxPixels`) are checked before decoding.
 * `name` is only used in the error message.
 */
export const decodeImage = (
  bytes: Uint8Array,
  name = "<bytes>",
  options: DecodeOptions = {},
): E.Either<Error, RgbImage> => {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    if (isPng(bytes)) return E.right(decodePngBytes(bytes, maxPixels));
    if (isJpeg(bytes)) return E.right(decodeJpegBytes(bytes, maxPixels));
    return E.left(new Error(`readImage: ${name}: not a PNG or JPEG file`));
  } catch (e) {
    if (e instanceof Refused && e.tooLarge) {
      return E.left(new Error(`readImage: ${name}: too large to decode (${e.message})`));
    }
    return E.left(new Error(`readImage: ${name}: cannot decode (${describeError(e)})`));
  }
};

/** Read a PNG or JPEG file; a missing, unreadable or corrupt file gives `Left` naming it. */
export const readImage = async (
  path: string,
  options: DecodeOptions = {},
): Promise<E.Either<Error, RgbImage>> => {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    return E.left(new Error(`readImage: ${path}: cannot read (${msg})`));
  }
  return decodeImage(bytes, path, options);
};

/** {@linkcode readImage} that throws its error. */
export const readImageOrThrow = async (path: string): Promise<RgbImage> => {
  const r = await readImage(path);
  if (E.isLeft(r)) throw r.left;
  return r.right;
};

/** Quantise [0, 1] floats to 8-bit codes (clamped, rounded half up). */
export const toBytes = (x: number): number => Math.round(Math.min(1, Math.max(0, x)) * 255);

/** Encode an image as an 8-bit RGB PNG (values clamped to [0, 1] and rounded). */
export const encodePng = (img: RgbImage): Uint8Array => {
  const bytes = new Uint8Array(img.data.length);
  for (let i = 0; i < bytes.length; i++) bytes[i] = toBytes(img.data[i]);
  return encodePngRaw({ width: img.width, height: img.height, data: bytes, channels: 3, depth: 8 });
};

/**
 * Write an image as an 8-bit RGB PNG file (parent folder must exist), atomically through a
 * temporary file and a rename: a symbolic link at `path` is replaced, never written
 * through. With `overwrite: false` an existing `path` is an error and is kept.
 */
export const writePng = async (
  path: string,
  img: RgbImage,
  options: AtomicWriteOptions = {},
): Promise<void> => {
  await writeFileAtomic(path, encodePng(img), options);
};

/**
 * Image files (`.png`, `.jpg`, `.jpeg`, any case) directly in `dir`, full paths, sorted.
 * Symbolic links to image files are followed (listed like files); a link whose target is
 * missing or not a file is an error naming it, never silently skipped.
 */
export const listImages = async (dir: string): Promise<string[]> => {
  const names: string[] = [];
  const sep = dir.endsWith("/") ? "" : "/";
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!/\.(png|jpe?g)$/i.test(e.name)) continue;
      if (e.isFile) names.push(e.name);
      else if (e.isSymlink) {
        let target: Deno.FileInfo | undefined;
        try {
          target = await Deno.stat(`${dir}${sep}${e.name}`);
        } catch {
          target = undefined;
        }
        if (!target?.isFile) {
          throw new Refused(
            `${dir}${sep}${e.name} is a symbolic link to ${
              target ? "something that is not a file" : "a missing file"
            }`,
          );
        }
        names.push(e.name);
      }
    }
  } catch (e) {
    if (e instanceof Refused) throw new Error(`listImages: ${e.message}`);
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new Error(`listImages: ${dir}: cannot list (${msg})`);
  }
  names.sort();
  return names.map((n) => `${dir}${sep}${n}`);
};

/** An image as a `[1, H, W, 3]` float32 tensor (caller disposes). */
export const imageToTensor = (img: RgbImage): tf.Tensor4D =>
  tf.tensor4d(img.data, [1, img.height, img.width, 3], "float32");

/** Same-size images stacked into a `[N, H, W, 3]` tensor (caller disposes). */
export const imagesToTensor = (imgs: readonly RgbImage[]): tf.Tensor4D => {
  if (imgs.length === 0) throw new RangeError("imagesToTensor: no images");
  const { width, height } = imgs[0];
  const data = new Float32Array(imgs.length * width * height * 3);
  imgs.forEach((im, i) => {
    if (im.width !== width || im.height !== height) {
      throw new ShapeError(
        `imagesToTensor: image ${i} is ${im.width}×${im.height}, image 0 is ${width}×${height}`,
      );
    }
    data.set(im.data, i * width * height * 3);
  });
  return tf.tensor4d(data, [imgs.length, height, width, 3], "float32");
};

/** The images of a `[N, H, W, 3]` tensor (async read: works on WebGPU; tensor not disposed). */
export const tensorToImages = async (t: tf.Tensor): Promise<RgbImage[]> => {
  if (t.rank !== 4 || t.shape[3] !== 3) {
    throw new ShapeError(`tensorToImages: expected [N, H, W, 3], got ${showShape(t.shape)}`);
  }
  const [n, h, w] = t.shape as [number, number, number, number];
  const all = Float32Array.from(await t.data() as Float32Array);
  return Array.from(
    { length: n },
    (_, i) => rgbImage(w, h, all.slice(i * h * w * 3, (i + 1) * h * w * 3)),
  );
};

/** The first image of a `[N, H, W, 3]` tensor (async read; tensor not disposed). */
export const tensorToImage = async (t: tf.Tensor): Promise<RgbImage> =>
  (await tensorToImages(t))[0];
