/**
 * Conditional affine coupling (DeFlow form).
 *
 * The input's channels are split into `z₁` (the first `⌊C/2⌋`) and `z₂` (the rest). A
 * conditioner sees `z₁` and the condition `h` and returns `2·|z₂|` channels, INTERLEAVED:
 * channel `2i` is the shift `tᵢ`, channel `2i+1` the raw scale `rᵢ`; the scale is
 * `s = sigmoid(r + 2) + eps` (eps 1e-3 by default), so it lies in (eps, 1 + eps).
 *
 * `forward` is the GENERATION-direction map of the paper, `z₂' = (z₂ + t) · s` with `z₁`
 * unchanged and log-det `Σ log s` (over H, W and channels). `inverse` is
 * `z₂ = z₂' / s − t` with log-det `−Σ log s`. A flow step (image→latent) uses the inverse,
 * via `invert(affineCoupling.bijector(...))`.
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
import { evenOdd } from "../nn/fastOps.ts";

/** Parameters of {@linkcode affineCoupling}: the conditioner network. */
export type AffineCouplingParams = {
  /** Conditioner: input `⌊C/2⌋ + condChannels` channels, output `2·(C − ⌊C/2⌋)`. */
  readonly net: ConvNetParams;
};

/** Sizes for {@linkcode AffineCouplingLayer.init}. */
export interface AffineCouplingInit {
  /** Channels of the flow tensor (at least 2). */
  readonly channels: number;
  /** Channels of the condition `h` (0: unconditional). */
  readonly condChannels: number;
  /** Hidden channels of the conditioner network. */
  readonly hidden: number;
}

/** Options for {@linkcode AffineCouplingLayer.bijector}. */
export interface AffineCouplingConfig {
  /** Channels of the flow tensor (at least 2). */
  readonly channels: number;
  /** Channels of the condition `h` (0: unconditional, the condition is ignored). */
  readonly condChannels: number;
  /** Added to the sigmoid scale (default 1e-3). */
  readonly eps?: number;
}

/**
 * A conditioner for {@linkcode AffineCouplingLayer.fromConditioner}: maps `z₁`
 * (`[N, H, W, ⌊C/2⌋]`) and the condition to `[N, H, W, 2·(C − ⌊C/2⌋)]`, interleaved
 * (even channels: shift, odd channels: raw scale).
 */
export type CouplingConditioner = (
  z1: tf.Tensor4D,
  h: tf.Tensor4D | undefined,
) => tf.Tensor4D;

/** Options for {@linkcode AffineCouplingLayer.fromConditioner}. */
export interface CouplingFromConditionerOptions {
  /** Channels of the flow tensor (at least 2). */
  readonly channels: number;
  /**
   * Channels of the condition: a positive number makes the condition required and
   * checked; 0 means unconditional (the conditioner always gets `undefined`); when
   * omitted, whatever condition is given is passed on unchecked.
   */
  readonly condChannels?: number;
  /** Added to the sigmoid scale (default 1e-3). */
  readonly eps?: number;
  /** Name used in error messages (default `"affineCoupling"`). */
  readonly name?: string;
}

/** The affine coupling layer. */
export interface AffineCouplingLayer {
  /** Fresh parameters: a {@linkcode convNet} with a zero output layer (identity-like map). */
  readonly init: (seed: number, config: AffineCouplingInit) => AffineCouplingParams;
  /** The bijector using the parameter network on `concat[z₁, h]`. */
  readonly bijector: (p: AffineCouplingParams, config: AffineCouplingConfig) => Bijector;
  /** The bijector for any conditioner function. */
  readonly fromConditioner: (
    conditioner: CouplingConditioner,
    options: CouplingFromConditionerOptions,
  ) => Bijector;
}

/** Split interleaved channels: `even` = channels 0, 2, 4, …; `odd` = 1, 3, 5, …. */
export const deinterleave = (
  t: tf.Tensor4D,
): { readonly even: tf.Tensor4D; readonly odd: tf.Tensor4D } =>
  tf.tidy(() => {
    const c = t.shape[3];
    if (c % 2 !== 0) {
      throw new ShapeError(`deinterleave: odd channel count ${c} (shape ${showShape(t.shape)})`);
    }
    // One transpose and contiguous pieces (a strided slice is ~10× slower on wasm).
    const [even, odd] = evenOdd(t);
    return { even, odd };
  });

