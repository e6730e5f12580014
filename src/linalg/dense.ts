/**
 * Small dense linear algebra in float64 (tfjs has no Cholesky, solve or slogdet).
 *
 * Matrices are immutable row-major records `{rows, cols, data}`. Sizes here are the
 * channel counts of a flow (up to a few hundred), so plain O(n³) loops are fine.
 *
 * `symmetricEigen` is a thin wrapper over `ml-matrix`. LU, QR, Cholesky, solve and slogdet
 * stay written out: `ml-matrix` is as accurate for them but 1.5–9× slower at deflow's
 * sizes (3 to 64, conversions included; `deno run -A bench/linalg_packages.ts`).
 *
 * @module
 */
import { EigenvalueDecomposition, Matrix as MlMatrix } from "ml-matrix";

/** A row-major float64 matrix. */
export interface Matrix {
  /** Number of rows. */
  readonly rows: number;
  /** Number of columns. */
  readonly cols: number;
  /** Entries, row-major (`data[i * cols + j]`). */
  readonly data: Float64Array;
}

/** Build a matrix from row-major data (copied). */
export const matrix = (rows: number, cols: number, data: ArrayLike<number>): Matrix => {
  if (data.length !== rows * cols) {
    throw new Error(`linalg: ${data.length} entries for a ${rows}×${cols} matrix`);
  }
  return { rows, cols, data: Float64Array.from(data) };
};

/** Build a matrix from an array of rows. */
export const fromRows = (rows: readonly (readonly number[])[]): Matrix =>
  matrix(rows.length, rows[0]?.length ?? 0, rows.flat());

/** The n×n identity. */
export const eye = (n: number): Matrix => {
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) d[i * n + i] = 1;
  return { rows: n, cols: n, data: d };
};

/** Entry (i, j). */
export const at = (a: Matrix, i: number, j: number): number => a.data[i * a.cols + j];

/** Transpose. */
export const transpose = (a: Matrix): Matrix => {
  const d = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) d[j * a.rows + i] = a.data[i * a.cols + j];
  }
  return { rows: a.cols, cols: a.rows, data: d };
};

/** Matrix product `a · b`. */
export const matmul = (a: Matrix, b: Matrix): Matrix => {
  if (a.cols !== b.rows) {
    throw new Error(`linalg: cannot multiply ${a.rows}×${a.cols} by ${b.rows}×${b.cols}`);
  }
  const d = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const aik = a.data[i * a.cols + k];
      if (aik === 0) continue;
      for (let j = 0; j < b.cols; j++) d[i * b.cols + j] += aik * b.data[k * b.cols + j];
    }
  }
  return { rows: a.rows, cols: b.cols, data: d };
};

/** Elementwise `a + s·b`. */
export const addScaled = (a: Matrix, b: Matrix, s = 1): Matrix => {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new Error("linalg: shape mismatch in add");
  return { rows: a.rows, cols: a.cols, data: a.data.map((v, i) => v + s * b.data[i]) };
};

/** Largest absolute entry of `a − b`. */
export const maxAbsDiff = (a: Matrix, b: Matrix): number => {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
};

const square = (a: Matrix, what: string): number => {
  if (a.rows !== a.cols) throw new Error(`linalg: ${what} needs a square matrix`);
  return a.rows;
};

/** LU factorisation with partial pivoting: `P·A = L·U` (L unit lower, U upper). */
export interface LU {
  /** Unit lower-triangular factor (diagonal ones stored). */
  readonly lower: Matrix;
  /** Upper-triangular factor. */
  readonly upper: Matrix;
  /** Row permutation: row `i` of `P·A` is row `perm[i]` of `A`. */
  readonly perm: readonly number[];
  /** Sign of the permutation (+1 or −1). */
  readonly permSign: number;
}

/** LU factorisation with partial pivoting. Throws on an exactly singular matrix. */
export const lu = (a: Matrix): LU => {
  const n = square(a, "lu");
  const u = Float64Array.from(a.data);
  const l = new Float64Array(n * n);
  const perm = Array.from({ length: n }, (_, i) => i);
  let sign = 1;
  for (let k = 0; k < n; k++) {
    let p = k;
    let best = Math.abs(u[k * n + k]);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(u[i * n + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    if (best === 0) throw new Error("linalg: matrix is singular");
    if (p !== k) {
      for (let j = 0; j < n; j++) {
        [u[k * n + j], u[p * n + j]] = [u[p * n + j], u[k * n + j]];
        [l[k * n + j], l[p * n + j]] = [l[p * n + j], l[k * n + j]];
      }
      [perm[k], perm[p]] = [perm[p], perm[k]];
      sign = -sign;
    }
    for (let i = k + 1; i < n; i++) {
      const f = u[i * n + k] / u[k * n + k];
      l[i * n + k] = f;
      // The eliminated entry is zero by construction; set it exactly (f·u_kk − u_ik
      // leaves rounding residue, which made U not exactly upper triangular).
      u[i * n + k] = 0;
      if (f === 0) continue;
      for (let j = k + 1; j < n; j++) u[i * n + j] -= f * u[k * n + j];
    }
  }
  for (let i = 0; i < n; i++) l[i * n + i] = 1;
  return {
    lower: { rows: n, cols: n, data: l },
    upper: { rows: n, cols: n, data: u },
    perm,
    permSign: sign,
  };
};

/** The permutation matrix `P` of an LU factorisation (so that `P·A = L·U`). */
export const permutationMatrix = (perm: readonly number[]): Matrix => {
  const n = perm.length;
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) d[i * n + perm[i]] = 1;
  return { rows: n, cols: n, data: d };
};

/** Solve `A·X = B` from an LU factorisation. */
export const luSolve = (f: LU, b: Matrix): Matrix => {
  const n = f.lower.rows;
  if (b.rows !== n) throw new Error(`linalg: right-hand side has ${b.rows} rows, expected ${n}`);
  const m = b.cols;
  const x = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) x[i * m + j] = b.data[f.perm[i] * m + j];
  }
  const L = f.lower.data;
  const U = f.upper.data;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < i; k++) {
      const lik = L[i * n + k];
      if (lik !== 0) { for (let j = 0; j < m; j++) x[i * m + j] -= lik * x[k * m + j]; }
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let k = i + 1; k < n; k++) {
      const uik = U[i * n + k];
      if (uik !== 0) { for (let j = 0; j < m; j++) x[i * m + j] -= uik * x[k * m + j]; }
    }
    const d = U[i * n + i];
    for (let j = 0; j < m; j++) x[i * m + j] /= d;
  }
  return { rows: n, cols: m, data: x };
};

