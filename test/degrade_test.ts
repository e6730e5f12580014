import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { foldIn } from "../src/core/random.ts";
import {
  clip01,
  compose,
  correlatedNoise,
  degradeImage,
  describe,
  gaussianBlur,
  gaussianNoise,
  isotropicCov,
  jpegCompress,
  poissonGaussianNoise,
  quantize8,
} from "../src/degrade/mod.ts";
import { rgbImage } from "../src/image/io.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

/** Sample mean and covariance of (y − x) over pixels, float64. */
const sampleCov = (d: Float64Array): { mean: number[]; cov: number[][] } => {
  const n = d.length / 3;
  const m = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[3 * i + c];
    return s / n;
  });
  const cov = [0, 1, 2].map((a) =>
    [0, 1, 2].map((b) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += (d[3 * i + a] - m[a]) * (d[3 * i + b] - m[b]);
      return s / (n - 1);
    })
  );
  return { mean: m, cov };
};

/** Await an operator's output, read it, dispose it. */
const readOut = async (p: Promise<tf.Tensor>): Promise<Float64Array> => {
  const t = await p;
  const d = await read(t);
  t.dispose();
  return d;
};

const constant = (n: number, h: number, w: number, v: number): tf.Tensor4D =>
  tf.fill([n, h, w, 3], v) as tf.Tensor4D;

const noiseOf = async (y: tf.Tensor, x: tf.Tensor): Promise<Float64Array> => {
  const [a, b] = [await read(y), await read(x)];
  return a.map((v, i) => v - b[i]);
};

Deno.test(
  "gaussianNoise has the stated mean and channel covariance; seeds reproduce",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("gaussianNoise", async () => {
      const cov = [[0.01, 0.006, 0.002], [0.006, 0.02, -0.004], [0.002, -0.004, 0.015]];
      const op = gaussianNoise({ cov });
      const x = constant(1, 64, 64, 0.5);
      const y = await op.apply(x, 7);
      const { mean, cov: s } = sampleCov(await noiseOf(y, x));
      const n = 64 * 64;
      for (let a = 0; a < 3; a++) {
        assert.ok(Math.abs(mean[a]) < 5 * Math.sqrt(cov[a][a] / n), `mean ${mean}`);
        for (let b = 0; b < 3; b++) {
          // Var of a sample covariance ≈ (Σaa·Σbb + Σab²)/n.
          const se = Math.sqrt((cov[a][a] * cov[b][b] + cov[a][b] ** 2) / n);
          assert.ok(
            Math.abs(s[a][b] - cov[a][b]) < 5 * se,
            `cov[${a}][${b}] ${s[a][b]} vs ${cov[a][b]}`,
          );
        }
      }
      const y2 = await op.apply(x, 7), y3 = await op.apply(x, 8);
      assert.equal(maxAbsDiff(await read(y), await read(y2)), 0);
      assert.ok(maxAbsDiff(await read(y), await read(y3)) > 0.01);
      tf.dispose([x, y, y2, y3]);
      assert.throws(
        () => gaussianNoise({ cov: [[1, 2, 0], [2, 1, 0], [0, 0, 1]] }),
        /positive definite/,
      );
    });
  },
);

Deno.test(
  "correlatedNoise has the target std and the kernel's autocorrelation",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("correlatedNoise", async () => {
      // Horizontal 2-tap box: lag-(0,1) correlation 1/2, lag-(1,0) correlation 0.
      const op = correlatedNoise({ kernel: [[1, 1]], std: 0.1 });
      const x = constant(1, 64, 64, 0.5);
      const y = await op.apply(x, 3);
      const d = await noiseOf(y, x);
      const at = (r: number, c: number, ch: number) => d[(r * 64 + c) * 3 + ch];
      let v = 0, h1 = 0, v1 = 0, nh = 0, nv = 0;
      for (let r = 0; r < 64; r++) {
        for (let c = 0; c < 64; c++) {
          for (let ch = 0; ch < 3; ch++) {
            v += at(r, c, ch) ** 2;
            if (c + 1 < 64) (h1 += at(r, c, ch) * at(r, c + 1, ch), nh++);
            if (r + 1 < 64) (v1 += at(r, c, ch) * at(r + 1, c, ch), nv++);
          }
        }
      }
      const n = 64 * 64 * 3;
      const std = Math.sqrt(v / n);
      assert.ok(Math.abs(std - 0.1) < 0.004, `std ${std}`);
      const rh = h1 / nh / (v / n), rv = v1 / nv / (v / n);
      assert.ok(Math.abs(rh - 0.5) < 0.05, `horizontal lag-1 correlation ${rh}`);
      assert.ok(Math.abs(rv) < 0.05, `vertical lag-1 correlation ${rv}`);
      tf.dispose([x, y]);
    });
  },
);

