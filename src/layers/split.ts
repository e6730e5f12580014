/**
 * Split with a learned prior: the emitted half of the channels is normalised by a mean
 * and log-scale predicted from the kept half.
 *
 * Forward maps `x` (C channels) to `concat[z₁, ε]` (same shape), where `z₁` is the first
 * `⌊C/2⌋` channels (kept, unchanged) and `z₂` the rest (emitted). A 3×3 convolution of
 * `z₁` (weights and bias zero-initialised) gives `2·|z₂|` channels, INTERLEAVED:
 * channel `2i` is the mean, `2i+1` the log-scale. `ε = (z₂ − mean) · exp(−logs)`,
 * log-det `−Σ logs` over H, W and channels. Inverse: `z₂ = ε · exp(logs) + mean`.
 * The model scores `ε` under the domain's Gaussian; {@linkcode SplitLayer.sizes} gives
 * how many channels are kept and emitted.
 *
 * With `constantScale` ({@linkcode SplitOptions}) the log-scale is the bias alone (the
 * convolution's log-scale weights are kept and ignored): the split is then affine in its
 * input, as a conditionally linear flow needs (`ModelConfig.linearCoupling`).
 *
 * @module
 */
import { tf } from "../tf.ts";
import {
  type Bijector,
  bijector,
  channelShape,
  checkInput,
  type FlowResult,
} from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { ChannelOptions, Layer } from "../core/layer.ts";
import { conv2dSame } from "../nn/conv.ts";
import { deinterleave, oddEntries } from "./affineCoupling.ts";

/** Parameters of {@linkcode split}: the prior convolution. */
export type SplitParams = {
  /** Prior conv: `w` `[3, 3, kept, 2·emitted]`, bias `b` `[2·emitted]`. */
  readonly prior: { readonly w: tf.Tensor4D; readonly b: tf.Tensor1D };
};

/** Channel counts of a split. */
export interface SplitSizes {
  /** Channels kept in the flow: `⌊C/2⌋`. */
  readonly kept: number;
  /** Channels emitted as `ε`: `C − ⌊C/2⌋`. */
  readonly emitted: number;
}

/** Options of {@linkcode SplitLayer.bijector}. */
export interface SplitOptions {
  /**
   * The log-scale is the prior's bias alone, one constant per emitted channel, not a
   * function of `z₁` (default false): the split is then affine in its input.
   */
  readonly constantScale?: boolean;
}

/** The split layer. */
export interface SplitLayer extends Layer<SplitParams, ChannelOptions, [options?: SplitOptions]> {
  /**
   * Zero-initialised prior for `channels` input channels. Deterministic: the seed is
   * accepted (as by every layer) and ignored.
   */
  readonly init: (options: ChannelOptions & { readonly seed?: number }) => SplitParams;
  /**
   * The split bijector; the channels (kept + emitted) come from the prior's weight. The
   * condition, if any, is ignored.
   */
  readonly bijector: (p: SplitParams, options?: SplitOptions) => Bijector;
  /** How many channels are kept and emitted for `channels` input channels. */
  readonly sizes: (channels: number) => SplitSizes;
}

const NAME = "split";

const sizes = (channels: number): SplitSizes => {
  if (!Number.isInteger(channels) || channels < 2) {
    throw new ShapeError(`${NAME}: channels must be an integer ≥ 2, got ${channels}`);
  }
  const kept = Math.floor(channels / 2);
  return { kept, emitted: channels - kept };
};

/** The split layer, see the module documentation. */
export const split: SplitLayer = {
  init: ({ channels }) => {
    const { kept, emitted } = sizes(channels);
    return { prior: { w: tf.zeros([3, 3, kept, 2 * emitted]), b: tf.zeros([2 * emitted]) } };
  },
  sizes,
  bijector: (p, { constantScale = false } = {}) => {
    const ws = p.prior.w.shape;
    const channels = ws[2] + ws[3] / 2;
    const fits = ws[0] === 3 && ws[1] === 3 && ws[3] % 2 === 0 && Number.isInteger(channels) &&
      channels >= 2 && sizes(channels).kept === ws[2] && p.prior.b.shape[0] === ws[3];
    if (!fits) {
      throw new ShapeError(
        `${NAME}: prior weight ${showShape(ws)} and bias ${showShape(p.prior.b.shape)} fit no ` +
          `channel count (expected [3, 3, ⌊C/2⌋, 2·(C − ⌊C/2⌋)] and [2·(C − ⌊C/2⌋)])`,
      );
    }
    const { kept, emitted } = sizes(channels);
    const shape = channelShape(NAME, channels);
    const run = (x: tf.Tensor4D, dir: 1 | -1): FlowResult => {
      checkInput(NAME, x, channels);
      return tf.tidy(() => {
        const [n, h, w] = x.shape;
        const z1 = tf.slice(x, [0, 0, 0, 0], [n, h, w, kept]);
        const z2 = tf.slice(x, [0, 0, 0, kept], [n, h, w, emitted]);
        const { even: mean, odd: convLogs } = deinterleave(
          conv2dSame(z1, p.prior.w, p.prior.b, `${NAME}.prior`),
        );
        const logs = constantScale ? tf.mul(tf.onesLike(mean), oddEntries(p.prior.b)) : convLogs;
        const out = dir === 1
          ? tf.mul(tf.sub(z2, mean), tf.exp(tf.neg(logs)))
          : tf.add(tf.mul(z2, tf.exp(logs)), mean);
        return {
          y: tf.concat([z1, out], 3) as tf.Tensor4D,
          logDet: tf.mul(tf.sum(logs, [1, 2, 3]), -dir) as tf.Tensor1D,
        };
      });
    };
    return bijector({
      name: NAME,
      forward: (x) => run(x, 1),
      inverse: (y) => run(y, -1),
      forwardShape: shape,
      inverseShape: shape,
    });
  },
};
