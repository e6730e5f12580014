/**
 * The latent shift (src/layers/latentShift.ts), the float64-injected SPD op
 * (src/linalg/spd.ts) and the tensor↔float64 bridge (src/linalg/tensor.ts), on WebGPU,
 * against brute-force float64 references written here (explicit cofactor determinant,
 * Gauss–Jordan inverse, central finite differences).
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { ShapeError } from "../src/core/errors.ts";
import { latentShift, type LatentShiftParams } from "../src/layers/latentShift.ts";
import {
  disposeSpd,
  prepareSpd,
  spdCholesky,
  spdInverseLogDet,
  spdStats64,
} from "../src/linalg/spd.ts";
import { fromMatrix, toMatrix } from "../src/linalg/tensor.ts";
import { matrix } from "../src/linalg/dense.ts";
import { normals, rng } from "../src/core/random.ts";
import fc from "fast-check";
import { type BijectorCase, checkBijectorLaws, formatLawReport } from "../src/testing/mod.ts";
import { foldIn } from "../src/core/random.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

// ---------- brute-force float64 references ----------

type Mat = number[][];
const LOG_2PI = Math.log(2 * Math.PI);

const toMat = (flat: ArrayLike<number>, c: number): Mat =>
  Array.from({ length: c }, (_, i) => Array.from({ length: c }, (_, j) => flat[i * c + j]));

/** `ridge·I + M·Mᵀ` by explicit sums. */
const bruteA = (m: ArrayLike<number>, c: number, ridge = 1): Mat =>
  Array.from({ length: c }, (_, i) =>
    Array.from({ length: c }, (_, j) => {
      let s = i === j ? ridge : 0;
      for (let k = 0; k < c; k++) s += m[i * c + k] * m[j * c + k];
      return s;
    }));

/** Determinant by cofactor expansion. */
const det = (a: Mat): number => {
  const n = a.length;
  if (n === 1) return a[0][0];
  let s = 0;
  for (let j = 0; j < n; j++) {
    const minor = a.slice(1).map((row) => row.filter((_, k) => k !== j));
    s += (j % 2 === 0 ? 1 : -1) * a[0][j] * det(minor);
  }
  return s;
};

/** Inverse by Gauss–Jordan elimination with partial pivoting. */
const inv = (a: Mat): Mat => {
  const n = a.length;
  const w = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(w[i][k]) > Math.abs(w[p][k])) p = i;
    [w[k], w[p]] = [w[p], w[k]];
    const d = w[k][k];
    for (let j = 0; j < 2 * n; j++) w[k][j] /= d;
    for (let i = 0; i < n; i++) {
      if (i === k) continue;
      const f = w[i][k];
      for (let j = 0; j < 2 * n; j++) w[i][j] -= f * w[k][j];
    }
  }
  return w.map((row) => row.slice(n));
};

const mul = (a: Mat, b: Mat): Mat =>
  a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));

/** Cholesky (lower) by the textbook recurrence. */
const chol = (a: Mat): Mat => {
  const n = a.length;
  const l: Mat = a.map(() => Array(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i][j];
      for (let k = 0; k < j; k++) s -= l[i][k] * l[j][k];
      l[i][j] = i === j ? Math.sqrt(s) : s / l[j][j];
    }
  }
  return l;
};

/** Per-sample Σ_pixels log N(z_pixel − offset_pixel; μ, cov) for NHWC data (flat). */
const bruteLogProb = (
  z: ArrayLike<number>,
  shape: readonly number[],
  mu: ArrayLike<number>,
  cov: Mat,
  offset?: ArrayLike<number>,
): number[] => {
  const [n, h, w, c] = shape;
  const ci = inv(cov);
  const logDet = Math.log(det(cov));
  const out = Array(n).fill(0);
  for (let b = 0; b < n; b++) {
    for (let p = 0; p < h * w; p++) {
      const base = (b * h * w + p) * c;
      const d = Array.from(
        { length: c },
        (_, k) => z[base + k] - (offset?.[base + k] ?? 0) - mu[k],
      );
      let q = 0;
      for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) q += d[i] * ci[i][j] * d[j];
      out[b] += -0.5 * q - 0.5 * logDet - 0.5 * c * LOG_2PI;
    }
  }
  return out;
};

