/**
 * Where a trained model's degradation comes from, on crops of the held-out test scenes
 * (`deno run -A examples/fidelity/diagnose.ts CHECKPOINT FAMILY`; FAMILY names the
 * fidelity family the checkpoint was trained on, e.g. a checkpoint under `out/fidelity/`).
 *
 * Prints, per channel, the mean and std of `ŷ − x` and the flat-region noise for:
 * - the real degradation;
 * - DeFlow at τ = 0.25, 0.5, 1 (a bias that grows as τ² is the decoder's curvature);
 * - the shift's mean alone (`M ≈ 0`) and its noise alone (`μ = 0`);
 * - the noise of one latent at a time (which level carries the noise, and how strongly each
 *   level's noise survives in flat regions);
 * - samples of the degraded model's own prior `z ~ N(μ, I + a²·MMᵀ)` decoded at `h(x)`, and
 *   of the clean prior `N(0, I)` (is a bias in the model itself or in the translation?);
 * - per latent, the size of the learned shift (rms of `M`, |μ|, and with `contractShift` the
 *   gains of the contraction `G`) and the variance of the real
 *   degradation's latents relative to the clean crops' (generalised eigenvalues of the two
 *   latent covariances, same scenes): ratios below 1 are directions where the degradation
 *   removes detail, which the shift `N(μ, I + a²·MMᵀ)` cannot represent;
 * - per latent, the per-position shift scale `a(h)` (`adaptiveShift`): its 5/50/95 %
 *   points, and its median in flat 8×8 blocks of the clean crops (local std < 0.01) against
 *   busy ones (> 0.05): does `a(h)` make up for the flow's weak gain in flat regions?
 * - the noise by brightness: the rms of `ŷ − x` per 8×8 block of the test crops, binned by the
 *   block's mean brightness, real against DeFlow (does the noise follow brightness where the
 *   real one does not?), and the residual's rms per frequency band (differences of 3, 7 and
 *   15 pixel box filters: where an excess lies);
 * - with `adaptiveShift`, whether `a(h)` fits the degraded model's own training data: on the
 *   degraded domain's scenes (64×64 crops, conditioned as in training), per brightness bin, the
 *   multiplier `c` of `a(h)²` that maximises the degraded likelihood of the real latents
 *   (1 everywhere when `a(h)` has converged; the first shift latent);
 * - the latents' mean variance per level (finest first) on the test crops, clean and really
 *   degraded, and on 64×64 crops of the two training domains (`--same-scenes`: of a model
 *   trained with the suite's `--same-scenes`, whose degraded domain is the clean scenes): how
 *   much variance the degradation adds in the latent space where the shift adds its noise,
 *   on the test scenes against the training ones;
 * - the cost of the shift's independence assumptions: the real degradation's latent
 *   displacement decoded at the clean latent as it is (exact), from another crop, from
 *   another crop per latent, and as a Gaussian with its covariance per latent or per
 *   `2^L` block over all latents (`jointShift`), with the share of fine (3×3) detail;
 *   and the displacement's neighbour correlations (per-position shifts assume none).
 *
 * @module
 */
import { tf } from "../../src/tf.ts";
import { initBackend } from "../../src/core/backend.ts";
import { loadModel } from "../../src/cli/model.ts";
import { imagesToTensor, type RgbImage, tensorToImages } from "../../src/image/io.ts";
import { degrade, prepareSampler } from "../../src/model/sample.ts";
import { conditionInput } from "../../src/model/conditioning.ts";
import {
  decodeWithFeatures,
  type DeflowParams,
  disposeInverses,
  encodeWithFeatures,
  latentShiftScales,
  levelFeatures,
  scaleLevels,
  withInverses,
} from "../../src/model/network.ts";
import { scaledLogProb, scaledSample } from "../../src/layers/scaledShift.ts";
import { latentShift } from "../../src/layers/latentShift.ts";
import {
  contractionToShift,
  contractSample,
  disposeContractionStats,
  prepareContraction,
} from "../../src/layers/latentContraction.ts";
import { flatRegionNoise } from "../../src/eval/structure.ts";
import { disposeShiftStats, prepareShifts } from "../../src/model/objective.ts";
import { degradeImages } from "../../src/degrade/types.ts";
import { cropsOf, defaultSplit, loadCollections } from "./scenes.ts";
import {
  cholesky,
  inverse,
  matmul,
  matrix,
  symmetricEigen,
  transpose,
} from "../../src/linalg/dense.ts";
import { familyByName } from "./families.ts";
import {
  packShiftLatents,
  shiftLatentShapes,
  unpackShiftLatents,
} from "../../src/model/shiftLatents.ts";

