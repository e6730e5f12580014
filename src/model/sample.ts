/**
 * Sampling degradations (clean → degraded) and restorations (degraded → clean).
 *
 * `degrade`: `h = φ(x)`, `z = f(x; h)`, `u = μ + M·n`, `ŷ = f⁻¹(z + τ·u; h)` per latent
 * (DeFlow paper, §3). `restore`: `z_y = f(y; φ(y))`, `z_x ~ N(A⁻¹(z_y − μ), τ²·Σ·A⁻¹)`,
 * `x̂ = f⁻¹(z_x; φ(y))`.
 *
 * Any image size: each image is reflection-padded to a multiple of `2^levels` and cropped
 * back. Large images are processed in **tiles with overlap**: the image is cut into cores
 * of `tile − 2·overlap` pixels; each core is processed with `overlap` pixels of context
 * on every side (reflection beyond the border) and only the core is kept, so each output
 * pixel comes from exactly one tile, memory stays bounded by the tile size, and no
 * blending halves the noise variance at seams. The same seed gives the same output.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { planTiles } from "./tiles.ts";
import type { Shape4 } from "../core/bijector.ts";
import { foldIn, tfSeed } from "../core/random.ts";
import { latentShift } from "../layers/latentShift.ts";
import { scaledSample, scaledSamplePosterior } from "../layers/scaledShift.ts";
import type { ModelConfig } from "./config.ts";
import { conditionInput } from "./conditioning.ts";
import { networkLayout, sizeMultiple } from "./layout.ts";
import {
  conditionShiftScales,
  decodeWithFeatures,
  type DeflowParams,
  disposeInverses,
  encodeWithFeatures,
  latentShiftScales,
  levelFeatures,
  scaleLevels,
  withInverses,
} from "./network.ts";
import { disposeShiftStats, type ModelShiftStats, prepareShifts } from "./objective.ts";
import { contractSample, expandLatent } from "../layers/latentContraction.ts";
import { packShiftLatents, shiftLatentShapes, unpackShiftLatents } from "./shiftLatents.ts";

/** Per-channel mean/std normalisation of the degraded domain (AIM-style, optional). */
export type DomainNormalization = {
  /** Channel means and stds of the clean training images. */
  readonly clean: { readonly mean: readonly number[]; readonly std: readonly number[] };
  /** Channel means and stds of the degraded training images. */
  readonly degraded: { readonly mean: readonly number[]; readonly std: readonly number[] };
};

/** A trained model ready to sample: parameters with float64 inverses and shift statistics. */
export interface Sampler {
  /** The model configuration. */
  readonly config: ModelConfig;
  /** Parameters with every 1x1 convolution's inverse precomputed. */
  readonly params: DeflowParams;
  /** Float64 statistics of every latent shift (and contraction, if any). */
  readonly stats: readonly ModelShiftStats[];
  /** Optional degraded-domain normalisation, undone after sampling. */
  readonly normalization?: DomainNormalization;
  /** Free the tensors the sampler added (not the original parameters). */
  readonly dispose: () => void;
}

/** Prepare a sampler (float64 inverses and shift statistics; reads a few small tensors). */
export const prepareSampler = async (
  params: DeflowParams,
  config: ModelConfig,
  normalization?: DomainNormalization,
): Promise<Sampler> => {
  const p = await withInverses(params);
  const stats = await prepareShifts(params);
  return {
    config,
    params: p,
    stats,
    normalization,
    dispose: () => {
      disposeInverses(p);
      disposeShiftStats(stats);
    },
  };
};

