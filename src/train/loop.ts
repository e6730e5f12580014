/**
 * The DeFlow training loop: unpaired batches, ActNorm data-dependent initialisation,
 * Adam with the paper's step-decay schedule, skipping of non-finite steps, progress
 * reports, periodic checkpoints and exact resumption.
 *
 * **Reproducibility.** Every random draw derives from the run's seed: the initial
 * parameters from `foldIn(seed, 0)`, the data sampler from `foldIn(seed, 1)`, the ActNorm
 * initialisation's noise from `foldIn(seed, 2)`, and step `s`'s dequantisation and
 * conditioning noise from `foldIn(stepSeed, s)` with `stepSeed = foldIn(seed, 3)` (saved in
 * the checkpoint as the training state's `rng`). The sampler state, the Adam moments and
 * step count, the loss averages and the skip counter are saved too, so a run interrupted
 * at a checkpoint and resumed gives the same parameters as an uninterrupted one (with
 * `averageDecay`, the parameter average and its update count are saved too).
 *
 * **Learning rate.** The default base rate is 5e-4, not the paper's 1e-4/5e-5: the paper
 * trains the full model for 100k iterations, while the default (smaller) model is meant
 * to train in a few thousand; the paper's rate is far too slow for that. It is halved at
 * 50%, 75%, 90% and 95% of the run (`multiStepLr`).
 *
 * **Files** (with `outDir`): `checkpoint.safetensors` (every `checkpointEvery` steps, when
 * interrupted, and at the end), `loss.json` (the loss history and run settings) and
 * `loss.png` (the loss curves: clean blue, degraded red, bits/dim against step), each
 * written atomically (temporary file + rename); temporary files left by a killed run are
 * removed when the next run starts in `outDir`.
 *
 * **Resuming** refuses a different seed, batch, crop, model config or training images
 * (compared by a fingerprint of their pixels stored in the checkpoint) and names each
 * difference; the learning rate and the iteration count may change (each learning-rate
 * change is recorded in the training state's `lrChanges`).
 *
 * **Failed training** is an error, not a result: `maxSkips` consecutive non-finite steps
 * abort the run, and so does a run in which more than half of the steps were skipped
 * (checked before every checkpoint and at the end, so such a model is never saved).
 *
 * @module
 */
import { canonicalJson } from "../core/json.ts";
import { either as E } from "fp-ts";
import { t } from "../iots.ts";
import { tf } from "../tf.ts";
import { disposeParams, mapParams } from "../core/params.ts";
import { foldIn } from "../core/random.ts";
import { removeStaleTemps, writeTextFileAtomic } from "../io/atomic.ts";
import { configToJson, defaultConfig, type ModelConfig } from "../model/config.ts";
import { conditionInput } from "../model/conditioning.ts";
import { sizeMultiple } from "../model/layout.ts";
import { type DeflowParams, initActNorms, initParams } from "../model/network.ts";
import { initShiftsFromData } from "../model/shiftInit.ts";
import { dequantize } from "../model/objective.ts";
import type { DomainNormalization } from "../model/sample.ts";
import { type LossRecord, saveCheckpoint, type TrainingState } from "../io/checkpoint.ts";
import { loadModelCheckpointTask, modelHeaderTask } from "../io/model.ts";
import { type RgbImage, writePng } from "../image/io.ts";
import { plotLines } from "../image/plot.ts";
import { adamInit, type AdamState, disposeAdamState, trainableParams } from "./adam.ts";
import { multiStepLr } from "./schedule.ts";
import { type TrainState, trainStep } from "./step.ts";
import {
  balancedBatch,
  checkCropFits,
  nextBatch,
  samplerInit,
  type SamplerState,
  SamplerStateCodec,
} from "./sampler.ts";
import { copyFits, downscaledCopies } from "./cleanFromDegraded.ts";
import { copyTrainable, disposeTrainable, foldIntoAverage } from "./average.ts";
import { computeNormalization, DomainNormalizationCodec, normalizeDegraded } from "./normalize.ts";

/** File name of the checkpoint inside `outDir`. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";

/** Defaults of {@linkcode TrainOptions}. */
export const trainDefaults: {
  readonly batch: number;
  readonly crop: number;
  readonly lr: number;
  readonly milestones: readonly number[];
  readonly seed: number;
  readonly maxSkips: number;
  readonly clipNorm: number;
  readonly emaDecay: number;
  readonly shiftLrMultiple: number;
  readonly contractionLrMultiple: number;
  readonly cropAlign: number;
  readonly cleanFromDegraded: number;
  readonly averageDecay: number;
} = {
  batch: 8,
  crop: 64,
  lr: 5e-4,
  milestones: [0.5, 0.75, 0.9, 0.95],
  seed: 0,
  maxSkips: 100,
  clipNorm: 100,
  emaDecay: 0.98,
  shiftLrMultiple: 1,
  contractionLrMultiple: 1,
  cropAlign: 1,
  cleanFromDegraded: 0,
  averageDecay: 0,
};

