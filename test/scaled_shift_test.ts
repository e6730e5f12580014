/**
 * The latent shift with a per-position scale (`src/layers/scaledShift.ts`) and the model's
 * `adaptiveShift` option: values against a plain-JS float64 reference with explicit
 * per-position covariances, exact gradients against central finite differences of that
 * reference, `a = 1` against the plain shift, the samplers' distributions, and the model
 * at initialisation (the scale heads start at `a = 1`: the paper's model).
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { latentShift, type LatentShiftParams } from "../src/layers/latentShift.ts";
import {
  scaledLogProb,
  scaledPairedLogProb,
  scaledSample,
  scaledSamplePosterior,
} from "../src/layers/scaledShift.ts";
import { cholesky, matmul, type Matrix, transpose } from "../src/linalg/dense.ts";
import { decodeConfig, decodeStoredConfig, defaultConfig } from "../src/model/config.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { initParams, latentShiftScales, levelFeatures } from "../src/model/network.ts";
import { disposeShiftStats, logLikelihood, prepareShifts } from "../src/model/objective.ts";
import { degrade, prepareSampler } from "../src/model/sample.ts";
import { disposeParams } from "../src/core/params.ts";
import {
  gaussianLogPdf64,
  gpuTest,
  lcg,
  maxAbsDiff,
  noLeak,
  read,
  tinyConfig,
  useBackend,
} from "./_helpers.ts";

/** `log N(d; 0, β·I + a2·M·Mᵀ)` in float64 via an explicit Cholesky factor. */
const refRow = (d: number[], a2: number, m: Matrix, beta: number): number => {
  const c = d.length;
  const mmt = matmul(m, transpose(m));
  const b: Matrix = {
    rows: c,
    cols: c,
    data: Float64Array.from(mmt.data, (v, k) => a2 * v + (k % (c + 1) === 0 ? beta : 0)),
  };
  return gaussianLogPdf64(d, b);
};

/** Reference per-sample sums for latents `z` ([N,H,W,C] flat), scales `a2` ([N,H,W] flat). */
const refSum = (
  z: number[],
  a2: number[],
  mu: number[],
  m: Matrix,
  n: number,
  c: number,
  beta: number,
): number[] => {
  const per = a2.length / n;
  const out = new Array(n).fill(0);
  for (let p = 0; p < a2.length; p++) {
    const d = Array.from({ length: c }, (_, i) => z[p * c + i] - mu[i]);
    out[Math.floor(p / per)] += refRow(d, a2[p], m, beta);
  }
  return out;
};

type Case = { z: number[]; a2: number[]; mu: number[]; m: Matrix; shape: number[] };

const makeCase = (seed: number, shape: [number, number, number, number]): Case => {
  const r = lcg(seed);
  const [n, h, w, c] = shape;
  const z = Array.from({ length: n * h * w * c }, () => 1.5 * r());
  const a2 = Array.from({ length: n * h * w }, () => Math.exp(1.2 * r()));
  const mu = Array.from({ length: c }, () => 0.3 * r());
  const m: Matrix = {
    rows: c,
    cols: c,
    data: Float64Array.from({ length: c * c }, (_, k) => (k % (c + 1) === 0 ? 0.8 : 0) + 0.4 * r()),
  };
  return { z, a2, mu, m, shape };
};

const tensorsOf = (k: Case) => {
  const [n, h, w, c] = k.shape;
  const p: LatentShiftParams = {
    mu: tf.tensor1d(k.mu),
    m: tf.tensor2d(Float32Array.from(k.m.data), [c, c]),
  };
  const z = tf.tensor4d(k.z, [n, h, w, c]);
  const a2 = tf.tensor4d(k.a2, [n, h, w, 1]);
  return { p, z, a2 };
};

