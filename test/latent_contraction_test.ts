/**
 * The degraded latent's contraction (`src/layers/latentContraction.ts`) and the model's
 * `contractShift` option: the contracted density against a plain-JS float64 reference
 * `N(μ, G·(I + a²·M·Mᵀ)·G)`, exact gradients in `K` (central finite differences of that
 * reference), the sampler's and the restorer's maps, a Gaussian fit that needs a
 * contraction, and the model with `contractShift` (init, gradients, sampling, restoring,
 * paired likelihood, no leaks).
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { latentShift, type LatentShiftParams } from "../src/layers/latentShift.ts";
import { scaledLogProb } from "../src/layers/scaledShift.ts";
import {
  contractionStatsFromMatrix,
  contractionToShift,
  contractSample,
  disposeContractionStats,
  expandLatent,
  initContraction,
  prepareContraction,
} from "../src/layers/latentContraction.ts";
import {
  inverse,
  matmul,
  type Matrix,
  matrix,
  symmetricEigen,
  transpose,
} from "../src/linalg/dense.ts";
import { decodeConfig, decodeStoredConfig, defaultConfig } from "../src/model/config.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { initParams } from "../src/model/network.ts";
import {
  disposeShiftStats,
  logLikelihood,
  pairedLogLikelihood,
  preparePairedShifts,
  prepareShifts,
} from "../src/model/objective.ts";
import { degrade, prepareSampler, restore } from "../src/model/sample.ts";
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

type Case = {
  z: number[];
  a2: number[];
  mu: number[];
  m: Matrix;
  k: Matrix;
  shape: [number, number, number, number];
};

const makeCase = (seed: number, shape: [number, number, number, number]): Case => {
  const r = lcg(seed);
  const [n, h, w, c] = shape;
  const diag = (d: number, spread: number) =>
    matrix(
      c,
      c,
      Array.from({ length: c * c }, (_, i) => (i % (c + 1) === 0 ? d : 0) + spread * r()),
    );
  return {
    z: Array.from({ length: n * h * w * c }, () => 1.2 * r()),
    a2: Array.from({ length: n * h * w }, () => Math.exp(r())),
    mu: Array.from({ length: c }, () => 0.3 * r()),
    m: diag(0.7, 0.3),
    k: diag(0.6, 0.4),
    shape,
  };
};

/** Reference: per-sample `Σ_p log N(z_p; μ, G·(I + a_p²·M·Mᵀ)·G)`, `G = (I + K·Kᵀ)⁻¹`. */
const refSum = (kk: Case): number[] => {
  const [n, h, w, c] = kk.shape;
  const kkt = matmul(kk.k, transpose(kk.k));
  const g = inverse(matrix(c, c, Array.from(kkt.data, (v, i) => v + (i % (c + 1) === 0 ? 1 : 0))));
  const mmt = matmul(kk.m, transpose(kk.m));
  const out = new Array(n).fill(0);
  for (let p = 0; p < n * h * w; p++) {
    const b = matrix(
      c,
      c,
      Array.from(mmt.data, (v, i) => kk.a2[p] * v + (i % (c + 1) === 0 ? 1 : 0)),
    );
    const cov = matmul(matmul(g, b), g);
    const d = Array.from({ length: c }, (_, i) => kk.z[p * c + i] - kk.mu[i]);
    out[Math.floor(p / (h * w))] += gaussianLogPdf64(d, cov);
  }
  return out;
};

const tensorsOf = (kk: Case) => {
  const [n, h, w, c] = kk.shape;
  const p: LatentShiftParams = {
    mu: tf.tensor1d(kk.mu),
    m: tf.tensor2d(Float32Array.from(kk.m.data), [c, c]),
  };
  return {
    p,
    k: tf.tensor2d(Float32Array.from(kk.k.data), [c, c]),
    z: tf.tensor4d(kk.z, [n, h, w, c]),
    a2: tf.tensor4d(kk.a2, [n, h, w, 1]),
  };
};

