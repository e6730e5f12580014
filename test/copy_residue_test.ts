/**
 * The suite's check of `cleanFromDegraded`'s assumption (`copyResidue`): a fine-grained
 * degradation is averaged away by the downscale, a low-frequency one is not.
 */
import assert from "node:assert/strict";
import { normals, rng } from "../src/core/random.ts";
import { type RgbImage, rgbImage } from "../src/image/io.ts";
import { copyResidue } from "../examples/fidelity/evaluate.ts";
import { gpuTest, noLeak, useBackend } from "./_helpers.ts";

const side = 128;

/** A test photo: a horizontal gradient, a channel offset and a bright disc. */
const photo = (): RgbImage => {
  const d = new Float32Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const r = Math.hypot(x - 60, y - 70);
      for (let c = 0; c < 3; c++) {
        d[(y * side + x) * 3 + c] = 0.2 + 0.3 * x / side + 0.1 * c + (r < 30 ? 0.2 : 0);
      }
    }
  }
  return rgbImage(side, side, d);
};

/** `img` plus `delta(i)` at each interleaved RGB sample `i`, clamped to [0, 1]. */
const plus = (img: RgbImage, delta: (i: number) => number): RgbImage =>
  rgbImage(img.width, img.height, img.data.map((v, i) => Math.min(1, Math.max(0, v + delta(i)))));

Deno.test("copyResidue: white grain is averaged away, a 32-px ripple is not", gpuTest, async () => {
  await useBackend();
  const src = photo();
  const [noise] = normals(rng(11), side * side * 3);
  const grain = plus(src, (i) => 0.05 * noise[i]);
  const ripple = plus(src, (i) => {
    const x = Math.floor(i / 3) % side;
    return 0.05 * Math.sin((2 * Math.PI * x) / 32);
  });
  await noLeak("copyResidue", async () => {
    const g = await copyResidue([grain], [src], 4, 16);
    const r = await copyResidue([ripple], [src], 4, 16);
    assert.ok(g.fullSize.every((s) => s > 0.03), `grain measured at full size: ${g.fullSize}`);
    assert.ok(g.ratio < 0.3, `white grain survives ÷4: ${g.ratio}`);
    assert.ok(r.ratio > 1, `a 32-px ripple is high-pass at ÷4, its residue grows: ${r.ratio}`);
  });
});
