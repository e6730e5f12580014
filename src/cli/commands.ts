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
import {
  degrade,
  prepareSampler,
  recommendedGridOffsets,
  restore,
  type SampleOptions,
} from "../model/sample.ts";
import {
  DEFAULT_MAX_PIXELS,
  imageToTensor,
  listImages,
  readImage,
  type RgbImage,
  tensorToImages,
  toBytes,
  writePng,
} from "../image/io.ts";
import { OutputExistsError, writeTextFileAtomic } from "../io/atomic.ts";
import { verifyCheckpoint } from "../io/checkpoint.ts";
import { availableMemoryBytes, memoryProblem, WASM_MEMORY_BYTES } from "./memory.ts";
import { compareSets, formatReportTable } from "../eval/mod.ts";
import { CHECKPOINT_FILE, terminalProgress, train, trainDefaults } from "../train/loop.ts";
import { checkCropFits } from "../train/sampler.ts";
import { pickSetting, type SettingName, settings, type TrainingSetting } from "../train/setting.ts";
import { sizeMultiple } from "../model/layout.ts";
import {
  CliError,
  type CommandSpec,
  decayArg,
  flagArg,
  intArg,
  numArg,
  numRangeArg,
  oneOf,
  powerOfTwoArg,
  textArg,
  UsageError,
} from "./args.ts";
import { loadModel, readModelInfo } from "./model.ts";

const backendOption = {
  codec: oneOf("wasm", "webgpu", "cpu", "auto"),
  value: "NAME",
  help: "tfjs backend: wasm, webgpu, cpu or auto (default: DEFLOW_BACKEND or auto)",
} as const;

const maxMegapixelsOption = {
  codec: numArg(0),
  value: "N",
  help: `largest image accepted, in megapixels (default ${DEFAULT_MAX_PIXELS / 1e6})`,
} as const;

const decodeOptions = (mp: number | undefined) => ({
  maxPixels: mp === undefined ? DEFAULT_MAX_PIXELS : Math.round(mp * 1e6),
});

