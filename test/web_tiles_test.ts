/**
 * The web page's tile-by-tile sampling (examples/web/tiles.ts) gives exactly what
 * `degrade` gives for the whole image, and its seed inversion undoes `foldIn`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import { foldIn } from "../src/core/random.ts";
import { disposeParams } from "../src/core/params.ts";
import { degrade, prepareSampler, recommendedGridOffsets } from "../src/model/sample.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { sizeMultiple } from "../src/model/layout.ts";
import {
  cliImageSeed,
  degradeByTiles,
  hash32,
  planTiles,
  unfoldIn,
} from "../examples/web/tiles.ts";
import { gpuTest, perturbedModel, tinyConfig, useBackend } from "./_helpers.ts";

Deno.test("web tiles: unfoldIn inverts foldIn for any seed and purpose", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.nat(), (s, k) => {
      assert.equal(unfoldIn(foldIn(s, k), k), s);
    }),
    { seed: 11, numRuns: 2000 },
  );
});

Deno.test("web tiles: cliImageSeed hashes the file stem (FNV-1a)", () => {
  assert.equal(hash32(""), 0x811c9dc5);
  assert.equal(hash32("a"), 0xe40c292c); // FNV-1a 32-bit test vector
  assert.equal(cliImageSeed(7, "dir/coffee.png"), foldIn(7, hash32("coffee")));
});

Deno.test("web tiles: the plan covers every pixel once, windows on the 2^levels grid", () => {
  const cases = [[70, 45, 32, 4], [32, 32, 32, 4], [5, 300, 64, 8], [77, 91, 37, 5], [
    40,
    90,
    30,
    3,
  ]];
  for (const [h, w, tile, ov] of cases) {
    const seen = new Uint8Array(h * w);
    const tiles = planTiles(h, w, 8, tile, ov);
    for (const t of tiles) {
      assert.ok(t.height % 8 === 0 && t.width % 8 === 0);
      assert.ok(t.height >= t.y1 - t.y0 + 2 * t.overlap);
      // The window's corner sits on the image's block grid (the flow's squeeze phase).
      assert.ok((t.y0 - t.overlap) % 8 === 0 && (t.x0 - t.overlap) % 8 === 0, JSON.stringify(t));
      for (let y = t.y0; y < t.y1; y++) for (let x = t.x0; x < t.x1; x++) seen[y * w + x]++;
    }
    assert.ok(seen.every((v) => v === 1), `${h}×${w}: pixels covered ≠ once`);
    assert.equal(tiles.length > 1, !(h <= tile && w <= tile));
  }
});

Deno.test(
  "web tiles: tile by tile equals degrade on the whole image (grid offsets by default for a spinnable model)",
  gpuTest,
  async () => {
    await useBackend("wasm");
    for (
      const [config, offsets] of [
        [tinyConfig(), 1],
        [tinyConfig({ linearCoupling: true, jointShift: true }), 16],
      ] as const
    ) {
      assert.equal(recommendedGridOffsets(config), offsets);
      await tiledEqualsWhole(config, offsets);
    }
  },
);

const tiledEqualsWhole = async (config: ModelConfig, gridOffsets: number) => {
  const params = perturbedModel(config, 3, 0.05);
  const sampler = await prepareSampler(params, config);
  const m = sizeMultiple(config);
  const x = tf.randomUniform([1, 7 * m + 3, 5 * m + 1, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  const tile = 4 * m, overlap = m / 2;
  let ys: tf.Tensor4D[] = [];
  try {
    ys = degrade(sampler, x, {
      seed: 42,
      temperature: 0.8,
      samples: 2,
      tile,
      overlap,
      ...(gridOffsets > 1 ? { gridOffsets } : {}),
    });
    let calls = 0;
    for (const s of [0, 1]) {
      const got = await degradeByTiles(sampler, x, {
        seed: 42,
        temperature: 0.8,
        sample: s,
        tile,
        overlap,
        onTile: () => void calls++,
      });
      const want = await ys[s].data();
      let diff = 0;
      for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
      assert.equal(diff, 0, `sample ${s}: max |tiled − whole| = ${diff}`);
    }
    const n = planTiles(x.shape[1], x.shape[2], m, tile, overlap).length;
    assert.ok(n > 4, `expected several tiles, got ${n}`);
    assert.equal(calls, 2 * n);
  } finally {
    tf.dispose([x, ...ys]);
    sampler.dispose();
    disposeParams(params);
  }
};