const sameScenes = Deno.args.includes("--same-scenes");
const [checkpoint, familyName] = Deno.args.filter((a) => a !== "--same-scenes");
if (!checkpoint || !familyName) {
  console.error("usage: diagnose.ts CHECKPOINT FAMILY [--same-scenes]");
  Deno.exit(2);
}
const family = familyByName(familyName);
await initBackend();
const model = await loadModel(checkpoint);
const { config } = model;
const collections = await loadCollections(defaultSplit);
const clean: RgbImage[] = collections.test.flatMap((img) => cropsOf(img, 128));
const real = await degradeImages(family.make(), clean, 77);
const x = imagesToTensor(clean);

const f4 = (v: number) => (v >= 0 ? "+" : "") + v.toFixed(4);
/** Mean, std and flat-region noise of `d − clean`, per channel. */
const describe = (d: readonly RgbImage[]): string => {
  const s = [0, 0, 0], ss = [0, 0, 0];
  let n = 0;
  d.forEach((img, i) => {
    for (let k = 0; k < img.data.length; k += 3) {
      for (let c = 0; c < 3; c++) {
        const v = img.data[k + c] - clean[i].data[k + c];
        s[c] += v;
        ss[c] += v * v;
      }
      n++;
    }
  });
  const mean = s.map((v) => v / n);
  const std = ss.map((v, c) => Math.sqrt(v / n - mean[c] ** 2));
  return `mean ${mean.map(f4).join("/")}  std ${std.map((v) => v.toFixed(4)).join("/")}  flat ${
    flatRegionNoise(d, clean).map((v) => v.toFixed(4)).join("/")
  }`;
};
/** 8-bit images from a tensor in [0, 1] (disposes it). */
const toImages = async (y: tf.Tensor4D): Promise<RgbImage[]> => {
  const q = tf.tidy(() => tf.div(tf.round(tf.mul(tf.clipByValue(y, 0, 1), 255)), 255));
  y.dispose();
  const imgs = await tensorToImages(q as tf.Tensor4D);
  q.dispose();
  return imgs;
};
const row = (label: string, text: string) => console.log(`${label.padEnd(44)} ${text}`);

row("real", describe(real));
const P = model.params;
const withShifts = (
  edit: (s: DeflowParams["shifts"][number], i: number) => DeflowParams["shifts"][number],
): DeflowParams => ({ ...P, shifts: P.shifts.map(edit) });
const scaled: tf.Tensor[] = [];
const tiny = (m: tf.Tensor2D) => {
  const t = tf.mul(m, 1e-6) as tf.Tensor2D;
  scaled.push(t);
  return t;
};
const zero = (mu: tf.Tensor1D) => {
  const t = tf.zerosLike(mu);
  scaled.push(t);
  return t;
};
const runs: [string, DeflowParams, number][] = [
  ["DeFlow τ = 0.25", P, 0.25],
  ["DeFlow τ = 0.5", P, 0.5],
  ["DeFlow τ = 1", P, 1],
  ["shift mean only (M ≈ 0), τ = 1", withShifts((s) => ({ ...s, m: tiny(s.m) })), 1],
  ["shift noise only (μ = 0), τ = 1", withShifts((s) => ({ ...s, mu: zero(s.mu) })), 1],
  ...P.shifts.map((_, j): [string, DeflowParams, number] => [
    `noise of latent ${j} only, τ = 1`,
    withShifts((s, i) => (i === j ? s : { ...s, m: tiny(s.m) })),
    1,
  ]),
];
for (const [label, params, temperature] of runs) {
  const sampler = await prepareSampler(params, config, model.normalization);
  const [y] = degrade(sampler, x, { temperature, seed: 5 });
  sampler.dispose();
  row(label, describe(await toImages(y)));
}
scaled.forEach((t) => t.dispose());