/** What the loop reports after every step, at checkpoints and at the end. */
export interface TrainProgress {
  /** `"step"` after each step, `"checkpoint"` after a checkpoint was written, `"end"` once. */
  readonly event: "step" | "checkpoint" | "end";
  /** Completed steps. */
  readonly step: number;
  /** Total steps of the run. */
  readonly iterations: number;
  /** This step's batch loss, bits/dim (NaN when skipped). */
  readonly loss: number;
  /** Moving average of the clean samples' loss, bits/dim (NaN before the first). */
  readonly clean: number;
  /** Moving average of the degraded samples' loss, bits/dim (NaN before the first). */
  readonly degraded: number;
  /** Learning rate of this step. */
  readonly lr: number;
  /** Steps per second since this run (or resumption) started. */
  readonly itPerSec: number;
  /** Estimated seconds to the end. */
  readonly etaSeconds: number;
  /** True when this step's loss was not finite and no update was made. */
  readonly skipped: boolean;
  /** Path of the checkpoint just written (`"checkpoint"` events). */
  readonly checkpoint?: string;
}

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** Clean training images (any sizes ≥ crop). */
  readonly clean: readonly RgbImage[];
  /** Degraded training images (any sizes ≥ crop), unnormalised. */
  readonly degraded: readonly RgbImage[];
  /** File names of the clean images, for error messages. */
  readonly cleanNames?: readonly string[];
  /** File names of the degraded images, for error messages. */
  readonly degradedNames?: readonly string[];
  /**
   * Model configuration (default `defaultConfig`). When resuming, the checkpoint's config
   * is used; giving a different one is an error.
   */
  readonly config?: ModelConfig;
  /** Total training steps (required unless resuming: default the checkpoint's). */
  readonly iterations?: number;
  /** Samples per batch (default 8; resuming: the checkpoint's). */
  readonly batch?: number;
  /** Crop side, a multiple of `2^levels` (default 64; resuming: the checkpoint's). */
  readonly crop?: number;
  /**
   * Crop corners lie on multiples of this many pixels (default 1, any corner; resuming: the
   * checkpoint's). With the flow's block size `2^levels`, a degradation that has a grid
   * anchored at the image origin (JPEG's 8×8 blocks, applied to whole photos) meets the
   * flow's squeeze grid at one phase in every training crop and when `degrade` runs on a
   * whole image, instead of at all 64 phases: measured, the degraded domain's NLL drops by
   * 0.10–0.12 bits/dim on JPEG degradations, but the samples' statistics did not improve
   * consistently, so it is not the default (see examples/fidelity/README.md).
   */
  readonly cropAlign?: number;
  /**
   * Base learning rate (default 5e-4 — the paper's 1e-4 is for 100k iterations of the
   * full model; resuming: the checkpoint's).
   */
  readonly lr?: number;
  /** Fractions of the run where the rate halves (default [0.5, 0.75, 0.9, 0.95]). */
  readonly milestones?: readonly number[];
  /**
   * The latent shifts' parameters (`μ`, `M` and the scale heads `a(h)`) learn at this
   * multiple of the learning rate (default 1; resuming: the checkpoint's). Adam moves
   * each coordinate by about the learning rate per step, so in a run of a few thousand
   * steps `M` (entries of order 1, set from the initial flow's latents) can travel only
   * a few tenths, while the flow it must match keeps changing.
   */
  readonly shiftLrMultiple?: number;
  /**
   * The contractions' `K` (models with `contractShift`) learn at this multiple of the
   * learning rate (default 1; resuming: the checkpoint's; checkpoints written before the
   * option trained `K` at their `shiftLrMultiple`). `K` starts small (gains `G ≈ 0.99`) and
   * a gain `g` needs `‖K‖ ≈ √(1/g − 1)`: at 1 × the 600 steps of the paper setting move each
   * entry by at most 0.3 (gains ≥ 0.92), short of what JPEG removes. 4 × brings `jpeg`'s noise
   * level closer but moves the held-out `camera`'s statistics the wrong way
   * (examples/fidelity/README.md, _A faster contraction_: measured, not the default).
   */
  readonly contractionLrMultiple?: number;
  /**
   * Also train the clean domain on the degraded photos downscaled by this factor
   * (antialiased bicubic, rounded to 8 bits; copies smaller than the crop are left out), as
   * the paper does on DPED-RWSR: the clean domain then holds the degraded scenes' content,
   * so the latent shift need not fit it as noise. 0 (default) adds nothing; a factor must
   * be > 1 and large enough to remove the degradation (the condition's factor, 4, is the
   * natural choice). Resuming: the checkpoint's (it must stay the same).
   */
  readonly cleanFromDegraded?: number;
  /**
   * Parameter averaging: the model the run returns and saves is an exponential moving
   * average of the optimiser's iterates with this decay, bias-corrected (after `n` updates
   * the weights `dⁿ⁻ⁱ` of iterates `i = 1…n` are normalised to sum to 1, so the start
   * point has no weight). 0 (default) saves the last iterate. The checkpoint then holds the
   * average as the parameters and the iterate with the optimiser state (`adam.x.*`), so
   * sampling uses the average and resuming continues from the iterate. Resuming: the
   * checkpoint's (it must stay the same).
   */
  readonly averageDecay?: number;
  /** Seed of all randomness (default 0; resuming: the checkpoint's). */
  readonly seed?: number;
  /** Where checkpoints, loss.json and loss.png go (none written when omitted). */
  readonly outDir?: string;
  /** Steps between checkpoints (default: a tenth of the run, at least 1). */
  readonly checkpointEvery?: number;
  /** Checkpoint file to resume from (e.g. `<outDir>/checkpoint.safetensors`). */
  readonly resumeFrom?: string;
  /**
   * Normalise the degraded images to the clean set's channel mean/std (default false).
   * Resuming reuses the checkpoint's normalisation.
   */
  readonly normalize?: boolean;
  /** Consecutive non-finite steps that abort the run (default 100). */
  readonly maxSkips?: number;
  /** Global gradient-norm clip (default 100; 0 disables). */
  readonly clipNorm?: number;
  /** Record the loss averages every this many steps (default: about 1000 points a run). */
  readonly historyEvery?: number;
  /** Decay of the loss moving averages (default 0.98). */
  readonly emaDecay?: number;
  /** Called after every step, after each checkpoint and at the end. */
  readonly onProgress?: (p: TrainProgress) => void;
  /**
   * Stops the run after the current step; a checkpoint is written (with `outDir`) and
   * the result has `interrupted: true`.
   */
  readonly signal?: AbortSignal;
}

