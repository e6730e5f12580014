/**
 * The `deflow` CLI commands: `train`, `degrade`, `restore`, `info`, `evaluate`.
 *
 * Each command takes its parsed, validated options and returns an exit code; failures
 * the user can fix throw {@linkcode CliError} (one line, exit 1).
 *
 * @module
 */
import { canonicalJson } from "../core/json.ts";
import { either as E } from "fp-ts";
import { tf } from "../tf.ts";
import { type BackendName, initBackend } from "../core/backend.ts";
import { disposeParams } from "../core/params.ts";
import { foldIn } from "../core/random.ts";
import { configToJson, decodeConfig, defaultConfig, type ModelConfig } from "../model/config.ts";
import { degrade, prepareSampler, restore, type SampleOptions } from "../model/sample.ts";
import {
  imageToTensor,
  listImages,
  readImage,
  type RgbImage,
  tensorToImages,
  writePng,
} from "../image/io.ts";
import { compareSets, formatReportTable } from "../eval/mod.ts";
import { CHECKPOINT_FILE, terminalProgress, train, trainDefaults } from "../train/loop.ts";
import { checkCropFits } from "../train/sampler.ts";
import { sizeMultiple } from "../model/layout.ts";
import { CliError, type CommandSpec, flagArg, intArg, numArg, oneOf, textArg } from "./args.ts";
import { loadModel, readModelInfo } from "./model.ts";

const backendOption = {
  codec: oneOf("wasm", "webgpu", "cpu", "auto"),
  value: "NAME",
  help: "tfjs backend: wasm, webgpu, cpu or auto (default: DEFLOW_BACKEND or auto)",
} as const;

/** Options of `deflow train`. */
export interface TrainArgs {
  /** Folder of clean images. */
  readonly clean: string;
  /** Folder of degraded images. */
  readonly degraded: string;
  /** Model config JSON file. */
  readonly config?: string;
  /** Output folder. */
  readonly out?: string;
  /** Resume from `<out>/checkpoint.safetensors`. */
  readonly resume?: boolean;
  /** Total iterations. */
  readonly iterations?: number;
  /** Batch size. */
  readonly batch?: number;
  /** Crop side. */
  readonly crop?: number;
  /** Base learning rate. */
  readonly lr?: number;
  /** Seed. */
  readonly seed?: number;
  /** Normalise the degraded domain. */
  readonly normalize?: boolean;
  /** Steps between checkpoints. */
  readonly "checkpoint-every"?: number;
  /** Consecutive non-finite steps that abort. */
  readonly "max-skips"?: number;
  /** Backend. */
  readonly backend?: BackendName | "auto";
}

/** Default output folder of `deflow train`. */
export const DEFAULT_OUT = "deflow-run";
/** Default iterations of a fresh `deflow train`. */
export const DEFAULT_ITERATIONS = 2000;

/** `deflow train` options. */
export const trainSpec: CommandSpec = {
  name: "train",
  summary: "train a DeFlow model on unpaired clean and degraded images",
  options: {
    clean: { codec: textArg, required: true, value: "DIR", help: "folder of clean images" },
    degraded: { codec: textArg, required: true, value: "DIR", help: "folder of degraded images" },
    config: { codec: textArg, value: "FILE", help: "model config JSON (default: built-in)" },
    out: { codec: textArg, value: "DIR", help: `output folder (default ${DEFAULT_OUT})` },
    resume: { codec: flagArg, help: "continue from <out>/checkpoint.safetensors" },
    iterations: {
      codec: intArg(1),
      value: "N",
      help: `total iterations (default ${DEFAULT_ITERATIONS}, or the checkpoint's)`,
    },
    batch: { codec: intArg(1), value: "N", help: "batch size (default 8)" },
    crop: { codec: intArg(1), value: "N", help: "crop side, a multiple of 2^levels (default 64)" },
    lr: { codec: numArg(0), value: "X", help: "base learning rate (default 5e-4)" },
    seed: { codec: intArg(0, 0xffffffff), value: "S", help: "random seed (default 0)" },
    normalize: {
      codec: flagArg,
      help: "normalise degraded images to the clean set's channel mean/std",
    },
    "checkpoint-every": {
      codec: intArg(1),
      value: "N",
      help: "iterations between checkpoints (default: a tenth of the run)",
    },
    "max-skips": {
      codec: intArg(1),
      value: "N",
      help: "consecutive non-finite losses that abort (default 100)",
    },
    backend: backendOption,
  },
};

const dirExists = async (dir: string, option: string): Promise<void> => {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch {
    throw new CliError(`${option}: folder "${dir}" does not exist`);
  }
  if (!info.isDirectory) throw new CliError(`${option}: "${dir}" is not a folder`);
};

