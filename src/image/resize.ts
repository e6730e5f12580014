/**
 * Bicubic image resizing with MATLAB `imresize` semantics.
 *
 * The 1-D resampling is a matrix `R` (`outSize × inSize`, rows sum to 1) built in float64
 * exactly as MATLAB's `contributions` function does:
 *
 * - cubic kernel with `a = −0.5`:
 *   `k(t) = 1.5|t|³ − 2.5|t|² + 1` for `|t| ≤ 1`,
 *   `k(t) = −0.5|t|³ + 2.5|t|² − 4|t| + 2` for `1 < |t| ≤ 2`, else 0;
 * - output pixel `x = 1..outSize` (1-based) sits at input coordinate
 *   `u = x/scale + 0.5·(1 − 1/scale)`;
 * - when downscaling (`scale < 1`) the kernel is widened (antialiasing):
 *   `h(t) = scale · k(scale · t)` with support `4/scale`, otherwise `h = k`;
 * - taps outside the image are folded back by symmetric (half-sample) mirroring,
 *   `[1, …, n, n, …, 1]` repeated, as MATLAB does;
 * - every row is divided by its sum.
 *
 * An NHWC image is resized by two matrix products (height, then width), so the op is
 * differentiable and runs on every backend (wasm, WebGPU, cpu).
 *
 * Caching: the float32 weights of each `(inSize, outSize, scale)` are cached in a small
 * `Map` of plain JS arrays (never tensors). The weight tensors are made from that cache
 * inside the `tf.tidy` of each call and disposed with it, so nothing outlives a call and
 * the cache survives backend switches. {@linkcode clearResizeCache} empties the cache.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { Matrix } from "../linalg/dense.ts";
import { constMatMul } from "../nn/fastOps.ts";

/** MATLAB's cubic kernel with `a = −0.5`. */
export const cubicKernel = (t: number): number => {
  const x = Math.abs(t);
  const x2 = x * x;
  const x3 = x2 * x;
  if (x <= 1) return 1.5 * x3 - 2.5 * x2 + 1;
  if (x <= 2) return -0.5 * x3 + 2.5 * x2 - 4 * x + 2;
  return 0;
};

const checkSize = (name: string, what: string, n: number): void => {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`${name}: ${what} must be a positive integer, got ${n}`);
  }
};

/** Symmetric mirror of a 1-based index into `1..n` (MATLAB's `aux = [1:n, n:-1:1]`). */
const mirror = (ind: number, n: number): number => {
  const period = 2 * n;
  const m = (((ind - 1) % period) + period) % period; // 0 .. 2n-1
  return m < n ? m + 1 : period - m;
};

/**
 * The 1-D bicubic resampling matrix (`outSize` rows, `inSize` columns, float64), MATLAB
 * `imresize` style: antialiased when `scale < 1`, mirror padding, each row sums to 1.
 * `scale` defaults to `outSize / inSize` (MATLAB's choice when an output size is given);
 * pass `1/factor` to reproduce `imresize(x, 1/factor)` when sizes do not divide.
 */
export const resizeMatrix = (
  inSize: number,
  outSize: number,
  scale: number = outSize / inSize,
): Matrix => {
  checkSize("resizeMatrix", "inSize", inSize);
  checkSize("resizeMatrix", "outSize", outSize);
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new RangeError(`resizeMatrix: scale must be positive and finite, got ${scale}`);
  }
  const antialias = scale < 1;
  const width = antialias ? 4 / scale : 4;
  const h = antialias ? (t: number) => scale * cubicKernel(scale * t) : cubicKernel;
  const taps = Math.ceil(width) + 2;
  const data = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const x = i + 1;
    const u = x / scale + 0.5 * (1 - 1 / scale);
    const left = Math.floor(u - width / 2);
    let total = 0;
    const row = new Float64Array(inSize);
    for (let p = 0; p < taps; p++) {
      const ind = left + p;
      const w = h(u - ind);
      if (w === 0) continue;
      total += w;
      row[mirror(ind, inSize) - 1] += w;
    }
    for (let j = 0; j < inSize; j++) data[i * inSize + j] = row[j] / total;
  }
  return { rows: outSize, cols: inSize, data };
};

const cache = new Map<string, Float32Array>();
const CACHE_LIMIT = 64;

