/**
 * Evaluation statistics against closed forms, on synthetic fields with known statistics:
 *
 * - white Gaussian noise of std σ with channel correlation ρ: noise level σ, residual
 *   correlation ρ, flat spectrum σ², and the high-pass residual's spectrum;
 * - spatially filtered Gaussian noise (kernel g): spectrum σ²·|G|², noise level
 *   `σ·sqrt(Σ(h∗g)² / Σh²)` with `h = δ − B` the residual filter;
 * - an 8×8 block pattern (block checkerboard of contrast d plus a pixel checkerboard of
 *   contrast ε): blockiness exactly d/ε; white noise: blockiness 1.
 *
 * The expected spectra are the exact expectations of an unwindowed `n × n` periodogram:
 * `Σ_k (1 − |kx|/n)(1 − |ky|/n)·R(k)·cos(2π f·k)` from the autocovariance `R` of the
 * filter, averaged over the DFT frequencies of each ring (computed here, independently).
 * Tolerances are a few standard errors of the estimates (a few % at these sizes).
 */
import assert from "node:assert/strict";
import { normals, rng } from "../src/core/random.ts";
import {
  blockiness,
  channelStats,
  correlationFromCov,
  type Field,
  highPassResidual,
  noiseStd,
  radialSpectrum,
} from "../src/eval/stats.ts";

type Kernel = ReadonlyMap<string, number>; // "dy,dx" → weight

const kernel = (rows: readonly (readonly number[])[]): Kernel => {
  const m = new Map<string, number>();
  const cy = (rows.length - 1) / 2, cx = (rows[0].length - 1) / 2;
  rows.forEach((r, y) => r.forEach((v, x) => v !== 0 && m.set(`${y - cy},${x - cx}`, v)));
  return m;
};

const entries = (k: Kernel) =>
  [...k].map(([key, v]) => {
    const [dy, dx] = key.split(",").map(Number);
    return { dy, dx, v };
  });

const convolveKernels = (a: Kernel, b: Kernel): Kernel => {
  const m = new Map<string, number>();
  for (const p of entries(a)) {
    for (const q of entries(b)) {
      const key = `${p.dy + q.dy},${p.dx + q.dx}`;
      m.set(key, (m.get(key) ?? 0) + p.v * q.v);
    }
  }
  return m;
};

/** Autocovariance of unit white noise filtered by `k`: R(d) = Σ_j k(j)·k(j + d). */
const autocov = (k: Kernel): Kernel => {
  const m = new Map<string, number>();
  for (const p of entries(k)) {
    for (const q of entries(k)) {
      const key = `${q.dy - p.dy},${q.dx - p.dx}`;
      m.set(key, (m.get(key) ?? 0) + p.v * q.v);
    }
  }
  return m;
};

const sumSq = (k: Kernel) => entries(k).reduce((s, e) => s + e.v * e.v, 0);

/** Expected ring powers of an n×n unwindowed periodogram of noise with autocovariance r. */
const expectedRings = (r: Kernel, n: number, bins: number, variance: number) => {
  const acc = new Float64Array(bins);
  const cnt = new Float64Array(bins);
  const rs = entries(r);
  for (let v = -n / 2; v < n / 2; v++) {
    for (let u = -n / 2; u < n / 2; u++) {
      const fy = v / n, fx = u / n;
      const rad = Math.hypot(fx, fy);
      if (rad === 0 || rad > 0.5 + 1e-12) continue;
      const b = Math.min(bins - 1, Math.ceil(rad * 2 * bins - 1e-9) - 1);
      let p = 0;
      for (const { dy, dx, v: w } of rs) {
        p += (1 - Math.abs(dx) / n) * (1 - Math.abs(dy) / n) * w *
          Math.cos(2 * Math.PI * (fx * dx + fy * dy));
      }
      acc[b] += variance * p;
      cnt[b]++;
    }
  }
  return { power: Array.from(acc, (s, b) => s / cnt[b]), count: Array.from(cnt) };
};

/**
 * A field of Gaussian noise: unit white noise per channel, mixed across channels by `l`
 * (rows; channel covariance l·lᵀ) and filtered spatially by `k` (valid region only).
 */
const noiseField = (w: number, h: number, l: number[][], k: Kernel, seed: number): Field => {
  const es = entries(k);
  const pad = Math.max(...es.map((e) => Math.max(Math.abs(e.dx), Math.abs(e.dy))));
  const W = w + 2 * pad, H = h + 2 * pad;
  const [z] = normals(rng(seed), W * H * 3);
  const out = new Float64Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (const { dy, dx, v } of es) {
        const i = ((y + pad + dy) * W + x + pad + dx) * 3;
        for (let c = 0; c < 3; c++) {
          out[(y * w + x) * 3 + c] += v *
            (l[c][0] * z[i] + l[c][1] * z[i + 1] + l[c][2] * z[i + 2]);
        }
      }
    }
  }
  return { width: w, height: h, data: out };
};

/** The residual filter δ − B of the statistics module (3×3 binomial blur B). */
const HIGH_PASS = kernel(
  [[-1, -2, -1], [-2, 12, -2], [-1, -2, -1]].map((r) => r.map((v) => v / 16)),
);
const DELTA = kernel([[1]]);

