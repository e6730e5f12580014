/**
 * Hand-written float64 linear algebra and FFT against the npm packages that could replace
 * them (`ml-matrix`, `fft.js`), on the sizes deflow uses: 3×3 (noise covariances), 12 and
 * 48 (latent channels of the flow levels), 64 (the law kit's largest Jacobian for
 * `slogdet`), and 16/32/64-point spectra (`radialSpectrum` patches).
 *
 * `deno run -A bench/linalg_packages.ts [--reps 21]` prints one table: the accuracy of
 * each side (max abs residual against a definition-level check) and the median time per
 * call, the two sides timed in interleaved repetitions (order alternating). The package
 * side includes the conversions a wrapper with deflow's `Matrix` signature needs.
 *
 * Outcome (see the table): `symmetricEigen` (ml-matrix) and the FFT (fft.js) were switched
 * to the packages — the "hand" column of those rows is the former code, kept below; LU, QR,
 * Cholesky, slogdet and solve stay hand-written — the package is as accurate but 1.5–9×
 * slower at these sizes, so their "pkg" column is the wrapper that was not adopted.
 *
 * @module
 */
import {
  CholeskyDecomposition,
  LuDecomposition,
  Matrix as MlMatrix,
  QrDecomposition,
} from "ml-matrix";
import * as hand from "../src/linalg/dense.ts";
import { fft as pkgFft, powerSpectrum2d as pkgSpectrum } from "../src/eval/fft.ts";
import { normals, rng } from "../src/core/random.ts";

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

type M = hand.Matrix;

const toMl = (a: M): MlMatrix => MlMatrix.from1DArray(a.rows, a.cols, a.data);
const fromMl = (m: MlMatrix): M => hand.matrix(m.rows, m.columns, m.to1DArray());

// ---------- the package side: what a thin wrapper would do ----------

const pkg = {
  lu: (a: M) => {
    const f = new LuDecomposition(toMl(a));
    return {
      lower: fromMl(f.lowerTriangularMatrix),
      upper: fromMl(f.upperTriangularMatrix),
      perm: f.pivotPermutationVector,
    };
  },
  qr: (a: M) => {
    const f = new QrDecomposition(toMl(a));
    const q = fromMl(f.orthogonalMatrix), r = fromMl(f.upperTriangularMatrix);
    // Householder leaves the signs of R's diagonal free; make them positive (unique QR).
    const n = a.rows;
    for (let j = 0; j < n; j++) {
      if (r.data[j * n + j] < 0) {
        for (let i = 0; i < n; i++) q.data[i * n + j] = -q.data[i * n + j];
        for (let k = 0; k < n; k++) r.data[j * n + k] = -r.data[j * n + k];
      }
    }
    return { q, r };
  },
  cholesky: (a: M) => {
    const f = new CholeskyDecomposition(toMl(a));
    if (!f.isPositiveDefinite()) throw new Error("not positive definite");
    return fromMl(f.lowerTriangularMatrix);
  },
  slogdet: (a: M) => {
    const f = new LuDecomposition(toMl(a));
    const n = a.rows, u = f.upperTriangularMatrix, p = f.pivotPermutationVector;
    let sign = permutationSign(p), s = 0;
    for (let i = 0; i < n; i++) {
      const d = u.get(i, i);
      if (d < 0) sign = -sign;
      s += Math.log(Math.abs(d));
    }
    return { sign, logAbsDet: s };
  },
  solve: (a: M, b: M) => fromMl(new LuDecomposition(toMl(a)).solve(toMl(b))),
};

const permutationSign = (p: readonly number[]): number => {
  const seen = new Uint8Array(p.length);
  let sign = 1;
  for (let i = 0; i < p.length; i++) {
    if (seen[i]) continue;
    let len = 0;
    for (let j = i; !seen[j]; j = p[j]) {
      seen[j] = 1;
      len++;
    }
    if (len % 2 === 0) sign = -sign;
  }
  return sign;
};

// ---------- the hand-written code the packages replaced (as of the switch) ----------