Deno.test("scaledLogProb and scaledPairedLogProb match a float64 reference", gpuTest, async () => {
  await useBackend();
  const k = makeCase(11, [2, 3, 2, 4]);
  await noLeak("scaledLogProb", async () => {
    const { p, z, a2 } = tensorsOf(k);
    const stats = await latentShift.prepare(p);
    const lp = scaledLogProb(p, stats, z, a2);
    const got = await read(lp);
    const want = refSum(k.z, k.a2, k.mu, k.m, 2, 4, 1);
    assert.ok(maxAbsDiff(got, want) < 2e-3 * Math.max(...want.map(Math.abs)), `${got} vs ${want}`);
    // Paired: N(z_y; z_x + μ, jitter·I + a²·MMᵀ), here with z_x = z/2 and jitter 0.05.
    const paired = await latentShift.preparePaired(p, { jitter: 0.05 });
    const zx = tf.mul(z, 0.5) as tf.Tensor4D;
    const lpP = scaledPairedLogProb(p, paired, z, zx, a2, 0.05);
    const gotP = await read(lpP);
    const wantP = refSum(k.z.map((v) => v / 2), k.a2, k.mu, k.m, 2, 4, 0.05);
    assert.ok(maxAbsDiff(gotP, wantP) < 2e-3 * Math.max(...wantP.map(Math.abs)));
    latentShift.disposeStats(stats);
    latentShift.disposeStats(paired);
    tf.dispose([p.mu, p.m, z, a2, zx, lp, lpP]);
  });
});

Deno.test(
  "scaledLogProb: exact gradients in z, μ, M and a² (finite differences)",
  gpuTest,
  async () => {
    await useBackend();
    const k = makeCase(23, [1, 2, 2, 3]);
    const c = k.shape[3];
    const weight = 0.7;
    // The objective: weight·logprob (a cotangent other than 1).
    const ref = (kk: Case) => weight * refSum(kk.z, kk.a2, kk.mu, kk.m, 1, c, 1)[0];
    await noLeak("gradients", async () => {
      const { p, z, a2 } = tensorsOf(k);
      const stats = await latentShift.prepare(p);
      const wt = tf.tensor1d([weight]);
      const f = (zz: tf.Tensor, mu: tf.Tensor, m: tf.Tensor, aa: tf.Tensor) =>
        tf.sum(tf.mul(
          scaledLogProb(
            { mu: mu as tf.Tensor1D, m: m as tf.Tensor2D },
            stats,
            zz as tf.Tensor4D,
            aa as tf.Tensor4D,
          ),
          wt,
        )) as tf.Scalar;
      const grads = tf.grads(f)([z, p.mu, p.m, a2]);
      const [gz, gmu, gm, ga] = await Promise.all(grads.map(read));
      const h = 1e-5;
      const fd = (mutate: (kk: Case, delta: number) => Case) =>
        (ref(mutate(k, h)) - ref(mutate(k, -h))) / (2 * h);
      const at = (arr: number[], i: number, dlt: number) =>
        arr.map((v, j) => (j === i ? v + dlt : v));
      const check = (what: string, got: Float64Array, want: number[]) => {
        const scale = Math.max(1, ...want.map(Math.abs));
        assert.ok(maxAbsDiff(got, want) < 3e-3 * scale, `${what}: ${[...got]} vs ${want}`);
      };
      check("z", gz, k.z.map((_, i) => fd((kk, d) => ({ ...kk, z: at(kk.z, i, d) }))));
      check("mu", gmu, k.mu.map((_, i) => fd((kk, d) => ({ ...kk, mu: at(kk.mu, i, d) }))));
      check("a2", ga, k.a2.map((_, i) => fd((kk, d) => ({ ...kk, a2: at(kk.a2, i, d) }))));
      const mData = Array.from(k.m.data);
      check(
        "M",
        gm,
        mData.map((_, i) =>
          fd((kk, d) => ({ ...kk, m: { ...kk.m, data: Float64Array.from(at(mData, i, d)) } }))
        ),
      );
      latentShift.disposeStats(stats);
      tf.dispose([p.mu, p.m, z, a2, wt, ...grads]);
    });
  },
);

