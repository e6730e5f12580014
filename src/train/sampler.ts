/**
 * The unpaired training-data sampler: mixed batches of random crops from a clean and a
 * degraded image set (as the authors train DeFlow).
 *
 * Each sample comes from either domain with probability ½, is a uniformly placed
 * `crop × crop` window of a uniformly chosen image of that domain, and is flipped
 * horizontally with probability ½. The sampler is pure: its state is a plain JSON record
 * ({@linkcode SamplerState}) that goes in and comes out, so a checkpoint can store it and
 * a resumed run draws exactly the batches an uninterrupted one would.
 *
 * Every sample consumes exactly five uniforms (domain, image, top, left, flip), so the
 * stream does not depend on the image sizes.
 *
 * @module
 */
import { t } from "../iots.ts";
import { tf } from "../tf.ts";
import { nextUniform, rng, type RngState } from "../core/random.ts";
import type { RgbImage } from "../image/io.ts";
import type { Batch } from "./step.ts";

/** The sampler's state: the PRNG state only (JSON-serialisable). */
export interface SamplerState {
  /** PRNG state (`{ state: uint32 }`). */
  readonly rng: RngState;
}

const isUint32 = (u: unknown): u is number =>
  typeof u === "number" && Number.isInteger(u) && u >= 0 && u <= 0xffffffff;