// Prior samples decoded at the clean images' own condition.
const inv = await withInverses(P);
const contractions = await Promise.all(inv.shiftContractions.map(prepareContraction));
for (
  const which of [
    "clean prior N(0, I)",
    contractions.length ? "degraded prior μ + G(ε + a·M·n)" : "degraded prior N(μ, I + a²MMᵀ)",
  ]
) {
  const y = tf.tidy(() => {
    const cond = conditionInput(x, {
      factor: config.conditionFactor,
      noiseStd: config.conditionNoise,
      seed: 3,
    });
    const feats = levelFeatures(inv, config, cond, x.shape[1], x.shape[2]);
    const levels = scaleLevels(inv, config, feats);
    const networkShapes = encodeWithFeatures(inv, config, x, feats, levels).latents.map((z) =>
      z.shape
    );
    // The shift's view of the latents (one joint latent with `jointShift`).
    const shapes = shiftLatentShapes(config, networkShapes);
    const scales = latentShiftScales(inv, config, feats, false);
    const latents = shapes.map((shape, i) => {
      const eps = tf.randomNormal([...shape], 0, 1, "float32", 21 + i) as tf.Tensor4D;
      if (which.startsWith("clean")) return eps;
      const u = scales
        ? scaledSample(inv.shifts[i], shape, scales[i], { temperature: 1, seed: 121 + i })
        : latentShift.sample(inv.shifts[i], shape, { temperature: 1, seed: 121 + i });
      return contractions[i]
        ? contractSample(contractions[i], eps, u, inv.shifts[i].mu, 1)
        : tf.add(eps, u) as tf.Tensor4D;
    });
    return decodeWithFeatures(
      inv,
      config,
      unpackShiftLatents(config, latents, networkShapes),
      feats,
      levels,
    ).x;
  });
  row(which, describe(await toImages(y)));
}
disposeInverses(inv);

/** Per-pixel-vector covariance of a latent `[N, H, W, C]` (float64, row-major C×C). */
const latentCov = async (z: tf.Tensor4D, centred = true): Promise<Float64Array> => {
  const c = z.shape[3];
  const v = (await z.data()) as Float32Array;
  const n = v.length / c;
  const mean = new Float64Array(c);
  if (centred) { for (let k = 0; k < v.length; k++) mean[k % c] += v[k] / n; }
  const cov = new Float64Array(c * c);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < c; i++) {
      const a = v[p * c + i] - mean[i];
      for (let j = 0; j < c; j++) cov[i * c + j] += (a * (v[p * c + j] - mean[j])) / n;
    }
  }
  return cov;
};
const yReal = imagesToTensor(real);
const encodeAll = (img: tf.Tensor4D) =>
  tf.tidy(() => {
    const cond = conditionInput(img, {
      factor: config.conditionFactor,
      noiseStd: config.conditionNoise,
      seed: 3,
    });
    const feats = levelFeatures(P, config, cond, img.shape[1], img.shape[2]);
    return [...packShiftLatents(config, encodeWithFeatures(P, config, img, feats).latents)];
  });
