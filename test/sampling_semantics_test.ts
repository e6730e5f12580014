/**
 * What `degrade` and `restore` mean, checked through the real sampling path (tiles,
 * padding, shared injectors, clipping) against the DeFlow paper (§3):
 *
 * - τ = 0 returns the input exactly, also with small tiles and overlap on an odd-sized,
 *   non-square image (every tile's core lands where it came from; no seams);
 * - degrade adds `τ·u`, `u ~ N(μ, M·Mᵀ)`, to every latent: re-encoding the output with the
 *   same conditioning recovers shifts with mean `τ·μ` and covariance `τ²·M·Mᵀ` (τ = 0.5, 1);
 * - restore samples the posterior `z_x | z_y ~ N(A⁻¹(z_y − μ), τ²·Σ·A⁻¹)`, `A = I + Σ`:
 *   mean and spread of the re-encoded outputs against that closed form (float64);
 * - the degraded-domain normalisation is undone after degrade and applied before restore.
 *
 * **Decision on restore's τ.** The paper defines τ only for degradations (appendix D, a
 * factor on the sampled shift: `z + τ·u`). For restore, τ scales the *spread* of the
 * posterior only, never its mean: τ = 0 is the posterior mean `A⁻¹(z_y − μ)` (the
 * deterministic restoration), τ = 1 a sample of the model's posterior. It is deliberately
 * not the "interpolation" `z_y − τ·μ` along the shift (removing the mean shift and
 * keeping all of the degraded latent's variance), which leaves the degradation's noise in
 * place; the last test below pins that restore at τ = 0 differs from that interpolation
 * whenever Σ ≠ 0 and equals it when Σ = 0.
 *
 * The latent-algebra checks sample at the bin centre (`dequantize: false`): with the
 * default dequantised translation the output is `x + (f⁻¹(f(x̃) + τ·u) − x̃)`, which
 * re-encodes to the stated moments only approximately; that default is checked by the
 * τ = 0 identity (exact with it too) and by its own test below.
 *
 * The tiny model runs with `conditionNoise: 0` so that re-encoding with
 * `conditionInput(·, { noiseStd: 0 })` sees exactly the features the sampler saw.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import type { LatentShiftParams } from "../src/layers/latentShift.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import {
  type DeflowParams,
  encode,
  latentShiftScales,
  levelFeatures,
} from "../src/model/network.ts";
import { degrade, type DomainNormalization, prepareSampler, restore } from "../src/model/sample.ts";
import { maxAbsDiff, noLeak, perturbedModel, read, tinyConfig, useBackend } from "./_helpers.ts";

const config = tinyConfig({ conditionNoise: 0, contractShift: false });

/**
 * Tiny perturbed model whose shifts are replaced by `shift(c, i)` and whose per-position
 * shift scales are reset to `a = 1` (the closed forms below are the paper's; the scaled
 * shift through this same sampling path is checked in `scaled_shift_test.ts`).
 */
const withShifts = (
  seed: number,
  shift: (c: number, i: number) => LatentShiftParams,
): DeflowParams => {
  const p = perturbedModel(config, seed, 0.05);
  const shifts = p.shifts.map((s, i) => shift(s.mu.shape[0], i));
  const shiftScales = p.shiftScales.map((h) => ({
    w: tf.zerosLike(h.w) as tf.Tensor2D,
    b: tf.zerosLike(h.b) as tf.Tensor1D,
  }));
  tf.dispose([
    ...p.shifts.flatMap((s) => [s.mu, s.m]),
    ...p.shiftScales.flatMap((h) => [h.w, h.b]),
  ]);
  return { ...p, shifts, shiftScales };
};

const shiftOf = (c: number, seed: number, mu: number, diag: number, off: number) => ({
  mu: tf.randomUniform([c], -mu, mu, "float32", seed) as tf.Tensor1D,
  m: tf.tidy(() =>
    tf.add(tf.mul(tf.eye(c), diag), tf.randomNormal([c, c], 0, off, "float32", seed + 1))
  ) as tf.Tensor2D,
});

/** Smooth test images with values in [lo, hi]. */
const smooth = (n: number, h: number, w: number, lo: number, hi: number): tf.Tensor4D =>
  tf.tidy(() => {
    const d = new Float32Array(n * h * w * 3);
    for (let i = 0; i < d.length; i++) {
      const c = i % 3;
      const p = Math.floor(i / 3);
      const t = 0.5 + 0.5 * Math.sin(p * 0.37 + c * 1.3) * Math.cos(p * 0.011 + c);
      d[i] = lo + (hi - lo) * t;
    }
    return tf.tensor4d(d, [n, h, w, 3]);
  });

