/**
 * Float64 dense linear algebra (src/linalg/dense.ts) and the float64 SPD statistics
 * (spdStats64 in src/linalg/spd.ts), checked against independent references (cofactor
 * expansion, explicit products) over random matrices. Pure float64: no tfjs backend.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addScaled,
  cholesky,
  eye,
  fromRows,
  inverse,
  lu,
  luSolve,
  matmul,
  type Matrix,
  matrix,
  maxAbsDiff,
  permutationMatrix,
  qr,
  slogdet,
  solve,
  symmetricEigen,
  transpose,
} from "../src/linalg/dense.ts";
import { spdStats64 } from "../src/linalg/spd.ts";
import { rng, uniforms } from "../src/core/random.ts";

const SEED = { seed: 42, numRuns: 150 } as const;

// ---------- independent references ----------

/** Determinant by cofactor expansion along the first row (exponential; n ≤ 5 only). */
const cofactorDet = (a: Matrix): number => {
  const n = a.rows;
  if (n === 1) return a.data[0];
  let det = 0;
  for (let j = 0; j < n; j++) {
    const minor: number[] = [];
    for (let i = 1; i < n; i++) {
      for (let k = 0; k < n; k++) if (k !== j) minor.push(a.data[i * n + k]);
    }
    det += (j % 2 === 0 ? 1 : -1) * a.data[j] * cofactorDet(matrix(n - 1, n - 1, minor));
  }
  return det;
};

const normInf = (a: Matrix): number => {
  let m = 0;
  for (let i = 0; i < a.rows; i++) {
    let s = 0;
    for (let j = 0; j < a.cols; j++) s += Math.abs(a.data[i * a.cols + j]);
    m = Math.max(m, s);
  }
  return m;
};

/**
 * Run `f` on `a`; the only error allowed is the one for a singular (rank-deficient)
 * matrix, and only when `a` really is singular (cofactor determinant ≈ 0 relative to its
 * scale). Returns undefined for such a draw; any other throw fails the property.
 */
const unlessSingular = <T>(a: Matrix, f: () => T): T | undefined => {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof Error) || !/singular|rank deficient/.test(e.message)) throw e;
    const det = cofactorDet(a);
    const scale = Math.pow(Math.max(normInf(a), 1e-300), a.rows);
    assert.ok(
      Math.abs(det) <= 1e-12 * scale,
      `"${e.message}" on a non-singular matrix (det ${det})`,
    );
    return undefined;
  }
};

const isLower = (a: Matrix, unitDiag = false): boolean => {
  for (let i = 0; i < a.rows; i++) {
    for (let j = i + 1; j < a.cols; j++) if (a.data[i * a.cols + j] !== 0) return false;
    if (unitDiag && a.data[i * a.cols + i] !== 1) return false;
  }
  return true;
};

const isUpper = (a: Matrix): boolean => isLower(transpose(a));

// ---------- arbitraries ----------

/**
 * Entries in [−1, 1]; magnitudes below 1e−3 become exact zeros (sparse, structured
 * matrices), so no subnormals: those overflow on division and say nothing about the
 * algorithms.
 */
const entries = (len: number) =>
  fc.array(
    fc.double({ min: -1, max: 1, noNaN: true }).map((v) => (Math.abs(v) < 1e-3 ? 0 : v)),
    { minLength: len, maxLength: len },
  );

/** A dense matrix of uniform entries in [−1, 1] from an integer seed (project PRNG). */
const denseRandom = (rows: number, cols: number, seed: number): Matrix =>
  matrix(rows, cols, uniforms(rng(seed), rows * cols)[0].map((u) => 2 * u - 1));

/**
 * A random square matrix of size 1..maxN with entries in [−1, 1]: half structured
 * (fast-check values, many zeros and edge values), half dense uniform from a seed.
 */
const squareMatrix = (maxN = 6) =>
  fc.integer({ min: 1, max: maxN }).chain((n) =>
    fc.oneof(
      entries(n * n).map((d) => matrix(n, n, d)),
      fc.integer().map((seed) => denseRandom(n, n, seed)),
    )
  );