/** The result of {@linkcode train}. The caller owns (disposes) `params`. */
export interface TrainResult {
  /** Final parameters: the last iterate, or the parameter average with `averageDecay`. */
  readonly params: DeflowParams;
  /** The model configuration. */
  readonly config: ModelConfig;
  /** Recorded loss averages (bits/dim). */
  readonly history: readonly LossRecord[];
  /** Completed steps. */
  readonly step: number;
  /** The degraded-domain normalisation used, if any (also in the checkpoint). */
  readonly normalization?: DomainNormalization;
  /** True when stopped by `signal` before the last step. */
  readonly interrupted: boolean;
  /** Steps skipped for a non-finite loss in this call. */
  readonly skipped: number;
  /** Path of the last checkpoint written, if any. */
  readonly checkpoint?: string;
}

/** Run settings stored in the training state (`run`), the defaults of a resumed run. */
export interface RunSettings {
  /** Seed. */
  readonly seed: number;
  /** Total steps. */
  readonly iterations: number;
  /** Batch size. */
  readonly batch: number;
  /** Crop side. */
  readonly crop: number;
  /** Crop corners lie on multiples of this (1 in checkpoints written before the option). */
  readonly cropAlign: number;
  /** Base learning rate. */
  readonly lr: number;
  /** Milestone fractions. */
  readonly milestones: readonly number[];
  /** Learning-rate multiple of the latent shifts' parameters (1 in older checkpoints). */
  readonly shiftLrMultiple: number;
  /** Learning-rate multiple of the contractions (older checkpoints: their `shiftLrMultiple`). */
  readonly contractionLrMultiple: number;
  /** Gradient clip. */
  readonly clipNorm: number;
  /** Downscale factor of the degraded photos added to the clean domain (0: none). */
  readonly cleanFromDegraded: number;
  /** Decay of the parameter average (0: none, as in checkpoints written before the option). */
  readonly averageDecay: number;
}

const RunSettingsCodec = t.intersection([
  t.type({
    seed: t.number,
    iterations: t.number,
    batch: t.number,
    crop: t.number,
    lr: t.number,
    milestones: t.array(t.number),
    clipNorm: t.number,
  }),
  t.partial({
    cropAlign: t.number,
    shiftLrMultiple: t.number,
    contractionLrMultiple: t.number,
    cleanFromDegraded: t.number,
    averageDecay: t.number,
  }),
], "RunSettings");

const NullableNumber = t.union([t.number, t.null]);

/** The loop's extra fields in the checkpoint's training state. */
/** Fingerprints of the training images (see {@linkcode imagesFingerprint}). */
const DataCodec = t.type({ clean: t.string, degraded: t.string }, "DataFingerprint");

/** A learning-rate change made when resuming: from `step` on, the base rate is `lr`. */
const LrChangeCodec = t.type({ step: t.number, lr: t.number }, "LrChange");

const LoopStateCodec = t.intersection([
  t.type({
    run: RunSettingsCodec,
    ema: t.type({ clean: NullableNumber, degraded: NullableNumber }),
    consecutiveSkips: t.number,
    sampler: SamplerStateCodec,
  }),
  t.partial({
    normalization: DomainNormalizationCodec,
    data: DataCodec,
    lrChanges: t.array(LrChangeCodec),
    averageSteps: t.number,
  }),
], "DeflowTrainingState");

/**
 * A fingerprint of a set of images (count, sizes and every pixel value, FNV-1a over the
 * float bits) as `"<count>:<8 hex digits>"`: resuming with other images is refused.
 */