const cond0 = (x: tf.Tensor4D) => conditionInput(x, { factor: 2, noiseStd: 0, seed: 1 });

/** Latents of `x` under the sampler's conditioning (noise-free), as float64 arrays. */
const latents = async (params: DeflowParams, x: tf.Tensor4D, condFrom: tf.Tensor4D) => {
  const cond = cond0(condFrom);
  const e = encode(params, config, x, cond);
  const out = [];
  for (const z of e.latents) out.push({ v: await read(z), c: z.shape[3] });
  tf.dispose([cond, ...e.latents, e.logDet]);
  return out;
};

/** Mean and covariance of per-position vectors (float64). */
const moments = (v: Float64Array, c: number) => {
  const n = v.length / c;
  const mean = new Float64Array(c);
  for (let p = 0; p < n; p++) for (let i = 0; i < c; i++) mean[i] += v[p * c + i] / n;
  const cov = new Float64Array(c * c);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < c; i++) {
      for (let j = 0; j < c; j++) {
        cov[i * c + j] += (v[p * c + i] - mean[i]) * (v[p * c + j] - mean[j]) / (n - 1);
      }
    }
  }
  return { n, mean, cov };
};

const mmT = (m: Float64Array, c: number, plusI = 0) => {
  const a = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      let s = i === j ? plusI : 0;
      for (let k = 0; k < c; k++) s += m[i * c + k] * m[j * c + k];
      a[i * c + j] = s;
    }
  }
  return a;
};

/** Gauss–Jordan inverse (float64, small matrices). */
const invert = (a: Float64Array, c: number) => {
  const w = Array.from({ length: c }, (_, i) => [
    ...a.slice(i * c, i * c + c),
    ...Array.from({ length: c }, (_, j) => (i === j ? 1 : 0)),
  ]);
  for (let col = 0; col < c; col++) {
    let piv = col;
    for (let r = col + 1; r < c; r++) if (Math.abs(w[r][col]) > Math.abs(w[piv][col])) piv = r;
    [w[col], w[piv]] = [w[piv], w[col]];
    const d = w[col][col];
    for (let k = 0; k < 2 * c; k++) w[col][k] /= d;
    for (let r = 0; r < c; r++) {
      if (r === col) continue;
      const f = w[r][col];
      for (let k = 0; k < 2 * c; k++) w[r][k] -= f * w[col][k];
    }
  }
  return Float64Array.from(w.flatMap((row) => row.slice(c)));
};

const matmul = (a: Float64Array, b: Float64Array, c: number) => {
  const o = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      for (let k = 0; k < c; k++) o[i * c + j] += a[i * c + k] * b[k * c + j];
    }
  }
  return o;
};

const frob = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  frob(Array.from(a, (v, i) => v - b[i])) / frob(b);

const assertNoClipping = async (y: tf.Tensor, what: string) => {
  const v = await read(y);
  const clipped = v.filter((u) => u <= 0 || u >= 1).length;
  assert.equal(clipped, 0, `${what}: ${clipped} values clipped; the test needs unclipped outputs`);
};

Deno.test("τ = 0 returns the input exactly with small tiles and overlap (odd size, H ≠ W)", async () => {
  await useBackend("wasm");
  const params = perturbedModel(tinyConfig(), 31, 0.05);
  const sampler = await prepareSampler(params, tinyConfig());
  await noLeak("tiles", async () => {
    const x = tf.randomUniform([1, 37, 50, 3], 0.05, 0.95, "float32", 3) as tf.Tensor4D;
    const xv = await read(x);
    for (const [tile, overlap] of [[16, 4], [12, 2], [512, 16]]) {
      const [y] = degrade(sampler, x, { temperature: 0, seed: 4, tile, overlap });
      assert.deepEqual(y.shape, x.shape);
      const err = maxAbsDiff(await read(y), xv);
      assert.ok(err < 2e-4, `tile ${tile}, overlap ${overlap}: max |y − x| ${err}`);
      y.dispose();
    }
    // The identity above is not vacuous: at τ = 1 the same tiling changes the image.
    const [big] = degrade(sampler, x, { temperature: 1, seed: 4, tile: 16, overlap: 4 });
    const diff = Array.from(await read(big), (v, i) => v - xv[i]);
    assert.ok(maxAbsDiff(diff, new Float64Array(diff.length)) > 1e-3, "τ = 1 must change x");
    big.dispose();
    // Progress: one call per tile and sample, counting up to the total.
    const calls: string[] = [];
    const two = degrade(sampler, x, {
      seed: 4,
      samples: 2,
      tile: 24,
      overlap: 4,
      onTile: (done, total) => calls.push(`${done}/${total}`),
    });
    const perSample = calls.length / 2;
    assert.ok(perSample >= 2, `expected several tiles, got ${calls.join(" ")}`);
    assert.deepEqual(
      calls,
      Array.from({ length: 2 * perSample }, (_, i) => `${i + 1}/${2 * perSample}`),
    );
    tf.dispose([x, ...two]);
  });
  sampler.dispose();
  disposeParams(params);
});

