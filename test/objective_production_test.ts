/**
 * The production objective against independent float64 references written here in plain
 * JS numbers (no src/linalg): `unpairedLoss` on a mixed batch (each sample scored under its
 * own domain), bits/dim per sample, `dequantize`, the gradients of `lossAndGrads`, gradient
 * clipping and one `trainStep` (Adam moments and the updated parameters).
 *
 * The reference takes the flow's latents and log-det from `encode` (the flow itself is
 * checked by the law kit) and recomputes everything the objective adds on top of them:
 * the Gaussian log-densities of both domains from μ, M and the per-position shift scale
 * a(h)² (recomputed in float64 from the features and the scale heads), the domain mixture, the
 * `D·log(bins)` term, the mean, and the closed-form gradients w.r.t. μ and M.
 *
 * To make `lossAndGrads`/`trainStep` comparable without depending on how they derive their
 * internal seeds, these tests use `conditionNoise: 0` and `bins = 2²⁰` (dequantisation
 * noise ≤ 5·10⁻⁷); `dequantize` itself is checked separately with 32 bins.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import {
  disposeParams,
  flattenParams,
  isTrainablePath,
  unflattenLike,
} from "../src/core/params.ts";
import type { LatentShiftParams } from "../src/layers/latentShift.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { type DeflowParams, encode, levelFeatures } from "../src/model/network.ts";
import { networkLayout } from "../src/model/layout.ts";
import {
  bitsPerDim,
  dequantize,
  disposeShiftStats,
  prepareShifts,
  unpairedLoss,
} from "../src/model/objective.ts";
import { adamInit } from "../src/train/adam.ts";
import { lossAndGrads, trainStep } from "../src/train/step.ts";
import { noLeak, perturbedModel, read, tinyConfig, useBackend } from "./_helpers.ts";

const BIG_BINS = 1 << 20;
const config = tinyConfig({ bins: BIG_BINS, conditionNoise: 0, contractShift: false });

// ---------------------------------------------------------------- float64 helpers

/** Lower Cholesky factor of a symmetric positive definite c×c matrix (row-major). */
const chol = (a: Float64Array, c: number): Float64Array => {
  const l = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * c + j];
      for (let k = 0; k < j; k++) s -= l[i * c + k] * l[j * c + k];
      l[i * c + j] = i === j ? Math.sqrt(s) : s / l[j * c + j];
    }
  }
  return l;
};

/** Inverse of an SPD matrix through its Cholesky factor (column by column). */
const spdInverse = (a: Float64Array, c: number): Float64Array => {
  const l = chol(a, c);
  const inv = new Float64Array(c * c);
  for (let col = 0; col < c; col++) {
    const y = new Float64Array(c);
    for (let i = 0; i < c; i++) {
      let s = i === col ? 1 : 0;
      for (let k = 0; k < i; k++) s -= l[i * c + k] * y[k];
      y[i] = s / l[i * c + i];
    }
    for (let i = c - 1; i >= 0; i--) {
      let s = y[i];
      for (let k = i + 1; k < c; k++) s -= l[k * c + i] * inv[k * c + col];
      inv[i * c + col] = s / l[i * c + i];
    }
  }
  return inv;
};

/** A = I + a²·M·Mᵀ (a² = 1: the plain shift; else the per-position scale of `adaptiveShift`). */
const aOf = (m: Float64Array, c: number, a2 = 1): Float64Array => {
  const a = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += m[i * c + k] * m[j * c + k];
      a[i * c + j] = (i === j ? 1 : 0) + a2 * s;
    }
  }
  return a;
};

interface Shift64 {
  readonly c: number;
  readonly mu: Float64Array;
  readonly m: Float64Array;
}

