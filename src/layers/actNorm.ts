/**
 * ActNorm: a per-channel affine map with a data-dependent initialisation.
 *
 * Forward (image→latent): `y = (x + bias) · exp(logs)` per channel; the per-sample
 * log-det is `H · W · Σ logs`. Inverse: `x = y · exp(−logs) − bias`, log-det
 * `−H · W · Σ logs`.
 *
 * @module
 */
import { tf } from "../tf.ts";
import {
  type Bijector,
  bijector,
  channelShape,
  checkInput,
  type Shape4,
} from "../core/bijector.ts";
import { ShapeError } from "../core/errors.ts";
import type { ChannelOptions, Layer } from "../core/layer.ts";

/** Parameters of {@linkcode actNorm}: per-channel bias and log-scale, both `[C]`. */
export type ActNormParams = {
  /** Added to the input before scaling, `[C]`. */
  readonly bias: tf.Tensor1D;
  /** Log of the per-channel scale, `[C]`. */
  readonly logs: tf.Tensor1D;
};

/** The ActNorm layer: parameter constructors and the bijector. */
export interface ActNormLayer extends Layer<ActNormParams, ChannelOptions> {
  /**
   * Identity parameters (bias 0, logs 0) for `channels` channels. Deterministic: the seed
   * is accepted (as by every layer) and ignored.
   */
  readonly init: (options: ChannelOptions & { readonly seed?: number }) => ActNormParams;
  /**
   * Data-dependent initialisation from a batch `x` (NHWC): `bias = −mean`,
   * `logs = −log(std + 1e-6)`, mean and (biased) std per channel over N, H, W, so the
   * output on `x` has zero mean and unit variance per channel.
   */
  readonly initFromData: (x: tf.Tensor4D) => ActNormParams;
  /** The bijector for given parameters (channels from their shape); ignores any condition. */
  readonly bijector: (p: ActNormParams) => Bijector;
}

const NAME = "actNorm";

const channelsOf = (p: ActNormParams): number => {
  if (p.bias.rank !== 1 || p.logs.rank !== 1 || p.bias.shape[0] !== p.logs.shape[0]) {
    throw new ShapeError(
      `${NAME}: bias [${p.bias.shape}] and logs [${p.logs.shape}] must be equal-length vectors`,
    );
  }
  return p.bias.shape[0];
};

/** Per-sample `H · W · Σ logs` for a batch of shape `s`. */
const logDetOf = (logs: tf.Tensor1D, s: Shape4, sign: 1 | -1): tf.Tensor1D =>
  tf.tidy(() => tf.mul(tf.ones([s[0]]), tf.mul(tf.sum(logs), sign * s[1] * s[2])) as tf.Tensor1D);

/** ActNorm, see the module documentation. */
export const actNorm: ActNormLayer = {
  init: ({ channels }) => {
    if (!Number.isInteger(channels) || channels < 1) {
      throw new ShapeError(`${NAME}: channels must be a positive integer, got ${channels}`);
    }
    return { bias: tf.zeros([channels]), logs: tf.zeros([channels]) };
  },
  initFromData: (x) => {
    checkInput(NAME, x);
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const std = tf.sqrt(variance);
      return {
        bias: tf.neg(mean) as tf.Tensor1D,
        logs: tf.neg(tf.log(tf.add(std, 1e-6))) as tf.Tensor1D,
      };
    });
  },
  bijector: (p) => {
    const c = channelsOf(p);
    const shape = channelShape(NAME, c);
    return bijector({
      name: NAME,
      forward: (x) => {
        const s = checkInput(NAME, x, c);
        return tf.tidy(() => ({
          y: tf.mul(tf.add(x, p.bias), tf.exp(p.logs)) as tf.Tensor4D,
          logDet: logDetOf(p.logs, s, 1),
        }));
      },
      inverse: (y) => {
        const s = checkInput(NAME, y, c);
        return tf.tidy(() => ({
          y: tf.sub(tf.mul(y, tf.exp(tf.neg(p.logs))), p.bias) as tf.Tensor4D,
          logDet: logDetOf(p.logs, s, -1),
        }));
      },
      forwardShape: shape,
      inverseShape: shape,
    });
  },
};
