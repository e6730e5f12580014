/**
 * Trustworthy runs, CLI side (issue 9, rows 1–4, 6, 9, 11): nothing overwritten, resume
 * checks, colliding or existing outputs refused, failed training is an error, config typos
 * refused, one clear line for every user error. The CLI runs in this process (wasm).
 */
import assert from "node:assert/strict";
import { either as E } from "fp-ts";
import { readImage, writePng } from "../src/image/io.ts";
import { encodePng } from "../src/image/io.ts";
import {
  assertOneLineError,
  cli,
  errorLines,
  ls,
  makeData,
  picture,
  trainArgs,
} from "./_trust_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false } as const;

const info = async (ckpt: string) => {
  const r = await cli("info", "--model", ckpt, "--json");
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

Deno.test(
  "trust row 1/2: train refuses an existing run; --resume refuses changed options",
  opts,
  async () => {
    const dir = await makeData("deflow-trust-run-");
    const run = `${dir}/run`;
    const ckpt = `${run}/checkpoint.safetensors`;
    try {
      const first = await cli(
        ...trainArgs(dir, run, "--iterations", "4", "--checkpoint-every", "2"),
      );
      assert.equal(first.code, 0, first.stderr);
      const bytes = await Deno.readFile(ckpt);

      // Row 1: a second fresh train into the same folder is refused, the run kept.
      assertOneLineError(
        await cli(...trainArgs(dir, run, "--iterations", "2")),
        1,
        /--out: ".*run" already holds a run \(checkpoint at step 4\); continue it with --resume, or replace it with --force/,
      );
      assert.deepEqual(await Deno.readFile(ckpt), bytes);
      assertOneLineError(
        await cli(...trainArgs(dir, run, "--resume", "--force")),
        2,
        /--resume and --force exclude each other/,
      );

      // Row 2: changed seed / batch / crop / config / data are refused, naming each.
      assertOneLineError(
        await cli(...trainArgs(dir, run, "--resume", "--iterations", "6", "--seed", "5")),
        1,
        /--resume: --seed 5 differs from the run's 0/,
      );
      const batchCrop = await cli(
        ...trainArgs(dir, run, "--resume", "--iterations", "6").map((a, i, all) =>
          all[i - 1] === "--batch" ? "2" : all[i - 1] === "--crop" ? "8" : a
        ),
      );
      assertOneLineError(batchCrop, 1, /--batch 2 differs from the run's 4, --crop 8 differs/);
      await Deno.writeTextFile(`${dir}/other.json`, JSON.stringify({ levels: 2, steps: 2 }));
      assertOneLineError(
        await cli(
          ...trainArgs(dir, run, "--resume", "--iterations", "6").map((a) =>
            a.endsWith("tiny.json") ? `${dir}/other.json` : a
          ),
        ),
        1,
        /--config: differs from the config stored/,
      );
      // Other degraded images: one pixel changed.
      await writePng(`${dir}/degraded/p1.png`, picture(32, 32, 9, 0.3));
      assertOneLineError(
        await cli(...trainArgs(dir, run, "--resume", "--iterations", "6")),
        1,
        /cannot resume .*: the degraded images differ from the run's \(2 images then, 2 now/,
      );
      assert.deepEqual(await Deno.readFile(ckpt), bytes, "refused resumes change nothing");
      await writePng(`${dir}/degraded/p1.png`, picture(32, 32, 2, 0.3));

      // The learning rate may change, and the change is recorded.
      const res = await cli(
        ...trainArgs(dir, run, "--resume", "--iterations", "6", "--lr", "1e-4"),
      );
      assert.equal(res.code, 0, res.stderr);
      const j = await info(ckpt);
      assert.equal(j.step, 6);
      assert.equal(j.run.lr, 1e-4);
      const raw = JSON.parse(
        new TextDecoder().decode(await Deno.readFile(ckpt)).match(
          /"deflow\.training":("(?:[^"\\]|\\.)*")/,
        )![1],
      );
      assert.deepEqual(JSON.parse(raw).lrChanges, [{ step: 4, lr: 1e-4 }]);

      // --force starts over.
      const forced = await cli(...trainArgs(dir, run, "--iterations", "2", "--force"));
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal((await info(ckpt)).step, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "trust row 3/4/11: outputs never collide, are not overwritten nor written through a link",
  opts,
  async () => {
    const dir = await makeData("deflow-trust-out-");
    const run = `${dir}/run`;
    const ckpt = `${run}/checkpoint.safetensors`;
    try {
      assert.equal((await cli(...trainArgs(dir, run, "--iterations", "2"))).code, 0);
      const deg = (inDir: string, out: string, ...more: string[]) =>
        cli("degrade", "--model", ckpt, "--in", inDir, "--out", out, "--backend", "wasm", ...more);

      // Row 3: a.png, a.jpg, a.JPEG would all become a_s0.png.
      await Deno.mkdir(`${dir}/same`);
      for (const n of ["a.png", "a.jpg", "a.JPEG"]) {
        await Deno.copyFile(`${dir}/clean/p0.png`, `${dir}/same/${n}`);
      }
      assertOneLineError(
        await deg(`${dir}/same`, `${dir}/gen-same`),
        1,
        /--in: "a.JPEG", "a.jpg" and "a.png" would all be written as a_s<k>.png; rename them/,
      );
      assert.deepEqual(ls(`${dir}/gen-same`), []);

      // Row 4: existing outputs are kept unless --overwrite; a link there is not followed.
      const gen = `${dir}/gen`;
      const ok = await deg(`${dir}/clean`, gen);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(ls(gen), ["p0_s0.png", "p1_s0.png"]);
      const before = await Deno.readFile(`${gen}/p0_s0.png`);
      assertOneLineError(
        await deg(`${dir}/clean`, gen, "--seed", "3"),
        1,
        /--out: ".*gen\/p0_s0.png" already exists; use --overwrite to replace it/,
      );
      assert.deepEqual(await Deno.readFile(`${gen}/p0_s0.png`), before);
      await Deno.writeTextFile(`${dir}/victim.txt`, "precious");
      await Deno.remove(`${gen}/p1_s0.png`);
      await Deno.symlink(`${dir}/victim.txt`, `${gen}/p1_s0.png`);
      assertOneLineError(await deg(`${dir}/clean`, gen), 1, /already exists/);
      const over = await deg(`${dir}/clean`, gen, "--overwrite", "--seed", "3");
      assert.equal(over.code, 0, over.stderr);
      assert.equal(await Deno.readTextFile(`${dir}/victim.txt`), "precious");
      assert.ok((await Deno.lstat(`${gen}/p1_s0.png`)).isFile, "the link was replaced by a file");
      assert.notDeepEqual(await Deno.readFile(`${gen}/p0_s0.png`), before, "--overwrite rewrote");
      assert.ok(E.isRight(await readImage(`${gen}/p1_s0.png`)));
      assert.deepEqual(ls(gen).filter((n) => n.includes(".tmp-")), []);

      // Row 11: --out is a file; symlinked inputs are followed, dangling ones named.
      await Deno.writeTextFile(`${dir}/plain`, "x");
      assertOneLineError(
        await deg(`${dir}/clean`, `${dir}/plain`),
        1,
        /--out: ".*plain" is a file, not a folder/,
      );
      assertOneLineError(
        await cli(...trainArgs(dir, `${dir}/plain`, "--iterations", "1")),
        1,
        /--out: ".*plain" is a file, not a folder/,
      );
      await Deno.mkdir(`${dir}/links`);
      await Deno.symlink(`${dir}/clean/p0.png`, `${dir}/links/l.png`);
      const linked = await deg(`${dir}/links`, `${dir}/gen-links`);
      assert.equal(linked.code, 0, linked.stderr);
      assert.deepEqual(ls(`${dir}/gen-links`), ["l_s0.png"]);
      await Deno.symlink(`${dir}/nowhere.png`, `${dir}/links/m.png`);
      assertOneLineError(
        await deg(`${dir}/links`, `${dir}/gen-links2`),
        1,
        /links\/m.png is a symbolic link to a missing file/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("trust row 6/9/11: bad settings are one clear line before any work", opts, async () => {
  const dir = await makeData("deflow-trust-err-");
  try {
    const cfg = async (name: string, c: unknown) => {
      await Deno.writeTextFile(`${dir}/${name}`, JSON.stringify(c));
      return trainArgs(dir, `${dir}/o-${name}`, "--iterations", "1").map((a) =>
        a.endsWith("tiny.json") ? `${dir}/${name}` : a
      );
    };
    const good = await makeData("deflow-trust-img-");
    const png = encodePng(picture(32, 32, 1, 0));
    await Deno.mkdir(`${dir}/cut`);
    await Deno.writeFile(`${dir}/cut/a.png`, png.subarray(0, 100));
    await Deno.mkdir(`${dir}/noend`);
    await Deno.writeFile(`${dir}/noend/a.png`, png.subarray(0, png.length - 12));
    const cases: [string[], number, RegExp][] = [
      // Row 6: absurd learning rates and eps are refused up front.
      [
        trainArgs(dir, `${dir}/o1`, "--lr", "1e30"),
        2,
        /--lr: expected a number in \(0, 1\], got "1e30"/,
      ],
      [
        await cfg("eps.json", { ...TINY_FIELDS, eps: 1e308 }),
        1,
        /ModelConfig\/eps: a number in \(0, 1\]/,
      ],
      // Row 9: typos and unsupported values.
      [
        await cfg("level.json", { level: 2 }),
        1,
        /unknown field "level" \(did you mean "levels"\?\)/,
      ],
      [
        await cfg("stpes.json", { stpes: 8 }),
        1,
        /unknown field "stpes" \(did you mean "steps"\?\)/,
      ],
      [
        await cfg("ch.json", { ...TINY_FIELDS, imageChannels: 1 }),
        1,
        /imageChannels: must be 3 \(only RGB images are supported\), got 1/,
      ],
      // Row 11: truncated PNG, missing IEND, huge batch, small images, --patch 9.
      [
        trainArgs(dir, `${dir}/o2`).map((a) => a.endsWith("/clean") ? `${dir}/cut` : a),
        1,
        /cut\/a.png: cannot decode \(truncated PNG: chunk "IDAT" at byte 33 declares \d+ bytes, the file has \d+ left\)/,
      ],
      [
        trainArgs(dir, `${dir}/o3`).map((a) => a.endsWith("/clean") ? `${dir}/noend` : a),
        1,
        /noend\/a.png: cannot decode \(PNG has no IEND chunk \(truncated file\?\)\)/,
      ],
      [
        trainArgs(dir, `${dir}/o4`, "--iterations", "1").map((a, i, all) =>
          all[i - 1] === "--batch" ? "100000000" : a
        ),
        1,
        /--batch 100000000 × --crop 16: a training step needs about [\d.]+ [GT]?B, more than the .* use --batch \d+ or less/,
      ],
      [
        ["evaluate", "--generated", `${good}/clean`, "--real", `${good}/degraded`],
        1,
        /--generated: every image is too small for the 32×32 spectrum patch .*the largest here gives 30 px\); use --patch 16/,
      ],
      [
        ["evaluate", "--generated", `${good}/clean`, "--real", `${good}/degraded`, "--patch", "9"],
        2,
        /--patch: expected a power of 2 in \[8, 4096\], got "9"/,
      ],
    ];
    for (const [args, code, re] of cases) {
      const r = await cli(...args);
      try {
        assertOneLineError(r, code, re);
      } catch (e) {
        throw new Error(`deflow ${args.join(" ")}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(ls(dir).filter((n) => n.startsWith("o")), [], "nothing written");
    const ev = await cli(
      "evaluate",
      "--generated",
      `${good}/clean`,
      "--real",
      `${good}/degraded`,
      "--patch",
      "16",
      "--json",
      `${dir}/r.json`,
    );
    assert.equal(ev.code, 0, ev.stderr);
    assertOneLineError(
      await cli(
        "evaluate",
        "--generated",
        `${good}/clean`,
        "--real",
        `${good}/degraded`,
        "--patch",
        "16",
        "--json",
        `${dir}/r.json`,
      ),
      1,
      /--json: ".*r.json" already exists; use --overwrite/,
    );
    assert.deepEqual(errorLines(ev), []);
    await Deno.remove(good, { recursive: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const TINY_FIELDS = {
  levels: 2,
  steps: 1,
  transitionSteps: 1,
  hidden: 8,
  encoder: { nf: 4, nb: 1, gc: 4 },
  conditionFactor: 2,
};