/** Central finite differences of a scalar float64 function of a flat vector. */
const finiteDiff = (f: (x: Float64Array) => number, x0: ArrayLike<number>, h = 1e-5): number[] =>
  Array.from({ length: x0.length }, (_, i) => {
    const xp = Float64Array.from(x0);
    const xm = Float64Array.from(x0);
    xp[i] += h;
    xm[i] -= h;
    return (f(xp) - f(xm)) / (2 * h);
  });

const dot = (a: readonly number[], b: readonly number[]): number =>
  a.reduce((s, v, i) => s + v * b[i], 0);

/** Relative max error, normalised by the reference's largest magnitude. */
const relErr = (got: ArrayLike<number>, ref: ArrayLike<number>): number => {
  let scale = 1e-6;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  return maxAbsDiff(got, ref) / scale;
};

// ---------- fixtures ----------

const C = 3;
const MU = [0.4, -0.8, 0.25];
const M = [0.9, 0.3, -0.2, -0.4, 0.7, 0.1, 0.5, 0.2, 0.6];

const params = (mu = MU, m = M): LatentShiftParams => ({
  mu: tf.tensor1d(mu),
  m: tf.tensor2d(m, [C, C]),
});

const disposeParams = (p: LatentShiftParams) => tf.dispose([p.mu, p.m]);

/** Seeded Gaussian values, rounded to float32 so tensors and references hold the same data. */
const gaussian = (shape: number[], seed: number, std = 1): Float64Array =>
  normals(rng(seed), shape.reduce((a, b) => a * b, 1))[0].map((v) => Math.fround(std * v));

const t4 = (v: Float64Array, shape: readonly number[]): tf.Tensor4D =>
  tf.tensor4d(Float32Array.from(v), shape as [number, number, number, number]);

const Z_SHAPE = [2, 2, 3, C] as const;

// ---------- tests ----------

Deno.test("toMatrix / fromMatrix round-trip (float64 ↔ float32)", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("tensor bridge", async () => {
    const m = matrix(2, 3, [1.5, -2, 0.1, 3, 1e-3, -7.25]);
    const t = fromMatrix(m);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, "float32");
    const back = await toMatrix(t);
    assert.equal(back.rows, 2);
    assert.equal(back.cols, 3);
    assert.ok(back.data instanceof Float64Array);
    assert.deepEqual(Array.from(back.data), Array.from(Float32Array.from(m.data)));
    t.dispose();
  });
});

Deno.test(
  "spd op: values from float64 stats, gradients match finite differences",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("spd op", async () => {
      for (const ridge of [1, 0.3]) {
        const m = tf.tensor2d(M, [C, C]);
        const stats = await prepareSpd(m, ridge);
        const ref = spdStats64(matrix(C, C, M), ridge);
        assert.ok(maxAbsDiff(await read(stats.aInv), inv(bruteA(M, C, ridge)).flat()) < 1e-5);
        assert.ok(
          Math.abs((await read(stats.logDetA))[0] - Math.log(det(bruteA(M, C, ridge)))) < 1e-5,
        );
        assert.ok(maxAbsDiff(await read(stats.cholA), chol(bruteA(M, C, ridge)).flat()) < 1e-5);
        assert.ok(maxAbsDiff(await read(stats.cholInv), ref.cholInv.data) < 1e-5);
        // loss = <W1, A⁻¹> + w·logdet A + <W2, L> + <W3, L⁻¹>
        const w1 = Array.from(gaussian([C * C], 11));
        const w2 = Array.from(gaussian([C * C], 12));
        const w3 = Array.from(gaussian([C * C], 13));
        const wl = -1.3;
        const loss64 = (mm: Float64Array): number => {
          const s = spdStats64(matrix(C, C, mm), ridge);
          return dot(w1, Array.from(s.aInv.data)) + wl * s.logDetA +
            dot(w2, Array.from(s.cholA.data)) + dot(w3, Array.from(s.cholInv.data));
        };
        const [g] = tf.grads((mm: tf.Tensor) => {
          const { aInv, logDetA } = spdInverseLogDet(mm as tf.Tensor2D, stats);
          const { chol: l, cholInv } = spdCholesky(mm as tf.Tensor2D, stats);
          const t = (w: number[], x: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(w, [C, C]), x));
          return tf.add(tf.add(t(w1, aInv), tf.mul(logDetA, wl)), tf.add(t(w2, l), t(w3, cholInv)));
        })([m]);
        const fd = finiteDiff(loss64, M);
        const got = await read(g);
        assert.ok(relErr(got, fd) < 2e-3, `ridge ${ridge}: grad ${got} vs fd ${fd}`);
        // the op's own value is the injected statistic
        const v = spdInverseLogDet(m, stats);
        assert.ok(maxAbsDiff(await read(v.aInv), ref.aInv.data) < 1e-5);
        tf.dispose([g, v.aInv, v.logDetA, m]);
        disposeSpd(stats);
      }
      const bad = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
      await assert.rejects(() => prepareSpd(bad), /prepareSpd: M must be a square/);
      bad.dispose();
    });
  },
);

