/**
 * Helpers of the trust_* tests: a tiny data set on disk, the CLI in this process or as a
 * subprocess, and one-line error checks.
 */
import assert from "node:assert/strict";
import { rgbImage, writePng } from "../src/image/io.ts";
import { main } from "../src/cli/main.ts";

export const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
export const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** What a CLI run printed and returned. */
export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The tiny model config of the CLI tests. */
export const TINY = {
  levels: 2,
  steps: 1,
  transitionSteps: 1,
  hidden: 8,
  encoder: { nf: 4, nb: 1, gc: 4 },
  conditionFactor: 2,
};

/** A smooth picture plus seeded noise. */
export const picture = (w: number, h: number, seed: number, noise: number) => {
  const d = new Float32Array(w * h * 3);
  let s = seed * 7919 + 1;
  for (let i = 0; i < d.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    d[i] = 0.5 + 0.3 * Math.sin(i / 11 + seed) + noise * (s / 4294967296 - 0.5);
  }
  return rgbImage(w, h, d);
};

/** A temp folder with clean/ and degraded/ (two 32×32 PNGs each) and tiny.json. */
export const makeData = async (prefix: string): Promise<string> => {
  const dir = await Deno.makeTempDir({ prefix });
  for (const [sub, noise] of [["clean", 0], ["degraded", 0.3]] as const) {
    await Deno.mkdir(`${dir}/${sub}`);
    for (let k = 0; k < 2; k++) {
      await writePng(`${dir}/${sub}/p${k}.png`, picture(32, 32, k + 1, noise));
    }
  }
  await Deno.writeTextFile(`${dir}/tiny.json`, JSON.stringify(TINY));
  return dir;
};

/** Training options of the tiny runs (paths relative to the data folder). */
export const trainArgs = (dir: string, out: string, ...more: string[]): string[] => [
  "train",
  "--clean",
  `${dir}/clean`,
  "--degraded",
  `${dir}/degraded`,
  "--config",
  `${dir}/tiny.json`,
  "--out",
  out,
  "--batch",
  "4",
  "--crop",
  "16",
  "--backend",
  "wasm",
  ...more,
];

/** Run the CLI's `main` in this process, capturing what it prints. */
export const cli = async (...args: string[]): Promise<Run> => {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.map(String).join(" "));
  console.error = (...a: unknown[]) => void err.push(a.map(String).join(" "));
  const write = Deno.stdout.writeSync;
  Deno.stdout.writeSync = (b: Uint8Array) => {
    out.push(new TextDecoder().decode(b));
    return b.length;
  };
  try {
    const code = await main(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
    Deno.stdout.writeSync = write;
  }
};

/** Run the CLI as a subprocess. */
export const cliProcess = async (
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Run> => {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
};

/** stderr lines other than the backend line and progress lines. */
export const errorLines = (r: Run): string[] =>
  r.stderr.split("\n").filter((l) =>
    l.trim() !== "" && !l.startsWith("deflow: backend ") && !/^(degrade|restore): \[/.test(l)
  );

/** Assert a failed run printed exactly one `deflow: …` line matching `re`, no stack trace. */
export const assertOneLineError = (r: Run, code: number, re: RegExp): void => {
  const lines = errorLines(r);
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}\nstdout: ${r.stdout}`);
  assert.equal(lines.length, 1, `one error line expected, got:\n${r.stderr}`);
  assert.match(lines[0], /^deflow: /);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "stack trace printed");
};

/** File names in a folder, sorted ([] when it does not exist). */
export const ls = (dir: string): string[] => {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
};