Deno.test("dequantised translation: seeded, τ = 0 exact, a small change from the bin centre", async () => {
  await useBackend("wasm");
  const params = withShifts(45, (c, i) => shiftOf(c, 400 + i, 0.05, 0.04, 0.01));
  const sampler = await prepareSampler(params, config);
  await noLeak("dequantize", async () => {
    const x = smooth(2, 32, 32, 0.3, 0.7);
    const xv = await read(x);
    const run = async (o: { temperature: number; seed: number; dequantize?: boolean }) => {
      const [y] = degrade(sampler, x, o);
      const v = await read(y);
      y.dispose();
      return v;
    };
    const a = await run({ temperature: 1, seed: 3 });
    const b = await run({ temperature: 1, seed: 3 });
    const centre = await run({ temperature: 1, seed: 3, dequantize: false });
    const zero = await run({ temperature: 0, seed: 3 });
    assert.equal(maxAbsDiff(a, b), 0, "same seed, same output");
    assert.ok(maxAbsDiff(zero, xv) < 2e-4, `τ = 0: max |y − x| ${maxAbsDiff(zero, xv)}`);
    const d = maxAbsDiff(a, centre);
    // Different latents (a dequantised point), same shift noise: a visible but bounded change.
    assert.ok(d > 1e-4, `dequantize has no effect (${d})`);
    const rms = Math.sqrt(a.reduce((s, v, i) => s + (v - centre[i]) ** 2, 0) / a.length);
    assert.ok(rms < 2 / config.bins, `rms change ${rms} vs bin width ${1 / config.bins}`);
    x.dispose();
  });
  sampler.dispose();
  disposeParams(params);
});

Deno.test("degrade: re-encoded shifts have mean τ·μ and covariance τ²·M·Mᵀ (τ = 0.5, 1)", async () => {
  await useBackend("wasm");
  const params = withShifts(41, (c, i) => shiftOf(c, 100 + i, 0.08, 0.04, 0.012));
  const sampler = await prepareSampler(params, config);
  await noLeak("degrade moments", async () => {
    const x = smooth(4, 32, 48, 0.3, 0.7);
    const zx = await latents(params, x, x);
    for (const tau of [0.5, 1]) {
      const [y] = degrade(sampler, x, { temperature: tau, seed: 9, dequantize: false });
      await assertNoClipping(y, `τ ${tau}`);
      const zy = await latents(params, y, x);
      for (let l = 0; l < zx.length; l++) {
        const c = zx[l].c;
        const mu = await read(params.shifts[l].mu);
        const sigma = mmT(await read(params.shifts[l].m), c);
        const { n, mean, cov } = moments(zy[l].v.map((v, k) => v - zx[l].v[k]), c);
        // Mean: each channel within 5 standard errors of τ·μ.
        for (let i = 0; i < c; i++) {
          const se = tau * Math.sqrt(sigma[i * c + i] / n);
          assert.ok(
            Math.abs(mean[i] - tau * mu[i]) < 5 * se + 1e-4,
            `latent ${l} τ ${tau} ch ${i}: mean ${mean[i]} vs τμ ${tau * mu[i]} (se ${se})`,
          );
        }
        // Covariance: relative Frobenius error of the order of √(C/n).
        const want = sigma.map((v) => tau * tau * v);
        const bound = 3 * Math.sqrt((c + 1) / n);
        assert.ok(
          relErr(cov, want) < bound,
          `latent ${l} τ ${tau}: cov rel. error ${relErr(cov, want)} (bound ${bound})`,
        );
        const tr = (a: Float64Array) => Array.from({ length: c }, (_, i) => a[i * c + i]);
        const ratio = tr(cov).reduce((a, b) => a + b) / tr(want).reduce((a, b) => a + b);
        assert.ok(Math.abs(ratio - 1) < 3 * Math.sqrt(2 / n), `latent ${l} τ ${tau}: ${ratio}`);
      }
      y.dispose();
    }
    x.dispose();
  });
  sampler.dispose();
  disposeParams(params);
});

