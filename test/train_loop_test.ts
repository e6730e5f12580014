/**
 * Tests of the unpaired sampler, the degraded-domain normalisation and the training loop
 * (wasm backend, tiny model).
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams, flattenParams, isTrainablePath } from "../src/core/params.ts";
import { configOrThrow, type ModelConfig } from "../src/model/config.ts";
import { type RgbImage, rgbImage } from "../src/image/io.ts";
import {
  loadCheckpoint,
  readCheckpointInfo,
  saveCheckpoint,
  type TrainingState,
} from "../src/io/checkpoint.ts";
import { adamInit, disposeAdamState } from "../src/train/adam.ts";
import { either as E } from "fp-ts";
import type { DeflowParams } from "../src/model/network.ts";
import { balancedBatch, nextBatch, samplerInit, type SamplerState } from "../src/train/sampler.ts";
import {
  computeNormalization,
  denormalizeDegraded,
  normalizeDegraded,
} from "../src/train/normalize.ts";
import { train, trainDefaults, type TrainOptions, type TrainProgress } from "../src/train/loop.ts";
import { downscaledCopies } from "../src/train/cleanFromDegraded.ts";
import { bicubicDownscale } from "../src/image/resize.ts";
import { useBackend } from "./_helpers.ts";
import { loadModel } from "../src/cli/model.ts";
import { loadModelCheckpoint } from "../src/io/model.ts";

const tiny: ModelConfig = configOrThrow({
  levels: 2,
  steps: 1,
  transitionSteps: 1,
  hidden: 8,
  encoder: { nf: 4, nb: 1, gc: 4 },
  conditionFactor: 2,
});

/** An image whose every sample is unique: value = offset + index / size. */
const uniqueImage = (w: number, h: number, offset: number): RgbImage => {
  const d = new Float32Array(w * h * 3);
  for (let i = 0; i < d.length; i++) d[i] = offset + i / d.length;
  return rgbImage(w, h, d);
};

/** A smooth image plus seeded uniform noise of amplitude `noise`. */
const photo = (w: number, h: number, seed: number, noise: number): RgbImage => {
  const d = new Float32Array(w * h * 3);
  let s = seed * 7919 + 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        const n = (s / 4294967296 - 0.5) * noise;
        d[(y * w + x) * 3 + c] = 0.5 + 0.25 * Math.sin(x / 3 + seed) * Math.cos(y / 4 + c) + n;
      }
    }
  }
  return rgbImage(w, h, d);
};

/**
 * Brute-force reference: every `{ top, left, flip }` at which sample `k` (NHWC, `size`²)
 * equals a (possibly horizontally flipped) crop of `im`.
 */
const cropMatches = (
  data: Float32Array,
  k: number,
  size: number,
  im: RgbImage,
): { top: number; left: number; flip: boolean }[] => {
  const base = k * size * size * 3;
  const found: { top: number; left: number; flip: boolean }[] = [];
  for (const flip of [false, true]) {
    for (let top = 0; top + size <= im.height; top++) {
      for (let left = 0; left + size <= im.width; left++) {
        let ok = true;
        for (let y = 0; y < size && ok; y++) {
          for (let x = 0; x < size && ok; x++) {
            const sx = flip ? left + size - 1 - x : left + x;
            for (let c = 0; c < 3 && ok; c++) {
              ok = data[base + (y * size + x) * 3 + c] ===
                im.data[((top + y) * im.width + sx) * 3 + c];
            }
          }
        }
        if (ok) found.push({ top, left, flip });
      }
    }
  }
  return found;
};

