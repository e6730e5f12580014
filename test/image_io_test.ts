import assert from "node:assert/strict";
import { either as E } from "fp-ts";
import { encode as pngEncode } from "fast-png";
import jpeg from "jpeg-js";
import {
  decodeImage,
  encodePng,
  imagesToTensor,
  imageToTensor,
  listImages,
  readImage,
  readImageOrThrow,
  type RgbImage,
  rgbImage,
  tensorToImages,
  writePng,
} from "../src/image/io.ts";
import { makeGrid } from "../src/image/grid.ts";
import { plotLines } from "../src/image/plot.ts";
import { rng, uniforms } from "../src/core/random.ts";
import { gpuTest, noLeak, useBackend } from "./_helpers.ts";

const randomImage8 = (w: number, h: number, seed: number): RgbImage => {
  const [u] = uniforms(rng(seed), w * h * 3);
  return rgbImage(w, h, Float32Array.from(u, (v) => Math.floor(v * 256) / 255));
};

const px = (im: RgbImage, x: number, y: number): number[] =>
  Array.from(im.data.subarray((y * im.width + x) * 3, (y * im.width + x) * 3 + 3));

Deno.test("PNG write → read is exact on 8-bit values", async () => {
  const dir = await Deno.makeTempDir();
  const img = randomImage8(13, 7, 1);
  await writePng(`${dir}/a.png`, img);
  const back = await readImageOrThrow(`${dir}/a.png`);
  assert.equal(back.width, 13);
  assert.equal(back.height, 7);
  assert.deepEqual(Array.from(back.data), Array.from(img.data));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("PNG gray, gray+alpha 16-bit, RGBA, 1-bit and palette decode to RGB floats", () => {
  // Independent encoder: fast-png's encode with raw channel layouts.
  const gray = pngEncode({
    width: 2,
    height: 1,
    data: new Uint8Array([0, 51]),
    channels: 1,
    depth: 8,
  });
  assert.deepEqual(
    Array.from(E.getOrElseW(() => null)(decodeImage(gray))!.data),
    [
      0,
      0,
      0,
      0.2,
      0.2,
      0.2,
    ].map(Math.fround),
  );
  const ga16 = pngEncode({
    width: 1,
    height: 1,
    data: new Uint16Array([65535 * 0.5 | 0, 7]),
    channels: 2,
    depth: 16,
  });
  const g16 = E.getOrElseW(() => null)(decodeImage(ga16))!;
  assert.ok(Math.abs(g16.data[0] - 32767 / 65535) < 1e-7 && g16.data[2] === g16.data[0]);
  const rgba = pngEncode({
    width: 1,
    height: 2,
    data: new Uint8Array([255, 0, 102, 0, 1, 2, 3, 255]),
    channels: 4,
    depth: 8,
  });
  const r = E.getOrElseW(() => null)(decodeImage(rgba))!;
  assert.deepEqual(Array.from(r.data), [1, 0, 0.4, 1 / 255, 2 / 255, 3 / 255].map(Math.fround));
  // 1-bit gray, 10 pixels: rows padded to bytes.
  const bits = pngEncode({
    width: 10,
    height: 1,
    data: new Uint8Array([0b10100000, 0b01000000]),
    channels: 1,
    depth: 1,
  });
  const b = E.getOrElseW(() => null)(decodeImage(bits))!;
  assert.deepEqual(
    Array.from({ length: 10 }, (_, i) => b.data[3 * i]),
    [1, 0, 1, 0, 0, 0, 0, 0, 0, 1],
  );
  const pal = pngEncode({
    width: 3,
    height: 1,
    data: new Uint8Array([2, 0, 1]),
    channels: 1,
    depth: 8,
    palette: [[255, 0, 0], [0, 255, 0], [0, 0, 255]],
  });
  const p = E.getOrElseW(() => null)(decodeImage(pal))!;
  assert.deepEqual(Array.from(p.data), [0, 0, 1, 1, 0, 0, 0, 1, 0]);
});

Deno.test("JPEG decode matches the encoded image closely", () => {
  const w = 32, h = 16;
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      rgba.set([x * 8, y * 16, 128, 255], i);
    }
  }
  const bytes = jpeg.encode({ width: w, height: h, data: rgba }, 100).data;
  const img = E.getOrElseW(() => null)(decodeImage(new Uint8Array(bytes)))!;
  assert.equal(img.width, w);
  let m = 0;
  for (let i = 0; i < w * h; i++) {
    for (let c = 0; c < 3; c++) {
      m = Math.max(m, Math.abs(img.data[3 * i + c] * 255 - rgba[4 * i + c]));
    }
  }
  assert.ok(m <= 4, `max error ${m} levels`);
});