Deno.test("degrade with per-position shift scales: (Δz − τ·μ)/a(h) has covariance τ²·M·Mᵀ", async () => {
  await useBackend("wasm");
  const base = withShifts(47, (c, i) => shiftOf(c, 300 + i, 0.05, 0.02, 0.006));
  // Scale heads that vary across positions: log a = 3·tanh((h·w + b)/3).
  const params: DeflowParams = {
    ...base,
    shiftScales: base.shiftScales.map((h, i) => {
      tf.dispose([h.w, h.b]);
      return {
        w: tf.randomNormal(h.w.shape, 0, 0.4, "float32", 500 + i) as tf.Tensor2D,
        b: tf.fill([1], -0.2) as tf.Tensor1D,
      };
    }),
  };
  const sampler = await prepareSampler(params, config);
  await noLeak("scaled degrade moments", async () => {
    const x = smooth(4, 32, 48, 0.4, 0.6);
    const zx = await latents(params, x, x);
    const cond = cond0(x);
    const feats = levelFeatures(params, config, cond, 32, 48);
    const maps = latentShiftScales(params, config, feats, false)!;
    const scales = await Promise.all(maps.map(read));
    tf.dispose([cond, ...feats, ...maps]);
    const tau = 0.8;
    const [y] = degrade(sampler, x, { temperature: tau, seed: 13, dequantize: false });
    await assertNoClipping(y, "scaled");
    const zy = await latents(params, y, x);
    for (let l = 0; l < zx.length; l++) {
      const c = zx[l].c;
      const a = scales[l];
      const spread = Math.sqrt(moments(a, 1).cov[0]);
      assert.ok(spread > 0.05, `latent ${l}: the scale map must vary (std ${spread})`);
      const mu = await read(params.shifts[l].mu);
      const want = mmT(await read(params.shifts[l].m), c).map((v) => tau * tau * v);
      const delta = zy[l].v.map((v, k) => v - zx[l].v[k] - tau * mu[k % c]);
      const scaled = moments(delta.map((v, k) => v / a[Math.floor(k / c)]), c);
      const bound = 3 * Math.sqrt((c + 1) / scaled.n);
      assert.ok(
        relErr(scaled.cov, want) < bound,
        `latent ${l}: cov of (Δz − τμ)/a rel. error ${relErr(scaled.cov, want)} (bound ${bound})`,
      );
      // Not vacuous: without dividing by a, the same statistic is off.
      const raw = moments(delta, c);
      assert.ok(relErr(raw.cov, want) > bound, `latent ${l}: scale has no visible effect`);
    }
    tf.dispose([x, y]);
  });
  sampler.dispose();
  disposeParams(params);
});