interface Encoded64 {
  /**
   * Per latent: values `[N·H·W·C]`, channels, and the per-position shift scale a² `[N·H·W]`
   * (`adaptiveShift`, recomputed here in float64 from the features and the head), else null.
   */
  readonly latents: {
    readonly z: Float64Array;
    readonly c: number;
    readonly perSample: number;
    readonly a2: Float64Array | null;
  }[];
  readonly logDet: Float64Array;
  readonly n: number;
  readonly dims: number;
}

const encode64 = async (
  params: DeflowParams,
  cfg: ModelConfig,
  x: tf.Tensor4D,
  cond: tf.Tensor4D,
): Promise<Encoded64> => {
  const e = encode(params, cfg, x, cond);
  const a2s = await scales64(params, cfg, x, cond);
  const latents = [];
  for (const [i, z] of e.latents.entries()) {
    latents.push({ z: await read(z), c: z.shape[3], perSample: z.size / z.shape[0], a2: a2s[i] });
  }
  const logDet = await read(e.logDet);
  tf.dispose([...e.latents, e.logDet]);
  return { latents, logDet, n: x.shape[0], dims: x.size / x.shape[0] };
};

/** a(h)² per latent position in float64: `log a = 3·tanh((h·w + b)/3)` (null without the option). */
const scales64 = async (
  params: DeflowParams,
  cfg: ModelConfig,
  x: tf.Tensor4D,
  cond: tf.Tensor4D,
): Promise<(Float64Array | null)[]> => {
  const layout = networkLayout(cfg, x.shape[1], x.shape[2]);
  if (!cfg.adaptiveShift) return layout.latents.map(() => null);
  const feats = levelFeatures(params, cfg, cond, x.shape[1], x.shape[2]);
  const out: Float64Array[] = [];
  for (const [i, l] of layout.latents.entries()) {
    const f = feats[l.level - 1];
    const fc = f.shape[3];
    const h = await read(f);
    const w = await read(params.shiftScales[i].w);
    const b = (await read(params.shiftScales[i].b))[0];
    out.push(Float64Array.from({ length: h.length / fc }, (_, p) => {
      let raw = b;
      for (let k = 0; k < fc; k++) raw += h[p * fc + k] * w[k];
      return Math.exp(2 * 3 * Math.tanh(raw / 3));
    }));
  }
  tf.dispose(feats);
  return out;
};

const shifts64 = (params: DeflowParams): Promise<Shift64[]> =>
  Promise.all(params.shifts.map(async (s) => ({
    c: s.mu.shape[0],
    mu: await read(s.mu),
    m: await read(s.m),
  })));

const LOG2PI = Math.log(2 * Math.PI);

/** Per-sample log p under the clean and the degraded model (nats), float64. */
const logp64 = (enc: Encoded64, shifts: readonly Shift64[]) => {
  const clean = Float64Array.from(enc.logDet);
  const degraded = Float64Array.from(enc.logDet);
  enc.latents.forEach(({ z, c, perSample, a2 }, li) => {
    const { mu, m } = shifts[li];
    for (let n = 0; n < enc.n; n++) {
      for (let p = n * perSample; p < (n + 1) * perSample; p += c) {
        const a = aOf(m, c, a2 ? a2[p / c] : 1);
        const inv = spdInverse(a, c);
        const l = chol(a, c);
        let logDetA = 0;
        for (let i = 0; i < c; i++) logDetA += 2 * Math.log(l[i * c + i]);
        let qc = 0;
        let qd = 0;
        for (let i = 0; i < c; i++) {
          qc += z[p + i] * z[p + i];
          for (let j = 0; j < c; j++) {
            qd += (z[p + i] - mu[i]) * inv[i * c + j] * (z[p + j] - mu[j]);
          }
        }
        clean[n] += -0.5 * (qc + c * LOG2PI);
        degraded[n] += -0.5 * (qd + logDetA + c * LOG2PI);
      }
    }
  });
  return { clean, degraded };
};

