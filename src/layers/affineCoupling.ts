/**
 * Conditional affine coupling (DeFlow form).
 *
 * The input's channels are split into `z₁` (the first `⌊C/2⌋`) and `z₂` (the rest). A
 * conditioner sees `z₁` and the condition `h` and returns `2·|z₂|` channels, INTERLEAVED:
 * channel `2i` is the shift `tᵢ`, channel `2i+1` the raw scale `rᵢ`; the scale is
 * `s = sigmoid(r + 2) + eps` (eps 1e-3 by default), so it lies in (eps, 1 + eps).
 *
 * `forward` is the image→latent (encoding) map, `z₂' = z₂ / s − t` with `z₁` unchanged
 * and log-det `−Σ log s` (over H, W and channels). `inverse` is the paper's generation
 * direction `z₂ = (z₂' + t) · s` with log-det `Σ log s`.
 *
 * {@linkcode AffineCouplingLayer.bijector} reads the sizes from the network's weights. The
 * network's input has `⌊C/2⌋ + condChannels` channels and its output `2·(C − ⌊C/2⌋)`, so
 * a conditional coupling's weights fit two channel counts, `C = 2k` and `C = 2k − 1`
 * (with one condition channel more); the input's channel count picks one, and the
 * condition is checked against it.
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
  type Shape4,
} from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { Layer } from "../core/layer.ts";
import { convNet, type ConvNetParams } from "../nn/convNet.ts";
import { evenOdd } from "../nn/fastOps.ts";

/** Parameters of {@linkcode affineCoupling}: the conditioner network. */
export type AffineCouplingParams = {
  /** Conditioner: input `⌊C/2⌋ + condChannels` channels, output `2·(C − ⌊C/2⌋)`. */
  readonly net: ConvNetParams;
};

/** Sizes for {@linkcode AffineCouplingLayer.init}. */
export interface AffineCouplingOptions {
  /** Channels of the flow tensor (at least 2). */
  readonly channels: number;
  /** Channels of the condition `h` (0: unconditional). */
  readonly condChannels: number;
  /** Hidden channels of the conditioner network. */
  readonly hidden: number;
}

/**
 * Settings of {@linkcode AffineCouplingLayer.bijector} and of the affine injector's (the
 * sizes come from the parameters).
 */
export interface AffineScaleOptions {
  /** Added to the sigmoid scale (default 1e-3). */
  readonly eps?: number;
}

/** Settings of the layers whose scale can be held constant (injector, linear coupling). */
export interface ConstantScaleOptions extends AffineScaleOptions {
  /**
   * The scale is one learned constant per channel (the raw scale is the network's output
   * bias; its scale weights are kept and ignored) instead of a function of the condition
   * (default false): the layer's Jacobian is then the same at every position and for every
   * condition (`ModelConfig.stationaryScale`).
   */
  readonly constantScale?: boolean;
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

/** Settings of {@linkcode AffineCouplingLayer.bijector}. */
export interface CouplingOptions extends AffineScaleOptions {
  /**
   * Additive coupling (default false): the scale channels are ignored and `s = 1`, so
   * `forward` is `z₂' = z₂ − t` with log-det 0.
   */
  readonly additive?: boolean;
}

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
  /** Additive coupling (default false), see {@linkcode CouplingOptions.additive}. */
  readonly additive?: boolean;
}