Deno.test("restore: posterior mean A⁻¹(z_y − μ) at τ = 0 and spread τ²·Σ·A⁻¹ (closed form)", async () => {
  await useBackend("wasm");
  const params = withShifts(43, (c, i) => shiftOf(c, 200 + i, 0.05, 0.05, 0.012));
  const sampler = await prepareSampler(params, config);
  await noLeak("restore posterior", async () => {
    const y = smooth(4, 32, 48, 0.42, 0.58);
    const zy = await latents(params, y, y);
    const post: { c: number; mean: Float64Array; cov: Float64Array }[] = [];
    for (let l = 0; l < zy.length; l++) {
      const c = zy[l].c;
      const mu = await read(params.shifts[l].mu);
      const m = await read(params.shifts[l].m);
      const sigma = mmT(m, c);
      const aInv = invert(mmT(m, c, 1), c);
      const mean = new Float64Array(zy[l].v.length);
      for (let p = 0; p < mean.length; p += c) {
        for (let i = 0; i < c; i++) {
          for (let j = 0; j < c; j++) mean[p + i] += aInv[i * c + j] * (zy[l].v[p + j] - mu[j]);
        }
      }
      post.push({ c, mean, cov: matmul(sigma, aInv, c) });
    }
    for (const tau of [0, 0.5, 1]) {
      const [x] = restore(sampler, y, { temperature: tau, seed: 5, dequantize: false });
      await assertNoClipping(x, `τ ${tau}`);
      const zx = await latents(params, x, y);
      for (let l = 0; l < zx.length; l++) {
        const { c, mean, cov } = post[l];
        const resid = zx[l].v.map((v, k) => v - mean[k]);
        if (tau === 0) {
          const err = maxAbsDiff(resid, new Float64Array(resid.length));
          assert.ok(err < 1e-3, `latent ${l}: τ = 0 is the posterior mean (max error ${err})`);
          continue;
        }
        const mo = moments(resid, c);
        for (let i = 0; i < c; i++) {
          const se = tau * Math.sqrt(cov[i * c + i] / mo.n);
          assert.ok(
            Math.abs(mo.mean[i]) < 5 * se + 1e-4,
            `latent ${l} τ ${tau} mean ${mo.mean[i]}`,
          );
        }
        const want = cov.map((v) => tau * tau * v);
        const bound = 3 * Math.sqrt((c + 1) / mo.n);
        assert.ok(
          relErr(mo.cov, want) < bound,
          `latent ${l} τ ${tau}: posterior cov rel. error ${relErr(mo.cov, want)} (${bound})`,
        );
      }
      x.dispose();
    }
    y.dispose();
  });
  sampler.dispose();
  disposeParams(params);
});

Deno.test("restore's τ = 0 is the posterior mean, not the interpolation z_y − μ (unless Σ = 0)", async () => {
  await useBackend("wasm");
  for (const diag of [0.3, 0]) {
    const params = withShifts(47, (c, i) => shiftOf(c, 300 + i, 0.05, diag, 0));
    const sampler = await prepareSampler(params, config);
    const y = smooth(1, 16, 24, 0.35, 0.65);
    const [x] = restore(sampler, y, { temperature: 0, seed: 1, dequantize: false });
    const zy = await latents(params, y, y);
    const zx = await latents(params, x, y);
    let far = 0;
    for (let l = 0; l < zy.length; l++) {
      const mu = await read(params.shifts[l].mu);
      const interp = zy[l].v.map((v, k) => v - mu[k % zy[l].c]);
      far = Math.max(far, maxAbsDiff(zx[l].v, interp));
    }
    if (diag === 0) assert.ok(far < 1e-3, `Σ = 0: posterior mean = z_y − μ, got ${far}`);
    else assert.ok(far > 0.01, `Σ ≠ 0: the posterior mean shrinks, got ${far}`);
    tf.dispose([x, y]);
    sampler.dispose();
    disposeParams(params);
  }
});

Deno.test("normalisation: undone after degrade, applied before restore (τ = 0, Σ = 0)", async () => {
  await useBackend("wasm");
  const norm: DomainNormalization = {
    clean: { mean: [0.4, 0.5, 0.6], std: [0.1, 0.15, 0.2] },
    degraded: { mean: [0.45, 0.52, 0.55], std: [0.12, 0.1, 0.25] },
  };
  const params = withShifts(53, (c, i) => shiftOf(c, 400 + i, 0, 0, 0));
  const sampler = await prepareSampler(params, config, norm);
  const x = smooth(1, 16, 20, 0.4, 0.6);
  const xv = await read(x);
  const [d] = degrade(sampler, x, { temperature: 0, dequantize: false });
  const [r] = restore(sampler, x, { temperature: 1, seed: 2, dequantize: false });
  const map = (from: typeof norm.clean, to: typeof norm.clean) =>
    xv.map((v, k) => {
      const c = k % 3;
      return Math.min(1, Math.max(0, (v - from.mean[c]) / from.std[c] * to.std[c] + to.mean[c]));
    });
  assert.ok(maxAbsDiff(await read(d), map(norm.clean, norm.degraded)) < 2e-4, "degrade");
  assert.ok(maxAbsDiff(await read(r), map(norm.degraded, norm.clean)) < 2e-4, "restore");
  assert.ok(maxAbsDiff(await read(d), xv) > 0.02, "the normalisation must be visible");
  tf.dispose([x, d, r]);
  sampler.dispose();
  disposeParams(params);
});