const [zx, zy] = [encodeAll(x), encodeAll(yReal)];
for (let l = 0; l < zx.length; l++) {
  const c = zx[l].shape[3];
  const cx = matrix(c, c, await latentCov(zx[l]));
  const cy = matrix(c, c, await latentCov(zy[l]));
  const li = inverse(cholesky(cx));
  const g = matmul(matmul(li, cy), transpose(li));
  const sym = matrix(
    c,
    c,
    Array.from(g.data, (v, k) => (v + g.data[(k % c) * c + Math.floor(k / c)]) / 2),
  );
  const ratios = Array.from(symmetricEigen(sym).values).sort((a, b) => a - b);
  const m = (await P.shifts[l].m.data()) as Float32Array;
  const mu = (await P.shifts[l].mu.data()) as Float32Array;
  const rms = Math.sqrt(m.reduce((a, v) => a + v * v, 0) / c);
  const norm = Math.sqrt(mu.reduce((a, v) => a + v * v, 0));
  const gains = contractions[l]?.gains;
  const contracted = gains
    ? `; contraction G gains min ${gains[0].toFixed(2)} median ${
      gains[Math.floor(c / 2)].toFixed(2)
    }, ${gains.filter((g) => g < 0.8).length} < 0.8`
    : "";
  row(
    `${config.jointShift ? "joint shift latent" : "latent"} ${l} (${c} channels)`,
    `shift rms(M) ${rms.toFixed(3)} |μ| ${norm.toFixed(3)}; real/clean latent variance ratio ` +
      `min ${ratios[0].toFixed(2)} median ${ratios[Math.floor(c / 2)].toFixed(2)} max ${
        ratios[c - 1].toFixed(2)
      }, ${ratios.filter((r) => r < 0.8).length} directions < 0.8, ${
        ratios.filter((r) => r > 1.25).length
      } > 1.25${contracted}`,
  );
}
contractions.forEach(disposeContractionStats);

/** Mean per-channel (centred) variance of each latent, finest first (covariance trace / C). */
const meanVariances = async (zs: readonly tf.Tensor4D[]): Promise<string> => {
  const out: string[] = [];
  for (const z of zs) {
    const c = z.shape[3];
    const cov = await latentCov(z);
    let trace = 0;
    for (let i = 0; i < c; i++) trace += cov[i * c + i];
    out.push((trace / c).toFixed(3));
  }
  return out.join(" / ");
};
{
  const domainCrops = (imgs: readonly RgbImage[]) => imgs.flatMap((img) => cropsOf(img, 64, 12));
  const trainClean = imagesToTensor(domainCrops(collections.clean));
  const trainDegraded = imagesToTensor(
    await degradeImages(
      family.make(),
      domainCrops(sameScenes ? collections.clean : collections.degradedSource),
      79,
    ),
  );
  const [zc, zd] = [encodeAll(trainClean), encodeAll(trainDegraded)];
  row(
    "latent variance per level, test crops",
    `clean ${await meanVariances(zx)}; real degraded ${await meanVariances(zy)}`,
  );
  row(
    `latent variance per level, training domains${sameScenes ? " (same scenes)" : ""}`,
    `clean ${await meanVariances(zc)}; degraded ${await meanVariances(zd)}`,
  );
  tf.dispose([trainClean, trainDegraded, ...zc, ...zd]);
}
tf.dispose([...zx, ...zy]);

if (config.adaptiveShift) {
  const size = x.shape[1];
  const blockStd = tf.tidy(() => {
    const g = tf.mean(x, 3, true) as tf.Tensor4D;
    const m = tf.avgPool(g, 8, 8, "valid");
    const m2 = tf.avgPool(tf.square(g) as tf.Tensor4D, 8, 8, "valid");
    return tf.sqrt(tf.relu(tf.sub(m2, tf.square(m))));
  });
  const texture = (await blockStd.data()) as Float32Array;
  blockStd.dispose();
  const scales = tf.tidy(() => {
    const cond = conditionInput(x, { factor: config.conditionFactor, noiseStd: 0, seed: 3 });
    return latentShiftScales(P, config, levelFeatures(P, config, cond, size, size), false)!;
  });
  const median = (v: number[]) => v.length ? [...v].sort((a, b) => a - b)[v.length >> 1] : NaN;
  for (const [l, a] of scales.entries()) {
    // a's map is at the latent's resolution; average it over the 8×8 image blocks.
    const k = a.shape[1] / (size / 8);
    const perBlock = k > 1 ? tf.avgPool(a, k, k, "valid") : a;
    const blocks = (await perBlock.data()) as Float32Array;
    if (perBlock !== a) perBlock.dispose();
    const all = Array.from((await a.data()) as Float32Array).sort((p, q) => p - q);
    const pct = (f: number) => all[Math.min(all.length - 1, Math.floor(f * all.length))];
    const flat: number[] = [], busy: number[] = [];
    if (k >= 1) {
      texture.forEach((t, i) => (t < 0.01 ? flat : t > 0.05 ? busy : []).push(blocks[i]));
    }
    row(
      `latent ${l} shift scale a(h)`,
      `p5/p50/p95 ${pct(0.05).toFixed(3)}/${pct(0.5).toFixed(3)}/${pct(0.95).toFixed(3)}; ` +
        `flat blocks ${median(flat).toFixed(3)} (${flat.length}), busy ${
          median(busy).toFixed(3)
        } (${busy.length})`,
    );
  }
  tf.dispose(scales);
}

