/**
 * Tile-by-tile degradation with progress, giving the same output as `degrade` (and so as
 * `deflow degrade`) on the same seed and backend.
 *
 * `degrade` (src/model/sample.ts) processes a large image in one call: overlapping tiles
 * (512 px with 16 px of context), tile `t` of sample `s` seeded with
 * `foldIn(foldIn(seed, s), t)`. The page needs to report progress and to yield between
 * tiles, so it runs the same tiles one call each: every window is cut with the library's
 * `reflectWindow` and degraded by `degrade` as a single tile, with a seed chosen so that
 * the single tile's own seed, `foldIn(foldIn(S, 0), 0)`, is the seed the whole-image call
 * gives that tile (`foldIn` is a bijection of its seed, see {@linkcode unfoldIn}). The
 * tile plan is `degrade`'s own (`src/model/tiles.ts`); `test/web_tiles_test.ts` checks the
 * two agree exactly.
 *
 * @module
 */
import { tf } from "../../src/tf.ts";
import { foldIn } from "../../src/core/random.ts";
import { sizeMultiple } from "../../src/model/layout.ts";
import {
  degrade,
  recommendedGridOffsets,
  reflectWindow,
  type Sampler,
} from "../../src/model/sample.ts";
import { planTiles } from "../../src/model/tiles.ts";

export { planTiles, type Tile } from "../../src/model/tiles.ts";

const inverseOdd = (a: number): number => {
  // Newton's iteration for the inverse of an odd number modulo 2³².
  let x = a >>> 0;
  for (let i = 0; i < 5; i++) x = Math.imul(x, (2 - Math.imul(a, x)) >>> 0) >>> 0;
  return x >>> 0;
};
const INV_A = inverseOdd(0x7feb352d);
const INV_B = inverseOdd(0x846ca68b);

/** Inverse of the `lowbias32` mix that `foldIn` uses. */
const unmix32 = (y: number): number => {
  let x = (y ^ (y >>> 16)) >>> 0;
  x = Math.imul(x, INV_B) >>> 0;
  x = (x ^ (x >>> 15) ^ (x >>> 30)) >>> 0;
  x = Math.imul(x, INV_A) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
};

/** The seed `s` with `foldIn(s, k) === child` (`foldIn` is a bijection of its seed). */
export const unfoldIn = (child: number, k: number): number =>
  unmix32((unmix32(child >>> 0) ^ Math.imul((k >>> 0) + 1, 0x9e3779b9)) >>> 0);

/** FNV-1a of a string, as `deflow degrade` hashes a file's stem into its seed. */
export const hash32 = (s: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
};

/** The seed `deflow degrade --seed seed` uses for the file `fileName` (its stem is hashed). */
export const cliImageSeed = (seed: number, fileName: string): number =>
  foldIn(seed, hash32(fileName.replace(/^.*\//, "").replace(/\.[^.]+$/, "")));

/** Options of {@linkcode degradeByTiles}. */
export interface TiledOptions {
  /** Seed of the image (as `degrade`'s `seed`). */
  readonly seed: number;
  /** Temperature (default 1). */
  readonly temperature?: number;
  /** Which sample (as the `s`-th of `degrade`'s `samples`; default 0). */
  readonly sample?: number;
  /** Tile side (default 512). */
  readonly tile?: number;
  /** Context pixels (default 16). */
  readonly overlap?: number;
  /**
   * Noise fields over offsets of the block grid (as `degrade`'s `gridOffsets`; default:
   * the model's recommendation, what `deflow degrade` uses).
   */
  readonly gridOffsets?: number;
  /** Called after each tile with the number done and the total. */
  readonly onTile?: (done: number, total: number) => void | Promise<void>;
}

/**
 * One degraded sample of `x` (`[1, H, W, 3]` in [0, 1]) as an interleaved RGB
 * `Float32Array`, computed tile by tile (awaiting each tile's data, so the caller's event
 * loop runs between tiles). Equal to the `sample`-th output of
 * `degrade(sampler, x, { seed, temperature, samples: sample + 1, tile, overlap, gridOffsets })`.
 */
export const degradeByTiles = async (
  sampler: Sampler,
  x: tf.Tensor4D,
  options: TiledOptions,
): Promise<Float32Array> => {
  const [n, h, w, c] = x.shape;
  if (n !== 1) throw new Error(`degradeByTiles: one image at a time, got batch ${n}`);
  const tiles = planTiles(h, w, sizeMultiple(sampler.config), options.tile, options.overlap);
  const sampleSeed = foldIn(options.seed, options.sample ?? 0);
  const out = new Float32Array(h * w * c);
  const gridOffsets = options.gridOffsets ?? recommendedGridOffsets(sampler.config);
  for (const t of tiles) {
    const wanted = foldIn(sampleSeed, t.index);
    const seed = unfoldIn(unfoldIn(wanted, 0), 0);
    const top = t.y0 - t.overlap, left = t.x0 - t.overlap;
    const win = reflectWindow(x, top, top + t.height, left, left + t.width);
    let ys: tf.Tensor4D[] = [];
    let core: tf.Tensor | undefined;
    try {
      ys = degrade(sampler, win, {
        seed,
        temperature: options.temperature ?? 1,
        tile: Math.max(t.height, t.width),
        ...(gridOffsets > 1 ? { gridOffsets } : {}),
      });
      const [ch, cw] = [t.y1 - t.y0, t.x1 - t.x0];
      core = tf.slice(ys[0], [0, t.overlap, t.overlap, 0], [1, ch, cw, c]);
      const data = await core.data() as Float32Array;
      for (let r = 0; r < ch; r++) {
        out.set(data.subarray(r * cw * c, (r + 1) * cw * c), ((t.y0 + r) * w + t.x0) * c);
      }
    } finally {
      tf.dispose([win, ...ys, ...(core ? [core] : [])]);
    }
    await options.onTile?.(t.index + 1, tiles.length);
  }
  return out;
};