Deno.test("sampler: crops come from the right domain, pure and deterministic", async () => {
  await useBackend("wasm");
  const clean = [uniqueImage(9, 7, 0), uniqueImage(6, 8, 1)];
  const degraded = [uniqueImage(7, 7, 2), uniqueImage(10, 6, 3), uniqueImage(5, 9, 4)];
  const before = tf.memory().numTensors;
  const s0 = samplerInit(123);
  const a = nextBatch(s0, clean, degraded, { batch: 40, crop: 5 });
  const b = nextBatch(JSON.parse(JSON.stringify(s0)) as SamplerState, clean, degraded, {
    batch: 40,
    crop: 5,
  });
  assert.deepEqual(a.state, b.state);
  assert.notDeepEqual(a.state, s0);
  const [xa, ma, xb, mb] = await Promise.all(
    [a.batch.x, a.batch.degradedMask, b.batch.x, b.batch.degradedMask].map((t) => t.data()),
  ) as Float32Array[];
  assert.deepEqual(a.batch.x.shape, [40, 5, 5, 3]);
  assert.deepEqual(xa, xb);
  assert.deepEqual(ma, mb);
  let flips = 0;
  for (let k = 0; k < 40; k++) {
    // Offsets 0,1 are clean, 2,3,4 degraded: the first value says which image it came from.
    const src = Math.floor(xa[k * 75]);
    assert.equal(ma[k], src >= 2 ? 1 : 0, `sample ${k}: mask vs source image ${src}`);
    const im = [...clean, ...degraded][src];
    const [m] = cropMatches(xa, k, 5, im);
    assert.ok(m, `sample ${k} is not a crop of image ${src}`);
    if (m.flip) flips++;
  }
  assert.ok(flips > 5 && flips < 35, `flips ${flips}/40`);
  // The next draw differs.
  const c = nextBatch(a.state, clean, degraded, { batch: 40, crop: 5 });
  const xc = await c.batch.x.data() as Float32Array;
  assert.notDeepEqual(xc, xa);
  tf.dispose([a.batch.x, a.batch.degradedMask, b.batch.x, b.batch.degradedMask]);
  tf.dispose([c.batch.x, c.batch.degradedMask]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("sampler: align puts every crop corner on the grid, over all of it", async () => {
  await useBackend("wasm");
  const clean = [uniqueImage(21, 17, 0)];
  const degraded = [uniqueImage(19, 22, 1)];
  const before = tf.memory().numTensors;
  const d = nextBatch(samplerInit(11), clean, degraded, { batch: 60, crop: 8, align: 4 });
  const [x, mask] = await Promise.all([d.batch.x.data(), d.batch.degradedMask.data()]) as [
    Float32Array,
    Float32Array,
  ];
  const corners = new Set<string>();
  for (let k = 0; k < 60; k++) {
    const im = mask[k] > 0.5 ? degraded[0] : clean[0];
    const at = cropMatches(x, k, 8, im);
    assert.equal(at.length, 1, `sample ${k} matches ${at.length} crops`);
    const { top, left } = at[0];
    assert.ok(top % 4 === 0 && left % 4 === 0, `sample ${k} at (${top}, ${left})`);
    corners.add(`${mask[k]}:${top},${left}`);
  }
  // Corners reach the last grid position that fits (21 − 8 = 13 → 12; 22 − 8 = 14 → 12).
  assert.ok([...corners].some((c) => c.endsWith(",12")), [...corners].join(" "));
  assert.ok(corners.size > 10, `${corners.size} distinct corners`);
  // Unaligned draws (align 1) hit off-grid corners.
  const u = nextBatch(samplerInit(11), clean, degraded, { batch: 60, crop: 8 });
  const [xu, mu] = await Promise.all([u.batch.x.data(), u.batch.degradedMask.data()]) as [
    Float32Array,
    Float32Array,
  ];
  let offGrid = 0;
  for (let k = 0; k < 60; k++) {
    const { top, left } = cropMatches(xu, k, 8, mu[k] > 0.5 ? degraded[0] : clean[0])[0];
    if (top % 4 !== 0 || left % 4 !== 0) offGrid++;
  }
  assert.ok(offGrid > 30, `${offGrid} of 60 unaligned crops are off the grid`);
  assert.throws(
    () => nextBatch(samplerInit(1), clean, degraded, { batch: 2, crop: 8, align: 0 }),
    /align must be an integer ≥ 1, got 0/,
  );
  tf.dispose([d.batch.x, d.batch.degradedMask, u.batch.x, u.batch.degradedMask]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("sampler: domains are balanced, balancedBatch has both, small images are named", async () => {
  await useBackend("wasm");
  const clean = [uniqueImage(8, 8, 0)];
  const degraded = [uniqueImage(8, 8, 1)];
  let s = samplerInit(7);
  let degradedCount = 0;
  const n = 2000;
  for (let i = 0; i < n / 200; i++) {
    const d = nextBatch(s, clean, degraded, { batch: 200, crop: 2 });
    s = d.state;
    const m = await d.batch.degradedMask.data() as Float32Array;
    degradedCount += m.reduce((a, b) => a + b, 0);
    tf.dispose([d.batch.x, d.batch.degradedMask]);
  }
  // Binomial(2000, ½): std ≈ 22; allow 4.5 std.
  assert.ok(Math.abs(degradedCount - n / 2) < 100, `degraded ${degradedCount} of ${n}`);

  const bb = balancedBatch(samplerInit(1), clean, degraded, { batch: 5, crop: 4 });
  assert.deepEqual(Array.from(await bb.batch.degradedMask.data()), [0, 0, 0, 1, 1]);
  tf.dispose([bb.batch.x, bb.batch.degradedMask]);

  assert.throws(
    () => nextBatch(samplerInit(0), clean, [uniqueImage(8, 3, 1)], { batch: 2, crop: 4 }),
    /degraded image #0 is 8×3, smaller than the 4×4 crop/,
  );
  await assert.rejects(
    () =>
      train({
        clean: [uniqueImage(16, 16, 0)],
        degraded: [uniqueImage(16, 16, 1), uniqueImage(20, 12, 1)],
        degradedNames: ["dir/ok.png", "dir/small.png"],
        config: tiny,
        iterations: 1,
        crop: 16,
      }),
    /degraded image "dir\/small.png" is 20×12, smaller than the 16×16 crop/,
  );
  assert.throws(
    () => nextBatch(samplerInit(0), [], degraded, { batch: 2, crop: 4 }),
    /clean image set is empty/,
  );
});

Deno.test("normalize: degraded channel statistics match the clean set's, and invert", () => {
  const clean = [photo(12, 10, 1, 0), photo(8, 8, 2, 0)];
  const degraded = [photo(10, 10, 3, 0.5), photo(6, 9, 4, 0.5)].map((im) =>
    rgbImage(im.width, im.height, im.data.map((v, i) => v * (1 + (i % 3) * 0.3) + 0.1))
  );
  const stats = (ims: RgbImage[]) => {
    const mean = [0, 0, 0], sq = [0, 0, 0];
    let n = 0;
    for (const im of ims) {
      for (let i = 0; i < im.data.length; i++) {
        mean[i % 3] += im.data[i];
        sq[i % 3] += im.data[i] ** 2;
      }
      n += im.width * im.height;
    }
    return mean.map((m, c) => [m / n, Math.sqrt(sq[c] / n - (m / n) ** 2)]);
  };
  const norm = computeNormalization(clean, degraded);
  const normed = normalizeDegraded(degraded, norm);
  const want = stats(clean);
  const got = stats(normed);
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(got[c][0] - want[c][0]) < 1e-5, `mean ${c}: ${got[c][0]} vs ${want[c][0]}`);
    assert.ok(Math.abs(got[c][1] - want[c][1]) < 1e-5, `std ${c}: ${got[c][1]} vs ${want[c][1]}`);
    assert.ok(Math.abs(norm.degraded.std[c] - stats(degraded)[c][1]) < 1e-6);
  }
  const back = denormalizeDegraded(normed, norm);
  back.forEach((im, k) => {
    for (let i = 0; i < im.data.length; i++) {
      assert.ok(Math.abs(im.data[i] - degraded[k].data[i]) < 1e-5);
    }
  });
});

const cleanSet = [photo(24, 20, 1, 0.02), photo(20, 24, 2, 0.02), photo(32, 16, 3, 0.02)];
const degradedSet = [photo(24, 24, 4, 0.3), photo(20, 20, 5, 0.3), photo(18, 22, 6, 0.3)];

const base = (over: Partial<TrainOptions> = {}): TrainOptions => ({
  clean: cleanSet,
  degraded: degradedSet,
  config: tiny,
  batch: 4,
  crop: 16,
  seed: 5,
  ...over,
});

const leafValues = async (params: DeflowParams): Promise<Map<string, Float32Array>> => {
  const m = new Map<string, Float32Array>();
  for (const n of flattenParams(params)) {
    m.set(n.path, Float32Array.from(await n.tensor.data() as Float32Array));
  }
  return m;
};

Deno.test("train: finite, decreasing losses; tensor count flat across iterations", async () => {
  await useBackend("wasm");
  const before = tf.memory().numTensors;
  const counts: number[] = [];
  const steps: TrainProgress[] = [];
  const r = await train(base({
    iterations: 14,
    lr: 2e-3,
    emaDecay: 0.5,
    onProgress: (p) => {
      if (p.event === "step") {
        counts.push(tf.memory().numTensors);
        steps.push(p);
      }
    },
  }));
  assert.equal(r.step, 14);
  assert.equal(r.interrupted, false);
  assert.equal(steps.length, 14);
  for (const p of steps) {
    assert.ok(Number.isFinite(p.loss), `step ${p.step} loss ${p.loss}`);
    assert.ok(p.itPerSec > 0);
  }
  assert.ok(counts.every((c) => c === counts[0]), `tensor counts ${counts}`);
  assert.ok(r.history.length >= 12);
  const first = r.history[0], last = r.history[r.history.length - 1];
  assert.ok(last.clean < first.clean, `clean ${first.clean} → ${last.clean}`);
  assert.ok(last.degraded < first.degraded, `degraded ${first.degraded} → ${last.degraded}`);
  // The degraded (noisier) domain costs more bits.
  assert.ok(last.degraded > last.clean);
  tf.dispose(flattenParams(r.params).map((n) => n.tensor));
  assert.equal(tf.memory().numTensors, before);
});

/**
 * Trains 1 and 3 steps with `over` and sorts the trainable leaves by the group they belong
 * to: `frozen` lists the changed leaves among those `isFrozen` picks, `moved` counts the
 * changed leaves per group (shift, contraction, other).
 */
const frozenLeaves = async (over: Partial<TrainOptions>, isFrozen: (path: string) => boolean) => {
  const one = await train(base({ ...over, iterations: 1 }));
  const three = await train(base({ ...over, iterations: 3 }));
  const [a, b] = [await leafValues(one.params), await leafValues(three.params)];
  const frozen: string[] = [];
  const moved = { shift: 0, contraction: 0, other: 0 };
  for (const [path, v] of a) {
    if (!isTrainablePath(path)) continue;
    const same = v.every((x, i) => x === b.get(path)![i]);
    if (isFrozen(path) && !same) frozen.push(path);
    const group = path.startsWith("shiftContractions.")
      ? "contraction"
      : path.startsWith("shifts.") || path.startsWith("shiftScales.")
      ? "shift"
      : "other";
    if (!same) moved[group]++;
  }
  for (const r of [one, three]) tf.dispose(flattenParams(r.params).map((n) => n.tensor));
  return { frozen, moved };
};

Deno.test("train: shiftLrMultiple 0 freezes the latent shifts, the run settings record it", async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir({ prefix: "deflow-train-shiftlr-" });
  try {
    assert.ok(tiny.contractShift, "the tiny model has contractions");
    const shiftFrozen = await frozenLeaves(
      { shiftLrMultiple: 0 },
      (p) => p.startsWith("shifts.") || p.startsWith("shiftScales."),
    );
    assert.deepEqual(shiftFrozen.frozen, [], "shift leaves changed with shiftLrMultiple 0");
    assert.ok(shiftFrozen.moved.other > 10, `only ${shiftFrozen.moved.other} other leaves moved`);
    assert.ok(shiftFrozen.moved.contraction > 0, "the contractions did not move");
    const kFrozen = await frozenLeaves(
      { contractionLrMultiple: 0 },
      (p) => p.startsWith("shiftContractions."),
    );
    assert.deepEqual(kFrozen.frozen, [], "contractions changed with contractionLrMultiple 0");
    assert.ok(kFrozen.moved.shift > 0, "the shifts did not move");
    const three = await train(base({ iterations: 3, shiftLrMultiple: 0, outDir: dir }));
    const run = JSON.parse(await Deno.readTextFile(`${dir}/loss.json`)).run;
    assert.equal(run.shiftLrMultiple, 0);
    assert.equal(run.contractionLrMultiple, trainDefaults.contractionLrMultiple);
    const ckpt = `${dir}/checkpoint.safetensors`;
    const resumed = await train(base({ iterations: 4, outDir: dir, resumeFrom: ckpt }));
    tf.dispose(flattenParams(resumed.params).map((n) => n.tensor));
    const run2 = JSON.parse(await Deno.readTextFile(`${dir}/loss.json`)).run;
    assert.equal(run2.shiftLrMultiple, 0, "resuming keeps the checkpoint's shift multiple");
    assert.equal(run2.contractionLrMultiple, trainDefaults.contractionLrMultiple);
    // A checkpoint written before the option trained K at its shift multiple: resuming it
    // keeps that rate.
    const template = adamInit(three.params);
    const loaded = await loadCheckpoint(ckpt, { params: three.params, optimizer: template });
    disposeAdamState(template);
    tf.dispose(flattenParams(three.params).map((n) => n.tensor));
    assert.ok(E.isRight(loaded));
    const { contractionLrMultiple: _, ...older } = (loaded.right.training as unknown as {
      run: Record<string, unknown>;
    }).run;
    await saveCheckpoint(ckpt, {
      ...loaded.right,
      training: {
        ...loaded.right.training,
        run: { ...older, shiftLrMultiple: 3 },
      } as TrainingState,
    });
    tf.dispose(flattenParams(loaded.right.params).map((n) => n.tensor));
    disposeAdamState(loaded.right.optimizer!);
    const older4 = await train(base({ iterations: 5, outDir: dir, resumeFrom: ckpt }));
    tf.dispose(flattenParams(older4.params).map((n) => n.tensor));
    const run3 = JSON.parse(await Deno.readTextFile(`${dir}/loss.json`)).run;
    assert.deepEqual([run3.shiftLrMultiple, run3.contractionLrMultiple], [3, 3]);
    assert.equal(run.cropAlign, 1, "crops start anywhere by default");
    await assert.rejects(
      () =>
        train(base({
          iterations: 4,
          outDir: dir,
          resumeFrom: `${dir}/checkpoint.safetensors`,
          cropAlign: 2,
        })),
      /cropAlign 2 differs from the run's 1/,
    );
    await assert.rejects(
      () => train(base({ iterations: 1, shiftLrMultiple: -1 })),
      /shiftLrMultiple must be a finite number ≥ 0, got -1/,
    );
    await assert.rejects(
      () => train(base({ iterations: 1, contractionLrMultiple: NaN })),
      /contractionLrMultiple must be a finite number ≥ 0, got NaN/,
    );
    await assert.rejects(
      () => train(base({ iterations: 1, cropAlign: 5 })),
      /crop 16 must be a multiple of cropAlign 5/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downscaledCopies: antialiased bicubic copies on the 8-bit grid, small ones left out", async () => {
  await useBackend("wasm");
  const before = tf.memory().numTensors;
  const flat = rgbImage(40, 40, new Float32Array(40 * 40 * 3).fill(100 / 255));
  const noisy = photo(48, 40, 7, 0.6);
  const small = photo(24, 24, 8, 0.3);
  const out = await downscaledCopies([flat, small, noisy], 2.5, 16);
  assert.equal(out.length, 2, "the 24-px photo (10 px after ÷2.5) is left out");
  assert.deepEqual([out[0].width, out[0].height, out[1].width, out[1].height], [16, 16, 20, 16]);
  // A constant photo stays the same constant (the weights sum to 1).
  assert.ok(out[0].data.every((v) => Math.abs(v - 100 / 255) < 1e-6));
  // Every value is an 8-bit level in [0, 1], and equals the rounded bicubic downscale.
  const ref = tf.tidy(() =>
    bicubicDownscale(tf.tensor4d(noisy.data, [1, 40, 48, 3]), 2.5).dataSync() as Float32Array
  );
  out[1].data.forEach((v, i) => {
    assert.ok(Math.abs(v * 255 - Math.round(v * 255)) < 1e-4 && v >= 0 && v <= 1, `sample ${i}`);
    assert.ok(Math.abs(v - Math.min(1, Math.max(0, ref[i]))) <= 0.5 / 255 + 1e-6, `sample ${i}`);
  });
  // The antialiasing filter averages the noise away: high-pass energy drops.
  const hp = (im: RgbImage) => {
    let s = 0, n = 0;
    for (let i = 3; i < im.data.length; i += 3) {
      s += (im.data[i] - im.data[i - 3]) ** 2;
      n++;
    }
    return s / n;
  };
  assert.ok(hp(out[1]) < 0.3 * hp(noisy), `high-pass ${hp(out[1])} vs ${hp(noisy)}`);
  await assert.rejects(
    () => downscaledCopies([flat], 1, 4),
    /factor must be a finite number > 1, got 1/,
  );
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("train: cleanFromDegraded trains the clean domain on downscaled degraded photos", async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir({ prefix: "deflow-train-cfd-" });
  try {
    const degraded = [photo(40, 36, 9, 0.3), photo(24, 24, 10, 0.3)];
    const copies = await downscaledCopies(degraded, 2, 16);
    assert.equal(copies.length, 1);
    // Same seed: the option equals giving the copies as extra clean photos by hand.
    const withOption = await train(base({
      degraded,
      iterations: 3,
      cleanFromDegraded: 2,
      outDir: dir,
    }));
    const byHand = await train(base({ clean: [...cleanSet, ...copies], degraded, iterations: 3 }));
    const without = await train(base({ degraded, iterations: 3 }));
    const [a, b, c] = await Promise.all(
      [withOption, byHand, without].map((r) => leafValues(r.params)),
    );
    let differs = 0;
    for (const [path, v] of a) {
      assert.deepEqual(v, b.get(path), path);
      if (!v.every((x, i) => x === c.get(path)![i])) differs++;
    }
    assert.ok(differs > 10, `only ${differs} leaves differ from the run without the option`);
    for (const r of [withOption, byHand, without]) {
      tf.dispose(flattenParams(r.params).map((n) => n.tensor));
    }
    const run = JSON.parse(await Deno.readTextFile(`${dir}/loss.json`)).run;
    assert.equal(run.cleanFromDegraded, 2);
    await assert.rejects(
      () =>
        train(base({
          degraded,
          iterations: 4,
          resumeFrom: `${dir}/checkpoint.safetensors`,
          cleanFromDegraded: 4,
        })),
      /cleanFromDegraded 4 differs from the run's 2/,
    );
    await assert.rejects(
      () => train(base({ iterations: 1, cleanFromDegraded: 4 })),
      /cleanFromDegraded 4: no degraded image downscaled by 4 is at least the crop \(16 px\)/,
    );
    for (const bad of [1, -2, NaN]) {
      await assert.rejects(
        () => train(base({ iterations: 1, cleanFromDegraded: bad })),
        /cleanFromDegraded must be 0 \(off\) or a finite number > 1/,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: contractShift learns K, saves it, and a resumed run keeps it", async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir({ prefix: "deflow-train-contract-" });
  try {
    const config = { ...tiny, contractShift: true };
    const two = await train(base({ config, iterations: 2, outDir: dir }));
    assert.equal(two.params.shiftContractions.length, two.params.shifts.length);
    const three = await train(base({
      config,
      iterations: 3,
      outDir: dir,
      resumeFrom: `${dir}/checkpoint.safetensors`,
    }));
    const [a, b] = [await leafValues(two.params), await leafValues(three.params)];
    const kPaths = [...a.keys()].filter((p) => p.startsWith("shiftContractions."));
    assert.ok(kPaths.length > 0 && kPaths.every((p) => b.has(p)), `K leaves ${kPaths}`);
    assert.ok(
      kPaths.some((p) => a.get(p)!.some((v, i) => v !== b.get(p)![i])),
      "K did not move in the resumed step",
    );
    const loaded = await loadModel(`${dir}/checkpoint.safetensors`);
    assert.equal(loaded.config.contractShift, true);
    const c = await leafValues(loaded.params);
    for (const p of kPaths) assert.deepEqual(c.get(p), b.get(p), `${p} after loading`);
    for (const r of [two, three, loaded]) tf.dispose(flattenParams(r.params).map((n) => n.tensor));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: interrupted + resumed run equals the uninterrupted one", async () => {
  await useBackend("wasm");
  const dirA = await Deno.makeTempDir({ prefix: "deflow-train-a-" });
  const dirB = await Deno.makeTempDir({ prefix: "deflow-train-b-" });
  try {
    const before = tf.memory().numTensors;
    const a = await train(base({ iterations: 6, outDir: dirA, checkpointEvery: 2 }));
    const ctl = new AbortController();
    const b1 = await train(base({
      iterations: 6,
      outDir: dirB,
      checkpointEvery: 2,
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.event === "step" && p.step === 3) ctl.abort();
      },
    }));
    assert.equal(b1.interrupted, true);
    assert.equal(b1.step, 3);
    const v3 = await leafValues(b1.params);
    tf.dispose(flattenParams(b1.params).map((n) => n.tensor));
    // Resume takes every setting from the checkpoint.
    const b = await train({
      clean: cleanSet,
      degraded: degradedSet,
      outDir: dirB,
      resumeFrom: `${dirB}/checkpoint.safetensors`,
    });
    assert.equal(b.step, 6);
    assert.deepEqual(b.history, a.history);
    const va = await leafValues(a.params);
    const vb = await leafValues(b.params);
    assert.deepEqual([...va.keys()], [...vb.keys()]);
    for (const [k, x] of va) assert.deepEqual(vb.get(k), x, `leaf ${k} differs`);
    // Between step 3 and step 6 every trainable leaf moved (Adam moves each entry with a
    // non-zero gradient by about lr per step); fixed (const) leaves did not.
    const moved: string[] = [];
    const still: string[] = [];
    for (const [k, x] of va) {
      const y = v3.get(k)!;
      let d = 0;
      for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
      (d > 0 ? moved : still).push(k);
    }
    const fixed = [...va.keys()].filter((k) => !isTrainablePath(k));
    assert.ok(fixed.length > 0);
    assert.deepEqual(still, fixed, "exactly the fixed leaves stay put");
    assert.ok(moved.length > 50, `${moved.length} leaves moved`);
    assert.ok(moved.some((k) => k.startsWith("encoder.")), "the encoder trains");
    assert.ok(moved.some((k) => /^shifts\.\d+\.m$/.test(k)), "the shift covariances train");
    for (const f of ["checkpoint.safetensors", "loss.json", "loss.png"]) {
      assert.ok((await Deno.stat(`${dirB}/${f}`)).size > 0, f);
    }
    const lossJson = JSON.parse(await Deno.readTextFile(`${dirA}/loss.json`));
    assert.equal(lossJson.step, 6);
    assert.deepEqual(lossJson.history, a.history);
    tf.dispose(flattenParams(a.params).map((n) => n.tensor));
    tf.dispose(flattenParams(b.params).map((n) => n.tensor));
    assert.equal(tf.memory().numTensors, before);
  } finally {
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  }
});

Deno.test("train: averageDecay returns the bias-corrected average of the iterates, which resumes exactly", async () => {
  await useBackend("wasm");
  const d = 0.6;
  // A constant learning rate, so that the first k steps of any run are the same iterates.
  const flat = (over: Partial<TrainOptions>) => base({ milestones: [], lr: 2e-3, ...over });
  const before = tf.memory().numTensors;
  const iterates: Map<string, Float32Array>[] = [];
  for (const k of [1, 2, 3]) {
    const r = await train(flat({ iterations: k }));
    iterates.push(await leafValues(r.params));
    disposeParams(r.params);
  }
  const plain = await train(flat({ iterations: 3 }));
  const avg = await train(flat({ iterations: 3, averageDecay: d }));
  // Averaging does not change the optimiser's path.
  assert.deepEqual(avg.history, plain.history);
  const got = await leafValues(avg.params);
  const w = [d * d, d, 1];
  const wSum = w[0] + w[1] + w[2];
  let differsFromLast = 0;
  for (const [path, v] of got) {
    const xs = iterates.map((m) => m.get(path)!);
    if (!isTrainablePath(path)) {
      assert.deepEqual(v, xs[2], `fixed leaf ${path}`);
      continue;
    }
    for (let i = 0; i < v.length; i++) {
      const want = (w[0] * xs[0][i] + w[1] * xs[1][i] + w[2] * xs[2][i]) / wSum;
      const tol = 1e-6 + 1e-5 * Math.abs(want);
      assert.ok(Math.abs(v[i] - want) <= tol, `${path}[${i}]: ${v[i]} vs ${want}`);
      if (Math.abs(v[i] - xs[2][i]) > 10 * tol) differsFromLast++;
    }
  }
  assert.ok(
    differsFromLast > 100,
    `the average differs from the last iterate (${differsFromLast})`,
  );
  for (const r of [plain, avg]) disposeParams(r.params);
  assert.equal(tf.memory().numTensors, before);

  // Interrupted at step 2 and resumed: the same average, the same history; the checkpoint's
  // parameters (what sampling loads) are the average, and the run's decay cannot change.
  const dirA = await Deno.makeTempDir({ prefix: "deflow-avg-a-" });
  const dirB = await Deno.makeTempDir({ prefix: "deflow-avg-b-" });
  try {
    const a = await train(flat({ iterations: 5, averageDecay: d, outDir: dirA }));
    const ctl = new AbortController();
    const b1 = await train(flat({
      iterations: 5,
      averageDecay: d,
      outDir: dirB,
      signal: ctl.signal,
      onProgress: (p) => {
        if (p.event === "step" && p.step === 2) ctl.abort();
      },
    }));
    assert.equal(b1.step, 2);
    disposeParams(b1.params);
    const ckpt = `${dirB}/checkpoint.safetensors`;
    await assert.rejects(
      () => train({ ...flat({ averageDecay: 0.9 }), outDir: dirB, resumeFrom: ckpt }),
      /averageDecay 0.9 differs from the run's 0.6/,
    );
    // The same checkpoint re-saved without the iterate cannot resume an averaging run.
    const full = await loadModelCheckpoint(ckpt, { optimizer: adamInit });
    const { iterate, ...moments } = full.optimizer!;
    assert.equal(iterate?.length, moments.paths.length);
    const stripped = `${dirB}/stripped.safetensors`;
    await saveCheckpoint(stripped, {
      params: full.params,
      optimizer: moments,
      config: full.info.config,
      training: full.training,
    });
    disposeParams(full.params);
    disposeAdamState(full.optimizer!);
    await assert.rejects(
      () => train({ ...flat({}), outDir: dirB, resumeFrom: stripped }),
      /lacks the optimiser's iterate \(adam\.x\.\*\)/,
    );
    await Deno.remove(stripped);
    const b = await train({
      clean: cleanSet,
      degraded: degradedSet,
      outDir: dirB,
      resumeFrom: ckpt,
    });
    assert.equal(b.step, 5);
    assert.deepEqual(b.history, a.history);
    const [va, vb] = [await leafValues(a.params), await leafValues(b.params)];
    for (const [k, x] of va) assert.deepEqual(vb.get(k), x, `leaf ${k} differs`);
    const model = await loadModel(`${dirA}/checkpoint.safetensors`);
    const vm = await leafValues(model.params);
    for (const [k, x] of va) assert.deepEqual(vm.get(k), x, `saved leaf ${k} is not the average`);
    const run = JSON.parse(await Deno.readTextFile(`${dirA}/loss.json`)).run;
    assert.equal(run.averageDecay, d);
    disposeParams(model.params);
    disposeParams(a.params);
    disposeParams(b.params);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  }
  await assert.rejects(() => train(flat({ iterations: 1, averageDecay: 1 })), /averageDecay/);
});

Deno.test("train: a corrupt or foreign checkpoint gives a clear error and changes nothing", async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir({ prefix: "deflow-train-bad-" });
  try {
    const path = `${dir}/checkpoint.safetensors`;
    const garbage = new TextEncoder().encode("this is not a checkpoint at all");
    await Deno.writeFile(path, garbage);
    const before = tf.memory().numTensors;
    await assert.rejects(
      () => train(base({ iterations: 4, outDir: dir, resumeFrom: path })),
      (e: Error) => /^train: cannot resume: .*checkpoint\.safetensors/.test(e.message),
    );
    assert.deepEqual(await Deno.readFile(path), garbage);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["checkpoint.safetensors"]);

    // A well-formed file with an invalid config: the codec's path-level message.
    const leaf = tf.zeros([2]);
    await saveCheckpoint(path, {
      params: { a: leaf },
      config: { levels: -1 },
      training: { step: 1, rng: 0, sampler: null },
    });
    leaf.dispose();
    const bytes = await Deno.readFile(path);
    await assert.rejects(
      () => train(base({ iterations: 4, outDir: dir, resumeFrom: path })),
      /invalid model config in the checkpoint: Invalid value -1 supplied to : ModelConfig\/levels/,
    );
    assert.deepEqual(await Deno.readFile(path), bytes);
    assert.equal(tf.memory().numTensors, before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: consecutive non-finite losses abort with a clear message", async () => {
  await useBackend("wasm");
  const nan = (im: RgbImage) => rgbImage(im.width, im.height, im.data.map(() => NaN));
  const before = tf.memory().numTensors;
  let seen = 0;
  await assert.rejects(
    () =>
      train(base({
        clean: cleanSet.map(nan),
        degraded: degradedSet.map(nan),
        iterations: 10,
        maxSkips: 3,
        onProgress: (p) => {
          if (p.event === "step") {
            assert.equal(p.skipped, true);
            seen++;
          }
        },
      })),
    /train: 3 consecutive steps had a non-finite loss \(last at step 3\); aborting/,
  );
  assert.equal(seen, 3);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(
    () => train(base({ crop: 10, iterations: 1 })),
    /crop 10 must be a multiple of 4/,
  );
  await assert.rejects(() => train(base({})), /iterations is required/);
});

Deno.test("train: normalize stores the degraded→clean normalisation in the checkpoint", async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir({ prefix: "deflow-train-norm-" });
  try {
    const r = await train(base({ iterations: 2, outDir: dir, normalize: true }));
    tf.dispose(flattenParams(r.params).map((n) => n.tensor));
    const want = computeNormalization(cleanSet, degradedSet);
    assert.deepEqual(r.normalization, want);
    const info = await readCheckpointInfo(`${dir}/checkpoint.safetensors`);
    assert.ok(E.isRight(info));
    const training = info.right.training as unknown as { normalization: unknown; step: number };
    assert.equal(training.step, 2);
    assert.deepEqual(training.normalization, want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