Deno.test("init: μ = 0, M small, non-zero and seeded", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("init", async () => {
    const a = latentShift.init({ channels: 4, seed: 3 });
    const b = latentShift.init({ channels: 4, seed: 3 });
    const c = latentShift.init({ channels: 4, seed: 4, scale: 0.2 });
    assert.deepEqual(a.mu.shape, [4]);
    assert.deepEqual(a.m.shape, [4, 4]);
    assert.deepEqual(Array.from(await read(a.mu)), [0, 0, 0, 0]);
    const ma = await read(a.m);
    assert.deepEqual(ma, await read(b.m), "same seed, same M");
    assert.ok(maxAbsDiff(ma, await read(c.m)) > 0.05, "other seed/scale, other M");
    for (let i = 0; i < 4; i++) {
      assert.ok(Math.abs(ma[i * 5] - 0.1) < 0.05, "≈ 0.1·I on the diagonal");
    }
    assert.ok(ma.some((v, i) => i % 5 !== 0 && v !== 0), "seeded off-diagonal noise");
    assert.throws(() => latentShift.init({ channels: 4, seed: 1, scale: 0 }), /stationary point/);
    tf.dispose([a.mu, a.m, b.mu, b.m, c.mu, c.m]);
  });
});

Deno.test(
  "logProbClean and logProbDegraded match the brute-force Gaussian density",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("logProb", async () => {
      const p = params();
      const stats = await latentShift.prepare(p);
      const zv = gaussian([...Z_SHAPE], 21, 1.5);
      const z = t4(zv, Z_SHAPE);
      const clean = latentShift.logProbClean(z);
      const degraded = latentShift.logProbDegraded(p, stats, z);
      const eye = bruteA([0, 0, 0, 0, 0, 0, 0, 0, 0], C);
      const refClean = bruteLogProb(zv, Z_SHAPE, [0, 0, 0], eye);
      const refDeg = bruteLogProb(zv, Z_SHAPE, MU, bruteA(M, C));
      assert.deepEqual(clean.shape, [2]);
      assert.ok(relErr(await read(clean), refClean) < 1e-5, `${await read(clean)} vs ${refClean}`);
      assert.ok(
        relErr(await read(degraded), refDeg) < 1e-5,
        `${await read(degraded)} vs ${refDeg}`,
      );
      // shape errors name the function
      const bad = tf.zeros([1, 2, 2, 4]) as tf.Tensor4D;
      assert.throws(() => latentShift.logProbDegraded(p, stats, bad), ShapeError);
      assert.throws(
        () => latentShift.logProbDegraded(p, stats, bad),
        /latentShift.logProbDegraded: input has 4 channels/,
      );
      tf.dispose([z, clean, degraded, bad]);
      disposeParams(p);
      latentShift.disposeStats(stats);
    });
  },
);

