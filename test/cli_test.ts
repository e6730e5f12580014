/**
 * End-to-end tests of the `deflow` CLI as a subprocess (wasm backend, tiny model).
 */
import assert from "node:assert/strict";
import { either as E } from "fp-ts";
import { readImage, rgbImage, writePng } from "../src/image/io.ts";
import { gridOffsetsHint } from "../src/cli/commands.ts";
import { configOrThrow } from "../src/model/config.ts";
import { trainDefaults } from "../src/train/loop.ts";
import { makeData } from "./_trust_helpers.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const deflow = async (cwd: string, ...args: string[]): Promise<Run> => {
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

/** stderr lines other than the backend line. */
const errorLines = (r: Run): string[] =>
  r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("deflow: backend "));

/** Assert a failed run printed exactly one error line matching `re`, and no stack trace. */
const assertOneLineError = (r: Run, code: number, re: RegExp): void => {
  const lines = errorLines(r);
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.equal(lines.length, 1, `one error line expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^deflow: /);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "stack trace printed");
};

const picture = (w: number, h: number, seed: number, noise: number) => {
  const d = new Float32Array(w * h * 3);
  let s = seed * 7919 + 1;
  for (let i = 0; i < d.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    d[i] = 0.5 + 0.3 * Math.sin(i / 11 + seed) + noise * (s / 4294967296 - 0.5);
  }
  return rgbImage(w, h, d);
};

const TINY = {
  levels: 2,
  steps: 1,
  transitionSteps: 1,
  hidden: 8,
  encoder: { nf: 4, nb: 1, gc: 4 },
  conditionFactor: 2,
};

Deno.test("cli: train, info, resume, degrade, restore, evaluate end to end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "deflow-cli-" });
  try {
    for (const [sub, noise] of [["clean", 0], ["degraded", 0.3]] as const) {
      await Deno.mkdir(`${dir}/${sub}`);
      for (let k = 0; k < 2; k++) {
        await writePng(`${dir}/${sub}/p${k}.png`, picture(32, 32, k + 1, noise));
      }
    }
    await Deno.writeTextFile(`${dir}/tiny.json`, JSON.stringify(TINY));
    const common = ["--clean", "clean", "--degraded", "degraded", "--backend", "wasm"];
    const tr = await deflow(
      dir,
      "train",
      ...common,
      "--config",
      "tiny.json",
      "--out",
      "run",
      "--iterations",
      "3",
      "--batch",
      "4",
      "--crop",
      "16",
      "--normalize",
    );
    assert.equal(tr.code, 0, tr.stderr);
    assert.match(tr.stdout, /step 3\/3 .*bits\/dim clean \d+\.\d+ degraded \d+\.\d+/);
    assert.match(tr.stdout, /trained 3 steps/);
    assert.deepEqual(errorLines(tr), []);
    for (const f of ["checkpoint.safetensors", "loss.json", "loss.png"]) {
      assert.ok((await Deno.stat(`${dir}/run/${f}`)).size > 0, f);
    }

    const info = await deflow(dir, "info", "--model", "run/checkpoint.safetensors", "--json");
    assert.equal(info.code, 0, info.stderr);
    const j = JSON.parse(info.stdout);
    assert.equal(j.step, 3);
    assert.equal(j.config.levels, 2);
    assert.equal(j.config.hidden, 8);
    assert.equal(j.run.crop, 16);
    assert.ok(j.normalization !== null);
    const table = await deflow(dir, "info", "--model", "run/checkpoint.safetensors");
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^step\s+3 \(Adam step 3\)$/m);

    // Resume with the saved settings for one more step.
    const res = await deflow(
      dir,
      "train",
      ...common,
      "--out",
      "run",
      "--resume",
      "--iterations",
      "4",
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /trained 4 steps/);
    const info2 = await deflow(dir, "info", "--model", "run/checkpoint.safetensors", "--json");
    assert.equal(JSON.parse(info2.stdout).step, 4);

    const deg = await deflow(
      dir,
      "degrade",
      "--model",
      "run/checkpoint.safetensors",
      "--in",
      "clean",
      "--out",
      "gen",
      "--samples",
      "2",
      "--backend",
      "wasm",
    );
    assert.equal(deg.code, 0, deg.stderr);
    const names = [...Deno.readDirSync(`${dir}/gen`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["p0_s0.png", "p0_s1.png", "p1_s0.png", "p1_s1.png"]);
    const a = await readImage(`${dir}/gen/p0_s0.png`);
    const b = await readImage(`${dir}/gen/p0_s1.png`);
    assert.ok(E.isRight(a) && E.isRight(b));
    assert.equal(a.right.width, 32);
    assert.equal(a.right.height, 32);
    assert.notDeepEqual(a.right.data, b.right.data, "two samples should differ");
    // Grid offsets need a flow affine in the image; this model's is not: refused, nothing written.
    const spun = await deflow(
      dir,
      "degrade",
      "--model",
      "run/checkpoint.safetensors",
      "--in",
      "clean",
      "--out",
      "spun",
      "--grid-offsets",
      "4",
      "--backend",
      "wasm",
    );
    assert.notEqual(spun.code, 0);
    assert.match(spun.stderr, /--grid-offsets: .* not trained with linearCoupling/);
    const spunKind = await Deno.stat(`${dir}/spun`).then(() => "present", () => "missing");
    assert.equal(spunKind, "missing", "a refused run created its output folder");

    const rest = await deflow(
      dir,
      "restore",
      "--model",
      "run/checkpoint.safetensors",
      "--in",
      "degraded",
      "--out",
      "rest",
      "--backend",
      "wasm",
    );
    assert.equal(rest.code, 0, rest.stderr);
    assert.deepEqual([...Deno.readDirSync(`${dir}/rest`)].map((e) => e.name).sort(), [
      "p0_s0.png",
      "p1_s0.png",
    ]);

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
      "16",
    );
    assert.equal(ev.code, 0, ev.stderr);
    assert.match(ev.stdout, /noise std R G B/);
    assert.match(ev.stdout, /PSNR vs clean/);
    const report = JSON.parse(await Deno.readTextFile(`${dir}/report.json`));
    assert.equal(report.generated.count, 4);
    assert.equal(report.real.count, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: errors are one line with the right exit code", async () => {
  const dir = await Deno.makeTempDir({ prefix: "deflow-cli-err-" });
  try {
    await Deno.mkdir(`${dir}/clean`);
    await Deno.mkdir(`${dir}/empty`);
    await Deno.mkdir(`${dir}/broken`);
    await writePng(`${dir}/clean/a.png`, picture(16, 16, 1, 0));
    await Deno.writeTextFile(`${dir}/broken/bad.png`, "not a png");
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ levels: -1 }));
    await Deno.writeTextFile(`${dir}/bad.safetensors`, "garbage garbage garbage");

    const cases: [string[], number, RegExp][] = [
      [
        ["train", "--clean", "nope", "--degraded", "clean"],
        1,
        /--clean: folder "nope" does not exist/,
      ],
      [["train", "--clean", "empty", "--degraded", "clean"], 1, /--clean: no PNG or JPEG images/],
      [
        ["train", "--clean", "clean", "--degraded", "broken"],
        1,
        /broken\/bad.png: not a PNG or JPEG/,
      ],
      [
        ["train", "--clean", "clean", "--degraded", "clean", "--batch", "x"],
        2,
        /--batch: expected an integer ≥ 1, got "x"/,
      ],
      [["train", "--clean", "clean"], 2, /--degraded is required/],
      [
        ["train", "--clean", "clean", "--degraded", "clean", "--setting", "noise", "--config", "x"],
        2,
        /--setting and --config exclude each other/,
      ],
      [
        ["train", "--clean", "clean", "--degraded", "clean", "--setting", "best"],
        2,
        /--setting/,
      ],
      [
        ["train", "--clean", "clean", "--degraded", "clean", "--frob"],
        2,
        /Unknown option '--frob'/,
      ],
      [
        ["train", "--clean", "clean", "--degraded", "clean", "--config", "bad.json"],
        1,
        /--config: "bad.json": Invalid value -1 supplied to : ModelConfig\/levels: PositiveInt/,
      ],
      [
        ["train", "--clean", "clean", "--degraded", "clean", "--crop", "64"],
        1,
        /clean image "clean\/a.png" is 16×16, smaller than the 64×64 crop/,
      ],
      [
        ["train", "--clean", "clean", "--degraded", "clean", "--resume", "--out", "x"],
        1,
        /--resume: no checkpoint at "x\/checkpoint.safetensors"/,
      ],
      [["info", "--model", "bad.safetensors"], 1, /bad.safetensors.*(header|safetensors)/],
      [["info", "--model", "missing.safetensors"], 1, /--model: no file at "missing.safetensors"/],
      [
        ["degrade", "--model", "bad.safetensors", "--in", "clean", "--out", "o"],
        1,
        /bad.safetensors/,
      ],
      [
        [
          "degrade",
          "--model",
          "bad.safetensors",
          "--in",
          "clean",
          "--out",
          "o",
          "--temperature=-1",
        ],
        2,
        /--temperature: expected a number ≥ 0/,
      ],
      [
        ["evaluate", "--generated", "clean", "--real", "nope"],
        1,
        /--real: folder "nope" does not exist/,
      ],
      [["frobnicate"], 2, /unknown command "frobnicate"/],
      [
        ["info", "--model", "-x"],
        2,
        /--model: a value starting with "-" must be written --model=VALUE/,
      ],
    ];
    const results: Run[] = [];
    for (let i = 0; i < cases.length; i += 3) {
      results.push(
        ...await Promise.all(cases.slice(i, i + 3).map(([args]) => deflow(dir, ...args))),
      );
    }
    results.forEach((r, i) => {
      const [args, code, re] = cases[i];
      try {
        assertOneLineError(r, code, re);
      } catch (e) {
        throw new Error(`deflow ${args.join(" ")}: ${(e as Error).message}`);
      }
    });
    // Nothing was written by the failed commands.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "bad.json",
      "bad.safetensors",
      "broken",
      "clean",
      "empty",
    ]);
    const help = await deflow(dir, "train", "--help");
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--degraded DIR\s+folder of degraded images \(required\)/);
    const top = await deflow(dir, "--help");
    assert.equal(top.code, 0);
    for (const c of ["train", "degrade", "restore", "info", "evaluate"]) {
      assert.match(top.stdout, new RegExp(`^  ${c} `, "m"));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: without --config, train picks the setting and degrade spins every grid offset", async () => {
  const dir = await makeData("deflow-cli-setting-"); // no --config: tiny.json is not used
  try {
    const tr = await deflow(
      dir,
      "train",
      ...["--clean", "clean", "--degraded", "degraded", "--backend", "wasm", "--out", "run"],
      ...["--iterations", "1", "--batch", "2", "--crop", "16"],
    );
    assert.equal(tr.code, 0, tr.stderr);
    // Uniform noise without JPEG: the noise setting, without downscaled copies (32 / 4 < 16).
    assert.match(
      tr.stdout,
      /^train: setting noise; JPEG block-grid score of the degraded images 1\.\d{3} \(< 1\.05: not JPEG-compressed\).*none would be 16 pixels a side\); 1 iteration$/m,
    );
    const info = await deflow(dir, "info", "--model", "run/checkpoint.safetensors", "--json");
    const j = JSON.parse(info.stdout);
    assert.equal(j.config.linearCoupling, true);
    assert.equal(j.config.stationaryScale, true);
    assert.equal(j.run.cleanFromDegraded, 0);
    assert.equal(j.run.contractionLrMultiple, trainDefaults.contractionLrMultiple);
    // The paper setting's run records its contractions' rate and parameter average;
    // --contraction-lr and --average-decay set them.
    const rates = [
      [[], trainDefaults.contractionLrMultiple, trainDefaults.averageDecay],
      [["--contraction-lr", "2.5", "--average-decay", "0.9"], 2.5, 0.9],
    ];
    for (const [extra, want, wantAverage] of rates as [string[], number, number][]) {
      const paper = await deflow(
        dir,
        "train",
        ...["--clean", "clean", "--degraded", "degraded", "--backend", "wasm", "--out", "paper"],
        ...["--iterations", "1", "--batch", "2", "--crop", "16", "--setting", "paper", ...extra],
      );
      assert.equal(paper.code, 0, paper.stderr);
      const pj = JSON.parse(
        (await deflow(dir, "info", "--model", "paper/checkpoint.safetensors", "--json")).stdout,
      );
      assert.equal(pj.config.additiveCoupling, true);
      assert.equal(pj.run.contractionLrMultiple, want);
      assert.equal(pj.run.averageDecay, wantAverage);
      await Deno.remove(`${dir}/paper`, { recursive: true });
    }
    const badDecay = await deflow(
      dir,
      "train",
      ...["--clean", "clean", "--degraded", "degraded", "--out", "bad", "--average-decay", "1"],
    );
    assert.notEqual(badDecay.code, 0);
    assert.match(badDecay.stderr, /--average-decay.*\[0, 1\)/);
    const deg = await deflow(
      dir,
      ...["degrade", "--model", "run/checkpoint.safetensors", "--in", "clean", "--out", "d"],
      ...["--backend", "wasm"],
    );
    assert.equal(deg.code, 0, deg.stderr);
    assert.match(deg.stderr, /degrade: 64 noise fields, one per offset of the model's block grid/);
    assert.doesNotMatch(deg.stderr, /repeats with that grid/);
    const over = await deflow(
      dir,
      ...["degrade", "--model", "run/checkpoint.safetensors", "--in", "clean", "--out", "e"],
      ...["--backend", "wasm", "--grid-offsets", "65"],
    );
    assert.equal(over.code, 1);
    assert.match(over.stderr, /--grid-offsets: 65 is more than the 64 offsets/);
    assert.ok((await Deno.stat(`${dir}/d/p0_s0.png`)).size > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("degrade: a linear joint-shift model sampled without grid offsets gets a hint", () => {
  const spinnable = configOrThrow({ linearCoupling: true, jointShift: true });
  assert.match(
    gridOffsetsHint(spinnable, 1) ?? "",
    /8×8 block.*--grid-offsets 64 averages it over every offset/,
  );
  assert.equal(gridOffsetsHint(spinnable, 16), null);
  assert.equal(gridOffsetsHint(configOrThrow({ linearCoupling: true }), 1), null);
  assert.equal(gridOffsetsHint(configOrThrow({ jointShift: true }), 1), null);
  assert.equal(gridOffsetsHint(configOrThrow({}), 1), null);
});
