/**
 * Internal fast paths for ops that are slow on the wasm backend (measured with
 * `bench/profile.ts` and `scratch`-style micro-benchmarks, 2-core x86, tfjs-wasm 4.22):
 *
 * - `matMul` with `transposeA`/`transposeB` runs 3–5× slower than a plain `matMul` after
 *   an explicit `transpose`, and tfjs's own `matMul` gradient uses exactly those flags;
 * - `slice` along the last axis copies one innermost row at a time in JavaScript, so
 *   de-interleaving even/odd channels (rows of length 1) is ~10× slower than a
 *   `transpose` followed by contiguous pieces;
 *
 * Every function here computes exactly the same values as the plain tfjs formulation
 * (up to float32 summation order) and is differentiable.
 *
 * @module
 */
import { tf } from "../tf.ts";

const plainMatMul = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((...args: any[]) => {
    const a = args[0] as tf.Tensor2D;
    const b = args[1] as tf.Tensor2D;
    const save = args[2] as tf.GradSaveFunc;
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        const d = dy as tf.Tensor2D;
        return [tf.matMul(d, tf.transpose(sb)), tf.matMul(tf.transpose(sa), d)];
      },
    };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * `tf.matMul` of two matrices with optional transposes, computed without the transposed
 * matMul kernels on wasm (explicit `transpose`, and a gradient of plain matMuls). Other
 * backends call `tf.matMul` directly. Both operands are treated as differentiable.
 */
export const matMul = (
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA = false,
  transposeB = false,
): tf.Tensor2D => {
  const a2 = a as tf.Tensor2D;
  const b2 = b as tf.Tensor2D;
  if (tf.getBackend() !== "wasm") return tf.matMul(a2, b2, transposeA, transposeB);
  return tf.tidy(() =>
    plainMatMul(transposeA ? tf.transpose(a2) : a2, transposeB ? tf.transpose(b2) : b2)
  );
};

/**
 * `r · a` for a CONSTANT matrix `r` (no gradient flows to `r`): on wasm the gradient
 * `rᵀ · dy` uses an explicit transpose of `r` instead of a transposed-operand matMul.
 */
export const constMatMul = (r: tf.Tensor2D, a: tf.Tensor): tf.Tensor2D => {
  if (tf.getBackend() !== "wasm") return tf.matMul(r, a as tf.Tensor2D);
  const f = tf.customGrad(
    // deno-lint-ignore no-explicit-any
    ((...args: any[]) => {
      const x = args[0] as tf.Tensor2D;
      const save = args[1] as tf.GradSaveFunc;
      save([r]);
      return {
        value: tf.matMul(r, x),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.matMul(tf.transpose(saved[0] as tf.Tensor2D), dy as tf.Tensor2D),
      };
      // deno-lint-ignore no-explicit-any
    }) as any,
  ) as (x: tf.Tensor2D) => tf.Tensor2D;
  return f(a as tf.Tensor2D);
};

/**
 * The even and odd channels of an NHWC tensor with an even channel count (channels
 * `0, 2, 4, …` and `1, 3, 5, …`), via one transpose and contiguous pieces.
 */
export const evenOdd = (t: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] =>
  tf.tidy(() => {
    const [n, h, w, c] = t.shape;
    const k = c / 2;
    // Rank 3 on purpose (see deinterleave in src/layers/affineCoupling.ts).
    const r = tf.transpose(tf.reshape(t, [n * h * w, k, 2]), [2, 0, 1]);
    const [even, odd] = tf.unstack(r, 0);
    return [tf.reshape(even, [n, h, w, k]), tf.reshape(odd, [n, h, w, k])];
  });
