import assert from "node:assert/strict";
import { normals, rng, uniforms } from "../src/core/random.ts";
import { type RgbImage, rgbImage } from "../src/image/io.ts";
import { fft, powerSpectrum2d } from "../src/eval/fft.ts";
import { psnr, ssim } from "../src/eval/metrics.ts";
import {
  blockiness,
  highPassResidual,
  logSpectralDistance,
  noiseStd,
  radialSpectrum,
} from "../src/eval/stats.ts";
import {
  compareSets,
  fitWhiteNoiseSigma,
  fitWhiteNoiseSigmas,
  formatReportTable,
} from "../src/eval/report.ts";

/** A smooth random image in [0.2, 0.8]: a few random sinusoids per channel. */
const smoothImage = (w: number, h: number, seed: number): RgbImage => {
  const [u] = uniforms(rng(seed), 24);
  const d = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let v = 0.5;
        for (let k = 0; k < 2; k++) {
          const j = c * 8 + k * 4;
          v += 0.07 * Math.sin(x * 0.3 * u[j] + y * 0.3 * u[j + 1] + 6 * u[j + 2]) *
            (0.5 + u[j + 3]);
        }
        d[(y * w + x) * 3 + c] = v;
      }
    }
  }
  return rgbImage(w, h, d);
};

/** `img + L·n` with n ~ N(0, I) per pixel (L lower-triangular rows), no clipping. */
const addNoise = (img: RgbImage, l: number[][], seed: number): RgbImage => {
  const [n] = normals(rng(seed), img.data.length);
  const d = Float32Array.from(img.data);
  for (let i = 0; i < d.length; i += 3) {
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) d[i + a] += l[a][b] * n[i + b];
    }
  }
  return rgbImage(img.width, img.height, d);
};

Deno.test("fft matches a naive DFT; white-noise power spectrum is flat at the variance", () => {
  const [a] = normals(rng(1), 32);
  const re = Float64Array.from(a.subarray(0, 16)), im = Float64Array.from(a.subarray(16));
  const r0 = Float64Array.from(re), i0 = Float64Array.from(im);
  fft(re, im);
  for (let k = 0; k < 16; k++) {
    let sr = 0, si = 0;
    for (let n = 0; n < 16; n++) {
      const t = (-2 * Math.PI * k * n) / 16;
      sr += r0[n] * Math.cos(t) - i0[n] * Math.sin(t);
      si += r0[n] * Math.sin(t) + i0[n] * Math.cos(t);
    }
    assert.ok(Math.abs(sr - re[k]) < 1e-10 && Math.abs(si - im[k]) < 1e-10, `bin ${k}`);
  }
  // Parseval: mean of |F|²/N² over bins = mean square of the field.
  const [f] = normals(rng(2), 64);
  const p = powerSpectrum2d(f, 8);
  const ms = f.reduce((s, v) => s + v * v, 0) / 64;
  assert.ok(Math.abs(p.reduce((s, v) => s + v, 0) / 64 - ms) < 1e-12);
  assert.throws(() => fft(new Float64Array(6), new Float64Array(6)), /power of 2/);
});

Deno.test("fft and powerSpectrum2d: small sizes and a direct 2-D DFT reference", () => {
  // The 1- and 2-point DFTs by hand.
  const one = [Float64Array.of(3), Float64Array.of(-2)];
  fft(one[0], one[1]);
  assert.deepEqual([one[0][0], one[1][0]], [3, -2]);
  const two = [Float64Array.of(1, 4), Float64Array.of(2, -1)];
  fft(two[0], two[1]);
  assert.deepEqual([...two[0], ...two[1]], [5, -3, 1, 3]);
  assert.deepEqual(Array.from(powerSpectrum2d(Float64Array.of(-3), 1)), [9]);
  for (const n of [2, 4, 16]) {
    const [f] = normals(rng(10 + n), n * n);
    const p = powerSpectrum2d(f, n);
    for (let v = 0; v < n; v++) {
      for (let u = 0; u < n; u++) {
        let sr = 0, si = 0;
        for (let y = 0; y < n; y++) {
          for (let x = 0; x < n; x++) {
            const t = (-2 * Math.PI * (((u * x) % n) + ((v * y) % n))) / n;
            sr += f[y * n + x] * Math.cos(t);
            si += f[y * n + x] * Math.sin(t);
          }
        }
        const want = (sr * sr + si * si) / (n * n);
        assert.ok(Math.abs(p[v * n + u] - want) < 1e-10, `n ${n} (${u}, ${v})`);
      }
    }
  }
  assert.throws(() => powerSpectrum2d(new Float64Array(36), 6), /power of 2/);
});

