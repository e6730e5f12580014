/**
 * CLI ≡ library, on a real trained checkpoint: a tiny model trained by the library with a
 * non-zero seed and `normalize: true` is saved to disk; `deflow degrade`, `deflow restore`
 * and `deflow evaluate` (subprocesses, wasm) must write what the library computes from the
 * in-memory model with the same seed, τ and options (within one 8-bit level; the evaluate
 * JSON equal to the library's report). The saved checkpoint reloads every leaf, fixed ones
 * included, bit for bit, and the reloaded model degrades exactly like the in-memory one.
 */
import assert from "node:assert/strict";
import { either as E } from "fp-ts";
import { tf } from "../src/tf.ts";
import { disposeParams, flattenParams } from "../src/core/params.ts";
import { foldIn } from "../src/core/random.ts";
import { compareSets } from "../src/eval/mod.ts";
import { imageToTensor, readImage, type RgbImage, rgbImage, writePng } from "../src/image/io.ts";
import { loadCheckpoint } from "../src/io/checkpoint.ts";
import { initParams } from "../src/model/network.ts";
import { degrade, prepareSampler, restore, type Sampler } from "../src/model/sample.ts";
import { CHECKPOINT_FILE, train } from "../src/train/loop.ts";
import { maxAbsDiff, read, tinyConfig, useBackend } from "./_helpers.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

