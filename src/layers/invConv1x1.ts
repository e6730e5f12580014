/**
 * Invertible 1x1 convolution in LU form (Glow), as used by DeFlow.
 *
 * The channel-mixing matrix is
 * `W = P · (L ∘ strictLower + I) · (U ∘ strictUpper + diag(sign · exp(logS)))`
 * with `P` (a permutation matrix) and `sign` (±1 per channel) fixed. Forward
 * (image→latent) maps every pixel `y[..., c] = Σ_k W[c, k] · x[..., k]`; the per-sample
 * log-det is `H · W · Σ logS`. The inverse applies `W⁻¹`, computed in float64.
 *
 * On WebGPU tensors cannot be read synchronously, so the inverse direction there needs
 * `W⁻¹` precomputed with {@linkcode InvConv1x1Layer.withInverse} (stored under
 * `const.inverse`). On wasm/cpu it is computed on the fly when absent.
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
import { matMul } from "../nn/fastOps.ts";
import { normals, rng } from "../core/random.ts";
import {
  inverse as inverse64,
  lu,
  type Matrix,
  matrix,
  permutationMatrix,
  qr,
  transpose,
} from "../linalg/dense.ts";

/** Fixed (non-trained) tensors of {@linkcode invConv1x1}. */
export type InvConv1x1Const = {
  /** The permutation matrix `P`, `[C, C]`. */
  readonly perm: tf.Tensor2D;
  /** Sign of the diagonal of the upper factor, `[C]` of ±1. */
  readonly sign: tf.Tensor1D;
  /**
   * `W⁻¹` precomputed in float64 by {@linkcode InvConv1x1Layer.withInverse}, `[C, C]`.
   * Only valid for the parameters it was computed from.
   */
  readonly inverse?: tf.Tensor2D;
};

/** Parameters of {@linkcode invConv1x1}. */
export type InvConv1x1Params = {
  /** Lower factor; only the strictly lower part is used, `[C, C]`. */
  readonly lower: tf.Tensor2D;
  /** Upper factor; only the strictly upper part is used, `[C, C]`. */
  readonly upper: tf.Tensor2D;
  /** Log of the absolute diagonal of the upper factor, `[C]`. */
  readonly logS: tf.Tensor1D;
  /** Fixed tensors: permutation, signs, optional precomputed inverse. */
  readonly const: InvConv1x1Const;
};

/** The LU 1x1 convolution layer: parameter constructors, weight, bijector. */
export interface InvConv1x1Layer extends Layer<InvConv1x1Params, ChannelOptions> {
  /**
   * Parameters whose `W` is a random rotation: `Q` of the QR factorisation of a seeded
   * Gaussian `C×C` matrix (float64), factored as `W = P · L · U`.
   */
  readonly init: (options: ChannelOptions & { readonly seed: number }) => InvConv1x1Params;
  /** The matrix `W = P · (L∘strictLower + I) · (U∘strictUpper + diag(sign·exp(logS)))`. */
  readonly weight: (p: InvConv1x1Params) => tf.Tensor2D;
  /**
   * Read `W` (asynchronously), invert it in float64 and return a NEW params object with
   * `const.inverse` set. The new object shares every other tensor with `p`; only
   * `const.inverse` is new (the caller disposes it). Recompute after changing `p`.
   */
  readonly withInverse: (p: InvConv1x1Params) => Promise<InvConv1x1Params>;
  /** The bijector for given parameters (channels from their shape); ignores any condition. */
  readonly bijector: (p: InvConv1x1Params) => Bijector;
}

const NAME = "invConv1x1";

const toTensor2 = (m: Matrix): tf.Tensor2D =>
  tf.tensor2d(Float32Array.from(m.data), [m.rows, m.cols]);

const masks = (c: number): { lowerMask: tf.Tensor2D; upperMask: tf.Tensor2D } => {
  const lo = new Float32Array(c * c);
  const up = new Float32Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      if (j < i) lo[i * c + j] = 1;
      if (j > i) up[i * c + j] = 1;
    }
  }
  return { lowerMask: tf.tensor2d(lo, [c, c]), upperMask: tf.tensor2d(up, [c, c]) };
};

const channelsOf = (p: InvConv1x1Params): number => {
  const c = p.logS.shape[0];
  const ok = p.logS.rank === 1 &&
    [p.lower, p.upper, p.const.perm].every((t) =>
      t.rank === 2 && t.shape[0] === c && t.shape[1] === c
    ) &&
    p.const.sign.rank === 1 && p.const.sign.shape[0] === c &&
    (p.const.inverse === undefined ||
      (p.const.inverse.shape[0] === c && p.const.inverse.shape[1] === c));
  if (!ok) {
    throw new ShapeError(
      `${NAME}: inconsistent parameter shapes: lower [${p.lower.shape}], upper [${p.upper.shape}], ` +
        `logS [${p.logS.shape}], perm [${p.const.perm.shape}], sign [${p.const.sign.shape}]` +
        (p.const.inverse ? `, inverse [${p.const.inverse.shape}]` : ""),
    );
  }
  return c;
};