/** A random matrix and a random right-hand side with the same number of rows. */
const systemArb = fc.integer({ min: 1, max: 6 }).chain((n) =>
  fc.tuple(
    fc.oneof(
      entries(n * n).map((d) => matrix(n, n, d)),
      fc.integer().map((seed) => denseRandom(n, n, seed)),
    ),
    fc.integer({ min: 1, max: 3 }).chain((k) => entries(n * k).map((d) => matrix(n, k, d))),
  )
);

/** A random SPD matrix `B·Bᵀ + δ·I`. */
const spdMatrix = (maxN = 6) =>
  squareMatrix(maxN).chain((b) =>
    fc.double({ min: 0.05, max: 2, noNaN: true }).map((delta) =>
      addScaled(matmul(b, transpose(b)), eye(b.rows), delta)
    )
  );

/**
 * Residual tolerance for a backward-stable solve: ‖A·X − B‖ ≲ n·ε·‖A‖·‖X‖. Random matrices
 * can be nearly singular, so the tolerance scales with ‖X‖ rather than being fixed.
 */
const residualTol = (a: Matrix, x: Matrix, b: Matrix): number =>
  1e-13 * a.rows * (normInf(a) * normInf(x) + normInf(b) + 1);

// ---------- tests ----------

Deno.test("lu: P·A = L·U, L unit lower, U upper, permSign = det P", () => {
  fc.assert(
    fc.property(squareMatrix(), (a) => {
      const f = unlessSingular(a, () => lu(a));
      if (f === undefined) return true; // exactly singular draws are tested separately
      assert.ok(isLower(f.lower, true), "L is unit lower triangular");
      assert.ok(isUpper(f.upper), "U is upper triangular");
      const p = permutationMatrix(f.perm);
      const pa = matmul(p, a);
      assert.ok(maxAbsDiff(pa, matmul(f.lower, f.upper)) < 1e-12 * (1 + normInf(a)) * a.rows);
      assert.equal(f.permSign, Math.sign(cofactorDet(p)) || 1, "sign of the permutation");
      // partial pivoting bounds the multipliers
      assert.ok(f.lower.data.every((v) => Math.abs(v) <= 1 + 1e-15));
    }),
    SEED,
  );
});

Deno.test("inverse: A·A⁻¹ = I and A⁻¹·A = I", () => {
  fc.assert(
    fc.property(squareMatrix(), (a) => {
      const x = unlessSingular(a, () => inverse(a));
      if (x === undefined) return true;
      const i = eye(a.rows);
      assert.ok(maxAbsDiff(matmul(a, x), i) <= residualTol(a, x, i), "A·A⁻¹ = I");
      assert.ok(maxAbsDiff(matmul(x, a), i) <= residualTol(a, x, i), "A⁻¹·A = I");
    }),
    SEED,
  );
  // a matrix that needs pivoting (zero leading entry)
  const a = fromRows([[0, 2, 1], [1, 0, 0], [3, 1, 4]]);
  assert.ok(maxAbsDiff(matmul(a, inverse(a)), eye(3)) < 1e-14);
});

Deno.test("solve: A·X = B for random systems; luSolve agrees", () => {
  fc.assert(
    fc.property(systemArb, ([a, b]) => {
      const x = unlessSingular(a, () => solve(a, b));
      if (x === undefined) return true;
      assert.equal(x.rows, a.rows);
      assert.equal(x.cols, b.cols);
      assert.ok(maxAbsDiff(matmul(a, x), b) <= residualTol(a, x, b), "A·X = B");
      assert.ok(maxAbsDiff(luSolve(lu(a), b), x) === 0, "solve = luSolve(lu)");
    }),
    SEED,
  );
  // well-conditioned: the solution is recovered, not just the residual
  fc.assert(
    fc.property(systemArb, ([r, x0]) => {
      const a = addScaled(r, eye(r.rows), 2 * r.rows); // strictly diagonally dominant
      const x = solve(a, matmul(a, x0));
      assert.ok(maxAbsDiff(x, x0) < 1e-13, "X recovered");
    }),
    SEED,
  );
});