/** The affine coupling layer. */
export interface AffineCouplingLayer
  extends Layer<AffineCouplingParams, AffineCouplingOptions, [options?: CouplingOptions]> {
  /** Fresh parameters: a {@linkcode convNet} with a zero output layer (identity-like map). */
  readonly init: (
    options: AffineCouplingOptions & { readonly seed: number },
  ) => AffineCouplingParams;
  /**
   * The bijector using the parameter network on `concat[z₁, h]`; channels and condition
   * channels come from the network's weights (see the module documentation). With 0
   * condition channels any condition given is ignored.
   */
  readonly bijector: (p: AffineCouplingParams, options?: CouplingOptions) => Bijector;
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

/**
 * The odd entries of an interleaved bias `[2k]` (the raw scales of a conditioner's output
 * layer), `[k]`: the constant raw scale of a layer whose scale ignores its input.
 */
export const oddEntries = (bias: tf.Tensor1D): tf.Tensor1D =>
  tf.tidy(() => {
    const k = bias.shape[0] / 2;
    if (!Number.isInteger(k) || k < 1) {
      throw new ShapeError(`oddEntries: bias ${showShape(bias.shape)} has no even length`);
    }
    return tf.reshape(tf.slice(tf.reshape(bias, [k, 2]), [0, 1], [k, 1]), [k]);
  });

/** `s = sigmoid(raw + 2) + eps`. */
export const sigmoidScale = (raw: tf.Tensor4D, eps: number): tf.Tensor4D =>
  tf.tidy(() => tf.add(tf.sigmoid(tf.add(raw, 2)), eps));

/**
 * Shift and scale from a conditioner output, checking its shape against `[N, H, W, k]`.
 * Shared by the coupling, the injector and the split layers. With `scaleBias` (the output
 * layer's interleaved bias, `[2k]`) the raw scale is its odd entries, one constant per
 * channel, and the output's scale channels are ignored (`ConstantScaleOptions`).
 */
export const shiftScale = (
  name: string,
  out: tf.Tensor4D,
  target: Shape4,
  eps: number,
  scaleBias?: tf.Tensor1D,
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
    if (scaleBias && scaleBias.shape[0] !== 2 * k) {
      throw new ShapeError(
        `${name}: scale bias ${showShape(scaleBias.shape)} does not fit ${k} channels`,
      );
    }
    const { even, odd } = deinterleave(out);
    const raw = scaleBias ? tf.add(tf.zerosLike(even), oddEntries(scaleBias)) : odd;
    return { t: even, s: sigmoidScale(raw as tf.Tensor4D, eps) };
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
  const { channels, condChannels, eps = 1e-3, name = NAME, additive = false } = options;
  if (!Number.isInteger(channels) || channels < 2) {
    throw new ShapeError(`${name}: channels must be an integer ≥ 2, got ${channels}`);
  }
  const k1 = Math.floor(channels / 2);
  const k2 = channels - k1;
  const shape = channelShape(name, channels);
  const prepare = (x: tf.Tensor4D, cond: tf.Tensor4D | undefined) => {
    checkInput(name, x, channels);
    const h = condChannels === 0
      ? undefined
      : condChannels === undefined
      ? cond
      : checkCondition(name, x, cond, condChannels);
    return h;
  };
  /** `encode`: `z₂/s − t`, log-det `−Σ log s`; else `(z₂ + t)·s`, log-det `Σ log s`. */
  const run = (x: tf.Tensor4D, cond: tf.Tensor4D | undefined, encode: boolean): FlowResult => {
    const h = prepare(x, cond);
    return tf.tidy(() => {
      const [n, hh, w] = x.shape;
      const z1 = tf.slice(x, [0, 0, 0, 0], [n, hh, w, k1]);
      const z2 = tf.slice(x, [0, 0, 0, k1], [n, hh, w, k2]);
      const { t, s } = shiftScale(name, conditioner(z1, h), [n, hh, w, k2], eps);
      if (additive) {
        const z2a = encode ? tf.sub(z2, t) : tf.add(z2, t);
        return { y: tf.concat([z1, z2a], 3) as tf.Tensor4D, logDet: tf.zeros([n]) as tf.Tensor1D };
      }
      const z2b = encode ? tf.sub(tf.div(z2, s), t) : tf.mul(tf.add(z2, t), s);
      return { y: tf.concat([z1, z2b], 3) as tf.Tensor4D, logDet: sumLog(s, encode ? -1 : 1) };
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

/**
 * The channel counts that a coupling network fits: `C` with `C − ⌊C/2⌋ = k` (`2k` output
 * channels) and `⌊C/2⌋ ≤` the network's input channels; the rest of the input is the
 * condition.
 */
const couplingSizes = (
  p: AffineCouplingParams,
): readonly { readonly channels: number; readonly condChannels: number }[] => {
  const inChannels = p.net.conv1.w.shape[2];
  const out = p.net.conv3.w.shape[3];
  if (out % 2 !== 0) {
    throw new ShapeError(`${NAME}: the network has ${out} output channels, expected an even count`);
  }
  const k = out / 2;
  return [2 * k - 1, 2 * k]
    .filter((c) => c >= 2 && Math.floor(c / 2) <= inChannels)
    .map((c) => ({ channels: c, condChannels: inChannels - Math.floor(c / 2) }));
};

/** The affine coupling layer, see the module documentation. */
export const affineCoupling: AffineCouplingLayer = {
  init: ({ channels, condChannels, hidden, seed }) => {
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
  bijector: (p, { eps, additive } = {}) => {
    const sizes = couplingSizes(p);
    if (sizes.length === 0) {
      throw new ShapeError(
        `${NAME}: network weights ${showShape(p.net.conv1.w.shape)} → ` +
          `${showShape(p.net.conv3.w.shape)} fit no channel count`,
      );
    }
    const conditioner: CouplingConditioner = (z1, h) =>
      tf.tidy(() => convNet.apply(p.net, h === undefined ? z1 : tf.concat([z1, h], 3)));
    const variants = sizes.map((sz) =>
      fromConditioner(conditioner, { ...sz, eps, additive, name: NAME })
    );
    if (variants.length === 1) return variants[0];
    const expected = sizes.map((sz) => sz.channels).join(" or ");
    const pick = (c: number): Bijector => {
      const i = sizes.findIndex((sz) => sz.channels === c);
      if (i < 0) {
        throw new ShapeError(`${NAME}: input has ${c} channels, expected ${expected}`);
      }
      return variants[i];
    };
    const shape = (s: Shape4): Shape4 => pick(s[3]).forwardShape(s);
    return bijector({
      name: NAME,
      forward: (x, cond) => pick(checkInput(NAME, x)[3]).forward(x, cond),
      inverse: (y, cond) => pick(checkInput(NAME, y)[3]).inverse(y, cond),
      forwardShape: shape,
      inverseShape: shape,
    });
  },
  fromConditioner,
};