Deno.test("PSNR of a known MSE; SSIM(x, x) = 1", () => {
  const a = smoothImage(20, 16, 1);
  const b = rgbImage(20, 16, a.data.map((v, i) => v + (i % 2 ? 0.1 : -0.1)));
  assert.ok(Math.abs(psnr(a, b) - 20) < 1e-5, `${psnr(a, b)}`); // MSE 0.01 (float32 inputs)
  assert.ok(Math.abs(psnr(a, b, 2) - (20 + 20 * Math.log10(2))) < 1e-5);
  assert.equal(psnr(a, a), Infinity);
  assert.ok(Math.abs(ssim(a, a) - 1) < 1e-12);
  assert.ok(Math.abs(ssim(a, a, { channel: "luma" }) - 1) < 1e-12);
  assert.ok(ssim(a, b) < 0.99);
});

/** Straightforward SSIM: every 11×11 window, explicit 2-D weights, float64. */
const naiveSsimPlane = (a: number[], b: number[], w: number, h: number): number => {
  const win: number[][] = [];
  let z = 0;
  for (let i = -5; i <= 5; i++) {
    win.push([]);
    for (let j = -5; j <= 5; j++) {
      const v = Math.exp(-(i * i + j * j) / (2 * 1.5 * 1.5));
      win[i + 5].push(v);
      z += v;
    }
  }
  let total = 0, count = 0;
  for (let y = 0; y + 11 <= h; y++) {
    for (let x = 0; x + 11 <= w; x++) {
      let ma = 0, mb = 0;
      for (let i = 0; i < 11; i++) {
        for (let j = 0; j < 11; j++) {
          ma += (win[i][j] / z) * a[(y + i) * w + x + j];
          mb += (win[i][j] / z) * b[(y + i) * w + x + j];
        }
      }
      let va = 0, vb = 0, cv = 0;
      for (let i = 0; i < 11; i++) {
        for (let j = 0; j < 11; j++) {
          const da = a[(y + i) * w + x + j] - ma, db = b[(y + i) * w + x + j] - mb;
          va += (win[i][j] / z) * da * da;
          vb += (win[i][j] / z) * db * db;
          cv += (win[i][j] / z) * da * db;
        }
      }
      const c1 = 1e-4, c2 = 9e-4;
      total += ((2 * ma * mb + c1) * (2 * cv + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
};

Deno.test("SSIM equals a straightforward float64 implementation", () => {
  const w = 19, h = 15;
  const a = smoothImage(w, h, 3);
  const b = addNoise(a, [[0.05, 0, 0], [0.02, 0.04, 0], [0, 0, 0.08]], 4);
  const plane = (img: RgbImage, c: number) =>
    Array.from({ length: w * h }, (_, i) => img.data[3 * i + c]);
  const want = [0, 1, 2].reduce((s, c) => s + naiveSsimPlane(plane(a, c), plane(b, c), w, h), 0) /
    3;
  const got = ssim(a, b);
  assert.ok(Math.abs(got - want) < 1e-10, `${got} vs ${want}`);
  assert.ok(got < 0.9 && got > 0.1, `${got}`);
  const luma = (img: RgbImage) =>
    Array.from(
      { length: w * h },
      (_, i) => 0.299 * img.data[3 * i] + 0.587 * img.data[3 * i + 1] + 0.114 * img.data[3 * i + 2],
    );
  const wantL = naiveSsimPlane(luma(a), luma(b), w, h);
  assert.ok(Math.abs(ssim(a, b, { channel: "luma" }) - wantL) < 1e-10);
  assert.throws(() => ssim(smoothImage(10, 20, 1), smoothImage(10, 20, 2)), /11×11/);
});

Deno.test("noise level, residual correlation and spectrum recover white noise", () => {
  const flat = rgbImage(96, 96, new Float32Array(96 * 96 * 3).fill(0.5));
  const s = 0.04;
  // Channel correlation 0.6 between R and G.
  const l = [[s, 0, 0], [0.6 * s, 0.8 * s, 0], [0, 0, s]];
  const noisy = addNoise(flat, l, 9);
  const est = noiseStd([noisy]);
  for (const e of est) assert.ok(Math.abs(e - s) / s < 0.05, `noise std ${est}`);
  const rep = compareSets([noisy], [noisy]);
  assert.ok(Math.abs(rep.generated.residualCorrelation[0][1] - 0.6) < 0.05);
  assert.ok(Math.abs(rep.generated.residualCorrelation[0][2]) < 0.05);
  // Spectrum of the *unfiltered* noise is flat at s².
  const field = { width: 96, height: 96, data: Float64Array.from(noisy.data, (v) => v - 0.5) };
  const sp = radialSpectrum([field], { patch: 32 });
  assert.equal(sp.tiles, 9);
  for (const p of sp.power.slice(2)) assert.ok(Math.abs(p / (s * s) - 1) < 0.25, `${sp.power}`);
  // The high-pass residual's spectrum rises with frequency.
  const rs = radialSpectrum([highPassResidual(noisy)]).power;
  assert.ok(rs[rs.length - 1] > 10 * rs[0]);
  assert.equal(logSpectralDistance(rs, rs), 0);
  assert.ok(Math.abs(logSpectralDistance([1, 1], [10, 100]) - Math.sqrt((100 + 400) / 2)) < 1e-12);
});

Deno.test("blockiness ≈ 1 for noise and smooth images, large for 8×8 blocks", () => {
  const noisy = addNoise(smoothImage(64, 64, 1), [[0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]], 2);
  assert.ok(Math.abs(blockiness([noisy]) - 1) < 0.1, `${blockiness([noisy])}`);
  const [u] = uniforms(rng(5), 64);
  const blocks = rgbImage(
    64,
    64,
    Float32Array.from({ length: 64 * 64 * 3 }, (_, i) => {
      const p = Math.floor(i / 3), x = p % 64, y = Math.floor(p / 64);
      return u[Math.floor(y / 8) * 8 + Math.floor(x / 8)] + 0.001 * ((x + y) % 2);
    }),
  );
  assert.ok(blockiness([blocks]) > 50, `${blockiness([blocks])}`);
});

Deno.test("fitWhiteNoiseSigma recovers a known σ without pairs", () => {
  const sigma = 0.03;
  const clean = [0, 1, 2, 3].map((i) => smoothImage(64, 64, 100 + i));
  const other = [0, 1, 2, 3].map((i) => smoothImage(64, 64, 200 + i)); // different content
  const l = [[sigma, 0, 0], [0, sigma, 0], [0, 0, sigma]];
  const degraded = other.map((im, i) => addNoise(im, l, 300 + i));
  const got = fitWhiteNoiseSigma(clean, degraded);
  assert.ok(Math.abs(got - sigma) / sigma < 0.05, `σ ${got}`);
  const per = fitWhiteNoiseSigmas(clean, degraded);
  for (const p of per) assert.ok(Math.abs(p - sigma) / sigma < 0.08, `${per}`);
  assert.equal(fitWhiteNoiseSigma(clean, clean), 0);
});

Deno.test("compareSets: zero distance for identical sets, paired stats, JSON and table", () => {
  const clean = [0, 1].map((i) => smoothImage(48, 40, 10 + i));
  const l = (s: number) => [[s, 0, 0], [0, s, 0], [0, 0, s]];
  const real = clean.map((c, i) => addNoise(c, l(0.05), 20 + i));
  const same = compareSets(real, real, clean);
  assert.equal(same.distances.spectrumLsdDb, 0);
  assert.equal(same.distances.correlation, 0);
  assert.equal(same.distances.paired?.std[0], 0);
  const weak = clean.map((c, i) => addNoise(c, l(0.02), 30 + i));
  const rep = compareSets(weak, real, clean);
  const pr = rep.real.paired!, pg = rep.generated.paired!;
  assert.ok(Math.abs(pr.std[1] - 0.05) < 0.004 && Math.abs(pg.std[1] - 0.02) < 0.002);
  assert.ok(Math.abs(pr.psnr - -20 * Math.log10(0.05)) < 0.3, `psnr ${pr.psnr}`);
  assert.ok(rep.distances.noiseStdRelative > 0.4 && rep.distances.spectrumLsdDb > 3);
  assert.ok(rep.clean !== undefined && rep.clean.noiseStd[0] < 0.01);
  const json = JSON.parse(JSON.stringify(rep));
  assert.deepEqual(json.real.paired.std, pr.std);
  const table = formatReportTable(rep);
  for (const row of ["noise std R G B", "blockiness 8x8", "PSNR vs clean", "SSIM vs clean"]) {
    assert.ok(table.includes(row), table);
  }
  const unpairedReal = compareSets(weak, real, clean, { realClean: null });
  assert.equal(unpairedReal.real.paired, undefined);
  assert.equal(unpairedReal.distances.paired, undefined);
  assert.throws(() => compareSets(weak, real, [clean[0]]), /2 generated images but 1 clean/);
});