export const imagesFingerprint = (images: readonly RgbImage[]): string => {
  let h = 0x811c9dc5;
  const mixIn = (v: number) => {
    h = Math.imul(h ^ (v & 0xff), 0x01000193);
    h = Math.imul(h ^ ((v >>> 8) & 0xff), 0x01000193);
    h = Math.imul(h ^ ((v >>> 16) & 0xff), 0x01000193);
    h = Math.imul(h ^ (v >>> 24), 0x01000193);
  };
  for (const im of images) {
    mixIn(im.width);
    mixIn(im.height);
    const bits = new Uint32Array(im.data.buffer, im.data.byteOffset, im.data.length);
    for (let i = 0; i < bits.length; i++) mixIn(bits[i]);
  }
  return `${images.length}:${(h >>> 0).toString(16).padStart(8, "0")}`;
};

/** Where a run stands (what a checkpoint holds besides the tensors). */
interface LoopState {
  lrChanges: { step: number; lr: number }[];
  step: number;
  stepSeed: number;
  sampler: SamplerState;
  ema: { clean: number; degraded: number };
  consecutiveSkips: number;
  history: LossRecord[];
  /** Updates folded into the parameter average so far. */
  averageSteps: number;
}

const fail = (msg: string): never => {
  throw new Error(`train: ${msg}`);
};

const checkInt = (name: string, v: number, min: number): void => {
  if (!Number.isInteger(v) || v < min) fail(`${name} must be an integer ≥ ${min}, got ${v}`);
};

const resolveSettings = (
  o: TrainOptions,
  saved?: t.TypeOf<typeof RunSettingsCodec>,
): RunSettings => {
  const iterations = o.iterations ?? saved?.iterations;
  if (iterations === undefined) fail("iterations is required");
  const s: RunSettings = {
    seed: o.seed ?? saved?.seed ?? trainDefaults.seed,
    iterations: iterations!,
    batch: o.batch ?? saved?.batch ?? trainDefaults.batch,
    crop: o.crop ?? saved?.crop ?? trainDefaults.crop,
    // Checkpoints written before an option existed were trained with 1.
    cropAlign: o.cropAlign ?? (saved ? saved.cropAlign ?? 1 : trainDefaults.cropAlign),
    lr: o.lr ?? saved?.lr ?? trainDefaults.lr,
    milestones: [...(o.milestones ?? saved?.milestones ?? trainDefaults.milestones)],
    shiftLrMultiple: o.shiftLrMultiple ??
      (saved ? saved.shiftLrMultiple ?? 1 : trainDefaults.shiftLrMultiple),
    // Before the option, the shift's multiple applied to the contractions too.
    contractionLrMultiple: o.contractionLrMultiple ??
      (saved
        ? saved.contractionLrMultiple ?? saved.shiftLrMultiple ?? 1
        : trainDefaults.contractionLrMultiple),
    clipNorm: o.clipNorm ?? saved?.clipNorm ?? trainDefaults.clipNorm,
    cleanFromDegraded: o.cleanFromDegraded ??
      (saved ? saved.cleanFromDegraded ?? 0 : trainDefaults.cleanFromDegraded),
    averageDecay: o.averageDecay ??
      (saved ? saved.averageDecay ?? 0 : trainDefaults.averageDecay),
  };
  checkInt("seed", s.seed, -(2 ** 31));
  checkInt("iterations", s.iterations, 1);
  checkInt("batch", s.batch, 1);
  checkInt("crop", s.crop, 1);
  checkInt("cropAlign", s.cropAlign, 1);
  for (const name of ["shiftLrMultiple", "contractionLrMultiple"] as const) {
    if (!(Number.isFinite(s[name]) && s[name] >= 0)) {
      fail(`${name} must be a finite number ≥ 0, got ${s[name]}`);
    }
  }
  if (!(Number.isFinite(s.lr) && s.lr >= 0)) fail(`lr must be a finite number ≥ 0, got ${s.lr}`);
  if (!(Number.isFinite(s.clipNorm) && s.clipNorm >= 0)) {
    fail(`clipNorm must be a finite number ≥ 0, got ${s.clipNorm}`);
  }
  if (
    !(s.cleanFromDegraded === 0 ||
      (Number.isFinite(s.cleanFromDegraded) && s.cleanFromDegraded > 1))
  ) {
    fail(`cleanFromDegraded must be 0 (off) or a finite number > 1, got ${s.cleanFromDegraded}`);
  }
  if (!(s.averageDecay >= 0 && s.averageDecay < 1)) {
    fail(`averageDecay must be in [0, 1) (0: off), got ${s.averageDecay}`);
  }
  return s;
};

const sameJson = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The config, tensors and loop state of a checkpoint to resume from. */
const loadForResume = async (path: string): Promise<{
  config: ModelConfig;
  params: DeflowParams;
  adam: AdamState;
  training: TrainingState;
  loop: t.TypeOf<typeof LoopStateCodec>;
}> => {
  const header = await modelHeaderTask(path)();
  if (E.isLeft(header)) return fail(`cannot resume: ${header.left.message}`);
  const loop = LoopStateCodec.decode(header.right.info.training);
  if (E.isLeft(loop)) {
    const paths = loop.left.map((e) => e.context.map((c) => c.key).filter(Boolean).join("."));
    return fail(
      `cannot resume: ${path} was not written by the training loop (training state ` +
        `fields missing or invalid: ${[...new Set(paths)].join(", ")})`,
    );
  }
  const loaded = await loadModelCheckpointTask(path, {
    header: header.right,
    optimizer: adamInit,
  })();
  if (E.isLeft(loaded)) return fail(`cannot resume: ${loaded.left.message}`);
  return {
    config: loaded.right.config,
    params: loaded.right.params,
    adam: loaded.right.optimizer!,
    training: loaded.right.training,
    loop: loop.right,
  };
};