/** Options of {@linkcode degrade} and {@linkcode restore}. */
export interface SampleOptions {
  /** Temperature τ (default 1): scales the sampled latent shift. */
  readonly temperature?: number;
  /** Seed (default 0). */
  readonly seed?: number;
  /** Number of independent samples per image (default 1). */
  readonly samples?: number;
  /** Tile side in pixels, including overlap (default 512; cores are whole 2^levels blocks). */
  readonly tile?: number;
  /** Context pixels on each side of a tile's core (default 16; rounded up to 2^levels). */
  readonly overlap?: number;
  /**
   * Translate at a dequantised point of the input (default true): the model is a density
   * of dequantised images `x̃ = x + (U − ½)/bins`, so its clean latents are distributed as
   * `f(x̃)`, not as `f(x)` of the bin centre, whose latents are atypically regular (in
   * flat regions especially) and decode the shift too weakly. Each tile draws `x̃`
   * (seeded), maps it, and the output keeps the input's own value:
   * `ŷ = x + (f⁻¹(f(x̃) + τ·u) − x̃)`. So τ = 0 still returns `x`, and no dequantisation
   * noise is added to the output.
   */
  readonly dequantize?: boolean;
  /**
   * Where {@linkcode degrade} decodes the shift's noise (default `"input"`):
   * - `"input"`: at the image's own latent, `ŷ = f⁻¹(μ + G·(f(x) + a·M·n))` (the paper's
   *   translation);
   * - `"prior"`: the deterministic part at the image, the noise at a typical latent
   *   `ε ~ N(0, I)` of the same condition:
   *   `ŷ = f⁻¹(μ + G·f(x)) + f⁻¹(μ + G·(ε + a·M·n)) − f⁻¹(μ + G·ε)`.
   *   The shift's noise is fitted to the degraded photos' marginal, i.e. where the latents
   *   are typical; in flat regions a photo's own latent is not (the flow expands them
   *   most), and decoding the noise there weakens it (measured in examples/fidelity/README.md).
   *   Costs two more decodes; τ = 0 still returns `x`. Ignored by `restore`.
   */
  readonly noiseAt?: "input" | "prior";
  /**
   * Cycle spinning of the noise over the flow's block grid (default 1: off). The flow's
   * squeezes cut the image into `2^L × 2^L` blocks, so the noise it decodes has a
   * covariance that repeats with the blocks (8×8 structure), while a degradation does not
   * care where the grid lies. With `K > 1`, {@linkcode degrade} decodes `K` independent
   * noise fields, each with the block grid moved by a different offset (distinct offsets
   * in `[0, 2^L)²`, seeded; the window is extended by reflection and conditioned afresh),
   * and adds their sum divided by `√K` to the deterministic part at the image. Exact for a
   * flow that is affine in the image (`ModelConfig.linearCoupling`, required): the noise
   * `A(h)⁻¹·G·ũ` does not depend on where it is decoded, and the sum of `K` independent
   * Gaussian fields over `√K` has the average of their covariances, the grid offsets'
   * average (`K = 4^L` averages over every offset). Costs per field one pass of the
   * conditional encoder and, for a `stationaryScale` model (one Jacobian for every
   * condition, so every field decodes under one shared condition, whose coupling and
   * injector networks run once per tile), one decode of the flow's linear parts, else the
   * field's condition networks and two decodes. Ignored by `restore`.
   */
  readonly gridOffsets?: number;
  /**
   * Called after each tile with the tiles done and the total over all `samples` (for
   * progress on large images; the work is synchronous, so it runs between tiles).
   */
  readonly onTile?: (done: number, total: number) => void;
}

/**
 * The `gridOffsets` a model should be sampled with: every offset of its block grid
 * (`4^levels`) for a flow affine in the image with one shift vector per block
 * (`linearCoupling` and `jointShift`: its noise would otherwise repeat with the blocks), 1
 * for any other model.
 */
export const recommendedGridOffsets = (config: ModelConfig): number =>
  config.linearCoupling && config.jointShift ? 4 ** config.levels : 1;