Deno.test(
  "logProbDegraded gradients w.r.t. μ, M and z match finite differences",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("logProbDegraded grads", async () => {
      const p = params();
      const stats = await latentShift.prepare(p);
      const zv = gaussian([...Z_SHAPE], 22, 1.5);
      const z = t4(zv, Z_SHAPE);
      const wts = [1, -0.6];
      const w = tf.tensor1d(wts);
      const grads = tf.grads((mu: tf.Tensor, m: tf.Tensor, zz: tf.Tensor) =>
        tf.sum(tf.mul(
          latentShift.logProbDegraded(
            { mu: mu as tf.Tensor1D, m: m as tf.Tensor2D },
            stats,
            zz as tf.Tensor4D,
          ),
          w,
        ))
      )([p.mu, p.m, z]);
      const loss = (mu: ArrayLike<number>, m: ArrayLike<number>, zz: ArrayLike<number>) =>
        dot(wts, bruteLogProb(zz, Z_SHAPE, mu, bruteA(m, C)));
      const fdMu = finiteDiff((x) => loss(x, M, zv), MU);
      const fdM = finiteDiff((x) => loss(MU, x, zv), M);
      const fdZ = finiteDiff((x) => loss(MU, M, x), zv);
      assert.ok(relErr(await read(grads[0]), fdMu) < 1e-3, "∂/∂μ");
      assert.ok(relErr(await read(grads[1]), fdM) < 1e-3, `∂/∂M ${await read(grads[1])} vs ${fdM}`);
      assert.ok(relErr(await read(grads[2]), fdZ) < 1e-3, "∂/∂z");
      tf.dispose([...grads, z, w]);
      disposeParams(p);
      latentShift.disposeStats(stats);
    });
  },
);

Deno.test(
  "M's gradient is non-zero at init (and exactly 0 at M = 0); M grows on noisier data",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("M at init", async () => {
      const shape = [2, 4, 4, C] as const;
      const zv = gaussian([...shape], 31, 2); // covariance 4·I ≠ I
      const z = t4(zv, shape);
      const nll = (p: LatentShiftParams, stats: Awaited<ReturnType<typeof latentShift.prepare>>) =>
        tf.grads((mu: tf.Tensor, m: tf.Tensor) =>
          tf.neg(
            tf.mean(
              latentShift.logProbDegraded({ mu: mu as tf.Tensor1D, m: m as tf.Tensor2D }, stats, z),
            ),
          )
        )([p.mu, p.m]);
      // at init
      let p = latentShift.init({ channels: C, seed: 5 });
      let stats = await latentShift.prepare(p);
      const [gMu, gM] = nll(p, stats);
      gMu.dispose();
      const m0 = await read(p.m);
      const fd = finiteDiff(
        (x) => -bruteLogProb(zv, shape, [0, 0, 0], bruteA(x, C)).reduce((a, b) => a + b) / shape[0],
        m0,
      );
      const g0 = await read(gM);
      assert.ok(relErr(g0, fd) < 1e-3, `grad ${g0} vs fd ${fd}`);
      assert.ok(Math.max(...g0.map(Math.abs)) > 1, `gradient at init is clearly non-zero: ${g0}`);
      tf.dispose(gM);
      // at M = 0 the gradient vanishes exactly: the stationary point the init avoids
      const p0 = { mu: tf.zeros([C]) as tf.Tensor1D, m: tf.zeros([C, C]) as tf.Tensor2D };
      const s0 = await latentShift.prepare(p0);
      const g00 = nll(p0, s0);
      assert.deepEqual(Array.from(await read(g00[1])), Array(C * C).fill(0));
      tf.dispose(g00);
      disposeParams(p0);
      latentShift.disposeStats(s0);
      // a few gradient steps: Σ = MMᵀ grows toward the data's excess covariance
      const trace = async (q: LatentShiftParams) => {
        const v = await read(q.m);
        return v.reduce((s, x) => s + x * x, 0);
      };
      const t0 = await trace(p);
      for (let step = 0; step < 5; step++) {
        const [gmu, gm] = nll(p, stats);
        const next = tf.tidy(() => ({
          mu: tf.sub(p.mu, tf.mul(gmu, 0.02)) as tf.Tensor1D,
          m: tf.sub(p.m, tf.mul(gm, 0.02)) as tf.Tensor2D,
        }));
        tf.dispose([gmu, gm]);
        disposeParams(p);
        latentShift.disposeStats(stats);
        p = next;
        stats = await latentShift.prepare(p);
      }
      const t1 = await trace(p);
      assert.ok(t1 > 4 * t0, `trace(MMᵀ) grew from ${t0} to ${t1}`);
      disposeParams(p);
      latentShift.disposeStats(stats);
      z.dispose();
    });
  },
);

