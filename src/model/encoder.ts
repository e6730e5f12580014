/**
 * The conditional encoder φ: an RRDB network (ESRGAN) that maps the low-resolution
 * conditioning image to features, as in SRFlow / DeFlow.
 *
 * Structure (all convolutions 3×3, 'same', with bias):
 * - `convFirst`: `inChannels → nf`;
 * - `nb` RRDB blocks; each RRDB is three residual dense blocks (`rdb1..rdb3`) followed by
 *   `out = 0.2 · rdb3(rdb2(rdb1(x))) + x`; a residual dense block has five convolutions
 *   `conv1..conv5` with dense connections (`conv_i` sees `nf + (i−1)·gc` channels and
 *   gives `gc`, `conv5` gives `nf`), LeakyReLU(0.2) after `conv1..conv4`, and
 *   `out = 0.2 · conv5(...) + x`;
 * - `trunkConv`: `nf → nf`, giving the last LR feature `last = t + trunkConv(t)` where `t`
 *   is the output of the last block (SRFlow's `last_lr_fea`).
 *
 * Output: `concat([last, block_{b₁}, block_{b₂}, …], channels)` for the blocks listed in
 * `featureBlocks` (0-based; SRFlow's `stackRRDB` with `concat: true`), so
 * `outChannels = nf · (1 + featureBlocks.length)`. The paper's configuration
 * (nf 64, nb 23, gc 32, blocks [1, 8, 15, 22]) gives 320 channels.
 *
 * Initialisation (seeded): Kaiming-normal (fan-in, gain √2) weights and zero biases;
 * the convolutions inside the residual dense blocks are scaled by 0.1 as in ESRGAN.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { checkInput } from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { foldIn, tfSeed } from "../core/random.ts";
import { conv2dSame } from "../nn/conv.ts";
import { bicubicResize } from "../image/resize.ts";

/** Configuration of the RRDB encoder. */
export interface EncoderConfig {
  /** Feature channels of the trunk (paper: 64). */
  readonly nf: number;
  /** Number of RRDB blocks (paper: 23). */
  readonly nb: number;
  /** Growth channels inside the residual dense blocks (paper: 32). */
  readonly gc: number;
  /**
   * 0-based indices of the blocks whose outputs are concatenated after the last LR
   * feature; default {@linkcode defaultFeatureBlocks}`(nb)`.
   */
  readonly featureBlocks?: readonly number[];
}

/** A 3×3 convolution's parameters: filter `[3, 3, Cin, Cout]` and bias `[Cout]`. */
export type ConvParams = {
  /** Filter `[3, 3, Cin, Cout]`. */
  readonly w: tf.Tensor4D;
  /** Bias `[Cout]`. */
  readonly b: tf.Tensor1D;
};

/** A residual dense block: five convolutions. */
export type RdbParams = {
  /** `nf → gc`. */
  readonly conv1: ConvParams;
  /** `nf + gc → gc`. */
  readonly conv2: ConvParams;
  /** `nf + 2gc → gc`. */
  readonly conv3: ConvParams;
  /** `nf + 3gc → gc`. */
  readonly conv4: ConvParams;
  /** `nf + 4gc → nf`. */
  readonly conv5: ConvParams;
};

/** An RRDB block: three residual dense blocks. */
export type RrdbParams = {
  /** First residual dense block. */
  readonly rdb1: RdbParams;
  /** Second residual dense block. */
  readonly rdb2: RdbParams;
  /** Third residual dense block. */
  readonly rdb3: RdbParams;
};

/** Parameters of the RRDB encoder: a parameter tree (`ParamTree`, see core/params.ts). */
export type EncoderParams = {
  /** `inChannels → nf`. */
  readonly convFirst: ConvParams;
  /** The `nb` RRDB blocks. */
  readonly blocks: readonly RrdbParams[];
  /** `nf → nf` after the last block. */
  readonly trunkConv: ConvParams;
};

/** Small CPU-friendly default: nf 16, nb 2, gc 8 (feature blocks `[0, 1]`, 48 channels). */
export const defaultEncoderConfig: EncoderConfig = { nf: 16, nb: 2, gc: 8 };

