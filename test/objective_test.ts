/**
 * The model's objective functions against independent float64 computations:
 * the unpaired per-domain log-likelihoods and bits/dim, and the paired likelihood (eq. 5).
 *
 * This file pins the paper's position-invariant shift (`adaptiveShift: false`, as old
 * checkpoints load); the per-position scaled shift is pinned against float64 references in
 * `objective_production_test.ts` (unpaired objective and gradients) and
 * `scaled_shift_test.ts` (marginal and paired densities).
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { encode } from "../src/model/network.ts";
import {
  bitsPerDim,
  disposeShiftStats,
  logLikelihood,
  pairedLogLikelihood,
  preparePairedShifts,
  prepareShifts,
} from "../src/model/objective.ts";
import { cholesky, inverse, matrix, slogdet } from "../src/linalg/dense.ts";
import { noLeak, perturbedModel, read, tinyConfig, useBackend } from "./_helpers.ts";

const tiny = tinyConfig({ adaptiveShift: false, contractShift: false });

const perturbed = () => perturbedModel(tiny, 7, 0.1);

/** Σ over pixels of log N(v; mean, cov) for per-pixel vectors (float64). */
const gaussianSum = (v: Float64Array, mean: Float64Array, cov: Float64Array, c: number) => {
  const cm = matrix(c, c, cov);
  const inv = inverse(cm).data;
  const ld = slogdet(cm).logAbsDet;
  let s = 0;
  for (let p = 0; p < v.length / c; p++) {
    let q = 0;
    for (let i = 0; i < c; i++) {
      for (let j = 0; j < c; j++) {
        q += (v[p * c + i] - mean[i]) * inv[i * c + j] * (v[p * c + j] - mean[j]);
      }
    }
    s += -0.5 * (q + ld + c * Math.log(2 * Math.PI));
  }
  return s;
};

Deno.test("objective: unpaired and paired likelihoods match float64 references", async () => {
  await useBackend("wasm");
  await noLeak("objective", async () => {
    const params = perturbed();
    const x = tf.randomUniform([1, 8, 8, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    const y = tf.tidy(() =>
      tf.add(x, tf.randomNormal(x.shape, 0, 0.05, "float32", 2))
    ) as tf.Tensor4D;
    const cond = conditionInput(x, { factor: 2, seed: 3 });
    const condY = conditionInput(y, { factor: 2, seed: 3 });
    const stats = await prepareShifts(params);
    const paired = await preparePairedShifts(params, 1e-3);
    const ll = logLikelihood(params, tiny, stats, y, condY);
    const plp = pairedLogLikelihood(params, tiny, paired, x, y, cond);
    const ey = encode(params, tiny, y, condY);
    const eyx = encode(params, tiny, y, cond);
    const ex = encode(params, tiny, x, cond);
    let clean = (await read(ey.logDet))[0];
    let degraded = clean;
    let pairedRef = (await read(eyx.logDet))[0];
    for (let i = 0; i < ey.latents.length; i++) {
      const c = ey.latents[i].shape[3];
      const zy = await read(ey.latents[i]);
      const mu = await read(params.shifts[i].mu);
      const m = await read(params.shifts[i].m);
      const sigma = new Float64Array(c * c);
      for (let a = 0; a < c; a++) {
        for (let b = 0; b < c; b++) {
          let s = 0;
          for (let k = 0; k < c; k++) s += m[a * c + k] * m[b * c + k];
          sigma[a * c + b] = s;
        }
      }
      const eye = (d: number) =>
        Float64Array.from({ length: c * c }, (_, k) => (k % (c + 1) === 0 ? d : 0));
      clean += gaussianSum(zy, new Float64Array(c), eye(1), c);
      degraded += gaussianSum(zy, mu, sigma.map((v, k) => v + eye(1)[k]), c);
      // Paired: z_y − z_x ~ N(μ, Σ + jitter·I), with h = φ(x) for both encodings.
      const zyx = await read(eyx.latents[i]);
      const zx = await read(ex.latents[i]);
      const d = zyx.map((v, k) => v - zx[k]);
      cholesky(matrix(c, c, sigma.map((v, k) => v + eye(1e-3)[k])));
      pairedRef += gaussianSum(d, mu, sigma.map((v, k) => v + eye(1e-3)[k]), c);
    }
    const got = { clean: (await read(ll.clean))[0], degraded: (await read(ll.degraded))[0] };
    const tol = (v: number) => 1e-3 * Math.max(1, Math.abs(v));
    assert.ok(Math.abs(got.clean - clean) < tol(clean), `clean ${got.clean} vs ${clean}`);
    assert.ok(
      Math.abs(got.degraded - degraded) < tol(degraded),
      `degraded ${got.degraded} vs ${degraded}`,
    );
    assert.ok(Math.abs(got.clean - got.degraded) > 1, "the two domains should score differently");
    const p = (await read(plp))[0];
    assert.ok(Math.abs(p - pairedRef) < tol(pairedRef), `paired ${p} vs ${pairedRef}`);
    // bits/dim: (−log p + D·log bins) / (D·ln 2)
    const bpd = bitsPerDim(ll.clean, 192, 32);
    const want = (-clean + 192 * Math.log(32)) / (192 * Math.LN2);
    assert.ok(Math.abs((await read(bpd))[0] - want) < 1e-3);
    tf.dispose([x, y, cond, condY, ll.clean, ll.degraded, plp, bpd, ...ey.latents, ey.logDet]);
    tf.dispose([...eyx.latents, eyx.logDet, ...ex.latents, ex.logDet]);
    disposeShiftStats(stats);
    disposeShiftStats(paired);
    disposeParams(params);
  });
  await useBackend("webgpu");
});
