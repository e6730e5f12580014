/**
 * Data-dependent latent-shift initialisation: identical domains leave M at its floor;
 * a noisier degraded domain gives M the scale of the extra latent variance.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { initActNorms, initParams } from "../src/model/network.ts";
import { initShiftsFromData, type ShiftInitChunk } from "../src/model/shiftInit.ts";
import { encode } from "../src/model/network.ts";
import { symmetricEigen } from "../src/linalg/dense.ts";
import { noLeak, read, tinyConfig, useBackend } from "./_helpers.ts";

const tiny = tinyConfig();

const smooth = (seed: number) =>
  tf.tidy(() => {
    const lo = tf.randomUniform([8, 4, 4, 3], 0.2, 0.8, "float32", seed) as tf.Tensor4D;
    return tf.image.resizeBilinear(lo, [16, 16]) as tf.Tensor4D;
  });

/** Chunk i: 8 clean images, then 8 other images plus N(0, noise²). */
const chunkOf = (i: number, noise: number): ShiftInitChunk => {
  const clean = smooth(10 + i);
  const other = smooth(20 + i);
  const noisy = tf.tidy(() =>
    tf.add(other, tf.randomNormal(other.shape, 0, noise, "float32", 30 + i))
  ) as tf.Tensor4D;
  const x = tf.concat([clean, noisy], 0) as tf.Tensor4D;
  tf.dispose([clean, other, noisy]);
  return {
    x,
    cond: conditionInput(x, { factor: 2, seed: 40 + i }),
    degradedMask: tf.tensor1d([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]),
  };
};
const releaseChunk = (c: ShiftInitChunk) => tf.dispose([c.x, c.cond, c.degradedMask]);

const FLOOR = 0.01;

const init = async (noise: number) => {
  const base = initParams(tiny, 5);
  const x0 = smooth(1);
  const c0 = conditionInput(x0, { factor: 2, seed: 2 });
  const params = initActNorms(base, tiny, x0, c0, true);
  c0.dispose();
  tf.dispose(x0);
  return await initShiftsFromData(
    params,
    tiny,
    4,
    (i) => chunkOf(i, noise),
    releaseChunk,
    { seed: 3, floor: FLOOR },
  );
};

const run = async (noise: number) => {
  const result = await init(noise);
  disposeParams(result.params);
  return result.latents;
};

Deno.test("initShiftsFromData: M at the floor without a degradation, at its scale with one", async () => {
  await useBackend("wasm");
  await noLeak("shift init", async () => {
    const none = await run(0);
    for (const l of none) {
      assert.equal(l.kept, 0, `no direction should pass the noise threshold: ${JSON.stringify(l)}`);
      assert.ok(l.rmsScale < 0.02, `M should stay at the floor, got ${l.rmsScale}`);
    }
    const noisy = await run(0.1);
    assert.ok(noisy.some((l) => l.kept > 0), "the noise should be detected");
    assert.ok(Math.max(...noisy.map((l) => l.rmsScale)) > 0.2, JSON.stringify(noisy));
  });
  await useBackend("webgpu");
});