// The noise by brightness: rms of ŷ − x per 8×8 block, binned by the block's brightness.
const BRIGHTNESS_EDGES = [0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.01];
/** The bin of each value (−1 outside). */
const binOf = (v: number) =>
  BRIGHTNESS_EDGES.findIndex((e, j) => v >= e && v < BRIGHTNESS_EDGES[j + 1]);
const binLabel = (k: number) =>
  `${BRIGHTNESS_EDGES[k].toFixed(2)}–${Math.min(1, BRIGHTNESS_EDGES[k + 1]).toFixed(2)}`;
{
  const blockMean = (t: tf.Tensor4D) =>
    tf.tidy(() => tf.avgPool(tf.mean(t, 3, true) as tf.Tensor4D, 8, 8, "valid").dataSync());
  const blockRms = (y: tf.Tensor4D) =>
    tf.tidy(() =>
      tf.sqrt(
        tf.avgPool(
          tf.mean(tf.square(tf.sub(tf.clipByValue(y, 0, 1), x)), 3, true) as tf.Tensor4D,
          8,
          8,
          "valid",
        ),
      ).dataSync()
    );
  const brightness = blockMean(x);
  const yr = imagesToTensor(real);
  const realRms = blockRms(yr);
  const sampler = await prepareSampler(P, config, model.normalization);
  const [yd] = degrade(sampler, x, { seed: 5 });
  sampler.dispose();
  const deflowRms = blockRms(yd);
  // The residual's rms per band: below 3 px, 3–7, 7–15 and above 15 (box-filter differences).
  const bands = (y: tf.Tensor4D): string =>
    tf.tidy(() => {
      const r = tf.sub(tf.clipByValue(y, 0, 1), x) as tf.Tensor4D;
      const [b3, b7, b15] = [3, 7, 15].map((k) => tf.avgPool(r, k, 1, "same") as tf.Tensor4D);
      return [tf.sub(r, b3), tf.sub(b3, b7), tf.sub(b7, b15), b15]
        .map((b) => Math.sqrt(tf.mean(tf.square(b)).dataSync()[0]).toFixed(4))
        .join(" / ");
    });
  row("residual rms by band <3/3–7/7–15/>15 px", `real ${bands(yr)}  DeFlow ${bands(yd)}`);
  tf.dispose([yr, yd]);
  for (let k = 0; k + 1 < BRIGHTNESS_EDGES.length; k++) {
    const idx = [...brightness.keys()].filter((i) => binOf(brightness[i]) === k);
    if (!idx.length) continue;
    const rms = (v: ArrayLike<number>) =>
      Math.sqrt(idx.reduce((a, i) => a + v[i] ** 2, 0) / idx.length);
    row(
      `noise of brightness ${binLabel(k)} (${idx.length} blocks)`,
      `real ${rms(realRms).toFixed(4)}  DeFlow ${rms(deflowRms).toFixed(4)}  ratio ${
        (rms(deflowRms) / rms(realRms)).toFixed(2)
      }`,
    );
  }
}