/** Options of `deflow train`. */
export interface TrainArgs {
  /** Folder of clean images. */
  readonly clean: string;
  /** Folder of degraded images. */
  readonly degraded: string;
  /** Model config JSON file. */
  readonly config?: string;
  /** Training setting when no config file is given. */
  readonly setting?: "auto" | SettingName;
  /** Output folder. */
  readonly out?: string;
  /** Resume from `<out>/checkpoint.safetensors`. */
  readonly resume?: boolean;
  /** Start a new run over an existing one in `out`. */
  readonly force?: boolean;
  /** Largest image accepted, in megapixels. */
  readonly "max-megapixels"?: number;
  /** Total iterations. */
  readonly iterations?: number;
  /** Batch size. */
  readonly batch?: number;
  /** Crop side. */
  readonly crop?: number;
  /** Crop-corner grid. */
  readonly "crop-align"?: number;
  /** Base learning rate. */
  readonly lr?: number;
  /** Learning-rate multiple of the latent shifts. */
  readonly "shift-lr"?: number;
  /** Learning-rate multiple of the latent contractions. */
  readonly "contraction-lr"?: number;
  /** Downscale factor of the degraded photos added to the clean domain. */
  readonly "clean-from-degraded"?: number;
  /** Decay of the parameter average (0: off). */
  readonly "average-decay"?: number;
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
/**
 * Default iterations of a fresh `deflow train` with `--config` (without it, the setting's:
 * {@linkcode settings}`.paper.iterations`, {@linkcode settings}`.noise.iterations`).
 */
export const DEFAULT_ITERATIONS = 2000;

/**
 * The length of a `deflow train` run: `--iterations` when given; else, for a resumed run,
 * undefined (the checkpoint's); else the picked setting's default, or
 * {@linkcode DEFAULT_ITERATIONS} with `--config` (no setting).
 */
export const trainIterations = (
  asked: number | undefined,
  resume: boolean,
  setting?: TrainingSetting,
): number | undefined => asked ?? (resume ? undefined : setting?.iterations ?? DEFAULT_ITERATIONS);

/** `deflow train` options. */
export const trainSpec: CommandSpec = {
  name: "train",
  summary: "train a DeFlow model on unpaired clean and degraded images",
  options: {
    clean: { codec: textArg, required: true, value: "DIR", help: "folder of clean images" },
    degraded: { codec: textArg, required: true, value: "DIR", help: "folder of degraded images" },
    config: {
      codec: textArg,
      value: "FILE",
      help: "model config JSON (default: the one --setting picks)",
    },
    setting: {
      codec: oneOf("auto", "noise", "paper"),
      value: "S",
      help: "noise (uncompressed noise: stationary linear flow, clean domain also from the " +
        "degraded images downscaled by 4), paper (the paper's multi-scale flow with additive " +
        "couplings; JPEG), or auto (default: " +
        "paper if the degraded images carry JPEG's 8×8 block grid, else noise)",
    },
    out: { codec: textArg, value: "DIR", help: `output folder (default ${DEFAULT_OUT})` },
    resume: {
      codec: flagArg,
      help: "continue from <out>/checkpoint.safetensors (seed, batch, crop, config and " +
        "images must be unchanged; --lr may change)",
    },
    force: {
      codec: flagArg,
      help: "start a new run even though <out> holds one (its files are replaced)",
    },
    iterations: {
      codec: intArg(1),
      value: "N",
      help: `total iterations (default: the setting's, ${settings.paper.iterations} for paper, ` +
        `${settings.noise.iterations} for noise; ${DEFAULT_ITERATIONS} with --config; or the ` +
        `checkpoint's with --resume)`,
    },
    batch: { codec: intArg(1), value: "N", help: "batch size (default 8)" },
    crop: { codec: intArg(1), value: "N", help: "crop side, a multiple of 2^levels (default 64)" },
    "crop-align": {
      codec: intArg(1),
      value: "N",
      help: "crop corners on multiples of N pixels (default 1; 2^levels = the flow's block grid)",
    },
    lr: { codec: numRangeArg(0, 1), value: "X", help: "base learning rate (default 5e-4)" },
    "shift-lr": {
      codec: numRangeArg(0, 1000),
      value: "K",
      help:
        `learning-rate multiple of the latent shifts (default ${trainDefaults.shiftLrMultiple})`,
    },
    "contraction-lr": {
      codec: numRangeArg(0, 1000),
      value: "K",
      help: "learning-rate multiple of the latent contractions (default " +
        `${trainDefaults.contractionLrMultiple})`,
    },
    "clean-from-degraded": {
      codec: numRangeArg(0, 64),
      value: "F",
      help: "also train the clean domain on the degraded images downscaled by F (> 1; 4 = the " +
        "condition's factor; 0: off; default: the setting's, 4 for noise, 0 for paper and with " +
        "--config)",
    },
    "average-decay": {
      codec: decayArg,
      value: "D",
      help: "save the bias-corrected moving average of the parameters with decay D instead of " +
        `the last step's (0: off; default ${trainDefaults.averageDecay})`,
    },
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
    "max-megapixels": maxMegapixelsOption,
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
  maxMegapixels?: number,
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
    const r = await readImage(n, decodeOptions(maxMegapixels));
    if (E.isLeft(r)) throw new CliError(r.left.message);
    images.push(r.right);
  }
  return { images, names };
};

/**
 * Read and decode a model config JSON file (`--config`); a missing file, bad JSON or an
 * invalid config throws a {@linkcode CliError} that names the file and the problem.
 */
export const readConfigFile = async (path: string): Promise<ModelConfig> => {
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

/** What is at `path` without following a link: "missing", "folder", or "other". */
const pathKind = async (path: string): Promise<"missing" | "folder" | "other"> => {
  try {
    return (await Deno.lstat(path)).isDirectory ? "folder" : "other";
  } catch {
    return "missing";
  }
};

/** `--out` must be a folder or not exist yet. */
const checkOutFolder = async (dir: string): Promise<void> => {
  const kind = await pathKind(dir);
  if (kind === "other") {
    let what = "a file";
    try {
      if ((await Deno.lstat(dir)).isSymlink) {
        what = (await Deno.stat(dir).then((i) => i.isDirectory).catch(() => false))
          ? ""
          : "a symbolic link that is not to a folder";
      }
    } catch {
      // keep "a file"
    }
    if (what !== "") throw new CliError(`--out: "${dir}" is ${what}, not a folder`);
  }
};

const makeOutFolder = async (dir: string): Promise<void> => {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new CliError(`--out: cannot create the folder "${dir}" (${firstLine(e)})`);
  }
};

const firstLine = (e: unknown): string =>
  (e instanceof Error ? e.message : String(e)).split("\n")[0];

const out = (s: string) => console.log(s);

/**
 * The note `deflow degrade` prints when a model whose flow is affine in the image
 * (`linearCoupling`) and whose shift is one vector per block (`jointShift`) is sampled
 * with `--grid-offsets 1`: its noise then repeats with the flow's block grid. `null`
 * otherwise.
 */
export const gridOffsetsHint = (config: ModelConfig, offsets: number): string | null =>
  config.linearCoupling && config.jointShift && offsets === 1
    ? `degrade: this model samples one noise vector per ${2 ** config.levels}×${
      2 ** config.levels
    } block, so its noise repeats with that grid; --grid-offsets ${
      4 ** config.levels
    } averages it over every offset of the grid (the default), 16 over most of them (each ` +
      `offset costs an encoder pass and one or two decodes; for noise that ignores the grid, ` +
      `not JPEG's)`
    : null;

/** `deflow train`. */
export const runTrain = async (a: TrainArgs): Promise<number> => {
  const outDir = a.out ?? DEFAULT_OUT;
  const ckpt = `${outDir}/${CHECKPOINT_FILE}`;
  if (a.resume && a.force) throw new UsageError("train: --resume and --force exclude each other");
  if (a.setting && a.config) {
    throw new UsageError("train: --setting and --config exclude each other");
  }
  if (a.setting && a.resume) {
    throw new UsageError("train: --setting does not apply to --resume (a run keeps its model)");
  }
  await checkOutFolder(outDir);
  const config = a.config ? await readConfigFile(a.config) : undefined;
  let effective = config ?? defaultConfig;
  let savedRun: { crop?: unknown; batch?: unknown; seed?: unknown } | undefined;
  if (a.resume) {
    if (!(await fileExists(ckpt))) {
      throw new CliError(`--resume: no checkpoint at "${ckpt}"`);
    }
    const mi = await readModelInfo(ckpt); // fails early on a corrupt checkpoint
    if (config && canonicalJson(config) !== canonicalJson(mi.config)) {
      throw new CliError(
        `--config: differs from the config stored in "${ckpt}" (a resumed run keeps its ` +
          `model; start a new run with --force to change it)`,
      );
    }
    effective = mi.config;
    savedRun = (mi.info.training as unknown as { run?: typeof savedRun }).run;
    const changed = (["seed", "batch", "crop"] as const).filter((k) =>
      a[k] !== undefined && typeof savedRun?.[k] === "number" && a[k] !== savedRun[k]
    );
    if (changed.length > 0) {
      throw new CliError(
        `--resume: ${
          changed.map((k) => `--${k} ${a[k]} differs from the run's ${savedRun![k]}`).join(", ")
        } (only --lr and --iterations may change; start a new run with --force)`,
      );
    }
  } else if (await pathKind(ckpt) !== "missing" && !a.force) {
    let at = "";
    try {
      const mi = await readModelInfo(ckpt);
      at = ` at step ${mi.info.training.step}`;
    } catch {
      // an unreadable checkpoint is still a run not to replace silently
    }
    throw new CliError(
      `--out: "${outDir}" already holds a run (checkpoint${at}); continue it with --resume, ` +
        `or replace it with --force`,
    );
  }
  const clean = await readFolder(a.clean, "--clean", a["max-megapixels"]);
  const degraded = await readFolder(a.degraded, "--degraded", a["max-megapixels"]);
  // Check the crop before starting the backend, so that errors stay one line.
  const savedCrop = typeof savedRun?.crop === "number" ? savedRun.crop : undefined;
  const crop = a.crop ?? savedCrop ?? trainDefaults.crop;
  // Without a config file, a fresh run's model and clean domain come from the setting.
  let cleanFromDegraded = a["clean-from-degraded"];
  let chosen: ModelConfig | undefined = config;
  let iterations = trainIterations(a.iterations, a.resume ?? false);
  if (!config && !a.resume) {
    let pick: ReturnType<typeof pickSetting>;
    try {
      pick = pickSetting(a.setting ?? "auto", degraded.images, crop);
    } catch (e) {
      throw new CliError(`--setting auto: ${(e as Error).message} (choose --setting noise|paper)`);
    }
    chosen = effective = pick.setting.config;
    cleanFromDegraded ??= pick.setting.cleanFromDegraded;
    iterations = trainIterations(a.iterations, false, pick.setting);
    out(
      `train: setting ${pick.setting.name}; ${pick.reason}; ${iterations} ` +
        `iteration${iterations === 1 ? "" : "s"}` +
        (a.iterations === undefined ? " (the setting's default)" : ""),
    );
  }
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
  const batch = a.batch ??
    (typeof savedRun?.batch === "number" ? savedRun.batch : trainDefaults.batch);
  const system = availableMemoryBytes();
  const tooBig = system === undefined
    ? undefined
    : memoryProblem(effective, batch, crop, system, "this machine can give (80% of its memory)");
  if (tooBig) throw new CliError(tooBig);
  const backend = await initBackend({ backend: a.backend });
  if (backend.backend === "wasm") {
    const w = memoryProblem(effective, batch, crop, WASM_MEMORY_BYTES, "the wasm backend can use");
    if (w) throw new CliError(w);
  }
  if (a.force) {
    for (const f of [CHECKPOINT_FILE, "loss.json", "loss.png"]) {
      await Deno.remove(`${outDir}/${f}`).catch(() => {});
    }
  }
  const controller = new AbortController();
  let signal: Deno.Signal | undefined;
  const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const h = () => {
      signal ??= sig;
      controller.abort();
    };
    return [sig, h] as const;
  });
  const listening: (readonly [Deno.Signal, () => void])[] = [];
  for (const [sig, h] of handlers) {
    try {
      Deno.addSignalListener(sig, h);
      listening.push([sig, h]);
    } catch {
      // signals unsupported here
    }
  }
  try {
    const r = await train({
      clean: clean.images,
      degraded: degraded.images,
      cleanNames: clean.names,
      degradedNames: degraded.names,
      ...(chosen && !a.resume ? { config: chosen } : {}),
      iterations,
      batch: a.batch,
      crop: a.crop,
      cropAlign: a["crop-align"],
      lr: a.lr,
      shiftLrMultiple: a["shift-lr"],
      contractionLrMultiple: a["contraction-lr"],
      cleanFromDegraded,
      averageDecay: a["average-decay"],
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
      out(
        `interrupted${signal ? ` by ${signal}` : ""} at step ${r.step}; checkpoint ` +
          `${r.checkpoint}; continue with --resume`,
      );
      return signal === "SIGTERM" ? 143 : 130;
    }
    out(`trained ${r.step} steps; checkpoint ${r.checkpoint}`);
    return 0;
  } finally {
    for (const [sig, h] of listening) Deno.removeSignalListener(sig, h);
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
  /** Replace existing output files. */
  readonly overwrite?: boolean;
  /** Largest image accepted, in megapixels. */
  readonly "max-megapixels"?: number;
  /** Backend. */
  readonly backend?: BackendName | "auto";
  /** Where `degrade` decodes the shift's noise. */
  readonly "noise-at"?: "input" | "prior";
  /** Noise fields `degrade` spins over the flow's block grid. */
  readonly "grid-offsets"?: number;
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
  overwrite: { codec: flagArg, help: "replace existing output files (default: refuse)" },
  "max-megapixels": maxMegapixelsOption,
  backend: backendOption,
});

/** `deflow degrade` options. */
export const degradeSpec: CommandSpec = {
  name: "degrade",
  summary: "sample degraded versions of clean images; writes <name>_s<k>.png",
  options: {
    ...sampleOptions("clean"),
    "noise-at": {
      codec: oneOf("input", "prior"),
      value: "W",
      help: "decode the shift's noise at the image's latent (input, default: the paper's " +
        "translation) or at a typical latent of the same condition (prior; see README)",
    },
    "grid-offsets": {
      codec: intArg(1, 4096),
      value: "K",
      help: "sum K noise fields decoded with the flow's 8×8 block grid at K different offsets, " +
        "over √K (needs a model trained with linearCoupling; default: every offset, 4^levels, " +
        "for a linearCoupling + jointShift model, else 1; see README)",
    },
  },
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

/** Input files whose outputs would have the same name (`a.png`, `a.jpg`), or none. */
const collisions = (names: readonly string[]): string[] | undefined => {
  const byStem = new Map<string, string[]>();
  for (const n of names) byStem.set(stem(n), [...(byStem.get(stem(n)) ?? []), n]);
  return [...byStem.values()].find((g) => g.length > 1);
};

const listNames = (ns: readonly string[]): string => {
  const q = ns.map((n) => `"${n.replace(/^.*\//, "")}"`);
  return q.length <= 2 ? q.join(" and ") : `${q.slice(0, -1).join(", ")} and ${q.at(-1)}`;
};

/**
 * Why a sampled image must not be written: non-finite values, or a constant image (after
 * 8-bit quantisation) from an input that is not constant. `undefined` when it is fine.
 */
export const badOutput = (input: RgbImage, output: RgbImage): string | undefined => {
  const bad = output.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) return `non-finite values (${output.data[bad]} at sample ${bad})`;
  const constant = (d: Float32Array): boolean => {
    const first = [toBytes(d[0]), toBytes(d[1]), toBytes(d[2])];
    for (let i = 0; i < d.length; i++) if (toBytes(d[i]) !== first[i % 3]) return false;
    return true;
  };
  if (constant(output.data) && !constant(input.data)) {
    const rgb = [0, 1, 2].map((c) => toBytes(output.data[c])).join(", ");
    return `a constant image (every pixel ${rgb}) from an input that is not constant`;
  }
  return undefined;
};

/** `deflow degrade` / `deflow restore`. */
export const runSample = async (a: SampleArgs, mode: "degrade" | "restore"): Promise<number> => {
  await checkOutFolder(a.out);
  const { images, names } = await readFolder(a.in, "--in", a["max-megapixels"]);
  const clash = collisions(names);
  if (clash) {
    throw new CliError(
      `--in: ${listNames(clash)} would all be written as ${stem(clash[0])}_s<k>.png; ` +
        `rename them so that their names differ before the extension`,
    );
  }
  const samples = a.samples ?? 1;
  if (!a.overwrite) {
    for (const n of names) {
      for (let k = 0; k < samples; k++) {
        const p = `${a.out}/${stem(n)}_s${k}.png`;
        if (await pathKind(p) !== "missing") {
          throw new CliError(`--out: "${p}" already exists; use --overwrite to replace it`);
        }
      }
    }
  }
  if (!(await fileExists(a.model))) throw new CliError(`--model: no file at "${a.model}"`);
  await readModelInfo(a.model); // a corrupt checkpoint fails before the backend starts
  await initBackend({ backend: a.backend });
  const model = await loadModel(a.model);
  const recommended = recommendedGridOffsets(model.config);
  const offsets = mode === "degrade" ? a["grid-offsets"] ?? recommended : 1;
  if (offsets > 1 && !model.config.linearCoupling) {
    disposeParams(model.params);
    throw new CliError(
      `--grid-offsets: ${a.model} was not trained with linearCoupling, so its noise depends on ` +
        `where it is decoded; train with a config that sets "linearCoupling": true`,
    );
  }
  if (offsets > 4 ** model.config.levels) {
    disposeParams(model.params);
    throw new CliError(
      `--grid-offsets: ${offsets} is more than the ${4 ** model.config.levels} offsets of ` +
        `${a.model}'s ${2 ** model.config.levels}×${2 ** model.config.levels} block grid`,
    );
  }
  const hint = mode === "degrade" ? gridOffsetsHint(model.config, offsets) : null;
  if (hint) console.error(hint);
  if (mode === "degrade" && a["grid-offsets"] === undefined && offsets > 1) {
    console.error(
      `degrade: ${offsets} noise fields, one per offset of the model's block grid (its default; ` +
        `--grid-offsets 1 is faster but leaves the grid's pattern in the noise)`,
    );
  }
  const sampler = await prepareSampler(model.params, model.config, model.normalization);
  try {
    await makeOutFolder(a.out);
    let written = 0;
    const started = performance.now();
    for (let i = 0; i < images.length; i++) {
      const name = stem(names[i]);
      const t0 = performance.now();
      let lastLine = t0;
      /** A line every ≥ 2 s while a large image's tiles run. */
      const onTile = (done: number, total: number) => {
        const now = performance.now();
        if (done === total || now - lastLine < 2000) return;
        lastLine = now;
        const secs = (now - t0) / 1000;
        console.error(
          `${mode}: [${i + 1}/${images.length}] ${name}: tile ${done}/${total}, ` +
            `${secs.toFixed(0)} s, ETA ${((secs / done) * (total - done)).toFixed(0)} s for it`,
        );
      };
      const opts: SampleOptions = {
        onTile,
        temperature: a.temperature ?? 1,
        seed: foldIn(a.seed ?? 0, hash32(name)),
        samples: a.samples ?? 1,
        ...(a.tile ? { tile: a.tile } : {}),
        ...(mode === "degrade" && a["noise-at"] ? { noiseAt: a["noise-at"] } : {}),
        ...(offsets > 1 ? { gridOffsets: offsets } : {}),
      };
      const x = imageToTensor(images[i]);
      let outs: tf.Tensor4D[] = [];
      try {
        outs = mode === "degrade" ? degrade(sampler, x, opts) : restore(sampler, x, opts);
        for (let k = 0; k < outs.length; k++) {
          const [img] = await tensorToImages(outs[k]);
          const why = badOutput(images[i], img);
          if (why) {
            throw new CliError(
              `${names[i]}: the model produced ${why}; nothing written for it (is "${a.model}" ` +
                `a trained, intact checkpoint?)`,
            );
          }
          const path = `${a.out}/${name}_s${k}.png`;
          try {
            await writePng(path, img, { overwrite: a.overwrite ?? false });
          } catch (e) {
            if (e instanceof OutputExistsError) {
              throw new CliError(`--out: "${path}" already exists; use --overwrite to replace it`);
            }
            throw new CliError(`--out: cannot write "${path}" (${firstLine(e)})`);
          }
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
  const integrity = await verifyCheckpoint(a.model);
  if (E.isLeft(integrity)) throw new CliError(integrity.left.message);
  const intact = integrity.right.checksummed
    ? `ok (CRC-32 of ${integrity.right.tensors} tensors and the metadata match; all finite)`
    : `no checksums (older file); ${integrity.right.tensors} tensors, all finite`;
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
        integrity: intact,
      },
      null,
      2,
    ));
    return 0;
  }
  const rows: [string, string][] = [
    ["checkpoint", `${a.model} (${info.summary.fileBytes} bytes)`],
    ["integrity", intact],
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
  /** Replace an existing JSON report. */
  readonly overwrite?: boolean;
  /** Largest image accepted, in megapixels. */
  readonly "max-megapixels"?: number;
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
    patch: {
      codec: powerOfTwoArg(8, 4096),
      value: "N",
      help: "spectrum patch size, a power of 2 (default 32)",
    },
    overwrite: { codec: flagArg, help: "replace an existing --json file (default: refuse)" },
    "max-megapixels": maxMegapixelsOption,
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
  if (a.json && !a.overwrite && await pathKind(a.json) !== "missing") {
    throw new CliError(`--json: "${a.json}" already exists; use --overwrite to replace it`);
  }
  const mp = a["max-megapixels"];
  const gen = await readFolder(a.generated, "--generated", mp);
  const real = await readFolder(a.real, "--real", mp);
  const clean = a.clean ? await readFolder(a.clean, "--clean", mp) : undefined;
  const patch = a.patch ?? 32;
  for (const [opt, set] of [["--generated", gen], ["--real", real]] as const) {
    // The spectrum uses patch × patch tiles of the high-pass residual, 2 px smaller a side.
    const fits = set.images.some((im) => im.width - 2 >= patch && im.height - 2 >= patch);
    if (!fits) {
      const big = set.images.reduce((m, im) => Math.max(m, Math.min(im.width, im.height)), 0);
      throw new CliError(
        `${opt}: every image is too small for the ${patch}×${patch} spectrum patch (its ` +
          `high-pass residual is 2 px smaller: the largest here gives ${big - 2} px); ` +
          `use --patch ${2 ** Math.floor(Math.log2(Math.max(8, big - 2)))} or larger images`,
      );
    }
  }
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
      await writeTextFileAtomic(a.json, JSON.stringify(report, null, 1), {
        overwrite: a.overwrite ?? false,
      });
    } catch (e) {
      throw new CliError(`--json: cannot write "${a.json}" (${firstLine(e)})`);
    }
  }
  return 0;
};