Deno.test("initShiftsFromData: M·Mᵀ = the thresholded covariance difference of the latents (float64)", async () => {
  await useBackend("wasm");
  await noLeak("shift init closed form", async () => {
    const result = await init(0.1);
    const cs = result.params.shifts.map((sh) => sh.mu.shape[0]);
    // Moments of clean and degraded latents, recomputed here from the same chunks.
    const moments = (c: number) => ({ n: 0, s: new Float64Array(c), o: new Float64Array(c * c) });
    // Clean moments also in two halves by the parity of the clean image (the measured null).
    const acc = cs.map((c) => ({ x: moments(c), y: moments(c), xh: [moments(c), moments(c)] }));
    for (let i = 0; i < 4; i++) {
      const ch = chunkOf(i, 0.1);
      const e = encode(result.params, tiny, ch.x, ch.cond);
      for (let l = 0; l < e.latents.length; l++) {
        const z = await read(e.latents[l]);
        const c = cs[l];
        const per = z.length / 16;
        for (let smp = 0; smp < 16; smp++) {
          // Each chunk holds 8 clean then 8 degraded images: clean ordinal parity = smp % 2.
          const targets = smp < 8 ? [acc[l].x, acc[l].xh[smp % 2]] : [acc[l].y];
          for (const m of targets) {
            for (let r = smp * per; r < (smp + 1) * per; r += c) {
              m.n++;
              for (let a = 0; a < c; a++) {
                m.s[a] += z[r + a];
                for (let b = 0; b < c; b++) m.o[a * c + b] += z[r + a] * z[r + b];
              }
            }
          }
        }
      }
      tf.dispose([...e.latents, e.logDet]);
      releaseChunk(ch);
    }
    for (let l = 0; l < cs.length; l++) {
      const c = cs[l];
      const cov = (m: { n: number; s: Float64Array; o: Float64Array }) =>
        m.o.map((v, k) => v / m.n - (m.s[Math.floor(k / c)] / m.n) * (m.s[k % c] / m.n));
      const cx = cov(acc[l].x), cy = cov(acc[l].y);
      const meanVar = Array.from({ length: c }, (_, i) => cx[i * c + i]).reduce((a, b) => a + b) /
        c;
      const n = Math.min(acc[l].x.n, acc[l].y.n);
      const ca = cov(acc[l].xh[0]), cb = cov(acc[l].xh[1]);
      const nullEig = Math.max(
        ...Array.from(
          symmetricEigen({ rows: c, cols: c, data: Float64Array.from(ca, (v, k) => v - cb[k]) })
            .values,
          Math.abs,
        ),
      );
      const tau = Math.max(4 * Math.sqrt(c / n) * meanVar, Math.SQRT2 * nullEig);
      const info = result.latents[l];
      assert.ok(
        Math.abs(info.nullEigenvalue / nullEig - 1) < 1e-6,
        `latent ${l}: null eigenvalue ${info.nullEigenvalue} vs ${nullEig}`,
      );
      assert.ok(
        Math.abs(info.threshold / tau - 1) < 1e-6,
        `latent ${l}: τ ${info.threshold} vs ${tau}`,
      );
      const { values, vectors } = symmetricEigen({
        rows: c,
        cols: c,
        data: Float64Array.from(cy, (v, k) => v - cx[k]),
      });
      assert.equal(info.kept, Array.from(values).filter((v) => v > tau).length, `latent ${l} kept`);
      // Expected Σ = M·Mᵀ: significant eigenvalues kept, the rest at floor².
      const lam = Array.from(values, (v) => Math.max(v > tau ? v : 0, FLOOR * FLOOR));
      const want = new Float64Array(c * c);
      for (let a = 0; a < c; a++) {
        for (let b = 0; b < c; b++) {
          for (let k = 0; k < c; k++) {
            want[a * c + b] += vectors.data[a * c + k] * lam[k] * vectors.data[b * c + k];
          }
        }
      }
      const m = await read(result.params.shifts[l].m);
      const got = new Float64Array(c * c);
      for (let a = 0; a < c; a++) {
        for (let b = 0; b < c; b++) {
          for (let k = 0; k < c; k++) got[a * c + b] += m[a * c + k] * m[b * c + k];
        }
      }
      let num = 0, den = 0;
      for (let k = 0; k < c * c; k++) {
        num += (got[k] - want[k]) ** 2;
        den += want[k] ** 2;
      }
      // The only deviation: symmetry-breaking noise of 10% of the floor in M.
      const rel = Math.sqrt(num / den);
      assert.ok(rel < 0.02, `latent ${l}: M·Mᵀ vs thresholded Σ̂, rel. error ${rel}`);
    }
    disposeParams(result.params);
  });
});

Deno.test("initShiftsFromData with contractShift: M from the data, the contractions left as they start", async () => {
  await useBackend("wasm");
  const config = tinyConfig({ contractShift: true });
  await noLeak("shift init with contraction", async () => {
    const base = initParams(config, 5);
    const x0 = smooth(1);
    const c0 = conditionInput(x0, { factor: 2, seed: 2 });
    const params = initActNorms(base, config, x0, c0, true);
    tf.dispose([c0, x0]);
    const before = await Promise.all(params.shiftContractions.map((c) => read(c.k)));
    const r = await initShiftsFromData(
      params,
      config,
      4,
      (i) => chunkOf(i, 0.1),
      releaseChunk,
      { seed: 3, floor: FLOOR },
    );
    assert.ok(r.latents.some((l) => l.kept > 0), "the noise should be detected");
    assert.ok(r.latents.every((l) => l.minEigenvalue <= l.maxEigenvalue));
    const after = await Promise.all(r.params.shiftContractions.map((c) => read(c.k)));
    after.forEach((k, l) => assert.deepEqual(k, before[l], `latent ${l}: K changed`));
    disposeParams(r.params);
  });
  await useBackend("webgpu");
});