const lossPlot = (history: readonly LossRecord[]): RgbImage =>
  plotLines([
    { name: "clean", color: [0.12, 0.35, 0.85], points: history.map((h) => [h.step, h.clean]) },
    {
      name: "degraded",
      color: [0.85, 0.15, 0.12],
      points: history.map((h) => [h.step, h.degraded]),
    },
  ]);

const writeArtifacts = async (
  outDir: string,
  state: TrainState,
  average: DeflowParams | undefined,
  config: ModelConfig,
  run: RunSettings,
  loop: LoopState,
  normalization: DomainNormalization | undefined,
  data: t.TypeOf<typeof DataCodec>,
): Promise<string> => {
  const path = `${outDir}/${CHECKPOINT_FILE}`;
  const fin = (v: number) => (Number.isFinite(v) ? v : null);
  const training = {
    step: loop.step,
    rng: loop.stepSeed >>> 0,
    sampler: loop.sampler,
    lossHistory: loop.history,
    run,
    ema: { clean: fin(loop.ema.clean), degraded: fin(loop.ema.degraded) },
    consecutiveSkips: loop.consecutiveSkips,
    ...(normalization ? { normalization } : {}),
    data,
    ...(loop.lrChanges.length > 0 ? { lrChanges: loop.lrChanges } : {}),
    ...(average ? { averageSteps: loop.averageSteps } : {}),
  };
  await saveCheckpoint(path, {
    params: average ?? state.params,
    optimizer: average
      ? { ...state.adam, iterate: trainableParams(state.params).map((n) => n.tensor) }
      : state.adam,
    config: configToJson(config),
    training,
  });
  await writeTextFileAtomic(
    `${outDir}/loss.json`,
    JSON.stringify({ step: loop.step, run, unit: "bits/dim", history: loop.history }, null, 1),
  );
  if (loop.history.length > 0) await writePng(`${outDir}/loss.png`, lossPlot(loop.history));
  return path;
};

/**
 * The learning-rate multiple of a parameter leaf: `shift` for the latent shifts' leaves
 * (`shifts.*`, `shiftScales.*`), `contraction` for the contractions' (`shiftContractions.*`),
 * 1 for the rest.
 */
const lrMultipleOf = (shift: number, contraction: number) => (path: string): number =>
  path.startsWith("shiftContractions.")
    ? contraction
    : path.startsWith("shifts.") || path.startsWith("shiftScales.")
    ? shift
    : 1;

const ema = (prev: number, v: number, decay: number): number =>
  !Number.isFinite(v) ? prev : Number.isFinite(prev) ? decay * prev + (1 - decay) * v : v;

/**
 * Train a DeFlow model on unpaired clean and degraded images (see the module doc for
 * the schedule, randomness and files). Fresh runs initialise the parameters from the
 * seed and the ActNorms from one balanced batch (half clean, half degraded); resumed
 * runs load everything from `resumeFrom` and continue at its step. Throws with a message
 * starting `train:` on bad options, an unusable checkpoint (before writing anything) or
 * `maxSkips` consecutive non-finite losses; the parameters are disposed in that case.
 */
