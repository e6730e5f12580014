/**
 * 2-D convolution ('same' padding, stride 1) with a gradient that works on every backend.
 *
 * The wasm backend has no `Conv2DBackpropFilter` kernel, so the filter gradient is
 * computed here as an im2col matrix product (`dW = patchesᵀ · dY`) and the input gradient
 * with `conv2dTranspose`. The same code runs on WebGPU and cpu.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";

/** im2col for a k×k 'same' convolution: `[N·H·W, k·k·C]`, patch order (i, j, c). */
export const im2col = (x: tf.Tensor4D, k: number): tf.Tensor2D =>
  tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    if (k === 1) return tf.reshape(x, [n * h * w, c]);
    const p = (k - 1) / 2;
    const padded = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
    const cols: tf.Tensor4D[] = [];
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) cols.push(tf.slice(padded, [0, i, j, 0], [n, h, w, c]));
    }
    return tf.reshape(tf.concat(cols, 3), [n * h * w, k * k * c]);
  });

/**
 * Conv gradients as im2col matMul (filter) and conv2dTranspose (input): the faster form
 * on WebGPU (llvmpipe measurements, bench/micro_conv.ts).
 */
const gradsByMatMul = (xs: tf.Tensor4D, ws: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor[] => {
  const [kh, kw, ci, co] = ws.shape;
  const dyMat = tf.reshape(dy, [-1, co]);
  const dW = tf.reshape(tf.matMul(im2col(xs, kh), dyMat, true, false), [kh, kw, ci, co]);
  const dX = kh === 1
    ? tf.reshape(tf.matMul(dyMat, tf.reshape(ws, [ci, co]), false, true), xs.shape)
    : tf.conv2dTranspose(dy, ws, xs.shape, 1, "same");
  return [dX, dW];
};

/**
 * Conv gradients as forward convolutions, which wasm's fast kernels handle (about 5×
 * faster than matMul/conv2dTranspose there, bench/micro_conv.ts): the input gradient is a
 * 'same' conv of `dY` with the spatially flipped, in/out-transposed filter; the filter
 * gradient is a 'valid' conv of the padded input (batch ↔ channels swapped) with `dY` as
 * the filter.
 */
const gradsByConv = (xs: tf.Tensor4D, ws: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor[] => {
  const [kh, kw, ci, co] = ws.shape;
  if (kh === 1) {
    // 1×1: plain matMuls with explicit transposes (the transposed-operand matMul kernels
    // and a batch↔channel conv are both slower on wasm).
    const xMat = tf.reshape(xs, [-1, ci]) as tf.Tensor2D;
    const dyMat = tf.reshape(dy, [-1, co]) as tf.Tensor2D;
    const dX = tf.reshape(tf.matMul(dyMat, tf.transpose(tf.reshape(ws, [ci, co]))), xs.shape);
    const dW = tf.reshape(tf.matMul(tf.transpose(xMat), dyMat), ws.shape);
    return [dX, dW];
  }
  const p = (kh - 1) / 2;
  const kk = kh * kw;
  // Spatial flip as a matMul with the k²×k² anti-identity (exact; wasm's Reverse kernel
  // is ~5× slower), then in/out channels swapped.
  const anti = new Float32Array(kk * kk);
  for (let i = 0; i < kk; i++) anti[i * kk + (kk - 1 - i)] = 1;
  const flippedMat = tf.matMul(tf.tensor2d(anti, [kk, kk]), tf.reshape(ws, [kk, ci * co]));
  const flipped = tf.reshape(
    tf.transpose(tf.reshape(flippedMat, [kk, ci, co]), [0, 2, 1]),
    [kh, kw, co, ci],
  );
  const dX = tf.conv2d(dy, flipped as tf.Tensor4D, 1, "same");
  const xp = tf.pad(xs, [[0, 0], [p, p], [p, p], [0, 0]]);
  const dWt = tf.conv2d(
    tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D,
    tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D,
    1,
    "valid",
  );
  const dW = tf.reshape(tf.transpose(dWt, [1, 2, 0, 3]), [kh, kw, ci, co]);
  return [dX, dW];
};

const convCore = tf.customGrad(
  // deno-lint-ignore no-explicit-any
  ((...args: any[]) => {
    const x4 = args[0] as tf.Tensor4D;
    const w4 = args[1] as tf.Tensor4D;
    const save = args[2] as tf.GradSaveFunc;
    save([x4, w4]);
    const value = tf.conv2d(x4, w4, 1, "same");
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
      const dy4 = dy as tf.Tensor4D;
      return tf.getBackend() === "webgpu" ? gradsByMatMul(xs, ws, dy4) : gradsByConv(xs, ws, dy4);
    };
    return { value, gradFunc };
    // deno-lint-ignore no-explicit-any
  }) as any,
) as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

/**
 * `y = conv(x, w) + b` with 'same' padding and stride 1; `w` is `[k, k, Cin, Cout]`
 * with odd `k`. Differentiable in `x`, `w` and `b` on every backend.
 */
export const conv2dSame = (
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  b?: tf.Tensor1D,
  name = "conv2d",
): tf.Tensor4D => {
  if (x.rank !== 4 || w.rank !== 4) {
    throw new ShapeError(`${name}: expected rank-4 input and filter`);
  }
  if (x.shape[3] !== w.shape[2]) {
    throw new ShapeError(
      `${name}: input has ${x.shape[3]} channels, expected ${w.shape[2]} ` +
        `(input ${showShape(x.shape)}, filter ${showShape(w.shape)})`,
    );
  }
  if (w.shape[0] !== w.shape[1] || w.shape[0] % 2 !== 1) {
    throw new ShapeError(`${name}: filter must be k×k with odd k, got ${showShape(w.shape)}`);
  }
  return tf.tidy(() => {
    const y = convCore(x, w) as tf.Tensor4D;
    return b ? tf.add(y, b) : y;
  });
};