/** The model's contracted degraded density (what `objective.ts` computes per latent). */
const contractedLogProb = (
  p: LatentShiftParams,
  shiftStats: Awaited<ReturnType<typeof latentShift.prepare>>,
  k: tf.Tensor2D,
  cStats: ReturnType<typeof contractionStatsFromMatrix>,
  z: tf.Tensor4D,
  a2: tf.Tensor4D,
): tf.Tensor1D =>
  tf.tidy(() => {
    const { w, logDetPerPosition } = contractionToShift({ k }, cStats, z, p.mu);
    return tf.add(
      scaledLogProb(p, shiftStats, w, a2),
      tf.mul(logDetPerPosition, z.shape[1] * z.shape[2]),
    ) as tf.Tensor1D;
  });

Deno.test("contraction: density = N(μ, G·(I + a²MMᵀ)·G) (float64 reference)", gpuTest, async () => {
  await useBackend();
  const kk = makeCase(5, [2, 2, 3, 4]);
  await noLeak("contracted density", async () => {
    const { p, k, z, a2 } = tensorsOf(kk);
    const shiftStats = await latentShift.prepare(p);
    const cStats = await prepareContraction({ k });
    const lp = contractedLogProb(p, shiftStats, k, cStats, z, a2);
    const got = await read(lp);
    const want = refSum(kk);
    assert.ok(maxAbsDiff(got, want) < 2e-3 * Math.max(...want.map(Math.abs)), `${got} vs ${want}`);
    // The contraction is real: without it the density differs.
    const plainT = scaledLogProb(p, shiftStats, z, a2);
    const plain = await read(plainT);
    plainT.dispose();
    assert.ok(maxAbsDiff(plain, want) > 1, "K should change the density");
    // G's eigenvalues are in (0, 1].
    assert.ok(cStats.gains.every((g) => g > 0 && g <= 1));
    latentShift.disposeStats(shiftStats);
    disposeContractionStats(cStats);
    tf.dispose([p.mu, p.m, k, z, a2, lp]);
  });
});

Deno.test("contraction: exact gradients in K, z and μ (finite differences)", gpuTest, async () => {
  await useBackend();
  const kk = makeCase(17, [1, 2, 2, 3]);
  const c = kk.shape[3];
  const weight = 0.6;
  const ref = (x: Case) => weight * refSum(x)[0];
  await noLeak("contraction gradients", async () => {
    const { p, k, z, a2 } = tensorsOf(kk);
    const shiftStats = await latentShift.prepare(p);
    const cStats = await prepareContraction({ k });
    const f = (kv: tf.Tensor, zv: tf.Tensor, mu: tf.Tensor) =>
      tf.mul(
        tf.sum(contractedLogProb(
          { mu: mu as tf.Tensor1D, m: p.m },
          shiftStats,
          kv as tf.Tensor2D,
          cStats,
          zv as tf.Tensor4D,
          a2,
        )),
        weight,
      ) as tf.Scalar;
    const grads = tf.grads(f)([k, z, p.mu]);
    const [gk, gz, gmu] = await Promise.all(grads.map(read));
    const h = 1e-5;
    const fd = (mutate: (x: Case, d: number) => Case) =>
      (ref(mutate(kk, h)) - ref(mutate(kk, -h))) / (2 * h);
    const at = (arr: ArrayLike<number>, i: number, d: number) =>
      Array.from(arr, (v, j) => (j === i ? v + d : v));
    const check = (what: string, got: Float64Array, want: number[]) => {
      const scale = Math.max(1, ...want.map(Math.abs));
      assert.ok(maxAbsDiff(got, want) < 3e-3 * scale, `${what}: ${[...got]} vs ${want}`);
    };
    check(
      "K",
      gk,
      Array.from(
        kk.k.data,
        (_, i) => fd((x, d) => ({ ...x, k: matrix(c, c, at(x.k.data, i, d)) })),
      ),
    );
    check("z", gz, kk.z.map((_, i) => fd((x, d) => ({ ...x, z: at(x.z, i, d) }))));
    check("mu", gmu, kk.mu.map((_, i) => fd((x, d) => ({ ...x, mu: at(x.mu, i, d) }))));
    latentShift.disposeStats(shiftStats);
    disposeContractionStats(cStats);
    tf.dispose([p.mu, p.m, k, z, a2, ...grads]);
  });
});