/** Reflection indices `0..n-1` extended by `before`/`after` (repeated reflection). */
const reflectIndices = (n: number, start: number, end: number): Int32Array => {
  const out = new Int32Array(end - start);
  const period = Math.max(1, 2 * n - 2);
  for (let i = start; i < end; i++) {
    let k = i;
    if (n === 1) k = 0;
    else {
      k = ((k % period) + period) % period;
      if (k >= n) k = period - k;
    }
    out[i - start] = k;
  }
  return out;
};

/** Rows `[y0, y1)` and columns `[x0, x1)` of `x`, reflecting outside the image. */
export const reflectWindow = (
  x: tf.Tensor4D,
  y0: number,
  y1: number,
  x0: number,
  x1: number,
): tf.Tensor4D =>
  tf.tidy(() => {
    const rows = tf.tensor1d(reflectIndices(x.shape[1], y0, y1), "int32");
    const cols = tf.tensor1d(reflectIndices(x.shape[2], x0, x1), "int32");
    return tf.gather(tf.gather(x, rows, 1), cols, 2) as tf.Tensor4D;
  });

/** Uniform dequantisation offsets `(U − ½)/bins` of a window (seeded). */
const dequantOffset = (shape: readonly number[], bins: number, seed: number): tf.Tensor4D =>
  tf.tidy(() =>
    tf.div(tf.sub(tf.randomUniform([...shape], 0, 1, "float32", tfSeed(seed)), 0.5), bins)
  ) as tf.Tensor4D;

type TileFn = (window: tf.Tensor4D, seed: number) => tf.Tensor4D;

/** Run `fn` over overlapping tiles of `x` (see `tiles.ts`) and assemble the cores. */
const tiled = (
  x: tf.Tensor4D,
  multiple: number,
  tile: number,
  overlap: number,
  seed: number,
  fn: TileFn,
  onTile?: (done: number, total: number) => void,
): tf.Tensor4D =>
  tf.tidy(() => {
    const plan = planTiles(x.shape[1], x.shape[2], multiple, tile, overlap);
    const rows: tf.Tensor4D[] = [];
    let cols: tf.Tensor4D[] = [];
    plan.forEach((t, i) => {
      const top = t.y0 - t.overlap;
      const left = t.x0 - t.overlap;
      const win = reflectWindow(x, top, top + t.height, left, left + t.width);
      // Free each tile's intermediates before the next tile.
      cols.push(tf.tidy(() =>
        tf.slice(fn(win, foldIn(seed, t.index)), [0, t.overlap, t.overlap, 0], [
          -1,
          t.y1 - t.y0,
          t.x1 - t.x0,
          -1,
        ])
      ));
      onTile?.(i + 1, plan.length);
      if (i === plan.length - 1 || plan[i + 1].y0 !== t.y0) {
        rows.push(cols.length === 1 ? cols[0] : tf.concat(cols, 2));
        cols = [];
      }
    });
    return rows.length === 1 ? rows[0] : tf.concat(rows, 1);
  });

const normalize = (
  x: tf.Tensor4D,
  from: { mean: readonly number[]; std: readonly number[] },
  to: { mean: readonly number[]; std: readonly number[] },
): tf.Tensor4D =>
  tf.tidy(() =>
    tf.add(
      tf.mul(
        tf.div(tf.sub(x, tf.tensor1d([...from.mean])), tf.tensor1d([...from.std])),
        tf.tensor1d([...to.std]),
      ),
      tf.tensor1d([...to.mean]),
    )
  );

/**
 * `k` distinct offsets `[dy, dx]` in `[0, m)²` (a seeded shuffle of all `m²`; `k ≤ m²`).
 */
export const gridOffsetList = (m: number, k: number, seed: number): [number, number][] => {
  if (!Number.isInteger(k) || k < 1 || k > m * m) {
    throw new RangeError(`gridOffsets must be an integer in [1, ${m * m}], got ${k}`);
  }
  const all = Array.from({ length: m * m }, (_, i): [number, number] => [Math.floor(i / m), i % m]);
  let state = (seed >>> 0) || 1;
  for (let i = all.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, k);
};