Deno.test("poissonGaussianNoise variance is a·x + b²", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("poissonGaussianNoise", async () => {
    const a = 0.01, b = 0.02;
    const op = poissonGaussianNoise({ a, b });
    for (const level of [0.1, 0.8]) {
      const x = constant(1, 48, 48, level);
      const y = await op.apply(x, 11);
      const { cov } = sampleCov(await noiseOf(y, x));
      const want = a * level + b * b;
      const got = (cov[0][0] + cov[1][1] + cov[2][2]) / 3;
      const se = want * Math.sqrt(2 / (48 * 48 * 3));
      assert.ok(Math.abs(got - want) < 5 * se, `x=${level}: var ${got} vs ${want}`);
      assert.ok(Math.abs(cov[0][1]) < 5 * want / 48, "channels independent");
      tf.dispose([x, y]);
    }
  });
});

Deno.test(
  "gaussianBlur keeps constants and spreads an impulse as the Gaussian",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("gaussianBlur", async () => {
      const op = gaussianBlur({ sigma: 1.2 });
      const x = constant(1, 12, 10, 0.37);
      const y = await op.apply(x, 0);
      assert.ok(maxAbsDiff(await read(y), await read(x)) < 1e-6);
      const imp = new Float32Array(21 * 21 * 3);
      imp[(10 * 21 + 10) * 3 + 1] = 1;
      const xi = tf.tensor4d(imp, [1, 21, 21, 3]);
      const yi = await readOut(op.apply(xi, 0));
      let sum = 0;
      for (let i = 1; i < yi.length; i += 3) sum += yi[i];
      assert.ok(Math.abs(sum - 1) < 1e-5, `sum ${sum}`);
      // Independent value: 2-D Gaussian at offset (1, 2), normalised over the 9×9 support.
      const g = (t: number) => Math.exp(-t * t / (2 * 1.44));
      let z = 0;
      for (let t = -4; t <= 4; t++) z += g(t);
      const want = g(1) * g(2) / (z * z);
      assert.ok(Math.abs(yi[((11) * 21 + 12) * 3 + 1] - want) < 1e-6);
      assert.equal(yi[(10 * 21 + 10) * 3], 0, "other channels untouched");
      tf.dispose([x, y, xi]);
    });
  },
);

const blockRatio = (d: Float64Array, w: number, h: number): number => {
  let sb = 0, nb = 0, sw = 0, nw = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x + 1 < w; x++) {
      const g = Math.abs(d[(y * w + x + 1) * 3 + 1] - d[(y * w + x) * 3 + 1]);
      if ((x + 1) % 8 === 0) (sb += g, nb++);
      else (sw += g, nw++);
    }
  }
  return sb / nb / (sw / nw);
};