Deno.test(
  "contraction: the sampler's map (τ = 1: μ + G(z + ũ); τ = 0: z) and its inverse",
  gpuTest,
  async () => {
    await useBackend();
    const kk = makeCase(29, [1, 3, 2, 4]);
    const c = kk.shape[3];
    await noLeak("contraction maps", async () => {
      const { p, k, z, a2 } = tensorsOf(kk);
      const cStats = contractionStatsFromMatrix(kk.k);
      const noise = tf.randomNormal(z.shape, 0, 0.5, "float32", 4) as tf.Tensor4D;
      const g = cStats.contraction;
      const zd = await read(z), nd = await read(noise), gd = await read(g);
      const at = (tau: number) =>
        tf.tidy(() =>
          contractSample(cStats, z, tf.add(noise, tf.mul(p.mu, tau)) as tf.Tensor4D, p.mu, tau)
        );
      const [y1, y0, yh] = [at(1), at(0), at(0.5)];
      const [v1, v0, vh] = await Promise.all([y1, y0, yh].map(read));
      for (let q = 0; q < zd.length / c; q++) {
        for (let i = 0; i < c; i++) {
          let gz = 0, gn = 0;
          for (let j = 0; j < c; j++) {
            gz += gd[i * c + j] * zd[q * c + j];
            gn += gd[i * c + j] * nd[q * c + j];
          }
          const want1 = kk.mu[i] + gz + gn;
          const wantH = zd[q * c + i] + 0.5 * (gz - zd[q * c + i]) + gn + 0.5 * kk.mu[i];
          assert.ok(Math.abs(v1[q * c + i] - want1) < 1e-4, `τ=1 at ${q},${i}`);
          assert.ok(Math.abs(vh[q * c + i] - wantH) < 1e-4, `τ=½ at ${q},${i}`);
        }
      }
      // τ = 0 with zero noise is the identity.
      const y00 = tf.tidy(() => contractSample(cStats, z, tf.zerosLike(z), p.mu, 0));
      assert.ok(maxAbsDiff(await read(y00), zd) < 1e-6);
      assert.ok(maxAbsDiff(v0, Array.from(zd, (v, i) => v + nd[i])) > 0.01, "G acts on ũ at τ=0");
      // expandLatent undoes the contraction: G⁻¹(y − μ) + μ = z + ũ + μ.
      const w = expandLatent(cStats, y1, p.mu);
      const want = Array.from(zd, (v, i) => v + nd[i] + kk.mu[i % c]);
      assert.ok(maxAbsDiff(await read(w), want) < 1e-4);
      // The stats' float64 G and G⁻¹ are inverses, and K = 0 gives G = I.
      const prodT = tf.matMul(g, cStats.expansion);
      const prod = await read(prodT);
      assert.ok(
        maxAbsDiff(prod, Array.from({ length: c * c }, (_, i) => (i % (c + 1) ? 0 : 1))) < 1e-5,
      );
      const zero = contractionStatsFromMatrix(matrix(c, c, new Float64Array(c * c)));
      assert.ok(zero.gains.every((v) => v === 1) && zero.logDet === 0);
      assert.throws(
        () =>
          tf.tidy(() =>
            contractSample(cStats, tf.zeros([1, 2, 2, c + 1]) as tf.Tensor4D, z, p.mu, 1)
          ),
        /must have the contraction's 4 channels/,
      );
      disposeContractionStats(cStats);
      disposeContractionStats(zero);
      tf.dispose([p.mu, p.m, k, z, a2, noise, y1, y0, yh, y00, w, prodT]);
    });
    assert.throws(() => initContraction({ channels: 3, scale: 0, seed: 1 }), /scale/);
    assert.throws(
      () => contractionStatsFromMatrix(matrix(2, 2, [1, NaN, 0, 1])),
      /NaN or Infinity/,
    );
  },
);