/** An integer in [0, 2³²). */
const Uint32Codec: t.Type<number, number, unknown> = new t.Type<number>(
  "Uint32",
  isUint32,
  (u, c) => (isUint32(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** io-ts codec of {@linkcode SamplerState} (for reading it back from a checkpoint). */
export const SamplerStateCodec: t.Type<SamplerState, SamplerState, unknown> = t.type({
  rng: t.type({ state: Uint32Codec }),
}, "SamplerState");

/** A fresh sampler state from an integer seed. */
export const samplerInit = (seed: number): SamplerState => ({ rng: rng(seed) });

/** Options of {@linkcode nextBatch}. */
export interface BatchOptions {
  /** Samples per batch (integer ≥ 1). */
  readonly batch: number;
  /** Side of the square crops in pixels (integer ≥ 1, at most every image's sides). */
  readonly crop: number;
  /**
   * Crop corners lie on multiples of this many pixels (integer ≥ 1, default 1). The
   * trainer passes the flow's block size `2^levels`, so that a degradation with a grid of
   * its own anchored at the image origin (JPEG's 8×8 blocks) meets the flow's squeeze grid
   * at the same phase in every crop, as it does when a whole image is degraded.
   */
  readonly align?: number;
}

/** One batch and the sampler state after drawing it. */
export interface BatchDraw {
  /** The batch (caller disposes `x` and `degradedMask`). */
  readonly batch: Batch;
  /** The next sampler state. */
  readonly state: SamplerState;
}

/**
 * Throw a clear error unless every image is at least `crop × crop`. `domain` and the
 * optional `names` (file paths, aligned with `images`) go into the message.
 */
export const checkCropFits = (
  images: readonly RgbImage[],
  crop: number,
  domain: string,
  names?: readonly string[],
): void => {
  images.forEach((im, i) => {
    if (im.width < crop || im.height < crop) {
      const name = names?.[i] !== undefined ? `"${names[i]}"` : `#${i}`;
      throw new RangeError(
        `sampler: ${domain} image ${name} is ${im.width}×${im.height}, smaller than the ` +
          `${crop}×${crop} crop`,
      );
    }
  });
};

const checkOptions = (
  clean: readonly RgbImage[],
  degraded: readonly RgbImage[],
  o: BatchOptions,
) => {
  if (!Number.isInteger(o.batch) || o.batch < 1) {
    throw new RangeError(`sampler: batch must be an integer ≥ 1, got ${o.batch}`);
  }
  if (!Number.isInteger(o.crop) || o.crop < 1) {
    throw new RangeError(`sampler: crop must be an integer ≥ 1, got ${o.crop}`);
  }
  if (o.align !== undefined && !(Number.isInteger(o.align) && o.align >= 1)) {
    throw new RangeError(`sampler: align must be an integer ≥ 1, got ${o.align}`);
  }
  if (clean.length === 0) throw new RangeError("sampler: the clean image set is empty");
  if (degraded.length === 0) throw new RangeError("sampler: the degraded image set is empty");
};

/** Copy a (possibly flipped) crop of `im` into `out` at sample `k`. */
const copyCrop = (
  out: Float32Array,
  k: number,
  im: RgbImage,
  top: number,
  left: number,
  crop: number,
  flip: boolean,
): void => {
  const base = k * crop * crop * 3;
  const src = im.data;
  for (let y = 0; y < crop; y++) {
    const row = ((top + y) * im.width + left) * 3;
    const dst = base + y * crop * 3;
    if (!flip) {
      out.set(src.subarray(row, row + crop * 3), dst);
    } else {
      for (let x = 0; x < crop; x++) {
        const s = row + (crop - 1 - x) * 3;
        const d = dst + x * 3;
        out[d] = src[s];
        out[d + 1] = src[s + 1];
        out[d + 2] = src[s + 2];
      }
    }
  }
};

const pick = (u: number, n: number): number => Math.min(n - 1, Math.floor(u * n));

/** A crop corner in `[0, room]` on a multiple of `align` (there is always 0). */
const corner = (u: number, room: number, align: number): number =>
  align * pick(u, Math.floor(room / align) + 1);

/**
 * Draw a batch with the given domain per sample (`true` = degraded) or, for `null`
 * entries, a random domain. Shared by {@linkcode nextBatch} and {@linkcode balancedBatch}.
 */
const draw = (
  state: SamplerState,
  clean: readonly RgbImage[],
  degraded: readonly RgbImage[],
  domains: readonly (boolean | null)[],
  crop: number,
  align: number,
): BatchDraw => {
  checkCropFits(clean, crop, "clean");
  checkCropFits(degraded, crop, "degraded");
  const n = domains.length;
  const data = new Float32Array(n * crop * crop * 3);
  const mask = new Float32Array(n);
  let r = state.rng;
  const next = (): number => {
    const [u, s] = nextUniform(r);
    r = s;
    return u;
  };
  for (let k = 0; k < n; k++) {
    const uDomain = next();
    const uImage = next();
    const uTop = next();
    const uLeft = next();
    const uFlip = next();
    const isDegraded = domains[k] ?? uDomain < 0.5;
    const set = isDegraded ? degraded : clean;
    const im = set[pick(uImage, set.length)];
    const top = corner(uTop, im.height - crop, align);
    const left = corner(uLeft, im.width - crop, align);
    copyCrop(data, k, im, top, left, crop, uFlip < 0.5);
    mask[k] = isDegraded ? 1 : 0;
  }
  return {
    batch: {
      x: tf.tensor4d(data, [n, crop, crop, 3], "float32"),
      degradedMask: tf.tensor1d(mask, "float32"),
    },
    state: { rng: r },
  };
};

/**
 * Draw the next training batch: each sample is degraded with probability ½, a random
 * crop of a random image of its domain (corners on multiples of `align`), flipped
 * horizontally with probability ½ (a flip keeps an aligned crop's grid when `crop` is a
 * multiple of `align`). Pure:
 * the same state gives the same batch and the same next state. Throws (naming the image)
 * when an image is smaller than the crop, and on empty sets or bad options.
 */
export const nextBatch = (
  state: SamplerState,
  clean: readonly RgbImage[],
  degraded: readonly RgbImage[],
  options: BatchOptions,
): BatchDraw => {
  checkOptions(clean, degraded, options);
  return draw(
    state,
    clean,
    degraded,
    Array(options.batch).fill(null),
    options.crop,
    options.align ?? 1,
  );
};

/**
 * A batch with both domains: the first `⌈batch/2⌉` samples clean, the rest degraded
 * (`batch` ≥ 2). Used for the data-dependent ActNorm initialisation, which must see both
 * domains. Same crop and flip randomness as {@linkcode nextBatch}.
 */
export const balancedBatch = (
  state: SamplerState,
  clean: readonly RgbImage[],
  degraded: readonly RgbImage[],
  options: BatchOptions,
): BatchDraw => {
  checkOptions(clean, degraded, options);
  if (options.batch < 2) {
    throw new RangeError(
      `sampler: a balanced batch needs at least 2 samples, got ${options.batch}`,
    );
  }
  const half = Math.ceil(options.batch / 2);
  const domains = Array.from({ length: options.batch }, (_, k) => k >= half);
  return draw(state, clean, degraded, domains, options.crop, options.align ?? 1);
};
