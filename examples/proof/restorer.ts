/**
 * The downstream proof's restoration model: a small residual CNN denoiser
 * `x̂ = y + net(y)`, `net` = 3×3 conv 3→C, ReLU, D × (3×3 conv C→C, ReLU), 3×3 conv C→3,
 * trained with Adam (`src/train/adam.ts`) on the mean squared error against the clean
 * target, and evaluated by PSNR / SSIM (`src/eval/metrics.ts`).
 *
 * Every method of the proof trains the same network from the same initialisation (one
 * seed) on the same sequence of batches ({@linkcode batchPlan}): only the degraded inputs
 * differ. Convolutions use `conv2dSame` (its gradient works on the wasm backend, which has
 * no `Conv2DBackpropFilter` kernel).
 *
 * @module
 */
import { tf } from "../../src/tf.ts";
import { conv2dSame } from "../../src/nn/conv.ts";
import { foldIn, nextUniform, rng, type RngState, tfSeed } from "../../src/core/random.ts";
import { disposeParams, leaves } from "../../src/core/params.ts";
import { adamInit, adamStep, disposeAdamState } from "../../src/train/adam.ts";
import { imagesToTensor, type RgbImage, tensorToImages } from "../../src/image/io.ts";
import { psnr, ssim } from "../../src/eval/metrics.ts";

/** Size of the restoration CNN. */
export interface RestorerConfig {
  /** Feature channels of the hidden convolutions (default 32). */
  readonly width: number;
  /** Number of hidden C→C convolutions (default 5). */
  readonly depth: number;
}

/** The default restorer: 3→32, 5 × 32→32, 32→3 (about 47k parameters, receptive field 15 px). */
export const defaultRestorer: RestorerConfig = { width: 32, depth: 5 };

/** One 3×3 convolution's parameters. */
export type ConvParams = { readonly w: tf.Tensor4D; readonly b: tf.Tensor1D };

/** The restorer's parameters: its convolutions in order (caller disposes). */
export type RestorerParams = { readonly convs: readonly ConvParams[] };

/**
 * Seeded initialisation: He-normal weights for the ReLU layers, zero biases, and a last
 * layer scaled by 0.01 so the network starts close to the identity `x̂ = y`.
 */
export const initRestorer = (config: RestorerConfig, seed: number): RestorerParams => {
  const { width: c, depth } = config;
  const shapes: [number, number][] = [[3, c], ...Array.from({ length: depth }, () => [c, c]), [
    c,
    3,
  ]] as [number, number][];
  const convs = shapes.map(([ci, co], i) => {
    const last = i === shapes.length - 1;
    const std = Math.sqrt(2 / (9 * ci)) * (last ? 0.01 : 1);
    return {
      w: tf.randomNormal([3, 3, ci, co], 0, std, "float32", tfSeed(foldIn(seed, i))) as tf.Tensor4D,
      b: tf.zeros([co]) as tf.Tensor1D,
    };
  });
  return { convs };
};

/** Number of scalar parameters. */
export const countRestorerParams = (p: RestorerParams): number =>
  leaves(p).reduce((n, t) => n + t.size, 0);

/** `y + net(y)` for a `[N, H, W, 3]` batch (not clipped). */
export const restorerForward = (p: RestorerParams, y: tf.Tensor4D): tf.Tensor4D =>
  tf.tidy(() => {
    let h: tf.Tensor4D = y;
    p.convs.forEach((cv, i) => {
      h = conv2dSame(h, cv.w, cv.b, `restorer.conv${i}`);
      if (i < p.convs.length - 1) h = tf.relu(h);
    });
    return tf.add(y, h) as tf.Tensor4D;
  });

/**
 * A pool of training pairs: `count` clean crops of `size`² pixels and, for the method,
 * `variants` degraded versions of each (independent samples of its degradation), as flat
 * NHWC arrays (`count · size² · 3` samples each).
 */
export interface PairPool {
  /** Crop side in pixels. */
  readonly size: number;
  /** Number of clean crops. */
  readonly count: number;
  /** The clean targets. */
  readonly clean: Float32Array;
  /** The degraded inputs, one array per variant (≥ 1). */
  readonly degraded: readonly Float32Array[];
}