/** The former `symmetricEigen`: cyclic Jacobi rotations, values descending. */
const jacobiEigen = (
  a: M,
  options: { readonly tolerance?: number; readonly maxSweeps?: number } = {},
): { readonly values: Float64Array; readonly vectors: M } => {
  const n = a.rows;
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) s[i * n + j] = 0.5 * (a.data[i * n + j] + a.data[j * n + i]);
  }
  const v = hand.eye(n).data;
  const tol = options.tolerance ?? 1e-14;
  const maxSweeps = options.maxSweeps ?? 100;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += s[i] * s[i];
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += s[i * n + j] ** 2;
    if (off <= tol * tol * Math.max(scale, Number.MIN_VALUE)) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = s[p * n + q];
        if (apq === 0) continue;
        const theta = (s[q * n + q] - s[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < n; k++) {
          const skp = s[k * n + p];
          const skq = s[k * n + q];
          s[k * n + p] = c * skp - sn * skq;
          s[k * n + q] = sn * skp + c * skq;
        }
        for (let k = 0; k < n; k++) {
          const spk = s[p * n + k];
          const sqk = s[q * n + k];
          s[p * n + k] = c * spk - sn * sqk;
          s[q * n + k] = sn * spk + c * sqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - sn * vkq;
          v[k * n + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => s[y * n + y] - s[x * n + x]);
  const values = Float64Array.from(order, (i) => s[i * n + i]);
  const vec = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vec[k * n + dst] = v[k * n + src];
  });
  return { values, vectors: { rows: n, cols: n, data: vec } };
};

/** The former radix-2 `fft`. */
const radix2Fft = (re: Float64Array, im: Float64Array): void => {
  const n = re.length;
  if (im.length !== n || n === 0 || (n & (n - 1)) !== 0) {
    throw new RangeError(`fft: length must be a power of 2 (re ${n}, im ${im.length})`);
  }
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang), wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1, ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k, b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const nr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = nr;
      }
    }
  }
};

/**
 * The former `powerSpectrum2d`. Power spectrum `|F(u, v)|² / (n·n)` of a real n×n field (row-major, n a power of 2):
 * for white noise of variance v its expectation is v at every frequency.
 */
const radix2Spectrum = (field: Float64Array, n: number): Float64Array => {
  if (field.length !== n * n) throw new RangeError(`powerSpectrum2d: ${field.length} ≠ ${n}²`);
  const re = Float64Array.from(field), im = new Float64Array(n * n);
  const rr = new Float64Array(n), ri = new Float64Array(n);
  for (let y = 0; y < n; y++) {
    rr.set(re.subarray(y * n, y * n + n));
    ri.set(im.subarray(y * n, y * n + n));
    radix2Fft(rr, ri);
    re.set(rr, y * n);
    im.set(ri, y * n);
  }
  for (let x = 0; x < n; x++) {
    for (let y = 0; y < n; y++) {
      rr[y] = re[y * n + x];
      ri[y] = im[y * n + x];
    }
    radix2Fft(rr, ri);
    for (let y = 0; y < n; y++) {
      re[y * n + x] = rr[y];
      im[y * n + x] = ri[y];
    }
  }
  const p = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) p[i] = (re[i] * re[i] + im[i] * im[i]) / (n * n);
  return p;
};

// ---------- residuals (definition-level checks, independent of either side) ----------

const maxAbs = (xs: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]));
  return m;
};
const diff = (a: M, b: M): number => hand.maxAbsDiff(a, b);
const orthoErr = (q: M): number => diff(hand.matmul(hand.transpose(q), q), hand.eye(q.rows));

const random = (n: number, seed: number): M => hand.matrix(n, n, normals(rng(seed), n * n)[0]);
const spd = (n: number, seed: number): M => {
  const b = random(n, seed);
  return hand.addScaled(hand.matmul(b, hand.transpose(b)), hand.eye(n), n);
};
const symmetric = (n: number, seed: number): M => {
  const b = random(n, seed);
  return hand.addScaled(b, hand.transpose(b));
};
/** `Q₁·diag(s)·Q₂` with a known `log|det| = Σ log|s|`. */
const knownDet = (n: number, seed: number): { a: M; logAbsDet: number } => {
  const q1 = hand.qr(random(n, seed)).q, q2 = hand.qr(random(n, seed + 1)).q;
  const [s] = normals(rng(seed + 2), n);
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) d[i * n + i] = Math.exp(s[i]);
  const a = hand.matmul(hand.matmul(q1, { rows: n, cols: n, data: d }), q2);
  return { a, logAbsDet: s.reduce((x, y) => x + y, 0) };
};