const deflow = async (cwd: string, ...args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

/** The CLI's documented per-file seed: `foldIn(seed, FNV-1a(stem))` (independent of the folder). */
const fnv1a = (s: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
};

const picture = (w: number, h: number, seed: number, noise: number): RgbImage => {
  const d = new Float32Array(w * h * 3);
  let s = seed * 7919 + 1;
  for (let i = 0; i < d.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const c = i % 3;
    d[i] = 0.45 + 0.1 * c + 0.25 * Math.sin(i / 13 + seed) + noise * (s / 4294967296 - 0.5);
  }
  return rgbImage(w, h, d);
};

const readOrThrow = async (path: string): Promise<RgbImage> => {
  const r = await readImage(path);
  if (E.isLeft(r)) throw r.left;
  return r.right;
};

/** Library output of `mode` for one image file, as the CLI would seed it. */
const library = async (
  sampler: Sampler,
  mode: "degrade" | "restore",
  img: RgbImage,
  stem: string,
  o: { seed: number; temperature: number; samples: number },
): Promise<Float64Array[]> => {
  const x = imageToTensor(img);
  const opts = {
    temperature: o.temperature,
    seed: foldIn(o.seed, fnv1a(stem)),
    samples: o.samples,
  };
  const ys = mode === "degrade" ? degrade(sampler, x, opts) : restore(sampler, x, opts);
  const out = await Promise.all(ys.map((y) => read(y)));
  tf.dispose([x, ...ys]);
  return out;
};

// Images of H ≠ W and sizes that are not multiples of 2^levels (padding path).
const NAMES = ["p0", "p1"];
const SIZE = { w: 30, h: 22 };

Deno.test("cli ≡ library: degrade/restore/evaluate on a trained checkpoint (seed 7, --normalize); checkpoint round trip", async () => {
  await useBackend("wasm");
  const dir = await Deno.makeTempDir({ prefix: "deflow-cli-lib-" });
  try {
    for (const [sub, noise, off] of [["clean", 0, 0], ["degraded", 0.25, 0.05]] as const) {
      await Deno.mkdir(`${dir}/${sub}`);
      for (let k = 0; k < NAMES.length; k++) {
        const im = picture(SIZE.w, SIZE.h, k + 1, noise);
        await writePng(
          `${dir}/${sub}/${NAMES[k]}.png`,
          rgbImage(im.width, im.height, im.data.map((v) => Math.min(1, v + off))),
        );
      }
    }
    const clean = await Promise.all(NAMES.map((n) => readOrThrow(`${dir}/clean/${n}.png`)));
    const degradedImgs = await Promise.all(
      NAMES.map((n) => readOrThrow(`${dir}/degraded/${n}.png`)),
    );
    const config = tinyConfig();
    const result = await train({
      clean,
      degraded: degradedImgs,
      config,
      iterations: 3,
      batch: 4,
      crop: 16,
      seed: 7,
      normalize: true,
      outDir: `${dir}/run`,
    });
    assert.ok(result.normalization, "normalize: true must produce a normalisation");
    const ckpt = `${dir}/run/${CHECKPOINT_FILE}`;

    // --- Checkpoint round trip: every leaf, fixed (const) ones included, bit for bit.
    const template = initParams(result.config, 0);
    const loaded = await loadCheckpoint(ckpt, { params: template });
    disposeParams(template);
    assert.ok(E.isRight(loaded), E.isLeft(loaded) ? loaded.left.message : "");
    const lp = loaded.right.params;
    const a = flattenParams(result.params);
    const b = flattenParams(lp);
    assert.deepEqual(b.map((n) => n.path), a.map((n) => n.path));
    assert.ok(a.some((n) => n.path.split(".").includes("const")), "fixed leaves exist");
    for (let i = 0; i < a.length; i++) {
      assert.equal(b[i].tensor.dtype, a[i].tensor.dtype, a[i].path);
      assert.deepEqual(await b[i].tensor.data(), await a[i].tensor.data(), a[i].path);
    }
    // The trained model differs from a fresh init (the file holds the trained values).
    const fresh = initParams(result.config, 7);
    const fr = flattenParams(fresh);
    let differs = 0;
    for (let i = 0; i < a.length; i++) {
      if (maxAbsDiff(await read(a[i].tensor), await read(fr[i].tensor)) > 0) differs++;
    }
    disposeParams(fresh);
    assert.ok(differs > a.length / 2, `only ${differs} of ${a.length} leaves differ from init`);

    const mem = await prepareSampler(result.params, result.config, result.normalization);
    const disk = await prepareSampler(lp, result.config, result.normalization);
    const o = { seed: 5, temperature: 0.8, samples: 2 };
    for (let k = 0; k < NAMES.length; k++) {
      const m = await library(mem, "degrade", clean[k], NAMES[k], o);
      const d = await library(disk, "degrade", clean[k], NAMES[k], o);
      assert.equal(maxAbsDiff(m[0], d[0]), 0, "reloaded model degrades identically");
      assert.equal(maxAbsDiff(m[1], d[1]), 0, "reloaded model degrades identically");
    }
    disk.dispose();
    disposeParams(lp);

    // --- CLI degrade / restore vs the library (in-memory model, same seed and τ).
    const common = ["--model", ckpt, "--backend", "wasm", "--seed", "5", "--temperature", "0.8"];
    const [deg, rest] = await Promise.all([
      deflow(dir, "degrade", ...common, "--in", "clean", "--out", "gen", "--samples", "2"),
      deflow(dir, "restore", ...common, "--in", "degraded", "--out", "rest"),
    ]);
    assert.equal(deg.code, 0, deg.stderr);
    assert.equal(rest.code, 0, rest.stderr);
    const check = async (
      mode: "degrade" | "restore",
      folder: string,
      inputs: RgbImage[],
      samples: number,
    ) => {
      for (let k = 0; k < NAMES.length; k++) {
        const want = await library(mem, mode, inputs[k], NAMES[k], { ...o, samples });
        for (let s = 0; s < samples; s++) {
          const got = await readOrThrow(`${dir}/${folder}/${NAMES[k]}_s${s}.png`);
          assert.equal(got.width, SIZE.w);
          assert.equal(got.height, SIZE.h);
          const err = maxAbsDiff(got.data, want[s]);
          assert.ok(
            err <= 1 / 255 + 1e-6,
            `${mode} ${NAMES[k]} sample ${s}: max |CLI − library| ${err}`,
          );
        }
      }
    };
    await check("degrade", "gen", clean, 2);
    await check("restore", "rest", degradedImgs, 1);
    // The options have an effect: another seed and τ = 0 give other outputs.
    const other = await library(mem, "degrade", clean[0], NAMES[0], { ...o, seed: 6 });
    const cold = await library(mem, "degrade", clean[0], NAMES[0], { ...o, temperature: 0 });
    const g0 = (await readOrThrow(`${dir}/gen/${NAMES[0]}_s0.png`)).data;
    assert.ok(maxAbsDiff(g0, other[0]) > 4 / 255, "--seed must matter");
    assert.ok(maxAbsDiff(g0, cold[0]) > 4 / 255, "--temperature must matter");
    mem.dispose();

    // --- CLI evaluate vs compareSets on the same files.
    const ev = await deflow(
      dir,
      "evaluate",
      "--generated",
      "gen",
      "--real",
      "degraded",
      "--clean",
      "clean",
      "--json",
      "report.json",
      "--patch",
      "8",
    );
    assert.equal(ev.code, 0, ev.stderr);
    const gen: RgbImage[] = [];
    const genClean: RgbImage[] = [];
    for (let k = 0; k < NAMES.length; k++) {
      for (let s = 0; s < 2; s++) {
        gen.push(await readOrThrow(`${dir}/gen/${NAMES[k]}_s${s}.png`));
        genClean.push(clean[k]);
      }
    }
    const lib = compareSets(gen, degradedImgs, genClean, { patch: 8, realClean: clean });
    const cli = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
    assert.deepEqual(cli, JSON.parse(JSON.stringify(lib)));
    disposeParams(result.params);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