/** One training example of a batch: which crop, which degraded variant, flipped or not. */
export interface BatchItem {
  /** Crop index in the pool. */
  readonly index: number;
  /** A uniform number in [0, 1) choosing the variant (`floor(u · variants)`). */
  readonly variantU: number;
  /** Mirror left–right. */
  readonly flip: boolean;
}

/**
 * The batches of a run: `steps` batches of `batch` items drawn with `seed`. It depends only
 * on the pool size, so every method sees the same crops in the same order.
 */
export const batchPlan = (
  count: number,
  steps: number,
  batch: number,
  seed: number,
): BatchItem[][] => {
  let r: RngState = rng(seed);
  const u = (): number => {
    const [v, next] = nextUniform(r);
    r = next;
    return v;
  };
  return Array.from(
    { length: steps },
    () =>
      Array.from({ length: batch }, () => ({
        index: Math.floor(u() * count),
        variantU: u(),
        flip: u() < 0.5,
      })),
  );
};

/** Copy crop `index` of a flat pool into `out` at slot `slot`, mirrored if `flip`. */
const copyCrop = (
  src: Float32Array,
  out: Float32Array,
  size: number,
  index: number,
  slot: number,
  flip: boolean,
): void => {
  const n = size * size * 3, row = size * 3;
  const s0 = index * n, o0 = slot * n;
  if (!flip) {
    out.set(src.subarray(s0, s0 + n), o0);
    return;
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const s = s0 + y * row + x * 3, o = o0 + y * row + (size - 1 - x) * 3;
      out[o] = src[s];
      out[o + 1] = src[s + 1];
      out[o + 2] = src[s + 2];
    }
  }
};

/** The `[B, S, S, 3]` input and target arrays of one planned batch. */
export const assembleBatch = (
  pool: PairPool,
  items: readonly BatchItem[],
): { input: Float32Array; target: Float32Array } => {
  const n = pool.size * pool.size * 3;
  const input = new Float32Array(items.length * n), target = new Float32Array(items.length * n);
  items.forEach((it, k) => {
    const v = Math.min(pool.degraded.length - 1, Math.floor(it.variantU * pool.degraded.length));
    copyCrop(pool.degraded[v], input, pool.size, it.index, k, it.flip);
    copyCrop(pool.clean, target, pool.size, it.index, k, it.flip);
  });
  return { input, target };
};

/** Options of {@linkcode trainRestorer}. */
export interface TrainRestorerOptions {
  /** The training pairs. */
  readonly pool: PairPool;
  /** The batches ({@linkcode batchPlan}); one Adam step each. */
  readonly plan: readonly (readonly BatchItem[])[];
  /** Network size (default {@linkcode defaultRestorer}). */
  readonly config?: RestorerConfig;
  /** Initialisation seed (the same for every method). */
  readonly seed: number;
  /** Base learning rate (default 1e-3), halved at 50 %, 75 % and 90 % of the run. */
  readonly lr?: number;
  /** Called after every step with the step number (1-based) and the batch MSE. */
  readonly onStep?: (step: number, loss: number) => void;
}

/** The result of {@linkcode trainRestorer}; the caller disposes `params`. */
export interface TrainedRestorer {
  /** The trained parameters. */
  readonly params: RestorerParams;
  /** The batch MSE of every step. */
  readonly losses: number[];
  /** Wall-clock seconds of training. */
  readonly seconds: number;
}

/** The learning rate at step `t` (0-based) of `n`: `lr`, halved at 50 %, 75 % and 90 %. */
export const restorerLr = (lr: number, t: number, n: number): number =>
  lr * 0.5 ** [0.5, 0.75, 0.9].filter((m) => t >= Math.floor(m * n)).length;