const checkImages = (x: tf.Tensor4D, config: ModelConfig, what: string) => {
  if (x.rank !== 4 || x.shape[3] !== config.imageChannels) {
    throw new Error(
      `${what}: expected NHWC images with ${config.imageChannels} channels, got [${x.shape}]`,
    );
  }
};

const opts = (o: SampleOptions) => {
  const temperature = o.temperature ?? 1;
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new RangeError(`temperature must be a finite number ≥ 0, got ${temperature}`);
  }
  const samples = o.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new RangeError(`samples must be a positive integer, got ${samples}`);
  }
  if (o.noiseAt !== undefined && o.noiseAt !== "input" && o.noiseAt !== "prior") {
    throw new RangeError(`noiseAt must be "input" or "prior", got ${String(o.noiseAt)}`);
  }
  const gridOffsets = o.gridOffsets ?? 1;
  if (!Number.isInteger(gridOffsets) || gridOffsets < 1) {
    throw new RangeError(`gridOffsets must be a positive integer, got ${gridOffsets}`);
  }
  return {
    temperature,
    samples,
    gridOffsets,
    seed: o.seed ?? 0,
    tile: o.tile ?? 512,
    overlap: o.overlap ?? 16,
    dequantize: o.dequantize ?? true,
    noiseAt: o.noiseAt ?? "input",
  };
};

/**
 * Maps one shift latent of a tile; `scale` is its per-position shift scale map
 * (`config.adaptiveShift`: `a` for degrading, `a²` for restoring) or `null`; `noise` false
 * leaves out the sampled noise (the deterministic part of the map).
 */
type LatentMap = (
  z: tf.Tensor4D,
  latent: number,
  seed: number,
  temperature: number,
  scale: tf.Tensor4D | null,
  noise: boolean,
) => tf.Tensor4D;

/**
 * The shared sampling path: tile, condition on each window, encode, map every latent,
 * decode, assemble, clip to [0, 1]. `before`/`after` apply the optional normalisation.
 */
