/**
 * Tests of the downstream proof's restoration CNN, batches and crop pool (wasm backend,
 * tiny synthetic data): training on true white-noise pairs must raise PSNR over the
 * unrestored input, batches are deterministic and shared, and no tensor leaks.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { foldIn, normals, rng } from "../src/core/random.ts";
import type { RgbImage } from "../src/image/io.ts";
import {
  assembleBatch,
  batchPlan,
  countRestorerParams,
  initRestorer,
  restoreImages,
  restorerForward,
  restorerLr,
  scoreImages,
  trainRestorer,
} from "../examples/proof/restorer.ts";
import {
  degradedVariants,
  flatten,
  makePool,
  methods,
  randomCrops,
} from "../examples/proof/pairs.ts";
import { compose, gaussianNoise, isotropicCov, quantize8 } from "../src/degrade/mod.ts";
import { initParams } from "../src/model/network.ts";
import { prepareSampler } from "../src/model/sample.ts";
import { noLeak, tinyConfig, useBackend } from "./_helpers.ts";

const SIZE = 24;
const STEPS = 60;

/** A smooth synthetic colour image: a few random low-frequency sinusoids per channel. */
const smoothImage = (seed: number, size = SIZE): RgbImage => {
  const [g] = normals(rng(seed), 24);
  const data = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let v = 0.5;
        for (let k = 0; k < 2; k++) {
          const b = 8 * c + 4 * k;
          v += 0.12 * Math.sin(0.25 * g[b] * x + 0.25 * g[b + 1] * y + g[b + 2]) *
            (1 + 0.3 * g[b + 3]);
        }
        data[(y * size + x) * 3 + c] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return { width: size, height: size, data };
};

/** `clean + N(0, σ²)`, clipped and rounded to 8 bits. */
const noisy = (img: RgbImage, sigma: number, seed: number): RgbImage => {
  const [n] = normals(rng(seed), img.data.length);
  return {
    ...img,
    data: img.data.map((v, i) =>
      Math.round(Math.min(1, Math.max(0, v + sigma * n[i])) * 255) / 255
    ),
  };
};

const small = { width: 16, depth: 2 };

Deno.test("restorer: starts near the identity and counts its parameters", async () => {
  await useBackend("wasm");
  await noLeak("init/forward", () => {
    const p = initRestorer(small, 3);
    // 3→16, 2 × 16→16, 16→3 convolutions of 3×3 with biases.
    assert.equal(countRestorerParams(p), 9 * 3 * 16 + 16 + 2 * (9 * 16 * 16 + 16) + 9 * 16 * 3 + 3);
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, "float32", 5) as tf.Tensor4D;
    const y = restorerForward(p, x);
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(y, x))).dataSync()[0]);
    assert.ok(d > 0 && d < 0.05, `initial |net(y)| ${d}`);
    // Same seed, same parameters.
    const q = initRestorer(small, 3);
    const same = tf.tidy(() => tf.max(tf.abs(tf.sub(p.convs[1].w, q.convs[1].w))).dataSync()[0]);
    assert.equal(same, 0);
    tf.dispose([x, y]);
    disposeParams(p);
    disposeParams(q);
  });
});

Deno.test("restorer: batches are deterministic, flips mirror input and target alike", () => {
  const a = batchPlan(10, 3, 4, 7), b = batchPlan(10, 3, 4, 7), c = batchPlan(10, 3, 4, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.ok(a.flat().every((it) => it.index >= 0 && it.index < 10));
  const clean = [smoothImage(1, 4), smoothImage(2, 4)];
  const deg = [noisy(clean[0], 0.1, 1), noisy(clean[1], 0.1, 2)];
  const pool = makePool(clean, [deg]);
  const { input, target } = assembleBatch(pool, [
    { index: 1, variantU: 0.5, flip: false },
    { index: 1, variantU: 0.5, flip: true },
  ]);
  const n = 4 * 4 * 3;
  assert.deepEqual(input.subarray(0, n), deg[1].data);
  assert.deepEqual(target.subarray(0, n), clean[1].data);
  // Pixel (y, x) of the flipped copy is pixel (y, 3 − x) of the original.
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) {
      for (let ch = 0; ch < 3; ch++) {
        assert.equal(input[n + (y * 4 + x) * 3 + ch], deg[1].data[(y * 4 + 3 - x) * 3 + ch]);
        assert.equal(target[n + (y * 4 + x) * 3 + ch], clean[1].data[(y * 4 + 3 - x) * 3 + ch]);
      }
    }
  }
  assert.equal(restorerLr(1, 0, 10), 1);
  assert.equal(restorerLr(1, 5, 10), 0.5);
  assert.equal(restorerLr(1, 9, 10), 0.125);
});