Deno.test(
  "a = 1 is the plain shift: same log-density, same gradients, same sample",
  gpuTest,
  async () => {
    await useBackend();
    const k = makeCase(5, [2, 2, 3, 6]);
    await noLeak("a = 1", async () => {
      const { p, z, a2 } = tensorsOf(k);
      const ones = tf.onesLike(a2) as tf.Tensor4D;
      const stats = await latentShift.prepare(p);
      const scaled = (m: tf.Tensor) =>
        tf.sum(scaledLogProb({ mu: p.mu, m: m as tf.Tensor2D }, stats, z, ones)) as tf.Scalar;
      const plain = (m: tf.Tensor) =>
        tf.sum(
          latentShift.logProbDegraded({ mu: p.mu, m: m as tf.Tensor2D }, stats, z),
        ) as tf.Scalar;
      const a = tf.valueAndGrad(scaled)(p.m);
      const b = tf.valueAndGrad(plain)(p.m);
      const [va, vb] = [(await read(a.value))[0], (await read(b.value))[0]];
      assert.ok(Math.abs(va - vb) < 1e-4 * Math.abs(vb), `${va} vs ${vb}`);
      assert.ok(maxAbsDiff(await read(a.grad), await read(b.grad)) < 1e-3);
      const s1 = scaledSample(p, [2, 2, 3, 6], ones, { seed: 9, temperature: 0.8 });
      const s0 = latentShift.sample(p, [2, 2, 3, 6], { seed: 9, temperature: 0.8 });
      assert.ok(maxAbsDiff(await read(s1), await read(s0)) < 1e-6);
      // a = 2 doubles the noise part exactly (same seed, same n).
      const twos = tf.mul(ones, 2) as tf.Tensor4D;
      const s2 = scaledSample(p, [2, 2, 3, 6], twos, { seed: 9, temperature: 0.8 });
      const muT = tf.mul(p.mu, 0.8);
      const d1 = tf.sub(s1, muT);
      const d2 = tf.sub(s2, muT);
      const n1 = await read(d1);
      const n2 = await read(d2);
      assert.ok(maxAbsDiff(n2, n1.map((v) => 2 * v)) < 1e-5);
      latentShift.disposeStats(stats);
      tf.dispose([
        p.mu,
        p.m,
        z,
        a2,
        ones,
        twos,
        a.value,
        a.grad,
        b.value,
        b.grad,
        s0,
        s1,
        s2,
        muT,
        d1,
        d2,
      ]);
    });
  },
);

Deno.test(
  "scaledSample and scaledSamplePosterior have the stated covariances",
  gpuTest,
  async () => {
    await useBackend();
    const c = 3;
    const k = makeCase(31, [1, 64, 64, c]);
    const { p, z } = tensorsOf(k);
    const a = 1.7;
    const scale = tf.fill([1, 64, 64, 1], a) as tf.Tensor4D;
    const scale2 = tf.fill([1, 64, 64, 1], a * a) as tf.Tensor4D;
    const stats = await latentShift.prepare(p);
    const mmt = matmul(k.m, transpose(k.m)).data;
    const cov = (x: Float64Array, mean: (i: number) => number[]): number[] => {
      const out = new Array(c * c).fill(0);
      const rows = x.length / c;
      for (let r = 0; r < rows; r++) {
        const m = mean(r);
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) {
            out[i * c + j] += (x[r * c + i] - m[i]) * (x[r * c + j] - m[j]) / rows;
          }
        }
      }
      return out;
    };
    // Prior sample: covariance a²·MMᵀ around μ.
    const u = await read(scaledSample(p, [1, 64, 64, c], scale, { seed: 4 }));
    const covU = cov(u, () => k.mu);
    const wantU = Array.from(mmt, (v) => a * a * v);
    assert.ok(maxAbsDiff(covU, wantU) < 0.12 * Math.max(...wantU), `${covU} vs ${wantU}`);
    // Posterior: τ = 0 gives the mean B⁻¹(z − μ); the spread is a²·S·B⁻¹.
    const mean0 = await read(
      scaledSamplePosterior(p, stats, z, scale2, { seed: 4, temperature: 0 }),
    );
    const bMat: Matrix = {
      rows: c,
      cols: c,
      data: Float64Array.from(mmt, (v, i) => a * a * v + (i % (c + 1) === 0 ? 1 : 0)),
    };
    const l = cholesky(bMat);
    const solveB = (d: number[]): number[] => {
      const y = new Array(c).fill(0);
      for (let i = 0; i < c; i++) {
        let s = d[i];
        for (let q = 0; q < i; q++) s -= l.data[i * c + q] * y[q];
        y[i] = s / l.data[i * c + i];
      }
      const x = new Array(c).fill(0);
      for (let i = c - 1; i >= 0; i--) {
        let s = y[i];
        for (let q = i + 1; q < c; q++) s -= l.data[q * c + i] * x[q];
        x[i] = s / l.data[i * c + i];
      }
      return x;
    };
    for (const row of [0, 17, 4095]) {
      const want = solveB(Array.from({ length: c }, (_, i) => k.z[row * c + i] - k.mu[i]));
      assert.ok(maxAbsDiff(mean0.slice(row * c, row * c + c), want) < 1e-4);
    }
    const post = await read(scaledSamplePosterior(p, stats, z, scale2, { seed: 6 }));
    const covP = cov(post, (r) => Array.from(mean0.slice(r * c, r * c + c)));
    // a²·S·B⁻¹ = S' (I + S')⁻¹ with S' = a²·MMᵀ: equals I − B⁻¹.
    const bInvCols = Array.from(
      { length: c },
      (_, j) => solveB(Array.from({ length: c }, (_, i) => (i === j ? 1 : 0))),
    );
    const wantP = Array.from({ length: c * c }, (_, q) => {
      const i = Math.floor(q / c);
      const j = q % c;
      return (i === j ? 1 : 0) - bInvCols[j][i];
    });
    assert.ok(maxAbsDiff(covP, wantP) < 0.08, `${covP} vs ${wantP}`);
    latentShift.disposeStats(stats);
    tf.dispose([p.mu, p.m, z, scale, scale2]);
  },
);