// Does a(h) fit the degraded model's own training data? Per brightness bin, the multiplier c
// of a(h)² that maximises the likelihood of the real degraded latents of the degraded scenes.
if (config.adaptiveShift) {
  const size = 64;
  const source = collections.degradedSource.flatMap((img) => cropsOf(img, size, 200));
  const degraded = await degradeImages(family.make(), source, 78);
  const multipliers = [0.35, 0.5, 0.7, 1, 1.4, 2, 2.8];
  const stats = await prepareShifts(P);
  const sums = BRIGHTNESS_EDGES.slice(1).map(() => ({ n: 0, logp: multipliers.map(() => 0) }));
  for (let s = 0; s < degraded.length; s += 16) {
    const y = imagesToTensor(degraded.slice(s, s + 16));
    const cond = conditionInput(y, {
      factor: config.conditionFactor,
      noiseStd: config.conditionNoise,
      seed: 3 + s,
    });
    const [w, a2, brightness] = tf.tidy(() => {
      const feats = levelFeatures(P, config, cond, size, size);
      const [z] = packShiftLatents(config, encodeWithFeatures(P, config, y, feats).latents);
      const a2 = latentShiftScales(P, config, feats, true)![0];
      const w = config.contractShift
        ? contractionToShift(P.shiftContractions[0], stats[0].contraction!, z, P.shifts[0].mu).w
        : z;
      const [n, h, ww, c] = w.shape;
      const f = size / h;
      return [
        tf.reshape(w, [n * h * ww, 1, 1, c]) as tf.Tensor4D,
        tf.reshape(a2, [n * h * ww, 1, 1, 1]) as tf.Tensor4D,
        tf.reshape(tf.avgPool(tf.mean(y, 3, true) as tf.Tensor4D, f, f, "valid"), [-1]),
      ];
    });
    const bright = await brightness.data();
    for (const [j, m] of multipliers.entries()) {
      const lp = tf.tidy(() =>
        scaledLogProb(P.shifts[0], stats[0], w, tf.mul(a2, m) as tf.Tensor4D)
      );
      const v = await lp.data();
      lp.dispose();
      bright.forEach((b, i) => {
        const k = binOf(b);
        if (k < 0) return;
        if (j === 0) sums[k].n++;
        sums[k].logp[j] += v[i];
      });
    }
    tf.dispose([y, cond, w, a2, brightness]);
  }
  disposeShiftStats(stats);
  sums.forEach(({ n, logp }, k) => {
    if (!n) return;
    const best = multipliers[logp.indexOf(Math.max(...logp))];
    row(
      `a(h)² fit, brightness ${binLabel(k)} (${n} positions)`,
      `best multiplier ${best} (log-likelihood per position vs ×1: ${
        logp.map((v, j) => `×${multipliers[j]} ${((v - logp[3]) / n).toFixed(1)}`).join(", ")
      })`,
    );
  });
}