/** Per-sample bits/dim of the mixed batch and their mean, float64. */
const loss64 = (
  enc: Encoded64,
  shifts: readonly Shift64[],
  mask: readonly number[],
  bins: number,
) => {
  const { clean, degraded } = logp64(enc, shifts);
  const per = mask.map((d, n) =>
    (enc.dims * Math.log(bins) - (d ? degraded[n] : clean[n])) / (enc.dims * Math.LN2)
  );
  return { per, loss: per.reduce((a, b) => a + b, 0) / per.length };
};

/** d loss / dμ and d loss / dM of every shift (closed form), float64. */
const shiftGrads64 = (enc: Encoded64, shifts: readonly Shift64[], mask: readonly number[]) => {
  const scale = 1 / (enc.n * enc.dims * Math.LN2);
  return enc.latents.map(({ z, c, perSample, a2 }, li) => {
    const { mu, m } = shifts[li];
    const gMu = new Float64Array(c);
    const gA = new Float64Array(c * c); // ∂(−log p)/∂(M·Mᵀ), summed over degraded positions
    for (let n = 0; n < enc.n; n++) {
      if (!mask[n]) continue;
      for (let p = n * perSample; p < (n + 1) * perSample; p += c) {
        const s2 = a2 ? a2[p / c] : 1; // A_p = I + s2·M·Mᵀ
        const inv = spdInverse(aOf(m, c, s2), c);
        const w = new Float64Array(c); // A⁻¹(z − μ)
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) w[i] += inv[i * c + j] * (z[p + j] - mu[j]);
        }
        for (let i = 0; i < c; i++) {
          gMu[i] -= w[i];
          for (let j = 0; j < c; j++) gA[i * c + j] += 0.5 * s2 * (inv[i * c + j] - w[i] * w[j]);
        }
      }
    }
    const gM = new Float64Array(c * c); // (G + Gᵀ)·M = 2·G·M
    for (let i = 0; i < c; i++) {
      for (let j = 0; j < c; j++) {
        let s = 0;
        for (let k = 0; k < c; k++) s += 2 * gA[i * c + k] * m[k * c + j];
        gM[i * c + j] = s * scale;
      }
    }
    return { mu: gMu.map((v) => v * scale), m: gM };
  });
};

// ---------------------------------------------------------------- fixtures

/** A shift far from the identity, so that the two domains score samples very differently. */
const strongShift = (c: number, seed: number): LatentShiftParams => ({
  mu: tf.randomUniform([c], -0.6, 0.6, "float32", seed) as tf.Tensor1D,
  m: tf.tidy(() =>
    tf.add(tf.mul(tf.eye(c), 0.6), tf.randomNormal([c, c], 0, 0.2, "float32", seed + 1))
  ) as tf.Tensor2D,
});

/** The tiny model, perturbed, with strong latent shifts. */
const model = (seed: number): DeflowParams => {
  const p = perturbedModel(config, seed, 0.05);
  const shifts = p.shifts.map((s, i) => strongShift(s.mu.shape[0], seed * 10 + i));
  tf.dispose(p.shifts.flatMap((s) => [s.mu, s.m]));
  return { ...p, shifts };
};

const batchOf = (n: number, h: number, w: number, seed: number): tf.Tensor4D =>
  tf.randomUniform([n, h, w, 3], 0.1, 0.9, "float32", seed) as tf.Tensor4D;

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

// ---------------------------------------------------------------- tests