Deno.test("slogdet: matches the LU diagonal product and a cofactor expansion", () => {
  fc.assert(
    fc.property(squareMatrix(5), (a) => {
      const { sign, logAbsDet } = slogdet(a);
      const ref = cofactorDet(a);
      // independent reference: cofactor expansion
      if (Math.abs(ref) > 1e-9) {
        assert.equal(sign, Math.sign(ref), `sign for det ${ref}`);
        assert.ok(
          Math.abs(logAbsDet - Math.log(Math.abs(ref))) < 1e-8,
          `log|det| ${logAbsDet} vs cofactor ${Math.log(Math.abs(ref))}`,
        );
      }
      // second reference: product of U's diagonal times the permutation sign
      if (sign !== 0) {
        const f = lu(a);
        let prod = f.permSign;
        for (let i = 0; i < a.rows; i++) prod *= f.upper.data[i * a.rows + i];
        assert.ok(
          Math.abs(sign * Math.exp(logAbsDet) - prod) <= 1e-12 * Math.max(1, Math.abs(prod)),
        );
      }
    }),
    SEED,
  );
  // 3×3 and 4×4 with known determinants
  const a3 = fromRows([[2, -1, 0], [1, 3, 2], [0, 1, 4]]);
  assert.equal(cofactorDet(a3), 2 * (12 - 2) + 1 * (4 - 0));
  assert.ok(Math.abs(slogdet(a3).logAbsDet - Math.log(24)) < 1e-14);
  assert.equal(slogdet(a3).sign, 1);
  const a4 = fromRows([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 3, 0], [0, 0, 0, 5]]);
  assert.deepEqual(slogdet(a4), { sign: -1, logAbsDet: Math.log(15) });
  assert.equal(cofactorDet(a4), -15);
});

Deno.test("cholesky: lower factor with positive diagonal reconstructs SPD A", () => {
  fc.assert(
    fc.property(spdMatrix(), (a) => {
      const l = cholesky(a);
      assert.ok(isLower(l), "lower triangular");
      for (let i = 0; i < a.rows; i++) assert.ok(l.data[i * a.rows + i] > 0, "positive diagonal");
      assert.ok(maxAbsDiff(matmul(l, transpose(l)), a) < 1e-12 * (1 + normInf(a)));
      // log det from the factor agrees with slogdet
      let ld = 0;
      for (let i = 0; i < a.rows; i++) ld += 2 * Math.log(l.data[i * a.rows + i]);
      assert.ok(Math.abs(ld - slogdet(a).logAbsDet) < 1e-9);
    }),
    SEED,
  );
});

Deno.test("qr: Q orthogonal, R upper with positive diagonal, Q·R = A", () => {
  fc.assert(
    fc.property(squareMatrix(), (a) => {
      const f = unlessSingular(a, () => qr(a));
      if (f === undefined) return true;
      const n = a.rows;
      // tolerances scale with the conditioning of A (Gram–Schmidt loses orthogonality
      // like ε·κ without re-orthogonalisation; with it, it stays at ε)
      assert.ok(maxAbsDiff(matmul(transpose(f.q), f.q), eye(n)) < 1e-12, "QᵀQ = I");
      assert.ok(isUpper(f.r), "R upper");
      for (let i = 0; i < n; i++) assert.ok(f.r.data[i * n + i] > 0);
      assert.ok(maxAbsDiff(matmul(f.q, f.r), a) < 1e-12 * (1 + normInf(a)), "Q·R = A");
    }),
    SEED,
  );
});

Deno.test("singular, non-SPD and non-square inputs raise clear errors", () => {
  const singular = fromRows([[1, 2, 3], [2, 4, 6], [1, 0, 1]]);
  assert.throws(() => lu(singular), /singular/);
  assert.throws(() => inverse(singular), /singular/);
  assert.throws(() => solve(singular, eye(3)), /singular/);
  assert.deepEqual(slogdet(singular), { sign: 0, logAbsDet: -Infinity });
  assert.throws(() => lu(matrix(2, 2, [0, 0, 0, 0])), /singular/);
  assert.throws(() => cholesky(fromRows([[1, 2], [2, 1]])), /not positive definite/);
  assert.throws(() => cholesky(fromRows([[-1]])), /not positive definite/);
  assert.throws(() => cholesky(fromRows([[1, 0], [0, 0]])), /not positive definite/);
  assert.throws(() => qr(fromRows([[1, 0], [0, 0]])), /rank deficient/);
  assert.throws(() => lu(matrix(2, 3, [1, 2, 3, 4, 5, 6])), /square/);
  assert.throws(() => slogdet(matrix(2, 3, [1, 2, 3, 4, 5, 6])), /square/);
  assert.throws(() => matmul(eye(2), eye(3)), /cannot multiply 2×2 by 3×3/);
  assert.throws(() => matrix(2, 2, [1, 2, 3]), /3 entries for a 2×2/);
  assert.throws(() => solve(eye(2), eye(3)), /3 rows, expected 2/);
});

