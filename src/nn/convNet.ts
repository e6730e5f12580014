/**
 * The conditioner network of DeFlow's coupling and injector layers.
 *
 * `conv3×3 (in → hidden, no bias) → ActNorm → ReLU → conv1×1 (hidden → hidden, no bias)
 * → ActNorm → ReLU → conv3×3 (hidden → out, with bias) → · exp(3 · logs)`.
 * The first two convolutions start from `N(0, 0.05²)` weights, the ActNorms and the
 * output log-scale from 0, and the last convolution's weights and bias from ZERO, so the
 * network outputs zeros at initialisation.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { splitSeed, tfSeed } from "../core/random.ts";
import { conv2dSame } from "./conv.ts";

/** Sizes of a {@linkcode convNet}. */
export interface ConvNetConfig {
  /** Input channels. */
  readonly inChannels: number;
  /** Hidden channels (64 in the paper). */
  readonly hidden: number;
  /** Output channels. */
  readonly outChannels: number;
}

/** A per-channel affine normalisation inside the network: `(x + bias) · exp(logs)`. */
export type ConvNetNorm = {
  /** Per-channel bias, `[hidden]`. */
  readonly bias: tf.Tensor1D;
  /** Per-channel log-scale, `[hidden]`. */
  readonly logs: tf.Tensor1D;
};

/** Parameters of {@linkcode convNet}. */
export type ConvNetParams = {
  /** First convolution, `w`: `[3, 3, in, hidden]`. */
  readonly conv1: { readonly w: tf.Tensor4D };
  /** ActNorm after the first convolution. */
  readonly norm1: ConvNetNorm;
  /** Second convolution, `w`: `[1, 1, hidden, hidden]`. */
  readonly conv2: { readonly w: tf.Tensor4D };
  /** ActNorm after the second convolution. */
  readonly norm2: ConvNetNorm;
  /**
   * Zero-initialised output convolution: `w` `[3, 3, hidden, out]`, bias `b` `[out]`,
   * and output log-scale `logs` `[out]` (output multiplied by `exp(3 · logs)`).
   */
  readonly conv3: { readonly w: tf.Tensor4D; readonly b: tf.Tensor1D; readonly logs: tf.Tensor1D };
};

/** The conditioner network: initialisation and application. */
export interface ConvNet {
  /** Fresh parameters from a seed (see the module documentation for the init). */
  readonly init: (seed: number, config: ConvNetConfig) => ConvNetParams;
  /** Apply the network to an NHWC tensor with `inChannels` channels. */
  readonly apply: (p: ConvNetParams, x: tf.Tensor4D) => tf.Tensor4D;
}

const NAME = "convNet";

const positive = (what: string, n: number): void => {
  if (!Number.isInteger(n) || n < 1) {
    throw new ShapeError(`${NAME}: ${what} must be a positive integer, got ${n}`);
  }
};

const norm = (x: tf.Tensor4D, n: ConvNetNorm): tf.Tensor4D =>
  tf.mul(tf.add(x, n.bias), tf.exp(n.logs));

/** The conditioner network, see the module documentation. */
export const convNet: ConvNet = {
  init: (seed, { inChannels, hidden, outChannels }) => {
    positive("inChannels", inChannels);
    positive("hidden", hidden);
    positive("outChannels", outChannels);
    const [s1, s2] = splitSeed(seed, 2);
    return {
      conv1: { w: tf.randomNormal([3, 3, inChannels, hidden], 0, 0.05, "float32", tfSeed(s1)) },
      norm1: { bias: tf.zeros([hidden]), logs: tf.zeros([hidden]) },
      conv2: { w: tf.randomNormal([1, 1, hidden, hidden], 0, 0.05, "float32", tfSeed(s2)) },
      norm2: { bias: tf.zeros([hidden]), logs: tf.zeros([hidden]) },
      conv3: {
        w: tf.zeros([3, 3, hidden, outChannels]),
        b: tf.zeros([outChannels]),
        logs: tf.zeros([outChannels]),
      },
    };
  },
  apply: (p, x) => {
    if (x.rank !== 4) {
      throw new ShapeError(`${NAME}: expected an NHWC tensor of rank 4, got ${showShape(x.shape)}`);
    }
    return tf.tidy(() => {
      let h = conv2dSame(x, p.conv1.w, undefined, `${NAME}.conv1`);
      h = tf.relu(norm(h, p.norm1));
      h = conv2dSame(h, p.conv2.w, undefined, `${NAME}.conv2`);
      h = tf.relu(norm(h, p.norm2));
      h = conv2dSame(h, p.conv3.w, p.conv3.b, `${NAME}.conv3`);
      return tf.mul(h, tf.exp(tf.mul(p.conv3.logs, 3)));
    });
  },
};
