/**
 * Trustworthy runs, library side (issue 9, rows 5–8 and 10): checkpoint checksums and
 * finite checks, model output sanity, image size limits and PNG integrity, atomic loss
 * files, stale temporary files, the step of a failed save, and seed 0 (wasm backend).
 */
import assert from "node:assert/strict";
import { either as E } from "fp-ts";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { initParams } from "../src/model/network.ts";
import { adamInit, disposeAdamState } from "../src/train/adam.ts";
import { loadCheckpoint, saveCheckpoint } from "../src/io/checkpoint.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensorsHeader,
  type SafetensorsTensor,
} from "../src/io/safetensors.ts";
import { crc32, crc32Hex, crc32Of } from "../src/io/crc32.ts";
import jpeg from "jpeg-js";
import { decodeImage, encodePng, rgbImage } from "../src/image/io.ts";
import { badOutput } from "../src/cli/commands.ts";
import { latentShift } from "../src/layers/latentShift.ts";
import { gaussianNoise, isotropicCov } from "../src/degrade/noise.ts";
import { dequantize } from "../src/model/objective.ts";
import { configOrThrow } from "../src/model/config.ts";
import { train } from "../src/train/loop.ts";
import { useBackend } from "./_helpers.ts";
import { assertOneLineError, cli, ls, makeData, picture, TINY } from "./_trust_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false } as const;
const tiny = configOrThrow(TINY);

const leftMessage = <T>(r: E.Either<Error, T>): string => {
  assert.ok(E.isLeft(r), "expected Left");
  return r.left.message;
};

/** A saved tiny checkpoint (params + Adam) in a temp folder. */
const savedTiny = async (): Promise<{ dir: string; path: string }> => {
  const dir = await Deno.makeTempDir({ prefix: "deflow-trust-ckpt-" });
  const path = `${dir}/checkpoint.safetensors`;
  const params = initParams(tiny, 1);
  const adam = adamInit(params);
  await saveCheckpoint(path, {
    params,
    optimizer: adam,
    config: tiny,
    training: { step: 3, rng: 7, sampler: null },
  });
  disposeParams(params);
  disposeAdamState(adam);
  return { dir, path };
};

/** Rewrite one tensor's values (keeping the checksums valid, as a careful forger would). */
const forge = async (path: string, name: string, edit: (d: Float32Array) => void) => {
  const file = decodeSafetensors(await Deno.readFile(path));
  assert.ok(E.isRight(file));
  const { tensors, metadata } = file.right;
  const entries: SafetensorsTensor[] = [...tensors].map(([n, t]) => ({ name: n, ...t }));
  const target = entries.find((e) => e.name === name)!;
  edit(target.data as Float32Array);
  const sums = JSON.parse(metadata["deflow.checksums"]);
  sums.tensors[name] = crc32Hex(crc32Of(target.data));
  await Deno.writeFile(
    path,
    encodeSafetensors(entries, { ...metadata, "deflow.checksums": JSON.stringify(sums) }),
  );
};