/** The paper's (SRFlow/DeFlow) encoder: nf 64, nb 23, gc 32, blocks [1, 8, 15, 22] → 320. */
export const paperEncoderConfig: EncoderConfig = {
  nf: 64,
  nb: 23,
  gc: 32,
  featureBlocks: [1, 8, 15, 22],
};

/**
 * Default feature blocks for `nb` blocks: four evenly spaced blocks from index 1 to the
 * last, `1 + round(i·(nb−2)/3)` for i = 0..3 (gives SRFlow's `[1, 8, 15, 22]` for
 * nb = 23), duplicates removed; for `nb < 4` every block `[0, …, nb−1]`.
 */
export const defaultFeatureBlocks = (nb: number): number[] => {
  if (nb < 4) return Array.from({ length: nb }, (_, i) => i);
  const idx = [0, 1, 2, 3].map((i) => 1 + Math.round((i * (nb - 2)) / 3));
  return [...new Set(idx)];
};

const LRELU_SLOPE = 0.2;
const RESIDUAL_SCALE = 0.2;
const RDB_INIT_SCALE = 0.1;

/** Validate a config; returns the feature block list in use. */
const resolve = (cfg: EncoderConfig, name: string): readonly number[] => {
  for (const k of ["nf", "nb", "gc"] as const) {
    const v = cfg[k];
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${name}: config.${k} must be a positive integer, got ${v}`);
    }
  }
  const blocks = cfg.featureBlocks ?? defaultFeatureBlocks(cfg.nb);
  const seen = new Set<number>();
  for (const b of blocks) {
    if (!Number.isInteger(b) || b < 0 || b >= cfg.nb) {
      throw new RangeError(
        `${name}: featureBlocks entry ${b} is not a block index in [0, ${cfg.nb - 1}]`,
      );
    }
    if (seen.has(b)) throw new RangeError(`${name}: featureBlocks repeats block ${b}`);
    seen.add(b);
  }
  return blocks;
};

const initConv = (seed: number, cin: number, cout: number, scale: number): ConvParams => {
  const std = Math.sqrt(2 / (9 * cin)) * scale;
  return {
    w: tf.randomNormal([3, 3, cin, cout], 0, std, "float32", tfSeed(seed)) as tf.Tensor4D,
    b: tf.zeros([cout]) as tf.Tensor1D,
  };
};

const initRdb = (seed: number, nf: number, gc: number): RdbParams => {
  const c = (i: number, cout: number) =>
    initConv(foldIn(seed, i), nf + (i - 1) * gc, cout, RDB_INIT_SCALE);
  return { conv1: c(1, gc), conv2: c(2, gc), conv3: c(3, gc), conv4: c(4, gc), conv5: c(5, nf) };
};

const initRrdb = (seed: number, nf: number, gc: number): RrdbParams => ({
  rdb1: initRdb(foldIn(seed, 1), nf, gc),
  rdb2: initRdb(foldIn(seed, 2), nf, gc),
  rdb3: initRdb(foldIn(seed, 3), nf, gc),
});

const conv = (x: tf.Tensor4D, p: ConvParams, name: string): tf.Tensor4D =>
  conv2dSame(x, p.w, p.b, name);

const applyRdb = (p: RdbParams, x: tf.Tensor4D, name: string): tf.Tensor4D => {
  const x1 = tf.leakyRelu(conv(x, p.conv1, `${name}.conv1`), LRELU_SLOPE);
  const x2 = tf.leakyRelu(conv(tf.concat([x, x1], 3), p.conv2, `${name}.conv2`), LRELU_SLOPE);
  const x3 = tf.leakyRelu(
    conv(tf.concat([x, x1, x2], 3), p.conv3, `${name}.conv3`),
    LRELU_SLOPE,
  );
  const x4 = tf.leakyRelu(
    conv(tf.concat([x, x1, x2, x3], 3), p.conv4, `${name}.conv4`),
    LRELU_SLOPE,
  );
  const x5 = conv(tf.concat([x, x1, x2, x3, x4], 3), p.conv5, `${name}.conv5`);
  return tf.add(tf.mul(x5, RESIDUAL_SCALE), x);
};

const applyRrdb = (p: RrdbParams, x: tf.Tensor4D, name: string): tf.Tensor4D => {
  const a = applyRdb(p.rdb1, x, `${name}.rdb1`);
  const b = applyRdb(p.rdb2, a, `${name}.rdb2`);
  const c = applyRdb(p.rdb3, b, `${name}.rdb3`);
  return tf.add(tf.mul(c, RESIDUAL_SCALE), x);
};

/** The RRDB encoder's functions. */
export interface RrdbEncoder {
  /** Seeded parameters for `cfg` and `inChannels` input channels (default 3). */
  readonly init: (seed: number, cfg: EncoderConfig, inChannels?: number) => EncoderParams;
  /**
   * Features of a low-resolution batch `[N, h, w, inChannels]`: a tensor
   * `[N, h, w, outChannels(cfg)]` at the same resolution. Differentiable in the
   * parameters and the input; the caller owns the result.
   */
  readonly apply: (p: EncoderParams, cfg: EncoderConfig, lr: tf.Tensor4D) => tf.Tensor4D;
  /** Channels of `apply`'s output: `nf · (1 + featureBlocks.length)`. */
  readonly outChannels: (cfg: EncoderConfig) => number;
}

/** The RRDB encoder (ESRGAN trunk, SRFlow-style concatenated block features). */
export const rrdbEncoder: RrdbEncoder = {
  init: (seed: number, cfg: EncoderConfig, inChannels = 3): EncoderParams => {
    resolve(cfg, "rrdbEncoder.init");
    if (!Number.isInteger(inChannels) || inChannels < 1) {
      throw new RangeError(
        `rrdbEncoder.init: inChannels must be a positive integer, got ${inChannels}`,
      );
    }
    const { nf, nb, gc } = cfg;
    const blockSeed = foldIn(seed, 2);
    return {
      convFirst: initConv(foldIn(seed, 0), inChannels, nf, 1),
      blocks: Array.from({ length: nb }, (_, i) => initRrdb(foldIn(blockSeed, i), nf, gc)),
      trunkConv: initConv(foldIn(seed, 1), nf, nf, 1),
    };
  },

  apply: (p: EncoderParams, cfg: EncoderConfig, lr: tf.Tensor4D): tf.Tensor4D => {
    const name = "rrdbEncoder";
    const featureBlocks = resolve(cfg, `${name}.apply`);
    if (p.blocks.length !== cfg.nb) {
      throw new ShapeError(
        `${name}: parameters have ${p.blocks.length} blocks but config.nb is ${cfg.nb}`,
      );
    }
    if (p.convFirst.w.shape[3] !== cfg.nf) {
      throw new ShapeError(
        `${name}: parameters have nf = ${p.convFirst.w.shape[3]} but config.nf is ${cfg.nf} ` +
          `(convFirst.w ${showShape(p.convFirst.w.shape)})`,
      );
    }
    checkInput(name, lr, p.convFirst.w.shape[2]);
    return tf.tidy(() => {
      let fea = conv(lr, p.convFirst, `${name}.convFirst`);
      const saved = new Map<number, tf.Tensor4D>();
      for (let i = 0; i < p.blocks.length; i++) {
        fea = applyRrdb(p.blocks[i], fea, `${name}.blocks.${i}`);
        if (featureBlocks.includes(i)) saved.set(i, fea);
      }
      const last: tf.Tensor4D = tf.add(fea, conv(fea, p.trunkConv, `${name}.trunkConv`));
      const parts = [last, ...featureBlocks.map((b) => saved.get(b) as tf.Tensor4D)];
      return parts.length === 1 ? last : tf.concat(parts, 3) as tf.Tensor4D;
    });
  },

  outChannels: (cfg: EncoderConfig): number =>
    cfg.nf * (1 + resolve(cfg, "rrdbEncoder.outChannels").length),
};

/**
 * Resize encoder features `[N, h, w, C]` to `size = [height, width]` (one flow level's
 * resolution) with MATLAB-style bicubic interpolation (antialiased when shrinking).
 * Same size returns a copy; the caller owns the result.
 */
export const resizeFeatures = (
  features: tf.Tensor4D,
  size: readonly [number, number],
): tf.Tensor4D => {
  checkInput("resizeFeatures", features, undefined, "features");
  return bicubicResize(features, size);
};
