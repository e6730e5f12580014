/**
 * Conditional affine injector (SRFlow/DeFlow): an affine map of ALL channels whose shift
 * and scale depend on the condition `h` only.
 *
 * The conditioner maps `h` to `2·C` channels, INTERLEAVED: channel `2i` is the shift
 * `tᵢ`, channel `2i+1` the raw scale `rᵢ`; `s = sigmoid(r + 2) + eps` (eps 1e-3 by
 * default). `forward` is the GENERATION-direction map `z' = (z + t(h)) · s(h)` with
 * log-det `Σ log s` over H, W and channels; `inverse` is `z = z'/s − t` with log-det
 * `−Σ log s`. A flow step (image→latent) uses the inverse, via `invert(...)`.
 *
 * @module
 */
import { tf } from "../tf.ts";
import {
  type Bijector,
  bijector,
  checkCondition,
  checkInput,
  type FlowResult,
  type Shape4,
} from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { convNet, type ConvNetParams } from "../nn/convNet.ts";
import { shiftScale, sumLog } from "./affineCoupling.ts";

/** Parameters of {@linkcode affineInjector}: the conditioner network. */
export type AffineInjectorParams = {
  /** Conditioner: input `condChannels` channels, output `2·C`. */
  readonly net: ConvNetParams;
};

/** Sizes for {@linkcode AffineInjectorLayer.init}. */
export interface AffineInjectorInit {
  /** Channels of the flow tensor. */
  readonly channels: number;
  /** Channels of the condition `h` (at least 1). */
  readonly condChannels: number;
  /** Hidden channels of the conditioner network. */
  readonly hidden: number;
}

/** Options for {@linkcode AffineInjectorLayer.bijector}. */
export interface AffineInjectorConfig {
  /** Channels of the flow tensor. */
  readonly channels: number;
  /** Channels of the condition `h` (at least 1). */
  readonly condChannels: number;
  /** Added to the sigmoid scale (default 1e-3). */
  readonly eps?: number;
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
}

/** The affine injector layer. */
export interface AffineInjectorLayer {
  /** Fresh parameters: a {@linkcode convNet} with a zero output layer. */
  readonly init: (seed: number, config: AffineInjectorInit) => AffineInjectorParams;
  /** The bijector using the parameter network on `h`. */
  readonly bijector: (p: AffineInjectorParams, config: AffineInjectorConfig) => Bijector;
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
  const { channels, condChannels, eps = 1e-3, name = NAME } = options;
  if (!Number.isInteger(channels) || channels < 1) {
    throw new ShapeError(`${name}: channels must be a positive integer, got ${channels}`);
  }
  if (condChannels !== undefined && (!Number.isInteger(condChannels) || condChannels < 1)) {
    throw new ShapeError(`${name}: condChannels must be a positive integer, got ${condChannels}`);
  }
  const shape = (s: Shape4): Shape4 => {
    if (s[3] !== channels) {
      throw new ShapeError(
        `${name}: input has ${s[3]} channels, expected ${channels} (shape ${showShape(s)})`,
      );
    }
    return s;
  };
  const run = (x: tf.Tensor4D, cond: tf.Tensor4D | undefined, dir: 1 | -1): FlowResult => {
    const s4 = checkInput(name, x, channels);
    const h = checkCondition(name, x, cond, condChannels);
    return tf.tidy(() => {
      const { t, s } = shiftScale(name, conditioner(h), s4, eps);
      const y = dir === 1 ? tf.mul(tf.add(x, t), s) : tf.sub(tf.div(x, s), t);
      return { y: y as tf.Tensor4D, logDet: sumLog(s, dir) };
    });
  };
  return bijector({
    name,
    forward: (x, cond) => run(x, cond, 1),
    inverse: (y, cond) => run(y, cond, -1),
    forwardShape: shape,
    inverseShape: shape,
  });
};

/** The affine injector layer, see the module documentation. */
export const affineInjector: AffineInjectorLayer = {
  init: (seed, { channels, condChannels, hidden }) => {
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
  bijector: (p, { channels, condChannels, eps }) =>
    fromConditioner((h) => convNet.apply(p.net, h), {
      channels,
      condChannels,
      eps,
      name: NAME,
    }),
  fromConditioner,
};