Deno.test("unreadable, corrupt and non-image files give Left naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const missing = await readImage(`${dir}/nope.png`);
  assert.ok(E.isLeft(missing) && missing.left.message.includes(`${dir}/nope.png`));
  assert.ok(!missing.left.message.includes("\n"));
  const good = encodePng(randomImage8(8, 8, 2));
  await Deno.writeFile(`${dir}/cut.png`, good.subarray(0, 60));
  const cut = await readImage(`${dir}/cut.png`);
  assert.ok(E.isLeft(cut) && /cut\.png: cannot decode/.test(cut.left.message), String(cut));
  await Deno.writeTextFile(`${dir}/t.jpg`, "hello");
  const txt = await readImage(`${dir}/t.jpg`);
  assert.ok(E.isLeft(txt) && /t\.jpg: not a PNG or JPEG/.test(txt.left.message));
  await assert.rejects(() => readImageOrThrow(`${dir}/t.jpg`), /t\.jpg/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("listImages lists png/jpg/jpeg sorted, nothing else", async () => {
  const dir = await Deno.makeTempDir();
  for (const n of ["b.PNG", "a.jpeg", "c.jpg", "d.txt", "e.gif"]) {
    await Deno.writeTextFile(`${dir}/${n}`, "");
  }
  await Deno.mkdir(`${dir}/z.png`);
  assert.deepEqual(await listImages(dir), ["a.jpeg", "b.PNG", "c.jpg"].map((n) => `${dir}/${n}`));
  await assert.rejects(() => listImages(`${dir}/missing`), /listImages: .*missing/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("image ↔ NHWC tensor round trip", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("tensor round trip", async () => {
    const a = randomImage8(5, 4, 3), b = randomImage8(5, 4, 4);
    const t = imagesToTensor([a, b]);
    assert.deepEqual(t.shape, [2, 4, 5, 3]);
    const [a2, b2] = await tensorToImages(t);
    assert.deepEqual(Array.from(a2.data), Array.from(a.data));
    assert.deepEqual(Array.from(b2.data), Array.from(b.data));
    const one = imageToTensor(a);
    assert.deepEqual(one.shape, [1, 4, 5, 3]);
    assert.deepEqual(px((await tensorToImages(one))[0], 3, 2), px(a, 3, 2));
    t.dispose();
    one.dispose();
    assert.throws(() => imagesToTensor([a, randomImage8(4, 4, 5)]), /image 1 is 4×4/);
  });
});

Deno.test("bundled photos: 12–20 readable PNGs, ≤ 512 px, each in ATTRIBUTION.md", async () => {
  const dir = new URL("../examples/data/photos", import.meta.url).pathname;
  const files = await listImages(dir);
  assert.ok(files.length >= 12 && files.length <= 20, `${files.length} photos`);
  const attribution = await Deno.readTextFile(
    new URL("../examples/data/ATTRIBUTION.md", import.meta.url),
  );
  for (const f of files) {
    const name = f.slice(dir.length + 1);
    assert.ok(attribution.includes(`photos/${name}`), `${name} not in ATTRIBUTION.md`);
    // Read just the PNG header: width/height at bytes 16..24.
    const head = (await Deno.readFile(f)).subarray(16, 24);
    const dv = new DataView(head.buffer, head.byteOffset, 8);
    assert.ok(Math.max(dv.getUint32(0), dv.getUint32(4)) <= 512, name);
  }
  const one = await readImageOrThrow(files[0]);
  assert.ok(one.data.every((v) => v >= 0 && v <= 1));
});

Deno.test("makeGrid places images centred in cells with padding", () => {
  const red = rgbImage(2, 2, new Float32Array(12).map((_, i) => (i % 3 === 0 ? 1 : 0)));
  const blue = rgbImage(4, 3, new Float32Array(36).map((_, i) => (i % 3 === 2 ? 1 : 0)));
  const g = makeGrid([[red, blue], [blue]], { pad: 1, background: [0.5, 0.5, 0.5] });
  assert.equal(g.width, 1 + 4 + 1 + 4 + 1);
  assert.equal(g.height, 1 + 3 + 1 + 3 + 1);
  assert.deepEqual(px(g, 0, 0), [0.5, 0.5, 0.5]);
  // red is centred in a 4×3 cell at (1, 1): offset (1, 0) → pixels x 2..3, y 1..2.
  assert.deepEqual(px(g, 2, 1), [1, 0, 0]);
  assert.deepEqual(px(g, 1, 1), [0.5, 0.5, 0.5]);
  assert.deepEqual(px(g, 6, 1), [0, 0, 1]);
  assert.deepEqual(px(g, 1, 5), [0, 0, 1]);
  assert.deepEqual(px(g, 6, 5), [0.5, 0.5, 0.5]); // missing cell
});

Deno.test("plotLines draws each series in its colour along its path", async () => {
  const img = plotLines([
    {
      name: "loss",
      color: [1, 0, 0],
      points: Array.from({ length: 50 }, (_, i) => [i, 5 / (1 + i)]),
    },
    { name: "flat", color: [0, 0, 1], points: [[0, 1], [49, 1]] },
  ], { width: 320, height: 200 });
  assert.equal(img.width, 320);
  let red = 0, blue = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    const [r, g, b] = img.data.subarray(3 * i, 3 * i + 3);
    if (r === 1 && g === 0 && b === 0) red++;
    if (r === 0 && g === 0 && b === 1) blue++;
  }
  assert.ok(red > 200 && blue > 200, `red ${red}, blue ${blue}`);
  // The flat line y = 1 is one horizontal row (two px thick): its pixels share 2 rows.
  const rows = new Set<number>();
  for (let i = 0; i < img.width * img.height; i++) {
    if (img.data[3 * i] === 0 && img.data[3 * i + 2] === 1) rows.add(Math.floor(i / img.width));
  }
  assert.ok(rows.size <= 2, `flat line spans rows ${[...rows]}`);
  // The red curve decreases: its leftmost pixel is higher (smaller y) than its rightmost.
  const redAt: [number, number][] = [];
  for (let i = 0; i < img.width * img.height; i++) {
    if (img.data[3 * i] === 1 && img.data[3 * i + 1] === 0) {
      redAt.push([i % img.width, Math.floor(i / img.width)]);
    }
  }
  redAt.sort((a, b) => a[0] - b[0]);
  assert.ok(redAt[0][1] < redAt[redAt.length - 1][1] - 100, `red ${redAt[0]} … ${redAt.at(-1)}`);
  const out = Deno.env.get("DEFLOW_PLOT_OUT");
  if (out) await writePng(out, img);
});