Deno.test("unpairedLoss on a mixed batch = float64 reference; a swapped domain mask is far off", async () => {
  await useBackend("wasm");
  await noLeak("unpairedLoss", async () => {
    const params = model(3);
    const mask = [1, 0, 0, 1];
    const x = batchOf(4, 8, 16, 5); // H ≠ W
    const cond = conditionInput(x, { factor: 2, noiseStd: 0, seed: 1 });
    const m = tf.tensor1d(mask, "float32");
    const stats = await prepareShifts(params);
    const r = unpairedLoss(params, config, stats, x, cond, m);
    const per = await read(r.perSample);
    const loss = (await read(r.loss))[0];
    const enc = await encode64(params, config, x, cond);
    const sh = await shifts64(params);
    const ref = loss64(enc, sh, mask, config.bins);
    const swapped = loss64(enc, sh, mask.map((v) => 1 - v), config.bins);
    // float32 sums of ~D terms of size ~1: 1e-5 relative is what float32 needs.
    const tol = 2e-5 * Math.max(...ref.per.map(Math.abs));
    for (let n = 0; n < mask.length; n++) {
      assert.ok(Math.abs(per[n] - ref.per[n]) < tol, `sample ${n}: ${per[n]} vs ${ref.per[n]}`);
      assert.ok(
        Math.abs(per[n] - swapped.per[n]) > 100 * tol,
        `sample ${n}: the other domain must score differently (${per[n]} vs ${swapped.per[n]})`,
      );
    }
    assert.ok(Math.abs(loss - ref.loss) < tol, `loss ${loss} vs ${ref.loss}`);
    // All-clean and all-degraded masks pick the corresponding reference.
    for (const all of [0, 1]) {
      const mm = tf.fill([4], all) as tf.Tensor1D;
      const ra = unpairedLoss(params, config, stats, x, cond, mm);
      const want = loss64(enc, sh, [all, all, all, all], config.bins).loss;
      assert.ok(Math.abs((await read(ra.loss))[0] - want) < tol, `all ${all}`);
      tf.dispose([mm, ra.loss, ra.perSample]);
    }
    disposeShiftStats(stats);
    tf.dispose([x, cond, m, r.loss, r.perSample]);
    disposeParams(params);
  });
});

Deno.test("bitsPerDim = (D·ln bins − log p)/(D·ln 2) per sample; dequantize is U(−½, ½)/bins", async () => {
  await useBackend("wasm");
  await noLeak("bitsPerDim/dequantize", async () => {
    const logp = [-1234.5, 0, 321.25, -7];
    const lp = tf.tensor1d(logp, "float32");
    const b = bitsPerDim(lp, 192, 32);
    const got = await read(b);
    logp.forEach((v, i) => {
      const want = (192 * Math.log(32) - v) / (192 * Math.LN2);
      assert.ok(Math.abs(got[i] - want) < 1e-5 * Math.abs(want) + 1e-6, `${got[i]} vs ${want}`);
    });
    tf.dispose([lp, b]);

    const bins = 32;
    const x = tf.randomUniform([2, 32, 32, 3], 0, 1, "float32", 9) as tf.Tensor4D;
    const d1 = dequantize(x, bins, 4);
    const d2 = dequantize(x, bins, 4);
    const d3 = dequantize(x, bins, 5);
    const xv = await read(x);
    const v1 = await read(d1);
    const v2 = await read(d2);
    const v3 = await read(d3);
    const r = v1.map((v, i) => (v - xv[i]) * bins); // should be U(−½, ½)
    let mean = 0;
    let sq = 0;
    for (const v of r) {
      mean += v;
      sq += v * v;
      assert.ok(v >= -0.5 - 1e-4 && v <= 0.5 + 1e-4, `offset ${v / bins} outside ±1/(2·bins)`);
    }
    mean /= r.length;
    const variance = sq / r.length - mean * mean;
    // n = 6144 uniforms: SE of the mean 0.0037, of the variance ≈ 0.0011.
    assert.ok(Math.abs(mean) < 0.015, `mean offset ${mean}`);
    assert.ok(Math.abs(variance - 1 / 12) < 0.005, `variance ${variance} vs 1/12`);
    assert.deepEqual(v1, v2, "same seed, same noise");
    assert.ok(maxAbs(v1.map((v, i) => v - v3[i])) > 0.5 / bins, "other seed, other noise");
    tf.dispose([x, d1, d2, d3]);
  });
});