export const train = async (options: TrainOptions): Promise<TrainResult> => {
  const maxSkips = options.maxSkips ?? trainDefaults.maxSkips;
  checkInt("maxSkips", maxSkips, 1);
  const emaDecay = options.emaDecay ?? trainDefaults.emaDecay;
  if (!(emaDecay >= 0 && emaDecay < 1)) fail(`emaDecay must be in [0, 1), got ${emaDecay}`);
  if (options.clean.length === 0) fail("no clean images");
  if (options.degraded.length === 0) fail("no degraded images");

  const resumed = options.resumeFrom ? await loadForResume(options.resumeFrom) : undefined;
  let config: ModelConfig;
  let run: RunSettings;
  let normalization: DomainNormalization | undefined;
  let state: TrainState | undefined;
  let average: DeflowParams | undefined;
  let loop: LoopState;
  try {
    if (resumed) {
      config = resumed.config;
      if (options.config !== undefined && !sameJson(options.config, config)) {
        fail(`the model config differs from the one in ${options.resumeFrom}`);
      }
      const saved = resumed.loop.run;
      const diffs: string[] = [];
      const fixed = {
        ...saved,
        cropAlign: saved.cropAlign ?? 1,
        cleanFromDegraded: saved.cleanFromDegraded ?? 0,
        averageDecay: saved.averageDecay ?? 0,
      };
      for (
        const k of [
          "seed",
          "batch",
          "crop",
          "cropAlign",
          "cleanFromDegraded",
          "averageDecay",
        ] as const
      ) {
        const v = options[k];
        if (v !== undefined && v !== fixed[k]) {
          diffs.push(`${k} ${v} differs from the run's ${fixed[k]}`);
        }
      }
      const savedData = resumed.loop.data;
      if (savedData !== undefined) {
        const now = {
          clean: imagesFingerprint(options.clean),
          degraded: imagesFingerprint(options.degraded),
        };
        for (const k of ["clean", "degraded"] as const) {
          if (now[k] !== savedData[k]) {
            diffs.push(
              `the ${k} images differ from the run's (${savedData[k].split(":")[0]} images ` +
                `then, ${now[k].split(":")[0]} now; fingerprint ${savedData[k]} vs ${now[k]})`,
            );
          }
        }
      }
      if (diffs.length > 0) {
        fail(
          `cannot resume ${options.resumeFrom}: ${diffs.join("; ")} (these must stay the ` +
            `same; start a new run to change them)`,
        );
      }
      run = resolveSettings(options, saved);
      normalization = resumed.loop.normalization;
      if (options.normalize === true && normalization === undefined) {
        fail(`normalize was requested but ${options.resumeFrom} was trained without it`);
      }
      const { iterate, ...adam } = resumed.adam;
      if ((run.averageDecay > 0) !== (iterate !== undefined)) {
        fail(
          `cannot resume ${options.resumeFrom}: the run's averageDecay is ${run.averageDecay}, ` +
            `but the file ${iterate ? "holds" : "lacks"} the optimiser's iterate (adam.x.*), ` +
            `which only a run with parameter averaging writes (an edited or corrupt file?)`,
        );
      }
      if (iterate) {
        // The file's parameters are the average; the optimiser continues from its iterate.
        const x = new Map(adam.paths.map((p, i) => [p, iterate[i]]));
        average = resumed.params;
        state = {
          params: mapParams(resumed.params, (v, p) => x.get(p) ?? v),
          adam,
        };
      } else {
        state = { params: resumed.params, adam };
      }
      loop = {
        step: resumed.training.step,
        stepSeed: resumed.training.rng,
        sampler: resumed.loop.sampler,
        ema: {
          clean: resumed.loop.ema.clean ?? NaN,
          degraded: resumed.loop.ema.degraded ?? NaN,
        },
        consecutiveSkips: resumed.loop.consecutiveSkips,
        history: [...(resumed.training.lossHistory ?? [])],
        lrChanges: [...(resumed.loop.lrChanges ?? [])],
        averageSteps: resumed.loop.averageSteps ?? 0,
      };
      if (run.lr !== saved.lr) loop.lrChanges.push({ step: loop.step, lr: run.lr });
    } else {
      config = options.config ?? defaultConfig;
      run = resolveSettings(options);
      normalization = options.normalize
        ? computeNormalization(options.clean, options.degraded)
        : undefined;
      loop = {
        step: 0,
        stepSeed: foldIn(run.seed, 3),
        sampler: samplerInit(foldIn(run.seed, 1)),
        ema: { clean: NaN, degraded: NaN },
        consecutiveSkips: 0,
        history: [],
        lrChanges: [],
        averageSteps: 0,
      };
    }
    const m = sizeMultiple(config);
    if (run.crop % m !== 0) {
      fail(`crop ${run.crop} must be a multiple of ${m} (2^levels = ${2 ** config.levels})`);
    }
    if (run.crop % run.cropAlign !== 0) {
      fail(`crop ${run.crop} must be a multiple of cropAlign ${run.cropAlign}`);
    }
    if (loop.step > run.iterations) {
      fail(`the checkpoint is at step ${loop.step}, beyond iterations = ${run.iterations}`);
    }
    checkCropFits(options.clean, run.crop, "clean", options.cleanNames);
    checkCropFits(options.degraded, run.crop, "degraded", options.degradedNames);
    const f = run.cleanFromDegraded;
    if (f > 0 && !options.degraded.some((im) => copyFits(im, f, run.crop))) {
      fail(
        `cleanFromDegraded ${f}: no degraded image downscaled by ${f} is at least the crop ` +
          `(${run.crop} px) on both sides, so nothing would be added; use a smaller factor or crop`,
      );
    }
  } catch (e) {
    if (resumed) {
      // The iterate's trainable leaves, if split off already, are resumed.adam.iterate's.
      disposeParams(resumed.params);
      disposeAdamState(resumed.adam);
    }
    throw e;
  }
  const degraded = normalization
    ? normalizeDegraded(options.degraded, normalization)
    : options.degraded;
  const copies = run.cleanFromDegraded > 0
    ? await downscaledCopies(degraded, run.cleanFromDegraded, run.crop)
    : [];
  const clean = [...options.clean, ...copies];
  const checkpointEvery = options.checkpointEvery ?? Math.max(1, Math.round(run.iterations / 10));
  checkInt("checkpointEvery", checkpointEvery, 1);
  const historyEvery = options.historyEvery ?? Math.max(1, Math.ceil(run.iterations / 1000));
  checkInt("historyEvery", historyEvery, 1);
  const data = {
    clean: imagesFingerprint(options.clean),
    degraded: imagesFingerprint(options.degraded),
  };
  if (options.outDir) {
    await Deno.mkdir(options.outDir, { recursive: true });
    await removeStaleTemps(options.outDir, [CHECKPOINT_FILE, "loss.json", "loss.png"]);
  }

  if (!state) {
    // Fresh run: parameters from the seed, ActNorms from one balanced batch.
    const params0 = initParams(config, foldIn(run.seed, 0));
    const init = balancedBatch(loop.sampler, clean, degraded, {
      batch: Math.max(16, run.batch),
      crop: run.crop,
      align: run.cropAlign,
    });
    loop.sampler = init.state;
    const s = foldIn(run.seed, 2);
    const cond = conditionInput(init.batch.x, {
      factor: config.conditionFactor,
      noiseStd: config.conditionNoise,
      seed: foldIn(s, 0),
    });
    const xd = dequantize(init.batch.x, config.bins, foldIn(s, 1));
    let params = initActNorms(params0, config, xd, cond, true);
    if (config.shiftDataInit) {
      // Latent shifts from 8 balanced batches of 16 crops (64 per domain), see shiftInit.ts.
      const initSeed = foldIn(s, 2);
      const shiftInit = await initShiftsFromData(
        params,
        config,
        8,
        (i) => {
          const draw = balancedBatch(loop.sampler, clean, degraded, {
            batch: 16,
            crop: run.crop,
            align: run.cropAlign,
          });
          loop.sampler = draw.state;
          const x = dequantize(draw.batch.x, config.bins, foldIn(initSeed, 2 * i));
          const c = conditionInput(draw.batch.x, {
            factor: config.conditionFactor,
            noiseStd: config.conditionNoise,
            seed: foldIn(initSeed, 2 * i + 1),
          });
          draw.batch.x.dispose();
          return { x, cond: c, degradedMask: draw.batch.degradedMask };
        },
        (c) => tf.dispose([c.x, c.cond, c.degradedMask]),
        { seed: foldIn(initSeed, 99) },
      );
      params = shiftInit.params;
    }
    tf.dispose([init.batch.x, init.batch.degradedMask, cond, xd]);
    state = { params, adam: adamInit(params) };
    if (run.averageDecay > 0) average = copyTrainable(params);
  }

  const lrAt = multiStepLr({
    base: run.lr,
    totalSteps: run.iterations,
    milestones: run.milestones,
  });
  const start = loop.step;
  const t0 = performance.now();
  let skipped = 0;
  let checkpoint: string | undefined;
  let lastCheckpointStep = -1;
  const progress = (p: Omit<TrainProgress, "itPerSec" | "etaSeconds" | "iterations">) => {
    if (!options.onProgress) return;
    const elapsed = (performance.now() - t0) / 1000;
    const done = loop.step - start;
    const itPerSec = done > 0 && elapsed > 0 ? done / elapsed : 0;
    const etaSeconds = itPerSec > 0 ? (run.iterations - loop.step) / itPerSec : NaN;
    options.onProgress({ ...p, iterations: run.iterations, itPerSec, etaSeconds });
  };
  const checkSkips = () => {
    const done = loop.step - start;
    if (done >= 2 && skipped * 2 > done) {
      fail(
        `${skipped} of the ${done} steps had a non-finite loss and were skipped; the model ` +
          `did not train, so it is not saved. Try a lower learning rate (now ${run.lr}) ` +
          `or check the config.`,
      );
    }
  };
  const save = async (lr: number) => {
    if (!options.outDir || lastCheckpointStep === loop.step) return;
    checkSkips();
    try {
      checkpoint = await writeArtifacts(
        options.outDir,
        state!,
        average,
        config,
        run,
        loop,
        normalization,
        data,
      );
    } catch (e) {
      fail(`saving the checkpoint at step ${loop.step} failed: ${errorMessage(e)}`);
    }
    lastCheckpointStep = loop.step;
    progress({
      event: "checkpoint",
      step: loop.step,
      loss: NaN,
      clean: loop.ema.clean,
      degraded: loop.ema.degraded,
      lr,
      skipped: false,
      checkpoint,
    });
  };

  const lrMultiple = run.shiftLrMultiple !== 1 || run.contractionLrMultiple !== 1
    ? lrMultipleOf(run.shiftLrMultiple, run.contractionLrMultiple)
    : undefined;
  let lr = lrAt(Math.min(loop.step, run.iterations - 1));
  let interrupted = false;
  try {
    while (loop.step < run.iterations) {
      // Let the event loop run: on wasm a step never waits for I/O, so without this a
      // signal handler (SIGINT, SIGTERM → options.signal) would never get to run.
      if (options.signal) await new Promise((r) => setTimeout(r, 0));
      if (options.signal?.aborted) {
        interrupted = true;
        break;
      }
      const step = loop.step;
      lr = lrAt(step);
      const draw = nextBatch(loop.sampler, clean, degraded, {
        batch: run.batch,
        crop: run.crop,
        align: run.cropAlign,
      });
      let r;
      try {
        r = await trainStep(state, config, draw.batch, {
          lr,
          seed: foldIn(loop.stepSeed, step),
          clipNorm: run.clipNorm,
          ...(lrMultiple ? { lrMultiple } : {}),
        });
      } finally {
        tf.dispose([draw.batch.x, draw.batch.degradedMask]);
      }
      state = r.state;
      loop.sampler = draw.state;
      loop.step = step + 1;
      if (r.skipped) {
        skipped++;
        loop.consecutiveSkips++;
      } else {
        loop.consecutiveSkips = 0;
        if (average) {
          loop.averageSteps++;
          average = foldIntoAverage(average, state.params, run.averageDecay, loop.averageSteps);
        }
        loop.ema = {
          clean: ema(loop.ema.clean, r.clean, emaDecay),
          degraded: ema(loop.ema.degraded, r.degraded, emaDecay),
        };
      }
      if (
        loop.step % historyEvery === 0 && Number.isFinite(loop.ema.clean) &&
        Number.isFinite(loop.ema.degraded)
      ) {
        loop.history.push({ step: loop.step, clean: loop.ema.clean, degraded: loop.ema.degraded });
      }
      progress({
        event: "step",
        step: loop.step,
        loss: r.loss,
        clean: loop.ema.clean,
        degraded: loop.ema.degraded,
        lr,
        skipped: r.skipped,
      });
      if (loop.consecutiveSkips >= maxSkips) {
        fail(
          `${loop.consecutiveSkips} consecutive steps had a non-finite loss (last at step ` +
            `${loop.step}); aborting. Try a lower learning rate (now ${lr}).`,
        );
      }
      if (loop.step % checkpointEvery === 0) await save(lr);
    }
    if (interrupted || loop.step === run.iterations) await save(lr);
    checkSkips();
  } catch (e) {
    if (average) disposeTrainable(average);
    disposeParams(state.params);
    disposeAdamState(state.adam);
    if (e instanceof Error && e.message.startsWith("train:")) throw e;
    throw new Error(`train: step ${loop.step + 1} failed: ${errorMessage(e)}`, { cause: e });
  }
  progress({
    event: "end",
    step: loop.step,
    loss: NaN,
    clean: loop.ema.clean,
    degraded: loop.ema.degraded,
    lr,
    skipped: false,
  });
  disposeAdamState(state.adam);
  if (average) disposeTrainable(state.params);
  return {
    params: average ?? state.params,
    config,
    history: loop.history,
    step: loop.step,
    ...(normalization ? { normalization } : {}),
    interrupted,
    skipped,
    ...(checkpoint ? { checkpoint } : {}),
  };
};