const sampleThroughLatents = (
  sampler: Sampler,
  x: tf.Tensor4D,
  options: SampleOptions,
  what: string,
  squaredScales: boolean,
  mapLatent: LatentMap,
  before?: (x: tf.Tensor4D) => tf.Tensor4D,
  after?: (y: tf.Tensor4D) => tf.Tensor4D,
): tf.Tensor4D[] => {
  const { config, params } = sampler;
  checkImages(x, config, what);
  const o = opts(options);
  const m = sizeMultiple(config);
  if (o.gridOffsets > 1 && !config.linearCoupling) {
    throw new RangeError(
      `gridOffsets ${o.gridOffsets} needs a model trained with linearCoupling (a flow affine ` +
        `in the image); this model's flow is not`,
    );
  }
  if (o.gridOffsets > m * m) {
    throw new RangeError(
      `gridOffsets must be at most ${m * m} (2^levels squared), got ${o.gridOffsets}`,
    );
  }
  return Array.from({ length: o.samples }, (_, s) =>
    tf.tidy(() => {
      const input = before ? before(x) : x;
      const out = tiled(
        input,
        m,
        Math.max(o.tile, m),
        o.overlap,
        foldIn(o.seed, s),
        (win, seed) => {
          const cond = conditionInput(win, {
            factor: config.conditionFactor,
            noiseStd: config.conditionNoise,
            seed: foldIn(seed, 0),
          });
          const feats = levelFeatures(params, config, cond, win.shape[1], win.shape[2]);
          const levels = scaleLevels(params, config, feats); // conditioners run once per tile
          // The model's input is the dequantised image: map a typical point of the
          // image's quantisation cell and keep the image's own value (see SampleOptions).
          const offset = o.dequantize
            ? dequantOffset(win.shape, config.bins, foldIn(seed, 1000))
            : null;
          const input = offset ? tf.add(win, offset) as tf.Tensor4D : win;
          const { latents } = encodeWithFeatures(params, config, input, feats, levels);
          const scales = latentShiftScales(params, config, feats, squaredScales);
          const shapes = latents.map((z) => z.shape);
          const decode = (zs: readonly tf.Tensor4D[]) =>
            decodeWithFeatures(
              params,
              config,
              unpackShiftLatents(config, zs, shapes),
              feats,
              levels,
            )
              .x;
          const map = (zs: readonly tf.Tensor4D[], noise: boolean) =>
            zs.map((z, i) =>
              mapLatent(z, i, foldIn(seed, i + 1), o.temperature, scales?.[i] ?? null, noise)
            );
          const packed = packShiftLatents(config, latents);
          let decoded: tf.Tensor4D;
          if (o.gridOffsets > 1) {
            // The deterministic part at the image, the noise spun over grid offsets.
            const [n, hh, ww] = win.shape;
            const offsets = gridOffsetList(m, o.gridOffsets, foldIn(seed, 3000));
            const netShapes = networkLayout(config, hh + m, ww + m).latents.map((
              l,
            ): Shape4 => [n, l.height, l.width, l.channels]);
            const zeros = shiftLatentShapes(config, netShapes).map((sh) =>
              tf.zeros([...sh]) as tf.Tensor4D
            );
            /** Field `k`'s conditioning input: the window moved by its offset. */
            const conditionInputAt = (k: number) => {
              const [dy, dx] = offsets[k];
              const wk = reflectWindow(win, -dy, hh + m - dy, -dx, ww + m - dx);
              return conditionInput(wk, {
                factor: config.conditionFactor,
                noiseStd: config.conditionNoise,
                seed: foldIn(foldIn(seed, 4000 + k), 0),
              });
            };
            const conditionAt = (k: number) =>
              levelFeatures(params, config, conditionInputAt(k), hh + m, ww + m);
            /** The latents of field `k` (noise or not) under shift scales `sck`. */
            const fieldLatents = (k: number, sck: tf.Tensor4D[] | null, noise: boolean) =>
              unpackShiftLatents(
                config,
                zeros.map((z, i) =>
                  mapLatent(
                    z,
                    i,
                    foldIn(foldIn(seed, 4000 + k), i + 1),
                    o.temperature,
                    sck?.[i] ?? null,
                    noise,
                  )
                ),
                netShapes,
              );
            // With one Jacobian for every condition (`stationaryScale`), a latent
            // displacement decodes to the same image displacement whatever features the
            // flow runs with: the first offset's features and its conditioners' outputs
            // (computed once), and its decoded mean, serve every field; each field still
            // needs its own features for the shift scale a(h). (Decoding the fields in
            // batches was slower on wasm: 6.8 s against 4.2 s for 64 fields of a 128-pixel
            // tile at 14 fields a batch.) Otherwise each field decodes under its own
            // condition.
            // (The tile's tidy frees them.)
            /** Field `k`'s decoded noise over the whole window. */
            const fieldNoise: (k: number) => tf.Tensor = config.stationaryScale
              ? (() => {
                const f0 = conditionAt(0);
                const l0 = scaleLevels(params, config, f0);
                const s0 = latentShiftScales(params, config, f0, squaredScales);
                const mean0 =
                  decodeWithFeatures(params, config, fieldLatents(0, s0, false), f0, l0).x;
                return (k: number) => {
                  // (Field 0's condition is the shared one: not encoded twice.)
                  const sck = k === 0 ? s0 : conditionShiftScales(
                    params,
                    config,
                    conditionInputAt(k),
                    hh + m,
                    ww + m,
                    squaredScales,
                  );
                  const fields = fieldLatents(k, sck, true);
                  return tf.sub(decodeWithFeatures(params, config, fields, f0, l0).x, mean0);
                };
              })()
              : (k: number) => {
                const fk = conditionAt(k);
                const sck = latentShiftScales(params, config, fk, squaredScales);
                const lk = scaleLevels(params, config, fk);
                const decodeK = (noise: boolean) =>
                  decodeWithFeatures(params, config, fieldLatents(k, sck, noise), fk, lk).x;
                return tf.sub(decodeK(true), decodeK(false));
              };
            const fieldSum = tf.addN(offsets.map(([dy, dx], k) =>
              tf.tidy(() => tf.slice(fieldNoise(k), [0, dy, dx, 0], [n, hh, ww, -1]))
            ));
            decoded = tf.add(
              decode(map(packed, false)),
              tf.div(fieldSum, Math.sqrt(offsets.length)),
            ) as tf.Tensor4D;
          } else if (o.noiseAt === "prior") {
            // The deterministic part at the image, the noise at a typical latent.
            const eps = packed.map((z, i) =>
              tf.randomNormal(
                z.shape,
                0,
                1,
                "float32",
                tfSeed(foldIn(seed, 2000 + i)),
              ) as tf.Tensor4D
            );
            decoded = tf.add(
              decode(map(packed, false)),
              tf.sub(decode(map(eps, true)), decode(map(eps, false))),
            ) as tf.Tensor4D;
          } else decoded = decode(map(packed, true));
          return offset ? tf.sub(decoded, offset) as tf.Tensor4D : decoded;
        },
        options.onTile
          ? (done, total) =>
            options.onTile!(s * total + done, o.samples * total)
          : undefined,
      );
      return tf.clipByValue(after ? after(out) : out, 0, 1) as tf.Tensor4D;
    }));
};

