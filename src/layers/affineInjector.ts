/**
 * Conditional affine injector (SRFlow/DeFlow): an affine map of ALL channels whose shift
 * and scale depend on the condition `h` only.
 *
 * The conditioner maps `h` to `2·C` channels, INTERLEAVED: channel `2i` is the shift
 * `tᵢ`, channel `2i+1` the raw scale `rᵢ`; `s = sigmoid(r + 2) + eps` (eps 1e-3 by
 * default). `forward` is the image→latent (encoding) map `z' = z / s(h) − t(h)` with
 * log-det `−Σ log s` over H, W and channels; `inverse` is the paper's generation direction
 * `z = (z' + t) · s` with log-det `Σ log s`. {@linkcode AffineInjectorLayer.bijector}
 * reads the channels (`C` = half the network's outputs) and the condition channels (the
 * network's inputs) from the weights.
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
import { ShapeError } from "../core/errors.ts";
import type { Layer } from "../core/layer.ts";
import { convNet, type ConvNetParams } from "../nn/convNet.ts";
import { type ConstantScaleOptions, shiftScale, sumLog } from "./affineCoupling.ts";

/** Parameters of {@linkcode affineInjector}: the conditioner network. */
export type AffineInjectorParams = {
  /** Conditioner: input `condChannels` channels, output `2·C`. */
  readonly net: ConvNetParams;
};

/** Sizes for {@linkcode AffineInjectorLayer.init}. */
export interface AffineInjectorOptions {
  /** Channels of the flow tensor. */
  readonly channels: number;
  /** Channels of the condition `h` (at least 1). */
  readonly condChannels: number;
  /** Hidden channels of the conditioner network. */
  readonly hidden: number;
}

/**
 * A conditioner for {@linkcode AffineInjectorLayer.fromConditioner}: maps the condition
 * `[N, H, W, condChannels]` to `[N, H, W, 2·C]`, interleaved (even: shift, odd: raw scale).
 */
export type InjectorConditioner = (h: tf.Tensor4D) => tf.Tensor4D;

/** Options for {@linkcode AffineInjectorLayer.fromConditioner}. */
export interface InjectorFromConditionerOptions {
  /** Channels of the flow tensor. */
  readonly channels: number;
  /** Channels of the condition; checked when given (a condition is always required). */
  readonly condChannels?: number;
  /** Added to the sigmoid scale (default 1e-3). */
  readonly eps?: number;
  /** Name used in error messages (default `"affineInjector"`). */
  readonly name?: string;
  /**
   * The conditioner's output-layer bias (`[2·C]`, interleaved): when given, the raw scale is
   * its odd entries, one constant per channel, and the conditioner's scale channels are
   * ignored (the layer's `constantScale` option).
   */
  readonly scaleBias?: tf.Tensor1D;
}

/** The affine injector layer. */
export interface AffineInjectorLayer
  extends Layer<AffineInjectorParams, AffineInjectorOptions, [options?: ConstantScaleOptions]> {
  /** Fresh parameters: a {@linkcode convNet} with a zero output layer. */
  readonly init: (
    options: AffineInjectorOptions & { readonly seed: number },
  ) => AffineInjectorParams;
  /**
   * The bijector using the parameter network on `h`; channels and condition channels come
   * from the network's weights. With `constantScale` only the shift depends on `h`.
   */
  readonly bijector: (p: AffineInjectorParams, options?: ConstantScaleOptions) => Bijector;
  /**
   * Channels of the flow tensor (half the network's outputs) and of the condition (the
   * network's inputs) that the parameters fit.
   */
  readonly sizes: (
    p: AffineInjectorParams,
  ) => { readonly channels: number; readonly condChannels: number };
  /** The bijector for any conditioner function. */
  readonly fromConditioner: (
    conditioner: InjectorConditioner,
    options: InjectorFromConditionerOptions,
  ) => Bijector;
}

const NAME = "affineInjector";

const fromConditioner = (
  conditioner: InjectorConditioner,
  options: InjectorFromConditionerOptions,
): Bijector => {
  const { channels, condChannels, eps = 1e-3, name = NAME, scaleBias } = options;
  if (!Number.isInteger(channels) || channels < 1) {
    throw new ShapeError(`${name}: channels must be a positive integer, got ${channels}`);
  }
  if (condChannels !== undefined && (!Number.isInteger(condChannels) || condChannels < 1)) {
    throw new ShapeError(`${name}: condChannels must be a positive integer, got ${condChannels}`);
  }
  const shape = channelShape(name, channels);
  /** `encode`: `z/s − t`, log-det `−Σ log s`; else `(z + t)·s`, log-det `Σ log s`. */
  const run = (x: tf.Tensor4D, cond: tf.Tensor4D | undefined, encode: boolean): FlowResult => {
    const s4 = checkInput(name, x, channels);
    const h = checkCondition(name, x, cond, condChannels);
    return tf.tidy(() => {
      const { t, s } = shiftScale(name, conditioner(h), s4, eps, scaleBias);
      const y = encode ? tf.sub(tf.div(x, s), t) : tf.mul(tf.add(x, t), s);
      return { y: y as tf.Tensor4D, logDet: sumLog(s, encode ? -1 : 1) };
    });
  };
  return bijector({
    name,
    forward: (x, cond) => run(x, cond, true),
    inverse: (y, cond) => run(y, cond, false),
    forwardShape: shape,
    inverseShape: shape,
  });
};

const sizes = (
  p: AffineInjectorParams,
): { readonly channels: number; readonly condChannels: number } => {
  const out = p.net.conv3.w.shape[3];
  if (out % 2 !== 0) {
    throw new ShapeError(`${NAME}: the network has ${out} output channels, expected an even count`);
  }
  return { channels: out / 2, condChannels: p.net.conv1.w.shape[2] };
};

/** The affine injector layer, see the module documentation. */
export const affineInjector: AffineInjectorLayer = {
  init: ({ channels, condChannels, hidden, seed }) => {
    if (!Number.isInteger(channels) || channels < 1) {
      throw new ShapeError(`${NAME}: channels must be a positive integer, got ${channels}`);
    }
    if (!Number.isInteger(condChannels) || condChannels < 1) {
      throw new ShapeError(
        `${NAME}: condChannels must be a positive integer (the injector needs a condition), ` +
          `got ${condChannels}`,
      );
    }
    return {
      net: convNet.init(seed, { inChannels: condChannels, hidden, outChannels: 2 * channels }),
    };
  },
  bijector: (p, { eps, constantScale = false } = {}) =>
    fromConditioner((h) => convNet.apply(p.net, h), {
      ...sizes(p),
      eps,
      name: NAME,
      scaleBias: constantScale ? p.net.conv3.b : undefined,
    }),
  sizes,
  fromConditioner,
};