Deno.test(
  "contraction: a Gaussian narrower than N(0, I) in one direction is fitted; without K it is not",
  gpuTest,
  async () => {
    await useBackend("wasm"); // 400 small optimiser steps: the CPU backend (laws run on WebGPU)
    const c = 3;
    // Target covariance R·diag(2, 1, 0.3)·Rᵀ with a fixed rotation R.
    const r = symmetricEigen(matrix(c, c, [2, 0.5, 0.3, 0.5, 1.5, -0.4, 0.3, -0.4, 1])).vectors;
    const variances = [2, 1, 0.3];
    const n = 3000;
    const rand = lcg(77);
    const normal = () => {
      const u1 = (rand() + 1) / 2 + 1e-12, u2 = (rand() + 1) / 2;
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    };
    const data = new Float32Array(n * c);
    for (let q = 0; q < n; q++) {
      const e = variances.map((v) => Math.sqrt(v) * normal());
      for (let i = 0; i < c; i++) {
        let s = 0;
        for (let j = 0; j < c; j++) s += r.data[i * c + j] * e[j];
        data[q * c + i] = s;
      }
    }
    const fit = async (withK: boolean) => {
      const z = tf.tensor4d(data, [1, n, 1, c]);
      const a2 = tf.ones([1, n, 1, 1]) as tf.Tensor4D;
      let leaves: tf.Tensor[] = tf.tidy(() => [
        tf.zeros([c]),
        tf.mul(tf.eye(c), 0.3),
        tf.mul(tf.eye(c), 0.1),
      ]);
      const m1 = leaves.map((l) => tf.zerosLike(l));
      const m2 = leaves.map((l) => tf.zerosLike(l));
      const lr = 0.05;
      let last = 0;
      for (let step = 1; step <= 200; step++) {
        const [mu, m, k] = leaves as [tf.Tensor1D, tf.Tensor2D, tf.Tensor2D];
        const sStats = await latentShift.prepare({ mu, m });
        const cStats = await prepareContraction({ k });
        const f = (muV: tf.Tensor, mV: tf.Tensor, kV: tf.Tensor) =>
          tf.div(
            tf.neg(tf.sum(
              withK
                ? contractedLogProb(
                  { mu: muV as tf.Tensor1D, m: mV as tf.Tensor2D },
                  sStats,
                  kV as tf.Tensor2D,
                  cStats,
                  z,
                  a2,
                )
                : tf.add(
                  scaledLogProb({ mu: muV as tf.Tensor1D, m: mV as tf.Tensor2D }, sStats, z, a2),
                  tf.mul(tf.sum(kV), 0),
                ),
            )),
            n,
          ) as tf.Scalar;
        const { value, grads } = tf.valueAndGrads(f)(leaves);
        last = (await value.data())[0];
        const next = tf.tidy(() =>
          leaves.map((l, i) => {
            const g = grads[i];
            const a = tf.add(tf.mul(m1[i], 0.9), tf.mul(g, 0.1));
            const b = tf.add(tf.mul(m2[i], 0.999), tf.mul(tf.square(g), 0.001));
            tf.dispose([m1[i], m2[i]]);
            m1[i] = tf.keep(a);
            m2[i] = tf.keep(b);
            const ah = tf.div(a, 1 - 0.9 ** step), bh = tf.div(b, 1 - 0.999 ** step);
            return tf.sub(l, tf.mul(tf.div(ah, tf.add(tf.sqrt(bh), 1e-8)), lr));
          })
        );
        tf.dispose([...leaves, ...grads, value]);
        latentShift.disposeStats(sStats);
        disposeContractionStats(cStats);
        leaves = next;
      }
      const [mu, m, k] = await Promise.all(leaves.map(read));
      tf.dispose([...leaves, ...m1, ...m2, z, a2]);
      return { nll: last, mu, m: matrix(c, c, m), k: matrix(c, c, k) };
    };
    await noLeak("Gaussian fit", async () => {
      const withK = await fit(true);
      const without = await fit(false);
      // The sample covariance (the MLE) of the data.
      const cov = new Float64Array(c * c);
      for (let q = 0; q < n; q++) {
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) cov[i * c + j] += data[q * c + i] * data[q * c + j] / n;
        }
      }
      const kkt = matmul(withK.k, transpose(withK.k));
      const g = inverse(
        matrix(c, c, Array.from(kkt.data, (v, i) => v + (i % (c + 1) === 0 ? 1 : 0))),
      );
      const mmt = matmul(withK.m, transpose(withK.m));
      const b = matrix(c, c, Array.from(mmt.data, (v, i) => v + (i % (c + 1) === 0 ? 1 : 0)));
      const model = matmul(matmul(g, b), g);
      assert.ok(
        maxAbsDiff(model.data, cov) < 0.08,
        `fitted covariance ${[...model.data]} vs sample ${[...cov]}`,
      );
      // Along the narrow direction the model contracts; along the wide one it does not.
      const along = (a: Matrix, e: number) => {
        let s = 0;
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) {
            s += r.data[i * c + e] * a.data[i * c + j] * r.data[j * c + e];
          }
        }
        return s;
      };
      assert.ok(along(g, 2) < 0.7, `gain along the narrow direction ${along(g, 2)}`);
      assert.ok(along(g, 0) > 0.9, `gain along the wide direction ${along(g, 0)}`);
      // The paper's shift cannot go below the clean variance: a clearly worse fit.
      assert.ok(without.nll > withK.nll + 0.1, `NLL ${without.nll} (no K) vs ${withK.nll}`);
    });
  },
);