Deno.test("spdStats64: A = r·I + M·Mᵀ, its inverse, log-det and Cholesky", () => {
  fc.assert(
    fc.property(
      squareMatrix(5),
      fc.double({ min: 1e-3, max: 2, noNaN: true }),
      (m, ridge) => {
        const n = m.rows;
        const s = spdStats64(m, ridge);
        const a = addScaled(matmul(m, transpose(m)), eye(n), ridge);
        assert.ok(maxAbsDiff(s.a, a) < 1e-14, "A");
        assert.ok(maxAbsDiff(matmul(a, s.aInv), eye(n)) < 1e-9 * (1 + normInf(s.aInv)), "A⁻¹");
        assert.ok(Math.abs(s.logDetA - Math.log(cofactorDet(a))) < 1e-8, "log det A");
        assert.ok(isLower(s.cholA) && isLower(s.cholInv), "triangular factors");
        assert.ok(maxAbsDiff(matmul(s.cholA, transpose(s.cholA)), a) < 1e-12 * (1 + normInf(a)));
        assert.ok(maxAbsDiff(matmul(s.cholA, s.cholInv), eye(n)) < 1e-9);
      },
    ),
    SEED,
  );
  assert.throws(() => spdStats64(matrix(1, 1, [NaN])), /NaN or Infinity/);
  assert.throws(() => spdStats64(matrix(2, 2, [1, 0, 0, 0]), 0), /not positive definite/);
});

Deno.test("symmetricEigen: V·diag(λ)·Vᵀ reconstructs A, V orthonormal, λ sorted, trace kept", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 48 }),
      fc.integer({ min: 0, max: 1_000_000 }),
      (n, seed) => {
        let r = seed + 1;
        const next = () => ((r = (r * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
        const b = Array.from({ length: n * n }, next);
        const a = new Float64Array(n * n);
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) a[i * n + j] = b[i * n + j] + b[j * n + i];
        }
        const m = { rows: n, cols: n, data: a };
        const { values, vectors } = symmetricEigen(m);
        const lam = new Float64Array(n * n);
        for (let i = 0; i < n; i++) lam[i * n + i] = values[i];
        const rec = matmul(matmul(vectors, { rows: n, cols: n, data: lam }), transpose(vectors));
        assert.ok(maxAbsDiff(rec, m) < 1e-9, "reconstruction");
        assert.ok(maxAbsDiff(matmul(transpose(vectors), vectors), eye(n)) < 1e-9, "orthonormal");
        for (let i = 1; i < n; i++) assert.ok(values[i - 1] >= values[i]);
        let tr = 0;
        for (let i = 0; i < n; i++) tr += a[i * n + i];
        assert.ok(Math.abs(tr - values.reduce((s, v) => s + v, 0)) < 1e-9);
      },
    ),
    { seed: 42, numRuns: 100 },
  );
  // Repeated eigenvalues, a diagonal input, the symmetric part of a non-symmetric input.
  const iso = symmetricEigen(eye(4));
  assert.deepEqual(Array.from(iso.values), [1, 1, 1, 1]);
  assert.ok(maxAbsDiff(matmul(transpose(iso.vectors), iso.vectors), eye(4)) < 1e-15);
  assert.deepEqual(Array.from(symmetricEigen(fromRows([[1, 0], [0, 3]])).values), [3, 1]);
  const skew = symmetricEigen(fromRows([[2, 3], [-1, 2]])); // symmetric part [[2, 1], [1, 2]]
  assert.ok(Math.abs(skew.values[0] - 3) < 1e-14 && Math.abs(skew.values[1] - 1) < 1e-14);
  const nan = symmetricEigen(fromRows([[NaN, 0], [0, 1]]));
  assert.ok([...nan.values, ...nan.vectors.data].every(Number.isNaN), "NaN in, NaN out");
});