Deno.test(
  "adaptiveShift: config default, old checkpoints, and the model at init",
  gpuTest,
  async () => {
    await useBackend();
    assert.equal(defaultConfig.adaptiveShift, true);
    const stored = decodeStoredConfig({ levels: 3 });
    assert.ok(stored._tag === "Right" && stored.right.adaptiveShift === false);
    assert.ok(decodeConfig({ adaptiveShift: "yes" })._tag === "Left");
    const on = tinyConfig({ adaptiveShift: true });
    const off = { ...on, adaptiveShift: false };
    const params = initParams(on, 3);
    assert.equal(params.shiftScales.length, params.shifts.length);
    const plain = { ...params, shiftScales: [] };
    await noLeak("model at init", async () => {
      const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 8) as tf.Tensor4D;
      const cond = conditionInput(x, { factor: on.conditionFactor, seed: 2 });
      const stats = await prepareShifts(params);
      const a = logLikelihood(params, on, stats, x, cond);
      const b = logLikelihood(plain, off, stats, x, cond);
      assert.ok(maxAbsDiff(await read(a.degraded), await read(b.degraded)) < 1e-2);
      assert.ok(maxAbsDiff(await read(a.clean), await read(b.clean)) < 1e-2);
      // The heads get a gradient from the degraded density (they can learn).
      const g = tf.grads((w: tf.Tensor) => {
        const pp = {
          ...params,
          shiftScales: params.shiftScales.map((
            s,
            i,
          ) => (i === 0 ? { ...s, w: w as tf.Tensor2D } : s)),
        };
        return tf.sum(logLikelihood(pp, on, stats, x, cond).degraded) as tf.Scalar;
      })([params.shiftScales[0].w]);
      const gw = await read(g[0]);
      assert.ok(gw.some((v) => Math.abs(v) > 1e-6), "head weight gradient is zero");
      // Scale maps have the latents' resolutions.
      const feats = levelFeatures(params, on, cond, 16, 16);
      const maps = latentShiftScales(params, on, feats, false)!;
      assert.deepEqual(
        maps.map((m) => m.shape),
        [[2, 8, 8, 1], [2, 4, 4, 1]], // tiny: a split latent at level 1, the final at level 2
      );
      assert.ok((await read(maps[0])).every((v) => Math.abs(v - 1) < 1e-6));
      // Sampling at init equals the plain model's sampling.
      const sA = await prepareSampler(params, on);
      const sB = await prepareSampler(plain, off);
      const [ya] = degrade(sA, x, { seed: 3 });
      const [yb] = degrade(sB, x, { seed: 3 });
      assert.ok(maxAbsDiff(await read(ya), await read(yb)) < 1e-4);
      sA.dispose();
      sB.dispose();
      disposeShiftStats(stats);
      tf.dispose([
        x,
        cond,
        a.clean,
        a.degraded,
        b.clean,
        b.degraded,
        ...g,
        ...feats,
        ...maps,
        ya,
        yb,
      ]);
    });
    disposeParams(params);
  },
);