/** Sample mean and covariance of rows of a flat [count, C] array. */
const moments = (v: ArrayLike<number>, c: number) => {
  const count = v.length / c;
  const mean = Array(c).fill(0);
  for (let r = 0; r < count; r++) for (let i = 0; i < c; i++) mean[i] += v[r * c + i] / count;
  const cov = Array(c * c).fill(0);
  for (let r = 0; r < count; r++) {
    for (let i = 0; i < c; i++) {
      for (let j = 0; j < c; j++) {
        cov[i * c + j] += (v[r * c + i] - mean[i]) * (v[r * c + j] - mean[j]) / (count - 1);
      }
    }
  }
  return { mean, cov };
};

Deno.test("sample: mean ≈ τ·μ and covariance ≈ τ²·M·Mᵀ; seeded", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("sample", async () => {
    const p = params();
    const tau = 0.7;
    const shape = [2, 32, 32, C] as const;
    const s = latentShift.sample(p, shape, { temperature: tau, seed: 9 });
    assert.deepEqual(s.shape, [...shape]);
    const { mean, cov } = moments(await read(s), C);
    const refMean = MU.map((v) => tau * v);
    const refCov = bruteA(M, C, 0).flat().map((v) => tau * tau * v);
    assert.ok(maxAbsDiff(mean, refMean) < 0.05, `mean ${mean} vs ${refMean}`);
    assert.ok(maxAbsDiff(cov, refCov) < 0.05, `cov ${cov} vs ${refCov}`);
    const again = latentShift.sample(p, shape, { temperature: tau, seed: 9 });
    const other = latentShift.sample(p, shape, { temperature: tau, seed: 10 });
    assert.equal(maxAbsDiff(await read(again), await read(s)), 0, "same seed, same sample");
    assert.ok(maxAbsDiff(await read(other), await read(s)) > 0.1, "other seed, other sample");
    assert.throws(() => latentShift.sample(p, [1, 2, 2, 4], { seed: 1 }), /latentShift.sample/);
    assert.throws(
      () => latentShift.sample(p, [1, 2, 2, C], { seed: 1, temperature: -1 }),
      /temperature/,
    );
    tf.dispose([s, again, other]);
    disposeParams(p);
  });
});