/** Direct O(N²) DFT with exactly reduced twiddles (the reference for the FFTs). */
const dft = (re: Float64Array, im: Float64Array): [Float64Array, Float64Array] => {
  const n = re.length, or = new Float64Array(n), oi = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let t = 0; t < n; t++) {
      const ang = (-2 * Math.PI * ((k * t) % n)) / n;
      const c = Math.cos(ang), s = Math.sin(ang);
      or[k] += re[t] * c - im[t] * s;
      oi[k] += re[t] * s + im[t] * c;
    }
  }
  return [or, oi];
};
const dftSpectrum = (field: Float64Array, n: number): Float64Array => {
  const re = Float64Array.from(field), im = new Float64Array(n * n);
  const rr = new Float64Array(n), ri = new Float64Array(n);
  for (let y = 0; y < n; y++) {
    const [a, b] = dft(re.slice(y * n, y * n + n), im.slice(y * n, y * n + n));
    re.set(a, y * n);
    im.set(b, y * n);
  }
  const p = new Float64Array(n * n);
  for (let x = 0; x < n; x++) {
    for (let y = 0; y < n; y++) {
      rr[y] = re[y * n + x];
      ri[y] = im[y * n + x];
    }
    const [a, b] = dft(rr, ri);
    for (let y = 0; y < n; y++) p[y * n + x] = (a[y] ** 2 + b[y] ** 2) / (n * n);
  }
  return p;
};

// ---------- one row per (piece, size) ----------

interface Row {
  readonly piece: string;
  readonly size: number;
  readonly errHand: number;
  readonly errPkg: number;
  readonly usHand: number;
  readonly usPkg: number;
}

const args = Deno.args;
const repsArg = args.indexOf("--reps");
const REPS = repsArg >= 0 ? Number(args[repsArg + 1]) : 21;

/** Median µs per call of `h` and `p`, timed in interleaved batches (order alternating). */
const timePair = (h: () => unknown, p: () => unknown): [number, number] => {
  // Batch so one timing covers ≥ ~0.5 ms.
  let batch = 1;
  const t0 = performance.now();
  for (; performance.now() - t0 < 0.5; batch *= 2) for (let i = 0; i < batch; i++) h();
  const th: number[] = [], tp: number[] = [];
  const run = (f: () => unknown, out: number[]) => {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) f();
    out.push(((performance.now() - t0) * 1000) / batch);
  };
  for (let r = 0; r < REPS; r++) {
    if (r % 2 === 0) {
      run(h, th);
      run(p, tp);
    } else {
      run(p, tp);
      run(h, th);
    }
  }
  return [median(th), median(tp)];
};

const rows: Row[] = [];
const add = (
  piece: string,
  size: number,
  errHand: number,
  errPkg: number,
  h: () => unknown,
  p: () => unknown,
) => {
  const [usHand, usPkg] = timePair(h, p);
  rows.push({ piece, size, errHand, errPkg, usHand, usPkg });
};