Deno.test("lossAndGrads: value and gradients match the float64 reference (μ, M closed form; flow by finite differences)", async () => {
  await useBackend("wasm");
  await noLeak("lossAndGrads", async () => {
    const params = model(4);
    const mask = [0, 1, 1];
    const x = batchOf(3, 8, 8, 6);
    const degradedMask = tf.tensor1d(mask, "float32");
    const { loss, perSample, grads } = await lossAndGrads(params, config, { x, degradedMask }, 11);
    const lv = (await read(loss))[0];
    const cond = conditionInput(x, { factor: 2, noiseStd: 0, seed: 1 });
    const sh = await shifts64(params);
    const enc = await encode64(params, config, x, cond);
    const ref = loss64(enc, sh, mask, config.bins);
    assert.ok(Math.abs(lv - ref.loss) < 2e-5 * Math.abs(ref.loss), `loss ${lv} vs ${ref.loss}`);

    const trainable = flattenParams(params).filter((n) => isTrainablePath(n.path));
    assert.equal(grads.length, trainable.length);
    grads.forEach((g, i) =>
      assert.deepEqual(g.shape, trainable[i].tensor.shape, trainable[i].path)
    );
    const gradOf = new Map(trainable.map((n, i) => [n.path, grads[i]]));

    // Shift gradients against the closed form.
    const want = shiftGrads64(enc, sh, mask);
    for (let i = 0; i < params.shifts.length; i++) {
      for (const leaf of ["mu", "m"] as const) {
        const g = await read(gradOf.get(`shifts.${i}.${leaf}`)!);
        const w = want[i][leaf];
        const err = maxAbs(g.map((v, k) => v - w[k]));
        assert.ok(maxAbs(w) > 1e-4, `shifts.${i}.${leaf}: reference gradient is trivially 0`);
        assert.ok(
          err < 2e-3 * maxAbs(w) + 1e-7,
          `shifts.${i}.${leaf}: |Δ| ${err} (max ${maxAbs(w)})`,
        );
      }
    }

    // Flow and encoder gradients: directional derivative of the float64 reference loss.
    assert.ok(config.adaptiveShift, "the production config has per-position shift scales");
    for (const group of ["levels.", "encoder.", "shiftScales."]) {
      const sel = trainable.filter((n) => n.path.startsWith(group));
      const dirs = sel.map((n, k) => tf.randomNormal(n.tensor.shape, 0, 1, "float32", 100 + k));
      let gv = 0;
      for (let k = 0; k < sel.length; k++) {
        const g = await read(gradOf.get(sel[k].path)!);
        const d = await read(dirs[k]);
        for (let j = 0; j < g.length; j++) gv += g[j] * d[j];
      }
      const shifted = async (eps: number) => {
        const moved = new Map(
          sel.map((n, k) => [n.path, tf.tidy(() => tf.add(n.tensor, tf.mul(dirs[k], eps)))]),
        );
        const leaves = flattenParams(params).map((n) => moved.get(n.path) ?? n.tensor);
        const p = unflattenLike(params, leaves);
        const e = await encode64(p, config, x, cond);
        tf.dispose([...moved.values()]);
        return loss64(e, sh, mask, config.bins).loss;
      };
      const eps = 2e-3;
      const fd = ((await shifted(eps)) - (await shifted(-eps))) / (2 * eps);
      tf.dispose(dirs);
      assert.ok(Math.abs(gv) > 1e-3, `${group}: directional derivative should be non-trivial`);
      assert.ok(
        Math.abs(gv - fd) < 0.02 * Math.abs(fd) + 1e-4,
        `${group}: autodiff ${gv} vs finite difference ${fd}`,
      );
    }
    tf.dispose([loss, perSample, ...grads, x, degradedMask, cond]);
    disposeParams(params);
  });
});