const weights = (inSize: number, outSize: number, scale: number): Float32Array => {
  const key = `${inSize}:${outSize}:${scale}`;
  let w = cache.get(key);
  if (w === undefined) {
    w = Float32Array.from(resizeMatrix(inSize, outSize, scale).data);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    cache.set(key, w);
  }
  return w;
};

/** Empty the cache of resize weights (plain arrays; no tensors are ever cached). */
export const clearResizeCache = (): void => cache.clear();

/** Number of weight matrices currently cached (for tests and diagnostics). */
export const resizeCacheSize = (): number => cache.size;

const resizeImpl = (
  x: tf.Tensor4D,
  outH: number,
  outW: number,
  scaleH: number,
  scaleW: number,
): tf.Tensor4D =>
  tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    let cur: tf.Tensor4D = x;
    if (outH !== h || scaleH !== 1) {
      // [N,H,W,C] → [H, N·W·C]; R_h · (·) → [oH, N, W, C] → [N, oH, W, C]
      const r = tf.tensor2d(weights(h, outH, scaleH), [outH, h]);
      const a = tf.reshape(tf.transpose(cur, [1, 0, 2, 3]), [h, n * w * c]);
      const y = tf.reshape(constMatMul(r, a), [outH, n, w, c]) as tf.Tensor4D;
      cur = tf.transpose(y, [1, 0, 2, 3]);
    }
    if (outW !== w || scaleW !== 1) {
      const hh = cur.shape[1];
      // [N,H',W,C] → [W, N·H'·C]; R_w · (·) → [oW, N, H', C] → [N, H', oW, C]
      const r = tf.tensor2d(weights(w, outW, scaleW), [outW, w]);
      const a = tf.reshape(tf.transpose(cur, [2, 0, 1, 3]), [w, n * hh * c]);
      const y = tf.reshape(constMatMul(r, a), [outW, n, hh, c]) as tf.Tensor4D;
      cur = tf.transpose(y, [1, 2, 0, 3]);
    }
    return cur === x ? tf.clone(x) : cur;
  });

const checkImage = (name: string, x: tf.Tensor): void => {
  if (x.rank !== 4) {
    throw new ShapeError(`${name}: expected an NHWC tensor of rank 4, got ${showShape(x.shape)}`);
  }
  if (x.dtype !== "float32") {
    throw new ShapeError(`${name}: expected float32 input, got ${x.dtype}`);
  }
};

/**
 * Resize an NHWC float32 batch to `size = [height, width]` with MATLAB-style bicubic
 * interpolation (`imresize(x, [height width])`): per axis `scale = out/in`, antialiased
 * when shrinking. Same size returns a copy. Differentiable in `x`; the caller owns the
 * result.
 */
export const bicubicResize = (
  x: tf.Tensor4D,
  size: readonly [number, number],
): tf.Tensor4D => {
  const name = "bicubicResize";
  checkImage(name, x);
  const [outH, outW] = size;
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) {
    throw new RangeError(
      `${name}: output size must be two positive integers, got [${size.join(", ")}] ` +
        `(input ${showShape(x.shape)})`,
    );
  }
  const [, h, w] = x.shape;
  return resizeImpl(x, outH, outW, outH / h, outW / w);
};

/** The output side of {@linkcode bicubicDownscale} for an input side `n`: `ceil(n / factor)`. */
export const downscaledSide = (n: number, factor: number): number => Math.ceil(n / factor - 1e-9);

/**
 * Downscale by an integer-or-real `factor ≥ 1` as MATLAB's `imresize(x, 1/factor)`:
 * output size `ceil(in/factor)` per axis, weights for `scale = 1/factor` (antialiased).
 * When the sizes divide evenly this equals `bicubicResize(x, [h/factor, w/factor])`.
 */
export const bicubicDownscale = (x: tf.Tensor4D, factor: number): tf.Tensor4D => {
  const name = "bicubicDownscale";
  checkImage(name, x);
  if (!(factor >= 1) || !Number.isFinite(factor)) {
    throw new RangeError(`${name}: factor must be a finite number ≥ 1, got ${factor}`);
  }
  const [, h, w] = x.shape;
  return resizeImpl(
    x,
    downscaledSide(h, factor),
    downscaledSide(w, factor),
    1 / factor,
    1 / factor,
  );
};