for (const n of [3, 12, 48, 64]) {
  const a = random(n, 10 + n);
  {
    const luErr = (f: { lower: M; upper: M; perm: readonly number[] }) =>
      diff(hand.matmul(hand.permutationMatrix(f.perm), a), hand.matmul(f.lower, f.upper));
    add("lu  |PA−LU|", n, luErr(hand.lu(a)), luErr(pkg.lu(a)), () => hand.lu(a), () => pkg.lu(a));
  }
  {
    const qrErr = (f: { q: M; r: M }) => Math.max(diff(a, hand.matmul(f.q, f.r)), orthoErr(f.q));
    add(
      "qr  |A−QR|,|QᵀQ−I|",
      n,
      qrErr(hand.qr(a)),
      qrErr(pkg.qr(a)),
      () => hand.qr(a),
      () => pkg.qr(a),
    );
  }
  {
    const s = spd(n, 20 + n);
    const cErr = (l: M) => diff(s, hand.matmul(l, hand.transpose(l)));
    add(
      "cholesky |A−LLᵀ|",
      n,
      cErr(hand.cholesky(s)),
      cErr(pkg.cholesky(s)),
      () => hand.cholesky(s),
      () => pkg.cholesky(s),
    );
  }
  {
    const s = symmetric(n, 30 + n);
    const eErr = (e: { values: Float64Array; vectors: M }) => {
      const lam = new Float64Array(n * n);
      for (let i = 0; i < n; i++) lam[i * n + i] = e.values[i];
      const av = hand.matmul(s, e.vectors);
      const vl = hand.matmul(e.vectors, { rows: n, cols: n, data: lam });
      const sorted = e.values.every((v, i) => i === 0 || e.values[i - 1] >= v);
      return sorted ? Math.max(diff(av, vl), orthoErr(e.vectors)) : Infinity;
    };
    add(
      "symmetricEigen |AV−VΛ|,|VᵀV−I|",
      n,
      eErr(jacobiEigen(s)),
      eErr(hand.symmetricEigen(s)),
      () => jacobiEigen(s),
      () => hand.symmetricEigen(s),
    );
  }
  {
    const k = knownDet(n, 40 + n);
    const dErr = (r: { sign: number; logAbsDet: number }) => Math.abs(r.logAbsDet - k.logAbsDet);
    add(
      "slogdet |Δ log|det||",
      n,
      dErr(hand.slogdet(k.a)),
      dErr(pkg.slogdet(k.a)),
      () => hand.slogdet(k.a),
      () => pkg.slogdet(k.a),
    );
  }
  {
    const b = random(n, 50 + n);
    const sErr = (x: M) => diff(hand.matmul(a, x), b);
    add(
      "solve |AX−B|",
      n,
      sErr(hand.solve(a, b)),
      sErr(pkg.solve(a, b)),
      () => hand.solve(a, b),
      () => pkg.solve(a, b),
    );
  }
}

for (const n of [16, 32, 64]) {
  const [re0] = normals(rng(60 + n), n), [im0] = normals(rng(61 + n), n);
  const [ref0, ref1] = dft(re0, im0);
  const fErr = (f: (re: Float64Array, im: Float64Array) => void) => {
    const re = Float64Array.from(re0), im = Float64Array.from(im0);
    f(re, im);
    return Math.max(maxAbs(re.map((v, i) => v - ref0[i])), maxAbs(im.map((v, i) => v - ref1[i])));
  };
  const wr = Float64Array.from(re0), wi = Float64Array.from(im0);
  add(
    "fft 1-D |X−DFT|",
    n,
    fErr(radix2Fft),
    fErr(pkgFft),
    () => radix2Fft(wr, wi),
    () => pkgFft(wr, wi),
  );
  const [field] = normals(rng(70 + n), n * n);
  const ref = dftSpectrum(field, n);
  const sErr = (p: Float64Array) => maxAbs(p.map((v, i) => v - ref[i]));
  add(
    "powerSpectrum2d |P−DFT|",
    n,
    sErr(radix2Spectrum(field, n)),
    sErr(pkgSpectrum(field, n)),
    () => radix2Spectrum(field, n),
    () => pkgSpectrum(field, n),
  );
}

const e = (x: number) => x.toExponential(1);
const pad = (s: string, w: number) => s.padEnd(w);
console.log(
  `${pad("piece", 32)} ${pad("n", 3)} ${pad("err hand", 9)} ${pad("err pkg", 9)} ` +
    `${pad("µs hand", 9)} ${pad("µs pkg", 9)} pkg/hand`,
);
for (const r of rows) {
  console.log(
    `${pad(r.piece, 32)} ${pad(String(r.size), 3)} ${pad(e(r.errHand), 9)} ` +
      `${pad(e(r.errPkg), 9)} ${pad(r.usHand.toFixed(2), 9)} ${pad(r.usPkg.toFixed(2), 9)} ` +
      `${(r.usPkg / r.usHand).toFixed(2)}`,
  );
}
console.log(`(median of ${REPS} interleaved repetitions; ml-matrix 6.15.1, fft.js 4.0.4)`);