Deno.test(
  "trust row 5: a flipped byte, NaN in a parameter or a moment is refused, naming the tensor",
  opts,
  async () => {
    await useBackend("wasm");
    const { dir, path } = await savedTiny();
    try {
      const template = initParams(tiny, 0);
      const adam = adamInit(template);
      const load = () => loadCheckpoint(path, { params: template, optimizer: adam });
      const good = await load();
      assert.ok(E.isRight(good));
      disposeParams(good.right.params);
      disposeAdamState(good.right.optimizer!);
      const pristine = await Deno.readFile(path);

      // One flipped bit in the data of the 5th tensor.
      const header = parseSafetensorsHeader(pristine);
      assert.ok(E.isRight(header));
      const victim = header.right.entries[4];
      const flipped = pristine.slice();
      flipped[header.right.dataStart + victim.begin + 1] ^= 0x10;
      await Deno.writeFile(path, flipped);
      assert.match(
        leftMessage(await load()),
        new RegExp(`tensor "${victim.name.replaceAll(".", "\\.")}" fails its checksum`),
      );
      assertOneLineError(
        await cli("info", "--model", path),
        1,
        /verifyCheckpoint\(.*\): tensor ".*" fails its checksum \(corrupt data\)/,
      );
      // A changed number in the training state (valid JSON) fails the metadata checksum.
      const text = new TextDecoder("latin1").decode(pristine);
      const at = text.indexOf('\\"step\\":3');
      assert.ok(at > 0);
      const meta = pristine.slice();
      meta[at + 9] = "4".charCodeAt(0);
      await Deno.writeFile(path, meta);
      assert.match(leftMessage(await load()), /metadata .* fails its checksum/);

      const param = header.right.entries.find((e) => e.name.startsWith("params."))!.name;
      await Deno.writeFile(path, pristine);
      await forge(path, param, (d) => (d[0] = NaN));
      assert.match(
        leftMessage(await load()),
        new RegExp(`tensor "${param.replaceAll(".", "\\.")}" holds NaN at element 0`),
      );
      // …and the CLI refuses it in one line, writing nothing.
      const data = await makeData("deflow-trust-nan-");
      const r = await cli(
        "degrade",
        "--model",
        path,
        "--in",
        `${data}/clean`,
        "--out",
        `${data}/gen`,
        "--backend",
        "wasm",
      );
      assertOneLineError(r, 1, /holds NaN at element 0 \(corrupt model\)/);
      assert.deepEqual(ls(`${data}/gen`), []);
      await Deno.remove(data, { recursive: true });

      const moment = header.right.entries.find((e) => e.name.startsWith("adam.v."))!.name;
      await Deno.writeFile(path, pristine);
      await forge(path, moment, (d) => (d[2] = -1));
      assert.match(leftMessage(await load()), /tensor "adam\.v\..*" holds -1 at element 2/);
      await Deno.writeFile(path, pristine);
      await forge(path, moment.replace("adam.v.", "adam.m."), (d) => (d[0] = Infinity));
      assert.match(leftMessage(await load()), /"adam\.m\..*" holds Infinity/);

      // Saving a non-finite model is refused, and the file is left as it was.
      await Deno.writeFile(path, pristine);
      const nanLeaf = tf.fill([2], NaN);
      await assert.rejects(
        () =>
          saveCheckpoint(path, {
            params: { a: nanLeaf },
            config: {},
            training: { step: 0, rng: 0, sampler: null },
          }),
        /tensor "params\.a" holds NaN at element 0/,
      );
      nanLeaf.dispose();
      assert.deepEqual(await Deno.readFile(path), pristine);
      disposeParams(template);
      disposeAdamState(adam);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("trust row 5: non-finite or constant model output is an error, not a PNG", () => {
  const input = picture(8, 8, 1, 0.2);
  assert.equal(badOutput(input, picture(8, 8, 2, 0.2)), undefined);
  const nan = rgbImage(8, 8, input.data.map((v, i) => (i === 5 ? NaN : v)));
  assert.match(badOutput(input, nan)!, /non-finite values \(NaN at sample 5\)/);
  const black = rgbImage(8, 8, new Float32Array(8 * 8 * 3).fill(-3));
  assert.match(badOutput(input, black)!, /a constant image \(every pixel 0, 0, 0\)/);
  const flat = rgbImage(8, 8, new Float32Array(8 * 8 * 3).fill(0.5));
  assert.equal(badOutput(flat, flat), undefined, "a flat input may give a flat output");
});

/** A PNG chunk with its CRC. */
const chunk = (type: string, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
};

Deno.test("trust row 7: the size limit is checked from the header; PNG CRCs and structure are checked", () => {
  // A 20000×20000 PNG header: refused before anything is allocated.
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, 20000);
  new DataView(ihdr.buffer).setUint32(4, 20000);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const huge = new Uint8Array([...sig, ...chunk("IHDR", ihdr), ...chunk("IEND", new Uint8Array())]);
  const t0 = performance.now();
  assert.match(
    leftMessage(decodeImage(huge, "huge.png")),
    /huge.png: too large to decode \(20000×20000 is 400.0 megapixels, over the limit of 80/,
  );
  assert.ok(performance.now() - t0 < 200, "refused without decoding");
  // Raising the limit lets it through to the decoder (which then finds no image data).
  assert.doesNotMatch(leftMessage(decodeImage(huge, "huge.png", { maxPixels: 5e8 })), /too large/);
  // JPEG: the frame header's size.
  const sof = [0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0x75, 0x30, 0x75, 0x30, 1, 1, 0x11, 0];
  assert.match(
    leftMessage(decodeImage(new Uint8Array(sof), "huge.jpg")),
    /huge.jpg: too large to decode \(30000×30000/,
  );

  // A truncated JPEG is named as such (jpeg-js says only "marker was not found").
  const px = new Uint8Array(32 * 32 * 4).map((_, i) => (i * 37) % 256);
  const jpg = jpeg.encode({ width: 32, height: 32, data: px }, 80).data;
  assert.ok(E.isRight(decodeImage(jpg)));
  assert.match(
    leftMessage(decodeImage(jpg.subarray(0, jpg.length - 40), "t.jpg")),
    /t.jpg: cannot decode \(truncated JPEG: no end-of-image marker/,
  );

  const png = encodePng(picture(16, 16, 3, 0.1));
  assert.ok(E.isRight(decodeImage(png)));
  const flipped = png.slice();
  flipped[60] ^= 0x01; // inside IDAT
  assert.match(
    leftMessage(decodeImage(flipped, "f.png")),
    /chunk "IDAT" at byte 33 fails its CRC check/,
  );
  assert.match(
    leftMessage(decodeImage(png.subarray(0, 70), "t.png")),
    /t.png: cannot decode \(truncated PNG: chunk "IDAT" at byte 33 declares/,
  );
  assert.match(leftMessage(decodeImage(png.subarray(0, png.length - 12))), /no IEND chunk/);
  assert.match(
    leftMessage(decodeImage(new Uint8Array([...png, 1, 2, 3]))),
    /3 bytes after its IEND chunk/,
  );
});

Deno.test(
  "trust row 8: stale temp files are removed, loss files are atomic, a failed save names its step",
  opts,
  async () => {
    await useBackend("wasm");
    const clean = [picture(32, 32, 1, 0), picture(32, 32, 2, 0)];
    const degraded = [picture(32, 32, 1, 0.3), picture(32, 32, 2, 0.3)];
    const dir = await Deno.makeTempDir({ prefix: "deflow-trust-save-" });
    try {
      const base = { clean, degraded, config: tiny, batch: 4, crop: 16, outDir: dir };
      await Deno.writeTextFile(`${dir}/checkpoint.safetensors.tmp-0123456789ab`, "stale");
      await Deno.writeTextFile(`${dir}/victim.txt`, "precious");
      await Deno.symlink(`${dir}/victim.txt`, `${dir}/loss.json`);
      const r = await train({ ...base, iterations: 2 });
      disposeParams(r.params);
      assert.equal(await Deno.readTextFile(`${dir}/victim.txt`), "precious");
      assert.ok((await Deno.lstat(`${dir}/loss.json`)).isFile);
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/loss.json`)).step, 2);
      assert.deepEqual(ls(dir), ["checkpoint.safetensors", "loss.json", "loss.png", "victim.txt"]);

      // loss.json cannot be replaced (a non-empty folder is in the way): the save at step 2 fails.
      const d2 = `${dir}/b`;
      await Deno.mkdir(`${d2}/loss.json`, { recursive: true });
      await Deno.writeTextFile(`${d2}/loss.json/x`, "");
      const before = tf.memory().numTensors;
      await assert.rejects(
        () => train({ ...base, outDir: d2, iterations: 4, checkpointEvery: 2 }),
        /^Error: train: saving the checkpoint at step 2 failed: /,
      );
      assert.equal(tf.memory().numTensors, before);
      assert.deepEqual(ls(d2).filter((n) => n.includes(".tmp-")), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("trust row 6: a run that skips most steps fails and saves nothing", opts, async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir({ prefix: "deflow-trust-skip-" });
  try {
    const before = tf.memory().numTensors;
    await assert.rejects(
      () =>
        train({
          clean: [picture(32, 32, 1, 0)],
          degraded: [picture(32, 32, 1, 0.3)],
          config: tiny,
          batch: 4,
          crop: 16,
          lr: 1e30,
          iterations: 8,
          checkpointEvery: 4,
          outDir: dir,
        }),
      /train: \d+ of the \d+ steps had a non-finite loss and were skipped; the model did not train, so it is not saved/,
    );
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(ls(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trust row 10: seed 0 is a seed like any other", opts, async () => {
  await useBackend("wasm");
  const read = async (t: tf.Tensor) => Array.from(await t.data());
  const p = latentShift.init({ channels: 3, seed: 1 });
  const a = latentShift.sample(p, [1, 2, 2, 3], { seed: 0 });
  const b = latentShift.sample(p, [1, 2, 2, 3], { seed: 0 });
  const c = latentShift.sample(p, [1, 2, 2, 3], { seed: 1 });
  assert.deepEqual(await read(a), await read(b));
  assert.notDeepEqual(await read(a), await read(c));
  const x = tf.fill([1, 4, 4, 3], 0.5) as tf.Tensor4D;
  const noise = gaussianNoise({ cov: isotropicCov(0.1) });
  const n1 = await noise.apply(x, 0), n2 = await noise.apply(x, 0);
  assert.deepEqual(await read(n1), await read(n2));
  const q1 = dequantize(x, 32, 0), q2 = dequantize(x, 32, 0);
  assert.deepEqual(await read(q1), await read(q2));
  tf.dispose([a, b, c, x, n1, n2, q1, q2]);
  disposeParams(p);
});
