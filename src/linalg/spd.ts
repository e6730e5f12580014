/**
 * A differentiable SPD matrix `A = r·I + M·Mᵀ` (r = `ridge`, 1 by default) whose inverse,
 * log-determinant and Cholesky factor are computed in float64 *outside* the gradient tape
 * and injected into it.
 *
 * Why: `tf.grads` needs a synchronous function, the WebGPU backend cannot read tensors
 * synchronously, and tfjs has neither Cholesky nor log-det. So once per step,
 * {@linkcode prepareSpd} reads `M` (asynchronously), computes the statistics in float64
 * and returns them as float32 constants; inside the taped loss function
 * {@linkcode spdInverseLogDet} / {@linkcode spdCholesky} return those constants as their
 * values while routing exact gradients to `M` with `tf.customGrad`:
 *
 * - every statistic depends on `M` only through `A`, so with `Ā = ∂L/∂A` (entries taken
 *   as independent), `∂L/∂M = (Ā + Āᵀ)·M`;
 * - `logDetA`: `Ā = ḡ·A⁻¹` (so `∂/∂M = 2·A⁻¹·M` for a unit cotangent);
 * - `aInv` with cotangent `G`: `Ā = −A⁻¹·G·A⁻¹`;
 * - `chol` (L, lower, `A = L·Lᵀ`) with cotangent `L̄`: `Ā = L⁻ᵀ·Φ(Lᵀ·L̄)·L⁻¹`, where `Φ`
 *   keeps the lower triangle and halves the diagonal;
 * - `cholInv` (`K = L⁻¹`) with cotangent `K̄`: `L̄ = −Kᵀ·K̄·Kᵀ`, then as for `chol`.
 *
 * The values are those of the `M` that was passed to `prepareSpd`: pass the same tensor
 * (same values) to the differentiable ops, and prepare again after every update of `M`.
 * Gradients are first-order only (the gradient functions are not themselves taped).
 *
 * @module
 */
import { tf } from "../tf.ts";
import { NonFiniteError, ShapeError, showShape } from "../core/errors.ts";
import { cholesky, matmul, type Matrix, transpose } from "./dense.ts";
import { fromMatrix, toMatrix } from "./tensor.ts";

/** Float64-computed statistics of `A = r·I + M·Mᵀ`, stored as float32 tensors. */
export interface SpdStats {
  /** `A⁻¹`, `[C, C]`. */
  readonly aInv: tf.Tensor2D;
  /** `log det A`, a scalar. */
  readonly logDetA: tf.Scalar;
  /** Lower Cholesky factor `L` of `A = L·Lᵀ`, `[C, C]`. */
  readonly cholA: tf.Tensor2D;
  /** `L⁻¹` (lower triangular), `[C, C]`. */
  readonly cholInv: tf.Tensor2D;
  /** The ridge `r` of `A = r·I + M·Mᵀ` these statistics were computed with. */
  readonly ridge: number;
}

/** The float64 statistics of `A = r·I + M·Mᵀ` (no tensors involved). */
export interface SpdStats64 {
  /** `A` itself. */
  readonly a: Matrix;
  /** `A⁻¹`. */
  readonly aInv: Matrix;
  /** `log det A`. */
  readonly logDetA: number;
  /** Lower Cholesky factor of `A`. */
  readonly cholA: Matrix;
  /** Inverse of the Cholesky factor. */
  readonly cholInv: Matrix;
}

const checkSquare = (what: string, m: { readonly shape: readonly number[] }): number => {
  if (m.shape.length !== 2 || m.shape[0] !== m.shape[1]) {
    throw new ShapeError(
      `${what}: M must be a square [C, C] matrix, got shape ${showShape(m.shape)}`,
    );
  }
  return m.shape[0];
};

/** Inverse of a lower-triangular matrix by forward substitution. */
const lowerInverse = (l: Matrix): Matrix => {
  const n = l.rows;
  const k = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let i = j; i < n; i++) {
      let s = i === j ? 1 : 0;
      for (let p = j; p < i; p++) s -= l.data[i * n + p] * k[p * n + j];
      k[i * n + j] = s / l.data[i * n + i];
    }
  }
  return { rows: n, cols: n, data: k };
};

/**
 * The float64 statistics of `A = ridge·I + M·Mᵀ` for a float64 `M`. Throws a
 * NonFiniteError for non-finite entries and an Error when `A` is not positive definite
 * (only possible for `ridge ≤ 0`).
 */
export const spdStats64 = (m: Matrix, ridge = 1): SpdStats64 => {
  checkSquare("spdStats64", { shape: [m.rows, m.cols] });
  if (!m.data.every(Number.isFinite)) {
    throw new NonFiniteError(`spdStats64: M (${m.rows}×${m.cols}) contains NaN or Infinity`);
  }
  const n = m.rows;
  const mmt = matmul(m, transpose(m));
  const ad = Float64Array.from(mmt.data);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const s = 0.5 * (ad[i * n + j] + ad[j * n + i]);
      ad[i * n + j] = s;
      ad[j * n + i] = s;
    }
    ad[i * n + i] += ridge;
  }
  const a: Matrix = { rows: n, cols: n, data: ad };
  let l: Matrix;
  try {
    l = cholesky(a);
  } catch (e) {
    throw new Error(
      `spdStats64: A = ${ridge}·I + M·Mᵀ (${n}×${n}) is not positive definite: ${
        (e as Error).message
      }`,
    );
  }
  const k = lowerInverse(l);
  const aInv = matmul(transpose(k), k);
  let logDetA = 0;
  for (let i = 0; i < n; i++) logDetA += 2 * Math.log(l.data[i * n + i]);
  return { a, aInv, logDetA, cholA: l, cholInv: k };
};