Deno.test(
  "posterior mean/cov and posterior samples match the brute-force formula",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("posterior", async () => {
      const p = params();
      const stats = await latentShift.prepare(p);
      const a = bruteA(M, C);
      const ai = inv(a);
      const sigma = bruteA(M, C, 0);
      const refCov = mul(sigma, ai);
      // per-pixel mean on random z_y
      const zv = gaussian([...Z_SHAPE], 41, 1.5);
      const zy = t4(zv, Z_SHAPE);
      const { mean, cov } = latentShift.posterior(p, stats, zy);
      const refMean: number[] = [];
      for (let r = 0; r < zv.length / C; r++) {
        const d = MU.map((m, k) => zv[r * C + k] - m);
        for (let i = 0; i < C; i++) refMean.push(ai[i].reduce((s, v, k) => s + v * d[k], 0));
      }
      assert.ok(maxAbsDiff(await read(mean), refMean) < 1e-5, "posterior mean");
      assert.ok(maxAbsDiff(await read(cov), refCov.flat()) < 1e-5, "posterior cov");
      // the square root used for sampling
      const sq = toMat(await read(stats.postSqrt), C);
      assert.ok(
        maxAbsDiff(mul(sq, sq.map((_, i) => sq.map((r) => r[i]))).flat(), refCov.flat()) < 1e-5,
      );
      // sample statistics at one fixed z_y replicated over 2048 pixels
      const z0 = [1.2, -0.5, 0.3];
      const shape = [2, 32, 32, C] as const;
      const zc = tf.tidy(() =>
        tf.tile(tf.tensor4d(z0, [1, 1, 1, C]), [2, 32, 32, 1]) as tf.Tensor4D
      );
      const tau = 0.8;
      const smp = latentShift.samplePosterior(p, stats, zc, { temperature: tau, seed: 3 });
      assert.deepEqual(smp.shape, [...shape]);
      const mo = moments(await read(smp), C);
      const m0 = ai.map((row) => row.reduce((s, v, k) => s + v * (z0[k] - MU[k]), 0));
      assert.ok(maxAbsDiff(mo.mean, m0) < 0.03, `sample mean ${mo.mean} vs ${m0}`);
      assert.ok(
        maxAbsDiff(mo.cov, refCov.flat().map((v) => tau * tau * v)) < 0.03,
        `sample cov ${mo.cov}`,
      );
      tf.dispose([zy, mean, cov, zc, smp]);
      disposeParams(p);
      latentShift.disposeStats(stats);
    });
  },
);

Deno.test(
  "pairedLogProb: log N(z_y; z_x + μ, Σ + jitter·I), value and M-gradient",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("paired", async () => {
      const p = params();
      const jitter = 0.3;
      const stats = await latentShift.preparePaired(p, { jitter });
      const yv = gaussian([...Z_SHAPE], 51);
      const xv = gaussian([...Z_SHAPE], 52);
      const zy = t4(yv, Z_SHAPE);
      const zx = t4(xv, Z_SHAPE);
      const lp = latentShift.pairedLogProb(p, stats, zy, zx);
      const ref = bruteLogProb(yv, Z_SHAPE, MU, bruteA(M, C, jitter), xv);
      assert.ok(relErr(await read(lp), ref) < 1e-5, `${await read(lp)} vs ${ref}`);
      const [gM] = tf.grads((m: tf.Tensor) =>
        tf.sum(latentShift.pairedLogProb({ mu: p.mu, m: m as tf.Tensor2D }, stats, zy, zx))
      )([p.m]);
      const fd = finiteDiff(
        (x) => bruteLogProb(yv, Z_SHAPE, MU, bruteA(x, C, jitter), xv).reduce((a, b) => a + b),
        M,
      );
      assert.ok(relErr(await read(gM), fd) < 1e-3, "∂/∂M");
      await assert.rejects(() => latentShift.preparePaired(p, { jitter: 0 }), /jitter/);
      tf.dispose([zy, zx, lp, gM]);
      disposeParams(p);
      latentShift.disposeStats(stats);
    });
  },
);