Deno.test("trainStep: clipping and one Adam step equal a float64 reference; which leaves moved", async () => {
  await useBackend("wasm");
  await noLeak("trainStep", async () => {
    const mask = [1, 0];
    const x = batchOf(2, 8, 8, 8);
    const degradedMask = tf.tensor1d(mask, "float32");
    const seed = 21;
    const lr = 1e-3;
    // Reference gradients (float32, from lossAndGrads) and their global norm in float64.
    const probe = model(5);
    const lg = await lossAndGrads(probe, config, { x, degradedMask }, seed);
    const g64 = await Promise.all(lg.grads.map((g) => read(g)));
    const lossRef = (await read(lg.loss))[0];
    const perRef = await read(lg.perSample);
    tf.dispose([lg.loss, lg.perSample, ...lg.grads]);
    disposeParams(probe);
    let sq = 0;
    for (const g of g64) for (const v of g) sq += v * v;
    const norm = Math.sqrt(sq);
    assert.ok(norm > 0);

    for (const clip of [0, 1e9, 0.3 * norm]) {
      const params = model(5);
      const all = flattenParams(params);
      const before = await Promise.all(all.map((n) => read(n.tensor)));
      const trainable = all.filter((n) => isTrainablePath(n.path));
      const r = await trainStep({ params, adam: adamInit(params) }, config, { x, degradedMask }, {
        lr,
        seed,
        clipNorm: clip,
      });
      assert.equal(r.skipped, false);
      assert.ok(Math.abs(r.loss - lossRef) < 1e-6 * Math.abs(lossRef));
      assert.ok(Math.abs(r.degraded - perRef[0]) < 1e-6 * Math.abs(perRef[0]));
      assert.ok(Math.abs(r.clean - perRef[1]) < 1e-6 * Math.abs(perRef[1]));
      const scale = clip > 0 ? Math.min(1, clip / norm) : 1;
      const after = flattenParams(r.state.params);
      assert.deepEqual(after.map((n) => n.path), all.map((n) => n.path));
      let t = 0;
      let moved = 0;
      for (let i = 0; i < all.length; i++) {
        const p1 = await read(after[i].tensor);
        if (!isTrainablePath(all[i].path)) {
          assert.equal(after[i].tensor, all[i].tensor, `${all[i].path}: fixed leaf replaced`);
          assert.deepEqual(p1, before[i]);
          continue;
        }
        const g = g64[t];
        const m = await read(r.state.adam.m[t]);
        const v = await read(r.state.adam.v[t]);
        t++;
        for (let j = 0; j < g.length; j++) {
          const gc = g[j] * scale;
          const mW = 0.1 * gc;
          const vW = 0.001 * gc * gc;
          assert.ok(Math.abs(m[j] - mW) < 1e-5 * Math.abs(mW) + 1e-12, `${all[i].path} m`);
          assert.ok(Math.abs(v[j] - vW) < 1e-4 * vW + 1e-15, `${all[i].path} v`);
          // Adam step 1: p − lr·m̂/(√v̂ + ε), m̂ = m/(1−β₁), v̂ = v/(1−β₂).
          const pW = before[i][j] - lr * (mW / 0.1) / (Math.sqrt(vW / 0.001) + 1e-8);
          const tolP = 1e-6 * Math.abs(before[i][j]) + 2e-3 * lr;
          assert.ok(Math.abs(p1[j] - pW) < tolP, `${all[i].path}[${j}]: ${p1[j]} vs ${pW}`);
        }
        if (maxAbs(p1.map((v, j) => v - before[i][j])) > 0.5 * lr) moved++;
      }
      // Every trainable leaf with a gradient moved by about lr.
      const withGrad = g64.filter((g) => maxAbs(g) > 1e-6).length;
      assert.equal(moved, withGrad, `clip ${clip}`);
      assert.ok(
        withGrad >= trainable.length - 2,
        `${withGrad} of ${trainable.length} have gradients`,
      );
      disposeParams(r.state.params);
      tf.dispose([...r.state.adam.m, ...r.state.adam.v]);
    }
    tf.dispose([x, degradedMask]);
  });
});