/** Train the restorer on `pool` with Adam on the MSE, one step per planned batch. */
export const trainRestorer = async (opts: TrainRestorerOptions): Promise<TrainedRestorer> => {
  const { pool, plan } = opts;
  const lr = opts.lr ?? 1e-3;
  const t0 = performance.now();
  let params = initRestorer(opts.config ?? defaultRestorer, opts.seed);
  let state = adamInit(params);
  const losses: number[] = [];
  const shape: [number, number, number, number] = [0, pool.size, pool.size, 3];
  try {
    for (let t = 0; t < plan.length; t++) {
      const { input, target } = assembleBatch(pool, plan[t]);
      shape[0] = plan[t].length;
      const x = tf.tensor4d(input, shape), y = tf.tensor4d(target, shape);
      const { value, grads } = tf.valueAndGrads((...ps: tf.Tensor[]) => {
        const p: RestorerParams = {
          convs: params.convs.map((_, i) => ({
            w: ps[2 * i] as tf.Tensor4D,
            b: ps[2 * i + 1] as tf.Tensor1D,
          })),
        };
        return tf.mean(tf.squaredDifference(restorerForward(p, x), y)) as tf.Scalar;
      })(convLeaves(params));
      // adamStep wants gradients in trainableParams (sorted-path) order: map by path.
      const gradMap = gradsByPath(params, grads);
      const next = adamStep(params, gradMap, state, { lr: restorerLr(lr, t, plan.length) });
      const loss = (await value.data())[0];
      tf.dispose([x, y, value, ...grads]);
      disposeParams(params);
      disposeAdamState(state);
      params = next.params;
      state = next.state;
      losses.push(loss);
      opts.onStep?.(t + 1, loss);
    }
  } catch (e) {
    disposeParams(params);
    disposeAdamState(state);
    throw e;
  }
  disposeAdamState(state);
  return { params, losses, seconds: (performance.now() - t0) / 1000 };
};

/** The conv tensors in layer order: w₀, b₀, w₁, b₁, … */
const convLeaves = (p: RestorerParams): tf.Tensor[] => p.convs.flatMap((c) => [c.w, c.b]);

/** Gradients (in {@linkcode convLeaves} order) keyed by their leaves' paths. */
const gradsByPath = (p: RestorerParams, grads: readonly tf.Tensor[]): Map<string, tf.Tensor> =>
  new Map(p.convs.flatMap((_, i) => [
    [`convs.${i}.w`, grads[2 * i]],
    [`convs.${i}.b`, grads[2 * i + 1]],
  ]));

/**
 * Restore images (all the same size) in chunks of `chunk`: `clip(y + net(y))`, rounded to
 * 8 bits as a saved PNG would be.
 */
export const restoreImages = async (
  params: RestorerParams,
  imgs: readonly RgbImage[],
  chunk = 16,
): Promise<RgbImage[]> => {
  const out: RgbImage[] = [];
  for (let i = 0; i < imgs.length; i += chunk) {
    const y = imagesToTensor(imgs.slice(i, i + chunk));
    const x = tf.tidy(() =>
      tf.div(tf.round(tf.mul(tf.clipByValue(restorerForward(params, y), 0, 1), 255)), 255)
    );
    out.push(...await tensorToImages(x));
    tf.dispose([x, y]);
  }
  return out;
};

/** Per-image and mean PSNR (dB) / SSIM (RGB mean) of `images` against `clean`. */
export interface Scores {
  /** PSNR of every image. */
  readonly psnr: number[];
  /** SSIM of every image. */
  readonly ssim: number[];
  /** Mean PSNR over images. */
  readonly meanPsnr: number;
  /** Mean SSIM over images. */
  readonly meanSsim: number;
}

/** PSNR / SSIM of each image against its clean partner, and their means. */
export const scoreImages = (images: readonly RgbImage[], clean: readonly RgbImage[]): Scores => {
  if (images.length !== clean.length || images.length === 0) {
    throw new RangeError(`scoreImages: ${images.length} images for ${clean.length} clean`);
  }
  const p = images.map((im, i) => Math.min(psnr(im, clean[i]), 100));
  const s = images.map((im, i) => ssim(im, clean[i]));
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return { psnr: p, ssim: s, meanPsnr: mean(p), meanSsim: mean(s) };
};