const fmtTime = (s: number): string => {
  if (!Number.isFinite(s)) return "?";
  const r = Math.round(s);
  const h = Math.floor(r / 3600), m = Math.floor((r % 3600) / 60), sec = r % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(sec).padStart(2, "0")}s`
    : `${sec}s`;
};

const fmtLoss = (v: number): string => (Number.isFinite(v) ? v.toFixed(4) : "-");

/** One progress line: step, loss averages per domain, rate, ETA. */
export const formatProgress = (p: TrainProgress): string =>
  `step ${p.step}/${p.iterations}  bits/dim clean ${fmtLoss(p.clean)} degraded ${
    fmtLoss(p.degraded)
  }  lr ${p.lr.toExponential(1)}  ${p.itPerSec.toFixed(2)} it/s  ETA ${fmtTime(p.etaSeconds)}${
    p.skipped ? "  (skipped: non-finite loss)" : ""
  }`;

/** Options of {@linkcode terminalProgress}. */
export interface TerminalProgressOptions {
  /** Rewrite one line with `\r` (default: whether stdout is a terminal). */
  readonly tty?: boolean;
  /** Without a TTY, print a line every this many steps (default 50). */
  readonly every?: number;
  /** Where to write (default stdout). */
  readonly write?: (text: string) => void;
}

/**
 * A progress reporter for {@linkcode TrainOptions.onProgress}: on a terminal one line
 * updated in place (`\r`), otherwise a plain line every `every` steps; checkpoint paths
 * and the end are reported on their own lines.
 */
export const terminalProgress = (
  options: TerminalProgressOptions = {},
): (p: TrainProgress) => void => {
  const enc = new TextEncoder();
  const write = options.write ?? ((s: string) => Deno.stdout.writeSync(enc.encode(s)));
  const tty = options.tty ?? Deno.stdout.isTerminal();
  const every = options.every ?? 50;
  let width = 0;
  let lastDraw = 0;
  return (p) => {
    const line = formatProgress(p);
    if (tty) {
      if (p.event === "step") {
        const now = performance.now();
        if (now - lastDraw < 100 && p.step < p.iterations) return;
        lastDraw = now;
        write(`\r${line.padEnd(width)}`);
        width = Math.max(width, line.length);
      } else if (p.event === "checkpoint") {
        write(`\r${`checkpoint at step ${p.step}: ${p.checkpoint}`.padEnd(width)}\n`);
        width = 0;
      } else {
        write(`\r${line.padEnd(width)}\n`);
        width = 0;
      }
    } else if (p.event === "step") {
      if (p.step % every === 0 || p.step === 1) write(`${line}\n`);
    } else if (p.event === "checkpoint") {
      write(`checkpoint at step ${p.step}: ${p.checkpoint}\n`);
    } else {
      write(`${line}\n`);
    }
  };
};