const checkRings = (
  got: readonly number[],
  want: ReturnType<typeof expectedRings>,
  tiles: number,
  what: string,
) => {
  got.forEach((p, b) => {
    // Periodogram values are ~exponential; (f, −f) pairs coincide for real data.
    const se = 1 / Math.sqrt(Math.max(1, want.count[b] / 2) * tiles * 3);
    const rel = Math.abs(p / want.power[b] - 1);
    assert.ok(
      rel < 4 * se + 0.01,
      `${what} ring ${b}: ${p} vs ${want.power[b]} (rel ${rel}, se ${se})`,
    );
  });
};

Deno.test("white noise: level σ, residual correlation ρ, flat spectrum σ², residual spectrum |1 − B|²σ²", () => {
  const s = 0.05, rho = 0.6;
  const l = [[s, 0, 0], [rho * s, Math.sqrt(1 - rho * rho) * s, 0], [0, 0, s]];
  const f = noiseField(320, 320, l, DELTA, 1);
  const est = noiseStd([f]);
  for (const e of est) assert.ok(Math.abs(e / s - 1) < 0.008, `noise std ${est} vs ${s}`);
  const corr = correlationFromCov(channelStats([highPassResidual(f)]).cov);
  assert.ok(Math.abs(corr[0][1] - rho) < 0.015, `ρ(R,G) ${corr[0][1]}`);
  assert.ok(Math.abs(corr[0][2]) < 0.015, `ρ(R,B) ${corr[0][2]}`);
  assert.ok(Math.abs(corr[1][2]) < 0.015, `ρ(G,B) ${corr[1][2]}`);

  const sp = radialSpectrum([f], { patch: 32 });
  assert.equal(sp.tiles, 100);
  checkRings(sp.power, expectedRings(autocov(DELTA), 32, 16, s * s), sp.tiles, "white");
  const rs = radialSpectrum([highPassResidual(f)], { patch: 32 });
  checkRings(rs.power, expectedRings(autocov(HIGH_PASS), 32, 16, s * s), rs.tiles, "residual");
});

Deno.test("filtered noise: spectrum σ²·|G|² and the white-equivalent level of the residual", () => {
  const s = 0.08;
  const l = [[s, 0, 0], [0, s, 0], [0, 0, s]];
  // Spatially correlated noise: horizontal [1 2 1]/4 and a vertical 2-tap average.
  const g = convolveKernels(
    kernel([[1, 2, 1]].map((r) => r.map((v) => v / 4))),
    kernel([[0.5], [0.5], [0]]),
  );
  const f = noiseField(320, 288, l, g, 2);
  const sp = radialSpectrum([f], { patch: 32, bins: 8 });
  checkRings(sp.power, expectedRings(autocov(g), 32, 8, s * s), sp.tiles, "filtered");
  // The spectrum falls with frequency (a low-pass): first ring ≫ last ring.
  assert.ok(sp.power[0] > 5 * sp.power[7], `${sp.power}`);
  const want = s * Math.sqrt(sumSq(convolveKernels(HIGH_PASS, g)) / sumSq(HIGH_PASS));
  const est = noiseStd([f]);
  for (const e of est) assert.ok(Math.abs(e / want - 1) < 0.03, `noise std ${est} vs ${want}`);
  // The white-noise formula would be far off (the level is not just σ·Σg²).
  assert.ok(Math.abs(want / (s * Math.sqrt(sumSq(g))) - 1) > 0.1);
});

Deno.test("blockiness: d/ε for an 8×8 block checkerboard with pixel checkerboard ε; 1 for noise", () => {
  for (const [d, eps, w, h] of [[0.2, 0.01, 64, 64], [0.05, 0.02, 72, 40]]) {
    const data = new Float64Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = 0.3 + d * ((Math.floor(x / 8) + Math.floor(y / 8)) % 2) + eps * ((x + y) % 2);
        // Grey pixels: luminance = v.
        data.set([v, v, v], (y * w + x) * 3);
      }
    }
    const b = blockiness([{ width: w, height: h, data }]);
    assert.ok(Math.abs(b - d / eps) < 1e-9 * (d / eps), `blockiness ${b} vs ${d / eps}`);
  }
  // Blocks in red, pixel checkerboard in blue: the luminance weights enter the ratio.
  const [w, h, d, eps] = [64, 48, 0.2, 0.1];
  const data = new Float64Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const blockV = d * ((Math.floor(x / 8) + Math.floor(y / 8)) % 2);
      data.set([0.2 + blockV, 0.5, 0.3 + eps * ((x + y) % 2)], (y * w + x) * 3);
    }
  }
  const want = (0.299 * d) / (0.114 * eps);
  const got = blockiness([{ width: w, height: h, data }]);
  assert.ok(Math.abs(got - want) < 1e-9 * want, `blockiness ${got} vs ${want} (Y weights)`);
  const l = [[0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]];
  const noise = noiseField(256, 256, l, DELTA, 3);
  assert.ok(Math.abs(blockiness([noise]) - 1) < 0.03, `${blockiness([noise])}`);
});