/** Read every PNG/JPEG in a folder (sorted by name). */
export const readFolder = async (
  dir: string,
  option: string,
): Promise<{ images: RgbImage[]; names: string[] }> => {
  await dirExists(dir, option);
  let names: string[];
  try {
    names = await listImages(dir);
  } catch (e) {
    throw new CliError(`${option}: ${(e as Error).message}`);
  }
  if (names.length === 0) throw new CliError(`${option}: no PNG or JPEG images in "${dir}"`);
  const images: RgbImage[] = [];
  for (const n of names) {
    const r = await readImage(n);
    if (E.isLeft(r)) throw new CliError(r.left.message);
    images.push(r.right);
  }
  return { images, names };
};

const readConfigFile = async (path: string): Promise<ModelConfig> => {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new CliError(`--config: cannot read "${path}" (${(e as Error).message.split("\n")[0]})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliError(`--config: "${path}" is not valid JSON (${(e as Error).message})`);
  }
  const c = decodeConfig(json);
  if (E.isLeft(c)) throw new CliError(`--config: "${path}": ${c.left.join("; ")}`);
  return c.right;
};

const fileExists = async (path: string): Promise<boolean> => {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
};

const out = (s: string) => console.log(s);

/** `deflow train`. */
export const runTrain = async (a: TrainArgs): Promise<number> => {
  const outDir = a.out ?? DEFAULT_OUT;
  const ckpt = `${outDir}/${CHECKPOINT_FILE}`;
  const config = a.config ? await readConfigFile(a.config) : undefined;
  let effective = config ?? defaultConfig;
  let savedCrop: number | undefined;
  if (a.resume) {
    if (!(await fileExists(ckpt))) {
      throw new CliError(`--resume: no checkpoint at "${ckpt}"`);
    }
    const mi = await readModelInfo(ckpt); // fails early on a corrupt checkpoint
    if (config && canonicalJson(config) !== canonicalJson(mi.config)) {
      throw new CliError(`--config: differs from the config stored in "${ckpt}"`);
    }
    effective = mi.config;
    const run = (mi.info.training as unknown as { run?: { crop?: unknown } }).run;
    if (typeof run?.crop === "number") savedCrop = run.crop;
  }
  const clean = await readFolder(a.clean, "--clean");
  const degraded = await readFolder(a.degraded, "--degraded");
  // Check the crop before starting the backend, so that errors stay one line.
  const crop = a.crop ?? savedCrop ?? trainDefaults.crop;
  const m = sizeMultiple(effective);
  if (crop % m !== 0) {
    throw new CliError(`--crop: ${crop} must be a multiple of ${m} (2^levels of the model)`);
  }
  try {
    checkCropFits(clean.images, crop, "clean", clean.names);
    checkCropFits(degraded.images, crop, "degraded", degraded.names);
  } catch (e) {
    throw new CliError(`--crop: ${(e as Error).message}`);
  }
  await initBackend({ backend: a.backend });
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  let listening = false;
  try {
    Deno.addSignalListener("SIGINT", onSigint);
    listening = true;
  } catch {
    // signals unsupported here
  }
  try {
    const r = await train({
      clean: clean.images,
      degraded: degraded.images,
      cleanNames: clean.names,
      degradedNames: degraded.names,
      ...(config && !a.resume ? { config } : {}),
      iterations: a.iterations ?? (a.resume ? undefined : DEFAULT_ITERATIONS),
      batch: a.batch,
      crop: a.crop,
      lr: a.lr,
      seed: a.seed,
      outDir,
      checkpointEvery: a["checkpoint-every"],
      maxSkips: a["max-skips"],
      resumeFrom: a.resume ? ckpt : undefined,
      normalize: a.normalize,
      onProgress: terminalProgress(),
      signal: controller.signal,
    });
    disposeParams(r.params);
    if (r.interrupted) {
      out(`interrupted at step ${r.step}; checkpoint ${r.checkpoint}; continue with --resume`);
      return 130;
    }
    out(`trained ${r.step} steps; checkpoint ${r.checkpoint}`);
    return 0;
  } finally {
    if (listening) Deno.removeSignalListener("SIGINT", onSigint);
  }
};

/** Options of `deflow degrade` and `deflow restore`. */
export interface SampleArgs {
  /** Checkpoint path. */
  readonly model: string;
  /** Input folder. */
  readonly in: string;
  /** Output folder. */
  readonly out: string;
  /** Temperature. */
  readonly temperature?: number;
  /** Seed. */
  readonly seed?: number;
  /** Samples per image. */
  readonly samples?: number;
  /** Tile side. */
  readonly tile?: number;
  /** Backend. */
  readonly backend?: BackendName | "auto";
}

const sampleOptions = (what: string) => ({
  model: { codec: textArg, required: true, value: "CKPT", help: "trained checkpoint" },
  in: { codec: textArg, required: true, value: "DIR", help: `folder of ${what} images` },
  out: { codec: textArg, required: true, value: "DIR", help: "output folder (created)" },
  temperature: {
    codec: numArg(0, true),
    value: "T",
    help: "temperature of the sampled shift (default 1)",
  },
  seed: { codec: intArg(0, 0xffffffff), value: "S", help: "random seed (default 0)" },
  samples: { codec: intArg(1), value: "N", help: "samples per image (default 1)" },
  tile: { codec: intArg(16), value: "N", help: "tile side in pixels (default 512)" },
  backend: backendOption,
});

/** `deflow degrade` options. */
export const degradeSpec: CommandSpec = {
  name: "degrade",
  summary: "sample degraded versions of clean images; writes <name>_s<k>.png",
  options: sampleOptions("clean"),
};

/** `deflow restore` options. */
export const restoreSpec: CommandSpec = {
  name: "restore",
  summary: "sample clean versions of degraded images (latent posterior); writes <name>_s<k>.png",
  options: sampleOptions("degraded"),
};

/** FNV-1a hash of a string (per-file seeds that do not depend on the folder's contents). */
const hash32 = (s: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
};

const stem = (path: string): string => path.replace(/^.*\//, "").replace(/\.[^.]+$/, "");

/** `deflow degrade` / `deflow restore`. */
export const runSample = async (a: SampleArgs, mode: "degrade" | "restore"): Promise<number> => {
  const { images, names } = await readFolder(a.in, "--in");
  if (!(await fileExists(a.model))) throw new CliError(`--model: no file at "${a.model}"`);
  await readModelInfo(a.model); // a corrupt checkpoint fails before the backend starts
  await initBackend({ backend: a.backend });
  const model = await loadModel(a.model);
  const sampler = await prepareSampler(model.params, model.config, model.normalization);
  try {
    await Deno.mkdir(a.out, { recursive: true });
    let written = 0;
    const started = performance.now();
    for (let i = 0; i < images.length; i++) {
      const name = stem(names[i]);
      const t0 = performance.now();
      const opts: SampleOptions = {
        temperature: a.temperature ?? 1,
        seed: foldIn(a.seed ?? 0, hash32(name)),
        samples: a.samples ?? 1,
        ...(a.tile ? { tile: a.tile } : {}),
      };
      const x = imageToTensor(images[i]);
      let outs: tf.Tensor4D[] = [];
      try {
        outs = mode === "degrade" ? degrade(sampler, x, opts) : restore(sampler, x, opts);
        for (let k = 0; k < outs.length; k++) {
          const [img] = await tensorToImages(outs[k]);
          await writePng(`${a.out}/${name}_s${k}.png`, img);
          written++;
        }
      } finally {
        tf.dispose([x, ...outs]);
      }
      const secs = (performance.now() - t0) / 1000;
      const left = ((performance.now() - started) / 1000 / (i + 1)) * (images.length - i - 1);
      console.error(
        `${mode}: [${i + 1}/${images.length}] ${name} (${images[i].width}×${images[i].height}) ` +
          `${secs.toFixed(1)} s, ETA ${left.toFixed(0)} s`,
      );
    }
    out(`wrote ${written} image(s) to ${a.out}`);
    return 0;
  } finally {
    sampler.dispose();
    disposeParams(model.params);
  }
};

/** Options of `deflow info`. */
export interface InfoArgs {
  /** Checkpoint path. */
  readonly model: string;
  /** Print JSON. */
  readonly json?: boolean;
}

/** `deflow info` options. */
export const infoSpec: CommandSpec = {
  name: "info",
  summary: "show a checkpoint's config, training state and size",
  options: {
    model: { codec: textArg, required: true, value: "CKPT", help: "checkpoint file" },
    json: { codec: flagArg, help: "print JSON instead of a table" },
  },
};

/** `deflow info`. */
export const runInfo = async (a: InfoArgs): Promise<number> => {
  if (!(await fileExists(a.model))) throw new CliError(`--model: no file at "${a.model}"`);
  const { info, config, normalization } = await readModelInfo(a.model);
  const tr = info.training as unknown as {
    step: number;
    lossHistory?: { step: number; clean: number; degraded: number }[];
    run?: Record<string, unknown>;
  };
  const last = tr.lossHistory?.[tr.lossHistory.length - 1];
  if (a.json) {
    out(JSON.stringify(
      {
        path: a.model,
        step: tr.step,
        adamStep: info.adamStep ?? null,
        parameters: info.summary.parameterCount,
        paramTensors: info.summary.paramTensorCount,
        fileBytes: info.summary.fileBytes,
        config: configToJson(config),
        run: tr.run ?? null,
        lastLoss: last ?? null,
        normalization: normalization ?? null,
      },
      null,
      2,
    ));
    return 0;
  }
  const rows: [string, string][] = [
    ["checkpoint", `${a.model} (${info.summary.fileBytes} bytes)`],
    ["step", `${tr.step}${info.adamStep !== undefined ? ` (Adam step ${info.adamStep})` : ""}`],
    [
      "parameters",
      `${info.summary.parameterCount} in ${info.summary.paramTensorCount} tensors`,
    ],
    ["config", JSON.stringify(configToJson(config))],
    ["run", tr.run ? JSON.stringify(tr.run) : "-"],
    [
      "loss (bits/dim)",
      last
        ? `clean ${last.clean.toFixed(4)}, degraded ${
          last.degraded.toFixed(4)
        } at step ${last.step}`
        : "-",
    ],
    [
      "normalization",
      normalization
        ? `degraded mean ${fmt3(normalization.degraded.mean)} std ${
          fmt3(normalization.degraded.std)
        } → clean mean ${fmt3(normalization.clean.mean)} std ${fmt3(normalization.clean.std)}`
        : "none",
    ],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) out(`${k.padEnd(w)}  ${v}`);
  return 0;
};

const fmt3 = (v: readonly number[]): string => `[${v.map((x) => x.toFixed(4)).join(", ")}]`;

/** Options of `deflow evaluate`. */
export interface EvaluateArgs {
  /** Generated degraded images. */
  readonly generated: string;
  /** Real degraded images. */
  readonly real: string;
  /** Clean partners. */
  readonly clean?: string;
  /** JSON report file. */
  readonly json?: string;
  /** Spectrum patch size. */
  readonly patch?: number;
}

/** `deflow evaluate` options. */
export const evaluateSpec: CommandSpec = {
  name: "evaluate",
  summary: "compare generated degraded images with real ones (noise, correlation, spectrum…)",
  options: {
    generated: { codec: textArg, required: true, value: "DIR", help: "generated degraded images" },
    real: { codec: textArg, required: true, value: "DIR", help: "real degraded images" },
    clean: {
      codec: textArg,
      value: "DIR",
      help: "clean partners, matched by name (<name>_s<k>.png ↔ <name>.*): adds paired stats",
    },
    json: { codec: textArg, value: "FILE", help: "also write the full report as JSON" },
    patch: { codec: intArg(8), value: "N", help: "spectrum patch size (default 32)" },
  },
};

const partnerName = (generated: string): string => stem(generated).replace(/_s\d+$/, "");

/** Clean partners of `names` by stem (with a `_s<k>` suffix stripped), or why not. */
const partners = (
  names: readonly string[],
  clean: { images: RgbImage[]; names: string[] },
): RgbImage[] | string => {
  const byStem = new Map(clean.names.map((n, i) => [stem(n), clean.images[i]]));
  const out: RgbImage[] = [];
  for (const n of names) {
    const p = byStem.get(stem(n)) ?? byStem.get(partnerName(n));
    if (!p) return n;
    out.push(p);
  }
  return out;
};

/** `deflow evaluate`. */
export const runEvaluate = async (a: EvaluateArgs): Promise<number> => {
  const gen = await readFolder(a.generated, "--generated");
  const real = await readFolder(a.real, "--real");
  const clean = a.clean ? await readFolder(a.clean, "--clean") : undefined;
  let genClean: RgbImage[] | undefined;
  let realClean: RgbImage[] | null | undefined;
  if (clean) {
    const g = partners(gen.names, clean);
    if (typeof g === "string") {
      throw new CliError(`--clean: no clean image named like "${g}" in "${a.clean}"`);
    }
    genClean = g;
    const r = partners(real.names, clean);
    realClean = typeof r === "string" ? null : r;
  }
  let report;
  try {
    report = compareSets(gen.images, real.images, genClean, {
      ...(a.patch ? { patch: a.patch } : {}),
      ...(realClean !== undefined ? { realClean } : {}),
    });
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  out(formatReportTable(report));
  if (a.json) {
    try {
      await Deno.writeTextFile(a.json, JSON.stringify(report, null, 1));
    } catch (e) {
      throw new CliError(`--json: cannot write "${a.json}" (${(e as Error).message})`);
    }
  }
  return 0;
};
