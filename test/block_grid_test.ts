import assert from "node:assert/strict";
import { blockGridScore, collectionBlockGridScore } from "../src/eval/blockGrid.ts";
import {
  chooseSetting,
  JPEG_GRID_THRESHOLD,
  NOISE_CLEAN_FROM_DEGRADED,
  pickSetting,
  settings,
} from "../src/train/setting.ts";
import { defaultConfig } from "../src/model/config.ts";
import { DEFAULT_ITERATIONS, trainIterations } from "../src/cli/commands.ts";
import {
  clip01,
  compose,
  degradeImage,
  gaussianNoise,
  isotropicCov,
  jpegCompress,
  quantize8,
} from "../src/degrade/mod.ts";
import { readImageOrThrow, type RgbImage, rgbImage } from "../src/image/io.ts";
import { gpuTest, noLeak, useBackend } from "./_helpers.ts";

const photo = (name: string) =>
  readImageOrThrow(new URL(`../examples/data/photos/${name}`, import.meta.url).pathname);

/** The `w`×`h` window of `im` at (`x0`, `y0`). */
const window = (im: RgbImage, x0: number, y0: number, w: number, h: number): RgbImage => {
  const d = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const s = ((y0 + y) * im.width + x0) * 3;
    d.set(im.data.subarray(s, s + w * 3), y * w * 3);
  }
  return rgbImage(w, h, d);
};

const noisy = compose(gaussianNoise({ cov: isotropicCov(0.03) }), clip01(), quantize8());

Deno.test(
  "blockGridScore: JPEG's grid stands out wherever it sits; noise and photos do not",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const photos = [await photo("coffee.png"), await photo("chelsea.png")].map((p) =>
      window(p, 40, 40, 200, 160)
    );
    await noLeak("blockGrid", async () => {
      for (const [i, p] of photos.entries()) {
        const plain = blockGridScore(p);
        const withNoise = blockGridScore(await degradeImage(noisy, p, 11 + i));
        assert.ok(plain < JPEG_GRID_THRESHOLD, `photo ${i}: ${plain}`);
        assert.ok(withNoise < JPEG_GRID_THRESHOLD, `photo ${i} + noise: ${withNoise}`);
        for (const quality of [30, 80]) {
          const j = await degradeImage(jpegCompress({ quality, chroma: "420" }), p, 0);
          const onGrid = blockGridScore(j);
          // Cropped after compression: the grid moves to another phase in both directions.
          const moved = blockGridScore(window(j, 3, 5, 190, 150));
          const noisyJpeg = blockGridScore(
            await degradeImage(compose(noisy, jpegCompress({ quality, chroma: "420" })), p, 5),
          );
          for (const [what, s] of [["", onGrid], [" moved", moved], [" after noise", noisyJpeg]]) {
            assert.ok(
              (s as number) >= JPEG_GRID_THRESHOLD,
              `photo ${i}, JPEG q${quality}${what}: ${s}`,
            );
          }
        }
      }
    });
  },
);

Deno.test("blockGridScore: a constant image scores 1, a too small one throws", () => {
  assert.equal(blockGridScore(rgbImage(16, 16, new Float32Array(16 * 16 * 3).fill(0.4))), 1);
  assert.throws(() => blockGridScore(rgbImage(15, 40, new Float32Array(15 * 40 * 3))), /16/);
  assert.throws(() => collectionBlockGridScore([]), /no image/);
  // An image with only vertical 8-periodic edges in one direction is not a block grid.
  const stripes = new Float32Array(64 * 64 * 3);
  for (let i = 0; i < 64 * 64; i++) stripes.fill((i % 64) % 8 === 0 ? 1 : 0, 3 * i, 3 * i + 3);
  assert.ok(blockGridScore(rgbImage(64, 64, stripes)) <= 1, "stripes in one direction only");
});

Deno.test(
  "collectionBlockGridScore: the median over a collection separates q90 from none",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const names = ["astronaut.png", "coffee.png", "rocket.png", "flower.png", "chelsea.png"];
    const ims = await Promise.all(names.map(photo));
    const none = collectionBlockGridScore(ims);
    const q90 = collectionBlockGridScore(
      await Promise.all(ims.map((im) => degradeImage(jpegCompress({ quality: 90 }), im, 0))),
    );
    assert.ok(none < JPEG_GRID_THRESHOLD && q90 >= JPEG_GRID_THRESHOLD, `${none} ${q90}`);
  },
);

Deno.test(
  "chooseSetting: the paper's flow for JPEG, the noise setting otherwise",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const big = window(await photo("motorcycle_left.png"), 0, 0, 288, 272);
    const small = window(big, 100, 100, 160, 160);
    const jpeg = await degradeImage(jpegCompress({ quality: 70, chroma: "420" }), big, 0);
    const noise = await degradeImage(noisy, big, 3);
    const j = chooseSetting([jpeg], 64);
    assert.equal(j.setting, settings.paper);
    // The library's defaults with the content-independent gains (additive couplings,
    // constant split-prior scales).
    assert.deepEqual(j.setting.config, {
      ...defaultConfig,
      additiveCoupling: true,
      constantPriorScale: true,
    });
    assert.match(j.reason, /JPEG-compressed/);
    const n = chooseSetting([noise], 64);
    assert.equal(n.setting.name, "noise");
    assert.equal(n.setting.cleanFromDegraded, NOISE_CLEAN_FROM_DEGRADED);
    assert.ok(n.setting.config.linearCoupling && n.setting.config.jointShift);
    assert.ok(n.setting.config.stationaryScale);
    assert.ok(n.score < JPEG_GRID_THRESHOLD && j.score >= JPEG_GRID_THRESHOLD);
    // 160 / 4 = 40 < 64: no downscaled copy fits a crop, so the option is off and said so.
    const s = chooseSetting([await degradeImage(noisy, small, 4)], 64);
    assert.equal(s.setting.name, "noise");
    assert.equal(s.setting.cleanFromDegraded, 0);
    assert.match(s.reason, /none would be 64 pixels a side/);
    // Named settings: taken as they are, the noise setting's copies dropped the same way.
    const named = pickSetting("noise", [jpeg], 64);
    assert.equal(named.setting, settings.noise);
    assert.equal(named.reason, "as asked");
    const namedSmall = pickSetting("noise", [small], 64);
    assert.equal(namedSmall.setting.cleanFromDegraded, 0);
    assert.match(namedSmall.reason, /^as asked, without the degraded images downscaled by 4/);
    assert.equal(pickSetting("paper", [noise], 64).setting, settings.paper);
    assert.equal(pickSetting("auto", [noise], 64).setting.name, "noise");
    // The training length: the setting's unless asked; the checkpoint's on --resume.
    assert.equal(trainIterations(undefined, false, j.setting), settings.paper.iterations);
    assert.equal(trainIterations(undefined, false, n.setting), settings.noise.iterations);
    assert.ok(settings.paper.iterations < settings.noise.iterations);
    assert.equal(trainIterations(7, false, j.setting), 7);
    assert.equal(trainIterations(undefined, false), DEFAULT_ITERATIONS);
    assert.equal(trainIterations(undefined, true), undefined);
    assert.equal(trainIterations(9, true), 9);
  },
);