/**
 * Degraded versions of clean images `x` (NHWC in [0, 1]): `samples` tensors of the same
 * shape, clipped to [0, 1]. Same seed, same output.
 */
export const degrade = (
  sampler: Sampler,
  x: tf.Tensor4D,
  options: SampleOptions = {},
): tf.Tensor4D[] => {
  const norm = sampler.normalization;
  return sampleThroughLatents(
    sampler,
    x,
    options,
    "degrade",
    false,
    (z, i, seed, temperature, scale, noise) => {
      const shape: Shape4 = z.shape;
      const p = sampler.params.shifts[i];
      const u = !noise
        ? tf.add(tf.zeros([...shape]), tf.mul(p.mu, temperature)) as tf.Tensor4D
        : scale
        ? scaledSample(p, shape, scale, { temperature, seed })
        : latentShift.sample(p, shape, { temperature, seed });
      const contraction = sampler.stats[i].contraction;
      return contraction
        ? contractSample(contraction, z, u, p.mu, temperature)
        : tf.add(z, u) as tf.Tensor4D;
    },
    undefined,
    norm ? (y) => normalize(y, norm.clean, norm.degraded) : undefined,
  );
};

/**
 * Restored (clean) versions of degraded images `y`, sampling the latent posterior with
 * temperature τ (τ = 0 gives the posterior mean). Clipped to [0, 1].
 */
export const restore = (
  sampler: Sampler,
  y: tf.Tensor4D,
  options: SampleOptions = {},
): tf.Tensor4D[] => {
  const norm = sampler.normalization;
  return sampleThroughLatents(
    sampler,
    y,
    { ...options, noiseAt: "input", gridOffsets: 1 }, // restoring has no noise to place
    "restore",
    true,
    (zy, i, seed, temperature, scale2) => {
      const p = sampler.params.shifts[i];
      const stats = sampler.stats[i];
      const z = stats.contraction ? expandLatent(stats.contraction, zy, p.mu) : zy;
      return scale2
        ? scaledSamplePosterior(p, stats, z, scale2, { temperature, seed })
        : latentShift.samplePosterior(p, stats, z, { temperature, seed });
    },
    norm ? (x) => normalize(x, norm.degraded, norm.clean) : undefined,
  );
};