Deno.test("randomCrops: seeded, inside the images, the right size", () => {
  const imgs = [smoothImage(1, 20), smoothImage(2, 30), smoothImage(3, 8)];
  const a = randomCrops(imgs, 12, 6, 4), b = randomCrops(imgs, 12, 6, 4);
  assert.deepEqual(a, b);
  assert.equal(a.length, 6);
  assert.ok(a.every((c) => c.width === 12 && c.height === 12 && c.data.length === 12 * 12 * 3));
  assert.equal(flatten(a).length, 6 * 12 * 12 * 3);
  assert.throws(() => randomCrops([smoothImage(1, 8)], 12, 1, 1), RangeError);
});

Deno.test("restorer: training on true white-noise pairs raises PSNR over the input", async () => {
  await useBackend("wasm");
  const clean = Array.from({ length: 16 }, (_, i) => smoothImage(foldIn(1, i)));
  const variants = [0, 1].map((v) => clean.map((c, i) => noisy(c, 0.1, foldIn(100 + v, i))));
  const pool = makePool(clean, variants);
  const testClean = Array.from({ length: 4 }, (_, i) => smoothImage(foldIn(2, i)));
  const testInput = testClean.map((c, i) => noisy(c, 0.1, foldIn(300, i)));
  await noLeak("train/restore", async () => {
    const plan = batchPlan(pool.count, STEPS, 4, 9);
    const trained = await trainRestorer({ pool, plan, seed: 5, config: small, lr: 3e-3 });
    assert.equal(trained.losses.length, STEPS);
    assert.ok(trained.losses.every(Number.isFinite));
    const restored = await restoreImages(trained.params, testInput, 3);
    disposeParams(trained.params);
    const before = scoreImages(testInput, testClean), after = scoreImages(restored, testClean);
    assert.ok(
      after.meanPsnr > before.meanPsnr + 1.5,
      `PSNR ${before.meanPsnr.toFixed(2)} → ${after.meanPsnr.toFixed(2)} dB`,
    );
    assert.ok(after.meanSsim > before.meanSsim, `SSIM ${before.meanSsim} → ${after.meanSsim}`);
  });
});

Deno.test("pairs: every method makes 8-bit variants of the same crops, no leak", async () => {
  await useBackend("wasm");
  const config = tinyConfig();
  const params = initParams(config, 1);
  const sampler = await prepareSampler(params, config);
  const clean = [1, 2, 3].map((i) => smoothImage(i, 16));
  const op = compose(gaussianNoise({ cov: isotropicCov(0.05) }), quantize8());
  const src = { op, sigmas: [0.05, 0.04, 0.03] as [number, number, number], sampler };
  try {
    await noLeak("degradedVariants", async () => {
      for (const m of methods) {
        const v = await degradedVariants(m, clean, 2, src, 7);
        assert.equal(v.length, m === "identity" ? 1 : 2, m);
        for (const set of v) {
          assert.equal(set.length, clean.length);
          for (const [i, im] of set.entries()) {
            assert.equal(im.width, 16);
            if (m === "identity") assert.equal(im, clean[i]);
            else {
              assert.ok(im.data.every((x) => Math.abs(x * 255 - Math.round(x * 255)) < 1e-3), m);
              assert.ok(im.data.some((x, k) => x !== clean[i].data[k]), `${m} changed nothing`);
            }
          }
        }
        if (m !== "identity") assert.notDeepEqual(v[0][0].data, v[1][0].data, `${m} variants`);
      }
    });
  } finally {
    sampler.dispose();
    disposeParams(params);
  }
});