Deno.test(
  "JPEG: q=100 near identity, q=10 blocky, 4:2:0 removes chroma detail",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("jpegCompress", async () => {
      const w = 64, h = 48;
      const data = new Float32Array(w * h * 3);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = (y * w + x) * 3;
          data[i] = 0.5 + 0.3 * Math.sin(x / 5) * Math.cos(y / 7);
          data[i + 1] = 0.5 + 0.25 * Math.sin((x + y) / 9);
          data[i + 2] = 0.4 + 0.2 * Math.cos(x / 3);
        }
      }
      const x = tf.tensor4d(data, [1, h, w, 3]);
      const xs = await read(x);
      const hi = await jpegCompress({ quality: 100, chroma: "444" }).apply(x, 0);
      const his = await read(hi);
      let mse = 0;
      for (let i = 0; i < xs.length; i++) mse += (his[i] - xs[i]) ** 2;
      const psnr = 10 * Math.log10(1 / (mse / xs.length));
      assert.ok(psnr > 40, `q=100 PSNR ${psnr}`);
      const lo = await jpegCompress({ quality: 10 }).apply(x, 0);
      const los = await read(lo);
      const ratioLo = blockRatio(los, w, h), ratioX = blockRatio(xs, w, h);
      assert.ok(ratioLo > 1.5 && ratioX < 1.2, `blockiness q10 ${ratioLo}, clean ${ratioX}`);
      // Chroma detail: 1-px columns alternating between two colours of similar luma.
      const stripes = new Float32Array(16 * 16 * 3);
      for (let i = 0; i < 256; i++) stripes.set(i % 2 ? [0.7, 0.4, 0.5] : [0.3, 0.6, 0.5], 3 * i);
      const s = tf.tensor4d(stripes, [1, 16, 16, 3]);
      const c444 = await readOut(jpegCompress({ quality: 100, chroma: "444" }).apply(s, 0));
      const c420 = await readOut(jpegCompress({ quality: 100, chroma: "420" }).apply(s, 0));
      const rStep = (d: Float64Array) => Math.abs(d[3 * 17] - d[3 * 16]); // red, row 1, x 0→1
      assert.ok(rStep(c444) > 0.3 && rStep(c420) < 0.1, `444 ${rStep(c444)}, 420 ${rStep(c420)}`);
      // Output on the 8-bit grid; deterministic.
      assert.ok(los.every((v) => Math.abs(v * 255 - Math.round(v * 255)) < 1e-4));
      const again = await jpegCompress({ quality: 10 }).apply(x, 99);
      assert.equal(maxAbsDiff(await read(again), los), 0);
      tf.dispose([x, hi, lo, s, again]);
      assert.throws(() => jpegCompress({ quality: 0 }), /quality/);
    });
  },
);

Deno.test("quantize8, clip01, compose seeds and descriptions", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("compose", async () => {
    const x = tf.tensor4d([-0.2, 0.5, 1.3, 0.1234, 0.998, 0.5], [1, 1, 2, 3]);
    const q = await readOut(quantize8().apply(x, 0));
    assert.ok(maxAbsDiff(q, [0, 128 / 255, 1, 31 / 255, 254 / 255, 128 / 255]) < 1e-6, `${q}`);
    const c = await readOut(clip01().apply(x, 0));
    assert.ok(maxAbsDiff(c, [0, 0.5, 1, 0.1234, 0.998, 0.5]) < 1e-6);
    const a = gaussianNoise({ cov: isotropicCov(0.05) }),
      b = poissonGaussianNoise({ a: 0.01, b: 0.01 });
    const op = compose(a, b, quantize8());
    const y = await op.apply(x, 5);
    const t1 = await a.apply(x, foldIn(5, 0));
    const t2 = await b.apply(t1, foldIn(5, 1));
    const t3 = await quantize8().apply(t2, foldIn(5, 2));
    assert.equal(maxAbsDiff(await read(y), await read(t3)), 0);
    assert.equal(
      describe(compose(gaussianBlur({ sigma: 1 }), jpegCompress({ quality: 30 }))),
      "gaussianBlur(sigma=1, radius=3) → jpeg(quality=30, chroma=420)",
    );
    assert.equal(JSON.parse(JSON.stringify(op.params)).ops.length, 3);
    tf.dispose([x, y, t1, t2, t3]);
  });
  // degradeImage works on RgbImage and leaks nothing.
  await noLeak("degradeImage", async () => {
    const img = rgbImage(9, 9, new Float32Array(243).fill(0.5));
    const out = await degradeImage(gaussianBlur({ sigma: 0.8 }), img, 0);
    assert.ok(maxAbsDiff(out.data, img.data) < 1e-6);
  });
});