/** `s = sigmoid(raw + 2) + eps`. */
export const sigmoidScale = (raw: tf.Tensor4D, eps: number): tf.Tensor4D =>
  tf.tidy(() => tf.add(tf.sigmoid(tf.add(raw, 2)), eps));

/**
 * Shift and scale from a conditioner output, checking its shape against `[N, H, W, k]`.
 * Shared by the coupling, the injector and the split layers.
 */
export const shiftScale = (
  name: string,
  out: tf.Tensor4D,
  target: Shape4,
  eps: number,
): { readonly t: tf.Tensor4D; readonly s: tf.Tensor4D } => {
  const [n, h, w, k] = target;
  const o = out.shape;
  if (o.length !== 4 || o[0] !== n || o[1] !== h || o[2] !== w || o[3] !== 2 * k) {
    throw new ShapeError(
      `${name}: conditioner returned shape ${showShape(o)}, expected ` +
        `${showShape([n, h, w, 2 * k])} (interleaved shift and scale)`,
    );
  }
  return tf.tidy(() => {
    const { even, odd } = deinterleave(out);
    return { t: even, s: sigmoidScale(odd, eps) };
  });
};

/** Per-sample `Σ log s` (over H, W, C), times `sign`. */
export const sumLog = (s: tf.Tensor4D, sign: 1 | -1): tf.Tensor1D =>
  tf.tidy(() => tf.mul(tf.sum(tf.log(s), [1, 2, 3]), sign) as tf.Tensor1D);

const NAME = "affineCoupling";

const fromConditioner = (
  conditioner: CouplingConditioner,
  options: CouplingFromConditionerOptions,
): Bijector => {
  const { channels, condChannels, eps = 1e-3, name = NAME } = options;
  if (!Number.isInteger(channels) || channels < 2) {
    throw new ShapeError(`${name}: channels must be an integer ≥ 2, got ${channels}`);
  }
  const k1 = Math.floor(channels / 2);
  const k2 = channels - k1;
  const shape = (s: Shape4): Shape4 => {
    if (s[3] !== channels) {
      throw new ShapeError(
        `${name}: input has ${s[3]} channels, expected ${channels} (shape ${showShape(s)})`,
      );
    }
    return s;
  };
  const prepare = (x: tf.Tensor4D, cond: tf.Tensor4D | undefined) => {
    checkInput(name, x, channels);
    const h = condChannels === 0
      ? undefined
      : condChannels === undefined
      ? cond
      : checkCondition(name, x, cond, condChannels);
    return h;
  };
  const run = (x: tf.Tensor4D, cond: tf.Tensor4D | undefined, dir: 1 | -1): FlowResult => {
    const h = prepare(x, cond);
    return tf.tidy(() => {
      const [n, hh, w] = x.shape;
      const z1 = tf.slice(x, [0, 0, 0, 0], [n, hh, w, k1]);
      const z2 = tf.slice(x, [0, 0, 0, k1], [n, hh, w, k2]);
      const { t, s } = shiftScale(name, conditioner(z1, h), [n, hh, w, k2], eps);
      const z2b = dir === 1 ? tf.mul(tf.add(z2, t), s) : tf.sub(tf.div(z2, s), t);
      return { y: tf.concat([z1, z2b], 3) as tf.Tensor4D, logDet: sumLog(s, dir) };
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

/** The affine coupling layer, see the module documentation. */
export const affineCoupling: AffineCouplingLayer = {
  init: (seed, { channels, condChannels, hidden }) => {
    if (!Number.isInteger(channels) || channels < 2) {
      throw new ShapeError(`${NAME}: channels must be an integer ≥ 2, got ${channels}`);
    }
    if (!Number.isInteger(condChannels) || condChannels < 0) {
      throw new ShapeError(`${NAME}: condChannels must be an integer ≥ 0, got ${condChannels}`);
    }
    const k1 = Math.floor(channels / 2);
    return {
      net: convNet.init(seed, {
        inChannels: k1 + condChannels,
        hidden,
        outChannels: 2 * (channels - k1),
      }),
    };
  },
  bijector: (p, { channels, condChannels, eps }) =>
    fromConditioner(
      (z1, h) => tf.tidy(() => convNet.apply(p.net, h === undefined ? z1 : tf.concat([z1, h], 3))),
      { channels, condChannels, eps, name: NAME },
    ),
  fromConditioner,
};