// What the shift's independence assumptions cost. The real degradation's displacement of
// the network's latents, d = f(y) − f(x) (same condition), decoded back at x exactly
// reproduces y. Decoded at x but taken from another crop (independent of x's content),
// from a different crop per latent (latents independent of each other), or replaced by a
// Gaussian with d's covariance per latent (what per-latent shifts can represent) or per
// 2^L block over all latents (what `jointShift` can represent), it shows which assumption
// turns fine noise into blotches: "hp" is the fraction of the residual's variance left
// after subtracting its 3×3 local mean (≈ 1 for pixel-fine noise, ≪ 1 for blotches).
{
  const PI = await withInverses(P);
  const cond = conditionInput(x, {
    factor: config.conditionFactor,
    noiseStd: config.conditionNoise,
    seed: 3,
  });
  const feats = levelFeatures(PI, config, cond, x.shape[1], x.shape[2]);
  const zx2 = encodeWithFeatures(PI, config, x, feats).latents;
  const zy2 = encodeWithFeatures(PI, config, yReal, feats).latents;
  const d = zx2.map((z, l) => tf.sub(zy2[l], z) as tf.Tensor4D);
  const n = x.shape[0];
  const roll = (t: tf.Tensor4D, k: number): tf.Tensor4D =>
    tf.tidy(() => tf.concat([tf.slice(t, [k % n]), tf.slice(t, [0], [k % n])]) as tf.Tensor4D);
  const highPass = (r: tf.Tensor4D): number =>
    tf.tidy(() =>
      tf.div(
        tf.mean(tf.square(tf.sub(r, tf.avgPool(r, 3, 1, "same")))),
        tf.mean(tf.square(tf.sub(r, tf.mean(r, [0, 1, 2])))),
      ).dataSync()[0]
    );
  /** Zero-mean Gaussian samples shaped like `t`, with its per-position second moments. */
  const gaussianLike = async (t: tf.Tensor4D, seed: number): Promise<tf.Tensor4D> => {
    const c = t.shape[3];
    const cov = await latentCov(t, false);
    for (let i = 0; i < c; i++) cov[i * c + i] += 1e-6;
    const l = cholesky(matrix(c, c, cov));
    return tf.tidy(() =>
      tf.reshape(
        tf.matMul(
          tf.randomNormal([t.size / c, c], 0, 1, "float32", seed),
          tf.tensor2d(Float32Array.from(l.data), [c, c]),
          false,
          true,
        ),
        t.shape,
      )
    );
  };
  const decodeAt = async (label: string, disp: readonly tf.Tensor4D[]) => {
    const y = tf.tidy(() =>
      decodeWithFeatures(PI, config, zx2.map((z, l) => tf.add(z, disp[l]) as tf.Tensor4D), feats)
        .x
    );
    const imgs = await toImages(tf.clone(y));
    const hp = tf.tidy(() => highPass(tf.sub(tf.clipByValue(y, 0, 1), x) as tf.Tensor4D));
    y.dispose();
    row(label, `${describe(imgs)}  hp ${hp.toFixed(3)}`);
  };
  // Per-position i.i.d. shifts assume d is spatially white: its neighbour correlations.
  for (const [l, t] of d.entries()) {
    const lag = (dy: number, dx: number): number =>
      tf.tidy(() => {
        const [, h, w] = t.shape;
        const a = tf.slice(t, [0, 0, 0, 0], [-1, h - dy, w - dx, -1]);
        const b = tf.slice(t, [0, dy, dx, 0], [-1, h - dy, w - dx, -1]);
        return tf.div(tf.mean(tf.mul(a, b)), tf.mean(tf.square(t))).dataSync()[0];
      });
    row(
      `latent ${l} displacement d`,
      `mean square ${tf.tidy(() => tf.mean(tf.square(t)).dataSync()[0]).toFixed(3)}; ` +
        `neighbour correlation (0,1) ${lag(0, 1).toFixed(3)} (1,0) ${lag(1, 0).toFixed(3)} ` +
        `(1,1) ${lag(1, 1).toFixed(3)}`,
    );
  }
  row(
    "real y",
    `${describe(real)}  hp ${tf.tidy(() => highPass(tf.sub(yReal, x) as tf.Tensor4D)).toFixed(3)}`,
  );
  const other = d.map((t) => roll(t, 1));
  const perLatent = d.map((t, l) => roll(t, 1 + 3 * l));
  const gauss = await Promise.all(d.map((t, l) => gaussianLike(t, 50 + l)));
  const jointCfg = { ...config, jointShift: true };
  const [packed] = packShiftLatents(jointCfg, d);
  const pg = await gaussianLike(packed, 77);
  const joint = unpackShiftLatents(jointCfg, [pg], d.map((t) => t.shape));
  await decodeAt("f⁻¹(f(x) + d): d of the same crop", d);
  await decodeAt("d of another crop", other);
  await decodeAt("d of another crop per latent", perLatent);
  await decodeAt("Gaussian, d's covariance per latent", gauss);
  await decodeAt(`Gaussian, d's covariance per ${2 ** config.levels}² block`, joint);
  tf.dispose([yReal, cond, ...feats, ...zx2, ...zy2, ...d, ...other, ...perLatent, ...gauss]);
  tf.dispose([packed, pg, ...joint]);
  disposeInverses(PI);
}
x.dispose();