Deno.test(
  "bijector: whitening round-trip, log-dets, and logProbDegraded = logProbClean(ε) + logDet",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("bijector", async () => {
      const p = params();
      const stats = await latentShift.prepare(p);
      const b = latentShift.bijector(p, stats);
      const zv = gaussian([...Z_SHAPE], 61, 1.5);
      const z = t4(zv, Z_SHAPE);
      const fwd = b.forward(z);
      const back = b.inverse(fwd.y);
      assert.ok(maxAbsDiff(await read(back.y), zv) < 1e-5, "inverse(forward(z)) = z");
      const a = bruteA(M, C);
      const hwHalfLogDet = 0.5 * Z_SHAPE[1] * Z_SHAPE[2] * Math.log(det(a));
      assert.ok(maxAbsDiff(await read(fwd.logDet), [-hwHalfLogDet, -hwHalfLogDet]) < 1e-4);
      assert.ok(maxAbsDiff(await read(back.logDet), [hwHalfLogDet, hwHalfLogDet]) < 1e-4);
      // ε = L⁻¹(z − μ) with the brute-force Cholesky factor
      const li = inv(chol(a));
      const refEps: number[] = [];
      for (let r = 0; r < zv.length / C; r++) {
        const d = MU.map((m, k) => zv[r * C + k] - m);
        for (let i = 0; i < C; i++) refEps.push(li[i].reduce((s, v, k) => s + v * d[k], 0));
      }
      assert.ok(maxAbsDiff(await read(fwd.y), refEps) < 1e-5, "ε");
      const lpc = latentShift.logProbClean(fwd.y);
      const lpd = latentShift.logProbDegraded(p, stats, z);
      const sum = tf.add(lpc, fwd.logDet);
      assert.ok(relErr(await read(sum), await read(lpd)) < 1e-5, "change of variables");
      // gradients through the bijector (Cholesky op) equal those of logProbDegraded
      const viaBij = tf.grads((mu: tf.Tensor, m: tf.Tensor) => {
        const r = latentShift.bijector({ mu: mu as tf.Tensor1D, m: m as tf.Tensor2D }, stats)
          .forward(z);
        return tf.sum(tf.add(latentShift.logProbClean(r.y), r.logDet));
      })([p.mu, p.m]);
      const direct = tf.grads((mu: tf.Tensor, m: tf.Tensor) =>
        tf.sum(
          latentShift.logProbDegraded({ mu: mu as tf.Tensor1D, m: m as tf.Tensor2D }, stats, z),
        )
      )([p.mu, p.m]);
      assert.ok(relErr(await read(viaBij[0]), await read(direct[0])) < 1e-3, "∂/∂μ via bijector");
      assert.ok(relErr(await read(viaBij[1]), await read(direct[1])) < 1e-3, "∂/∂M via bijector");
      const wrong = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
      assert.throws(
        () => b.forward(wrong),
        /latentShift: input has 2 channels/,
      );
      assert.throws(() => b.forwardShape([1, 1, 1, 2]), ShapeError);
      assert.deepEqual(b.inverseShape([2, 5, 5, C]), [2, 5, 5, C]);
      tf.dispose([
        wrong,
        z,
        fwd.y,
        fwd.logDet,
        back.y,
        back.logDet,
        lpc,
        lpd,
        sum,
        ...viaBij,
        ...direct,
      ]);
      disposeParams(p);
      latentShift.disposeStats(stats);
    });
  },
);

/** Law case: random μ, M (entries ~ N(0, 0.5²)) and inputs; prepares float64 stats in build. */
const shiftCase: BijectorCase<{ seed: number; c: number }> = {
  name: "latentShift",
  params: fc.record({
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    c: fc.integer({ min: 1, max: 4 }),
  }),
  related: (p) => fc.integer({ min: 0, max: 0x7fffffff }).map((seed) => ({ ...p, seed })),
  build: async ({ seed, c }) => {
    const p: LatentShiftParams = {
      mu: tf.randomNormal([c], 0, 1, "float32", foldIn(seed, 0)) as tf.Tensor1D,
      m: tf.randomNormal([c, c], 0, 0.5, "float32", foldIn(seed, 1)) as tf.Tensor2D,
    };
    const stats = await latentShift.prepare(p);
    const x = tf.randomNormal([2, 2, 2, c], 0, 1.5, "float32", foldIn(seed, 2)) as tf.Tensor4D;
    return {
      bijector: latentShift.bijector(p, stats),
      x,
      dispose: () => {
        tf.dispose([p.mu, p.m, x]);
        latentShift.disposeStats(stats);
      },
    };
  },
};

Deno.test("bijector obeys the generic bijector laws (testing kit)", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("shift laws", async () => {
    const report = await checkBijectorLaws(shiftCase, { numRuns: 3, throwOnFailure: false });
    assert.equal(report.passed, true, formatLawReport(report));
  });
});