const weight = (p: InvConv1x1Params): tf.Tensor2D =>
  tf.tidy(() => {
    const c = channelsOf(p);
    const { lowerMask, upperMask } = masks(c);
    const l = tf.add(tf.mul(p.lower, lowerMask), tf.eye(c));
    const u = tf.add(
      tf.mul(p.upper, upperMask),
      // diag(v) as eye ∘ v (broadcast over rows): avoids the Diag op, which has no gradient
      tf.mul(tf.eye(c), tf.mul(p.const.sign, tf.exp(p.logS))),
    );
    return matMul(p.const.perm, matMul(l as tf.Tensor2D, u as tf.Tensor2D));
  });

/** Apply a `[C, C]` matrix `m` to every pixel: `y[..., c] = Σ_k m[c, k] · x[..., k]`. */
const mix = (x: tf.Tensor4D, m: tf.Tensor2D): tf.Tensor4D =>
  tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    return tf.reshape(matMul(tf.reshape(x, [n * h * w, c]), m, false, true), [n, h, w, c]);
  });

const logDetOf = (logS: tf.Tensor1D, s: Shape4, sign: 1 | -1): tf.Tensor1D =>
  tf.tidy(() => tf.mul(tf.ones([s[0]]), tf.mul(tf.sum(logS), sign * s[1] * s[2])) as tf.Tensor1D);

const invert64 = (w: ArrayLike<number>, c: number): tf.Tensor2D =>
  toTensor2(inverse64(matrix(c, c, w)));

/** The LU 1x1 convolution, see the module documentation. */
export const invConv1x1: InvConv1x1Layer = {
  init: ({ channels, seed }) => {
    if (!Number.isInteger(channels) || channels < 1) {
      throw new ShapeError(`${NAME}: channels must be a positive integer, got ${channels}`);
    }
    const c = channels;
    const [g] = normals(rng(seed), c * c);
    const { q } = qr(matrix(c, c, g));
    // lu gives P·Q = L·U, so Q = Pᵀ·L·U: store Pᵀ as the permutation.
    const f = lu(q);
    const perm = transpose(permutationMatrix(f.perm));
    const lower = new Float64Array(c * c);
    const upper = new Float64Array(c * c);
    const sign = new Float32Array(c);
    const logS = new Float32Array(c);
    for (let i = 0; i < c; i++) {
      for (let j = 0; j < c; j++) {
        if (j < i) lower[i * c + j] = f.lower.data[i * c + j];
        if (j > i) upper[i * c + j] = f.upper.data[i * c + j];
      }
      const d = f.upper.data[i * c + i];
      sign[i] = d < 0 ? -1 : 1;
      logS[i] = Math.log(Math.abs(d));
    }
    return {
      lower: toTensor2(matrix(c, c, lower)),
      upper: toTensor2(matrix(c, c, upper)),
      logS: tf.tensor1d(logS),
      const: { perm: toTensor2(perm), sign: tf.tensor1d(sign) },
    };
  },
  weight,
  withInverse: async (p) => {
    const c = channelsOf(p);
    const w = weight(p);
    const data = await w.data();
    w.dispose();
    return { ...p, const: { ...p.const, inverse: invert64(data, c) } };
  },
  bijector: (p) => {
    const c = channelsOf(p);
    const shape = channelShape(NAME, c);
    const inverseMatrix = (): tf.Tensor2D => {
      if (p.const.inverse) return p.const.inverse;
      if (tf.getBackend() === "webgpu") {
        throw new Error(
          `${NAME}: the inverse needs W⁻¹, which cannot be computed synchronously on the ` +
            `webgpu backend; call \`params = await invConv1x1.withInverse(params)\` first`,
        );
      }
      const w = weight(p);
      const inv = invert64(w.dataSync(), c);
      w.dispose();
      return inv;
    };
    return bijector({
      name: NAME,
      forward: (x) => {
        const s = checkInput(NAME, x, c);
        return tf.tidy(() => {
          const w = weight(p);
          return { y: mix(x, w), logDet: logDetOf(p.logS, s, 1) };
        });
      },
      inverse: (y) => {
        const s = checkInput(NAME, y, c);
        return tf.tidy(() => {
          const inv = inverseMatrix();
          return { y: mix(y, inv), logDet: logDetOf(p.logS, s, -1) };
        });
      },
      forwardShape: shape,
      inverseShape: shape,
    });
  },
};