Deno.test(
  "contractShift: config, old checkpoints, and the model (init, gradients, sampling, paired)",
  gpuTest,
  async () => {
    await useBackend();
    assert.equal(defaultConfig.contractShift, true);
    const stored = decodeStoredConfig({ levels: 3 });
    assert.ok(stored._tag === "Right" && stored.right.contractShift === false);
    assert.ok(decodeConfig({ contractShift: 1 })._tag === "Left");
    const on = tinyConfig({ contractShift: true });
    const off = { ...on, contractShift: false };
    const params = initParams(on, 3);
    assert.equal(params.shiftContractions.length, params.shifts.length);
    const plain = { ...params, shiftContractions: [] };
    await noLeak("model with contractShift", async () => {
      const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 8) as tf.Tensor4D;
      const y = tf.tidy(() =>
        tf.clipByValue(tf.add(x, tf.randomNormal(x.shape, 0, 0.05, "float32", 9)), 0, 1)
      ) as tf.Tensor4D;
      const cond = conditionInput(x, { factor: on.conditionFactor, seed: 2 });
      const stats = await prepareShifts(params);
      const plainStats = await prepareShifts(plain);
      assert.ok(stats.every((s) => s.contraction) && plainStats.every((s) => !s.contraction));
      const a = logLikelihood(params, on, stats, x, cond);
      const b = logLikelihood(plain, off, plainStats, x, cond);
      // K starts at shiftInit/10: G ≈ I, nearly the paper's model.
      assert.ok(maxAbsDiff(await read(a.degraded), await read(b.degraded)) < 0.5);
      assert.ok(maxAbsDiff(await read(a.clean), await read(b.clean)) < 1e-3);
      // K gets a gradient from the degraded density.
      const g = tf.grads((kv: tf.Tensor) => {
        const pp = {
          ...params,
          shiftContractions: params.shiftContractions.map((s, i) =>
            i === 0 ? { k: kv as tf.Tensor2D } : s
          ),
        };
        return tf.sum(logLikelihood(pp, on, stats, x, cond).degraded) as tf.Scalar;
      })([params.shiftContractions[0].k]);
      assert.ok((await read(g[0])).some((v) => Math.abs(v) > 1e-6), "K gradient is zero");
      // A config asking for contractions the parameters lack is named.
      assert.throws(() => logLikelihood(plain, on, plainStats, x, cond), /contractShift/);
      // Paired likelihood: finite.
      const paired = await preparePairedShifts(params, 1e-3);
      const lp = pairedLogLikelihood(params, on, paired, x, y, cond);
      assert.ok((await read(lp)).every(Number.isFinite));
      // Sampling and restoring run, stay in range, and are close to the paper's at init.
      const sA = await prepareSampler(params, on);
      const sB = await prepareSampler(plain, off);
      const [ya] = degrade(sA, x, { seed: 3 });
      const [yb] = degrade(sB, x, { seed: 3 });
      const yaData = await read(ya);
      assert.ok(yaData.every((v) => v >= 0 && v <= 1));
      assert.ok(maxAbsDiff(yaData, await read(yb)) < 0.05);
      const [ra] = restore(sA, y, { seed: 4 });
      assert.ok((await read(ra)).every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
      sA.dispose();
      sB.dispose();
      disposeShiftStats(stats);
      disposeShiftStats(plainStats);
      disposeShiftStats(paired);
      tf.dispose([x, y, cond, a.clean, a.degraded, b.clean, b.degraded, ...g, lp, ya, yb, ra]);
    });
    disposeParams(params);
  },
);