/**
 * {@linkcode SpdStats} (float32 tensors the caller owns) of `A = ridge·I + M·Mᵀ` from an
 * already-read float64 `M`: computed in float64 by {@linkcode spdStats64}, then rounded.
 */
export const spdStatsFromMatrix = (m: Matrix, ridge = 1): SpdStats => {
  if (!(ridge >= 0) || !Number.isFinite(ridge)) {
    throw new Error(`prepareSpd: ridge must be a finite number ≥ 0, got ${ridge}`);
  }
  const s = spdStats64(m, ridge);
  return {
    aInv: fromMatrix(s.aInv),
    logDetA: tf.scalar(s.logDetA, "float32"),
    cholA: fromMatrix(s.cholA),
    cholInv: fromMatrix(s.cholInv),
    ridge,
  };
};

/**
 * Read `M` (asynchronously) and compute `A⁻¹`, `log det A`, `chol(A)` and `chol(A)⁻¹` of
 * `A = ridge·I + M·Mᵀ` in float64, returned as float32 tensors the caller owns (free them
 * with {@linkcode disposeSpd}). Call it outside the gradient tape, once per update of `M`.
 */
export const prepareSpd = async (m: tf.Tensor2D, ridge = 1): Promise<SpdStats> => {
  checkSquare("prepareSpd", m);
  return spdStatsFromMatrix(await toMatrix(m), ridge);
};

/** Dispose the tensors of {@linkcode SpdStats}. */
export const disposeSpd = (stats: SpdStats): void => {
  tf.dispose([stats.aInv, stats.logDetA, stats.cholA, stats.cholInv]);
};

const checkStats = (what: string, m: tf.Tensor2D, stats: SpdStats): void => {
  const c = checkSquare(what, m);
  if (stats.aInv.shape[0] !== c || stats.aInv.shape[1] !== c) {
    throw new ShapeError(
      `${what}: statistics are for a ${stats.aInv.shape[0]}×${stats.aInv.shape[1]} matrix, ` +
        `but M has shape ${showShape(m.shape)}`,
    );
  }
};

/**
 * A tape node whose value is `value` (a constant, cloned) and whose gradient w.r.t. `m`
 * is `(Ā + Āᵀ)·M` with `Ā = aBar(dy)`.
 */
const viaA = <T extends tf.Tensor>(
  m: tf.Tensor2D,
  value: T,
  aBar: (dy: T) => tf.Tensor2D,
): T => {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const mm = args[0] as tf.Tensor2D;
    return {
      value: tf.clone(value),
      gradFunc: (dy: T) => {
        const g = aBar(dy);
        return tf.matMul(tf.add(g, tf.transpose(g)), mm);
      },
    };
  });
  return op(m) as T;
};

/** `Φ(X)`: lower triangle of a square matrix with the diagonal halved. */
const phi = (x: tf.Tensor2D): tf.Tensor2D => {
  const n = x.shape[0];
  const mask = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) mask[i * n + j] = 1;
    mask[i * n + i] = 0.5;
  }
  return tf.mul(x, tf.tensor2d(mask, [n, n]));
};

/**
 * `A⁻¹` and `log det A` of `A = r·I + M·Mᵀ`, differentiable w.r.t. `m`: the values are the
 * precomputed `stats` (from {@linkcode prepareSpd} on the same `m`), the gradients exact:
 * `∂ logDetA/∂M = 2·A⁻¹·M`; for `aInv` with cotangent `G`, `Ā = −A⁻¹·G·A⁻¹` and
 * `∂L/∂M = (Ā + Āᵀ)·M`. The caller owns the returned tensors.
 */
export const spdInverseLogDet = (
  m: tf.Tensor2D,
  stats: SpdStats,
): { aInv: tf.Tensor2D; logDetA: tf.Scalar } => {
  checkStats("spdInverseLogDet", m, stats);
  const aInv = viaA(m, stats.aInv, (g) => tf.neg(tf.matMul(tf.matMul(stats.aInv, g), stats.aInv)));
  const logDetA = viaA(m, stats.logDetA, (g) => tf.mul(stats.aInv, g));
  return { aInv, logDetA };
};

/** Cotangent of `A` from a cotangent `lBar` of its Cholesky factor. */
const cholBarToA = (stats: SpdStats, lBar: tf.Tensor2D): tf.Tensor2D => {
  const k = stats.cholInv;
  const p = phi(tf.matMul(stats.cholA, lBar, true, false));
  return tf.matMul(tf.matMul(k, p, true, false), k);
};

/**
 * The lower Cholesky factor `L` of `A = r·I + M·Mᵀ` and its inverse `L⁻¹`, differentiable
 * w.r.t. `m` (values from `stats`, prepared on the same `m`). The caller owns the tensors.
 */
export const spdCholesky = (
  m: tf.Tensor2D,
  stats: SpdStats,
): { chol: tf.Tensor2D; cholInv: tf.Tensor2D } => {
  checkStats("spdCholesky", m, stats);
  const chol = viaA(m, stats.cholA, (lBar) => cholBarToA(stats, lBar));
  const cholInv = viaA(m, stats.cholInv, (kBar) => {
    const k = stats.cholInv;
    const lBar: tf.Tensor2D = tf.neg(tf.matMul(tf.matMul(k, kBar, true, false), k, false, true));
    return cholBarToA(stats, lBar);
  });
  return { chol, cholInv };
};
