/**
 * `contentGap` (examples/fidelity/content_gap.ts): each column measures what it says — the
 * scenes' difference without a degradation, the degradation on the same photos, and the two
 * together as an unpaired method sees them.
 */
import assert from "node:assert/strict";
import { normals, rng } from "../src/core/random.ts";
import { gaussianNoise, isotropicCov, quantize8 } from "../src/degrade/mod.ts";
import { type RgbImage, rgbImage } from "../src/image/io.ts";
import {
  collectionGap,
  contentGap,
  photoStats,
  sceneSpread,
} from "../examples/fidelity/content_gap.ts";
import { noiseStd } from "../src/eval/stats.ts";
import { gpuTest, noLeak, useBackend } from "./_helpers.ts";

const side = 128;

/** An 8-bit photo: a gradient plus texture of std `texture` (fixed seed), quantised to 1/255. */
const photo = (texture: number, seed: number): RgbImage => {
  const [n] = normals(rng(seed), side * side * 3);
  const d = new Float32Array(side * side * 3);
  for (let i = 0; i < d.length; i++) {
    const x = Math.floor(i / 3) % side;
    const v = 0.3 + 0.3 * x / side + 0.1 * (i % 3) + texture * n[i];
    d[i] = Math.round(255 * Math.min(1, Math.max(0, v))) / 255;
  }
  return rgbImage(side, side, d);
};

Deno.test("contentGap: content, paired and unpaired noise levels", gpuTest, async () => {
  await useBackend();
  // The degraded domain's scenes are busier than the clean domain's (texture 0.04 vs 0.02).
  const col = { clean: [photo(0.02, 1)], degradedSource: [photo(0.04, 2)], test: [photo(0.03, 3)] };
  await noLeak("contentGap", async () => {
    // No degradation (8-bit photos stay as they are): paired changes are nil and the
    // unpaired change is the content difference alone.
    const none = await contentGap(quantize8(), col, 2);
    assert.deepEqual(none.degraded, none.source);
    assert.deepEqual(none.testDegraded, none.test);
    for (let c = 0; c < 3; c++) {
      assert.ok(none.source[c] > 1.5 * none.clean[c], `content gap, channel ${c}: ${none.source}`);
    }
    // Added noise raises every level; the unpaired change mixes it with the content gap.
    const noisy = await contentGap(gaussianNoise({ cov: isotropicCov(0.05) }), col, 2);
    assert.deepEqual(noisy.source, none.source);
    assert.deepEqual(noisy.clean, none.clean);
    for (let c = 0; c < 3; c++) {
      assert.ok(noisy.degraded[c] > 1.2 * noisy.source[c], `paired, ch ${c}: ${noisy.degraded}`);
      assert.ok(
        noisy.testDegraded[c] > 1.2 * noisy.test[c],
        `test, ch ${c}: ${noisy.testDegraded}`,
      );
      const expected = Math.hypot(noisy.source[c], 0.05);
      assert.ok(
        Math.abs(noisy.degraded[c] / expected - 1) < 0.1,
        `noise adds in quadrature, ch ${c}: ${noisy.degraded[c]} vs ${expected}`,
      );
    }
  });
});

Deno.test("sceneSpread: the sd of the log noise level over scenes, a scene's photos pooled", () => {
  const a = photo(0.02, 4);
  const b = photo(0.04, 5);
  const spread = sceneSpread([
    { scene: "a", image: a },
    { scene: "a", image: photo(0.02, 6) },
    { scene: "b", image: b },
  ]);
  const la = noiseStd([a, photo(0.02, 6)]);
  const lb = noiseStd([b]);
  for (let c = 0; c < 3; c++) {
    // Two scenes: sd = |log ratio| / √2; the texture doubles, so the level about doubles.
    const expected = Math.abs(Math.log(lb[c] / la[c])) / Math.SQRT2;
    assert.ok(Math.abs(spread[c] - expected) < 1e-9, `channel ${c}: ${spread[c]} vs ${expected}`);
    assert.ok(spread[c] > 0.35 && spread[c] < 0.55, `about log 2 / √2: ${spread[c]}`);
  }
  assert.throws(() => sceneSpread([{ scene: "a", image: a }]), RangeError);
});

Deno.test("collectionGap: content alone stays within its sd, added noise stands out", () => {
  // Photos whose texture varies from photo to photo (0.01…0.05), as scenes do.
  const textures = [0.01, 0.02, 0.03, 0.04, 0.05, 0.015, 0.025, 0.035];
  const clean = textures.map((t, i) => photo(t, 10 + i));
  const other = textures.slice().reverse().map((t, i) => photo(t, 30 + i));
  const same = collectionGap(clean.map(photoStats), other.map(photoStats));
  const noisy = collectionGap(
    clean.map(photoStats),
    other.map((img, i) => {
      const [n] = normals(rng(50 + i), img.data.length);
      return photoStats(rgbImage(img.width, img.height, img.data.map((v, k) => v + 0.08 * n[k])));
    }),
  );
  // Pooled from per-photo statistics, the levels are the suite's noise level of the photos.
  const [lc, lo] = [noiseStd(clean), noiseStd(other)];
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(same.clean[c] / lc[c] - 1) < 1e-9, `pooled ${same.clean} vs ${lc}`);
    assert.ok(Math.abs(same.degraded[c] / lo[c] - 1) < 1e-9, `pooled ${same.degraded} vs ${lo}`);
  }
  // The spread of single-photo scenes is sceneSpread's.
  const spreadC = sceneSpread(clean.map((image, i) => ({ scene: String(i), image })));
  const spreadO = sceneSpread(other.map((image, i) => ({ scene: String(i), image })));
  for (let c = 0; c < 3; c++) {
    const pooled = Math.sqrt((spreadC[c] ** 2 + spreadO[c] ** 2) / 2) * Math.sqrt(2 / 8);
    assert.ok(Math.abs(same.contentSd[c] / pooled - 1) < 1e-9, `${same.contentSd} vs ${pooled}`);
  }
  for (let c = 0; c < 3; c++) {
    assert.ok(same.contentSd[c] > 0.1, `texture varies ×5, so does the level: ${same.contentSd}`);
    assert.ok(
      Math.abs(same.logChange[c]) < same.contentSd[c],
      `same texture distribution: ${same.logChange[c]} within ${same.contentSd[c]}`,
    );
    assert.ok(
      noisy.logChange[c] > 3 * noisy.contentSd[c],
      `strong noise stands out: ${noisy.logChange[c]} vs ${noisy.contentSd[c]}`,
    );
  }
  assert.throws(() => collectionGap([photoStats(clean[0])], other.map(photoStats)), RangeError);
});
