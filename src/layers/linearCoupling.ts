/**
 * Conditionally linear coupling: a coupling that is **affine in the flow tensor** for a
 * fixed condition.
 *
 * The input's channels are split into `z₁` (the first `⌊C/2⌋`) and `z₂` (the rest), as in
 * the {@linkcode affineCoupling}. The shift is a linear 3×3 convolution of `z₁` (no bias,
 * no nonlinearity) plus a function of the condition, and the scale is a function of the
 * condition only:
 *
 * - `forward` (image→latent): `z₂' = z₂ / s(h) − t(h) − W ∗ z₁`, log-det `−Σ log s(h)`;
 * - `inverse`: `z₂ = (z₂' + t(h) + W ∗ z₁) · s(h)`, log-det `Σ log s(h)`.
 *
 * `t(h)` and the raw scale come from a {@linkcode convNet} of the condition alone
 * (interleaved like the affine coupling's: even channels shift, odd channels raw scale,
 * `s = sigmoid(raw + 2) + eps`). The log-det does not depend on the input. With
 * `constantScale` the raw scale is the network's output bias alone: one constant per
 * channel, so the layer's Jacobian is the same at every position and for every condition.
 *
 * A flow built from these couplings, ActNorms, 1x1 convolutions, affine injectors, squeezes
 * and splits (whose prior is a linear convolution) is affine in the image for a given
 * condition: `f(x; h) = A(h)·x + b(h)`. A latent displacement `d` then decodes to the same
 * image displacement `A(h)⁻¹·d` whatever the image's content, which is the assumption behind
 * DeFlow's content-independent latent shift (`ModelConfig.linearCoupling`).
 *
 * Both the convolution weights and the network's output layer start at zero (identity).
 *
 * @module
 */
import { tf } from "../tf.ts";
import {
  type Bijector,
  bijector,
  channelShape,
  checkCondition,
  checkInput,
  type FlowResult,
} from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { Layer } from "../core/layer.ts";
import { convNet, type ConvNetParams } from "../nn/convNet.ts";
import { conv2dSame } from "../nn/conv.ts";
import { type ConstantScaleOptions, shiftScale, sumLog } from "./affineCoupling.ts";

/** Parameters of {@linkcode linearCoupling}. */
export type LinearCouplingParams = {
  /** Condition network: input `condChannels` channels, output `2·(C − ⌊C/2⌋)` (interleaved). */
  readonly net: ConvNetParams;
  /** The linear part of the shift: `w` `[3, 3, ⌊C/2⌋, C − ⌊C/2⌋]`. */
  readonly linear: { readonly w: tf.Tensor4D };
};

/** Sizes for {@linkcode LinearCouplingLayer.init}. */
export interface LinearCouplingOptions {
  /** Channels of the flow tensor (at least 2). */
  readonly channels: number;
  /** Channels of the condition `h` (at least 1). */
  readonly condChannels: number;
  /** Hidden channels of the condition network. */
  readonly hidden: number;
}

/** Options of {@linkcode LinearCouplingLayer.bijector}. */
export interface LinearCouplingBijectorOptions extends ConstantScaleOptions {
  /**
   * The condition network's output for the condition this bijector will be called with,
   * computed once by the caller (`convNet.apply(p.net, h)`): the network sees only the
   * condition, so every pass under one condition (encoding and decoding a tile, or decoding
   * many latents) can share it instead of running the network each time. Only valid with
   * that same condition; its shape is checked against each input's.
   */
  readonly conditionerOutput?: tf.Tensor4D;
}

/** The conditionally linear coupling layer. */
export interface LinearCouplingLayer
  extends
    Layer<LinearCouplingParams, LinearCouplingOptions, [options?: LinearCouplingBijectorOptions]> {
  /** Fresh parameters: zero convolution and a zero-output condition network (identity). */
  readonly init: (
    options: LinearCouplingOptions & { readonly seed: number },
  ) => LinearCouplingParams;
  /**
   * The bijector; the sizes come from the parameters; needs the condition. With
   * `constantScale` the scale is a learned constant per channel, not `s(h)`.
   */
  readonly bijector: (p: LinearCouplingParams, options?: LinearCouplingBijectorOptions) => Bijector;
}

const NAME = "linearCoupling";

/** The conditionally linear coupling, see the module documentation. */
export const linearCoupling: LinearCouplingLayer = {
  init: ({ channels, condChannels, hidden, seed }) => {
    if (!Number.isInteger(channels) || channels < 2) {
      throw new ShapeError(`${NAME}: channels must be an integer ≥ 2, got ${channels}`);
    }
    if (!Number.isInteger(condChannels) || condChannels < 1) {
      throw new ShapeError(`${NAME}: condChannels must be a positive integer, got ${condChannels}`);
    }
    const k1 = Math.floor(channels / 2);
    const k2 = channels - k1;
    return {
      net: convNet.init(seed, { inChannels: condChannels, hidden, outChannels: 2 * k2 }),
      linear: { w: tf.zeros([3, 3, k1, k2]) },
    };
  },
  bijector: (p, { eps = 1e-3, constantScale = false, conditionerOutput } = {}) => {
    const ws = p.linear.w.shape;
    const k1 = ws[2];
    const k2 = ws[3];
    const out = p.net.conv3.w.shape[3];
    if (ws[0] !== 3 || ws[1] !== 3 || k1 < 1 || k2 !== k1 && k2 !== k1 + 1 || out !== 2 * k2) {
      throw new ShapeError(
        `${NAME}: linear weight ${showShape(ws)} and network output ${out} fit no channel ` +
          `count (expected [3, 3, ⌊C/2⌋, C − ⌊C/2⌋] and 2·(C − ⌊C/2⌋))`,
      );
    }
    const channels = k1 + k2;
    const condChannels = p.net.conv1.w.shape[2];
    const shape = channelShape(NAME, channels);
    const run = (x: tf.Tensor4D, cond: tf.Tensor4D | undefined, encode: boolean): FlowResult => {
      checkInput(NAME, x, channels);
      const h = checkCondition(NAME, x, cond, condChannels);
      return tf.tidy(() => {
        const [n, hh, w] = x.shape;
        const z1 = tf.slice(x, [0, 0, 0, 0], [n, hh, w, k1]);
        const z2 = tf.slice(x, [0, 0, 0, k1], [n, hh, w, k2]);
        const { t, s } = shiftScale(
          NAME,
          conditionerOutput ?? convNet.apply(p.net, h),
          [n, hh, w, k2],
          eps,
          constantScale ? p.net.conv3.b : undefined,
        );
        const shift = tf.add(t, conv2dSame(z1, p.linear.w, undefined, `${NAME}.linear`));
        const z2b = encode ? tf.sub(tf.div(z2, s), shift) : tf.mul(tf.add(z2, shift), s);
        return { y: tf.concat([z1, z2b], 3) as tf.Tensor4D, logDet: sumLog(s, encode ? -1 : 1) };
      });
    };
    return bijector({
      name: NAME,
      forward: (x, cond) => run(x, cond, true),
      inverse: (y, cond) => run(y, cond, false),
      forwardShape: shape,
      inverseShape: shape,
    });
  },
};