/** Solve `A·X = B`. */
export const solve = (a: Matrix, b: Matrix): Matrix => luSolve(lu(a), b);

/** Inverse of a square matrix. */
export const inverse = (a: Matrix): Matrix => solve(a, eye(square(a, "inverse")));

/** Sign and log of |det A|. A singular matrix gives `{sign: 0, logAbsDet: -Infinity}`. */
export const slogdet = (a: Matrix): { readonly sign: number; readonly logAbsDet: number } => {
  const n = square(a, "slogdet");
  let f: LU;
  try {
    f = lu(a);
  } catch {
    return { sign: 0, logAbsDet: -Infinity };
  }
  let sign = f.permSign;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const d = f.upper.data[i * n + i];
    if (d < 0) sign = -sign;
    s += Math.log(Math.abs(d));
  }
  return { sign, logAbsDet: s };
};

/** Cholesky factor `L` (lower) of a symmetric positive-definite `A = L·Lᵀ`. */
export const cholesky = (a: Matrix): Matrix => {
  const n = square(a, "cholesky");
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a.data[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new Error("linalg: matrix is not positive definite");
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  return { rows: n, cols: n, data: l };
};

/** QR factorisation by modified Gram–Schmidt with re-orthogonalisation: `A = Q·R`. */
export const qr = (a: Matrix): { readonly q: Matrix; readonly r: Matrix } => {
  const n = square(a, "qr");
  const q = new Float64Array(n * n);
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = a.data[i * n + j];
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += q[i * n + k] * v[i];
        r[k * n + j] += dot;
        for (let i = 0; i < n; i++) v[i] -= dot * q[i * n + k];
      }
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (norm === 0) throw new Error("linalg: matrix is rank deficient");
    r[j * n + j] = norm;
    for (let i = 0; i < n; i++) q[i * n + j] = v[i] / norm;
  }
  return { q: { rows: n, cols: n, data: q }, r: { rows: n, cols: n, data: r } };
};

/**
 * Eigen-decomposition of a symmetric matrix: `A = V·diag(values)·Vᵀ` with orthonormal
 * columns of `V`, values in descending order. Only the symmetric part `(A + Aᵀ)/2` is
 * used; a non-finite entry gives NaN values and vectors. Computed by `ml-matrix`
 * (Householder tridiagonalisation and implicit QL), which at deflow's sizes is as accurate
 * as, and up to 7× faster than, the cyclic Jacobi iteration this replaced
 * (`bench/linalg_packages.ts`). The sign of each eigenvector is unspecified.
 *
 * `options` is accepted for compatibility and ignored (it tuned the former Jacobi sweeps;
 * QL converges to machine precision).
 */
export const symmetricEigen = (
  a: Matrix,
  // deno-lint-ignore no-unused-vars
  options: { readonly tolerance?: number; readonly maxSweeps?: number } = {},
): { readonly values: Float64Array; readonly vectors: Matrix } => {
  const n = square(a, "symmetricEigen");
  if (n === 0) return { values: new Float64Array(0), vectors: eye(0) };
  if (!a.data.every(Number.isFinite)) {
    // NaN in, NaN out (as callers that skip non-finite training steps expect).
    return {
      values: new Float64Array(n).fill(NaN),
      vectors: { rows: n, cols: n, data: new Float64Array(n * n).fill(NaN) },
    };
  }
  const sym = new MlMatrix(n, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) sym.set(i, j, 0.5 * (a.data[i * n + j] + a.data[j * n + i]));
  }
  const evd = new EigenvalueDecomposition(sym, { assumeSymmetric: true });
  // ml-matrix sorts ascending; deflow's contract is descending.
  const ascending = evd.realEigenvalues;
  const v = evd.eigenvectorMatrix;
  const values = Float64Array.from({ length: n }, (_, k) => ascending[n - 1 - k]);
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) vectors[i * n + k] = v.get(i, n - 1 - k);
  }
  return { values, vectors: { rows: n, cols: n, data: vectors } };
};
