/**
 * The fidelity suite (`deno task fidelity [--quick] [--family a,b] [--iterations N]`).
 *
 * For every degradation family (`examples/fidelity/families.ts`): degrade the photos of
 * the degraded-domain scenes, train DeFlow **unpaired** on them and on the clean-domain
 * scenes (disjoint scenes, `examples/fidelity/scenes.ts`) with the CLI's defaults, then
 * degrade crops of the held-out test scenes and compare with their true degradation:
 * DeFlow (τ = 1) vs fitted white noise vs a second sample of the true process (the floor).
 * Writes `out/fidelity/<family>/` (checkpoint, loss, grid.png, result.json) and
 * `out/fidelity/report.md` with one table per family, held-out families separately.
 *
 * Families run side by side, one subprocess each (`--jobs`, default 2: one per core).
 * `--quick` (CI) trains 3 steps on small crops: it checks the pipeline, not fidelity.
 * `--report` only rebuilds `report.md` from the families' `result.json` files.
 * `--curve K` also evaluates K − 1 intermediate checkpoints (evenly spaced; the learning
 * rate schedule is the full run's) and reports fidelity against training wall clock.
 * The model is trained as `deflow train` would without `--config`: `--setting auto` (default)
 * picks the noise setting or the paper's flow from the degraded photos
 * (`src/train/setting.ts`), `--setting noise|paper` names one, and each family trains for its
 * setting's default length unless `--iterations N` sets one; DeFlow is sampled as `deflow
 * degrade` would, over every offset of the block grid for a noise-setting model (`--grid-offsets
 * K` sets another count).
 * `--batch B` / `--crop S` / `--config F` train an alternative to the CLI's defaults.
 * `--crop-align N` starts the training crops on multiples of N (`deflow train --crop-align`).
 * `--shift-lr K` / `--contraction-lr K` set the learning-rate multiples of the latent shifts
 * and of the contractions (`deflow train --shift-lr`, `--contraction-lr`); `--average-decay D`
 * samples the run's parameter average (`deflow train --average-decay`).
 * `--same-scenes` is a **diagnostic**, not a fidelity result: the degraded domain is made
 * from the clean domain's own scenes, so the two collections have the same content and
 * whatever DeFlow still gets wrong is the method's, not the collections' content difference.
 * `--copies-of-source F` is a diagnostic too: the clean domain gets the degraded photos'
 * *clean sources* downscaled by F — what `--clean-from-degraded F` would add if the downscale
 * removed the degradation completely — to tell that option's residue apart from its other
 * effects.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { initBackend } from "../src/core/backend.ts";
import { foldIn } from "../src/core/random.ts";
import { disposeParams } from "../src/core/params.ts";
import { writePng } from "../src/image/io.ts";
import { makeGrid } from "../src/image/grid.ts";
import { degradeImages, describe } from "../src/degrade/types.ts";
import { configOrThrow, type ModelConfig } from "../src/model/config.ts";
import { recommendedGridOffsets } from "../src/model/sample.ts";
import { pickSetting, settings, type TrainingSetting } from "../src/train/setting.ts";
import { loadModel } from "../src/cli/model.ts";
import { train, trainDefaults } from "../src/train/loop.ts";
import { downscaledCopies } from "../src/train/cleanFromDegraded.ts";
import { DEFAULT_ITERATIONS } from "../src/cli/commands.ts";
import { families, familyByName } from "./fidelity/families.ts";
import { defaultSplit, loadCollections } from "./fidelity/scenes.ts";
import {
  compareMethod,
  type CopyResidue,
  copyResidue,
  distanceLabels,
  evaluateOnTestCrops,
  type MethodResult,
  type MethodValues,
  sampleDeflow,
} from "./fidelity/evaluate.ts";
import { readFamilyResults, runFamilyWorkers } from "./fidelity/workers.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    family: { type: "string" },
    iterations: { type: "string" },
    jobs: { type: "string", default: "2" },
    out: { type: "string", default: "out/fidelity" },
    seed: { type: "string", default: "1" },
    config: { type: "string" },
    setting: { type: "string" },
    lr: { type: "string" },
    worker: { type: "boolean", default: false },
    report: { type: "boolean", default: false },
    curve: { type: "string", default: "1" },
    batch: { type: "string" },
    crop: { type: "string" },
    "crop-align": { type: "string" },
    "shift-lr": { type: "string" },
    "contraction-lr": { type: "string" },
    "average-decay": { type: "string" },
    "clean-from-degraded": { type: "string" },
    "same-scenes": { type: "boolean", default: false },
    "copies-of-source": { type: "string" },
    "noise-at": { type: "string" },
    "grid-offsets": { type: "string" },
    from: { type: "string" },
  },
});
const noiseAt = args["noise-at"] ?? "input";
if (noiseAt !== "input" && noiseAt !== "prior") {
  console.error(`fidelity: --noise-at must be "input" or "prior", got ${noiseAt}`);
  Deno.exit(2);
}
/** `--grid-offsets K`; absent: what `deflow degrade` uses for the model (its recommendation). */
const gridOffsetsArg = args["grid-offsets"] === undefined || args["grid-offsets"] === "auto"
  ? undefined
  : Number(args["grid-offsets"]);
if (
  gridOffsetsArg !== undefined &&
  !(Number.isInteger(gridOffsetsArg) && gridOffsetsArg >= 1 && gridOffsetsArg <= 64)
) {
  console.error(
    `fidelity: --grid-offsets must be an integer in [1, 64], got ${args["grid-offsets"]}`,
  );
  Deno.exit(2);
}
/** `--setting`: as `deflow train`'s (used without `--config`). */
const settingArg = args.setting ?? "auto";
if (settingArg !== "auto" && settingArg !== "noise" && settingArg !== "paper") {
  console.error(`fidelity: --setting must be auto, noise or paper, got ${settingArg}`);
  Deno.exit(2);
}
if (args.setting !== undefined && args.config !== undefined) {
  console.error("fidelity: --setting and --config exclude each other");
  Deno.exit(2);
}
/** A numeric command-line value, or `undefined` when the option was not given. */
const optionalNumber = (v: string | undefined): number | undefined =>
  v === undefined ? undefined : Number(v);
/** `--from DIR`: evaluate the models trained in DIR (same families) instead of training. */
const fromDir = args.from;
const sameScenes = args["same-scenes"] ?? false;
const copiesOfSource = optionalNumber(args["copies-of-source"]);
if (copiesOfSource !== undefined && !(Number.isFinite(copiesOfSource) && copiesOfSource > 1)) {
  console.error(`fidelity: --copies-of-source must be a number > 1, got ${copiesOfSource}`);
  Deno.exit(2);
}
const quick = args.quick ?? false;
const outRoot = args.out ?? "out/fidelity";
const seed = Number(args.seed);
/** `--iterations`, or undefined: each family then trains for its setting's default length. */
const iterationsArg = args.iterations === undefined
  ? (quick ? 3 : undefined)
  : Number(args.iterations);
/** The training length of a family whose setting is `pick` (none: `--config`). */
const iterationsFor = (pick: { setting: TrainingSetting } | undefined): number =>
  iterationsArg ?? pick?.setting.iterations ?? DEFAULT_ITERATIONS;
/** The shortest any family trains for (bounds `--curve`). */
const fewestIterations = iterationsArg ??
  (args.config
    ? DEFAULT_ITERATIONS
    : Math.min(settings.noise.iterations, settings.paper.iterations));
const names = args.family ? args.family.split(",") : families.map((f) => f.name);
for (const n of names) familyByName(n); // fail early on a typo
const curve = Number(args.curve);
const batchArg = optionalNumber(args.batch);
const cropArg = optionalNumber(args.crop);
if (
  !Number.isInteger(seed) || !(fewestIterations >= 1) || !Number.isInteger(curve) ||
  curve < 1 || curve > fewestIterations ||
  [batchArg, cropArg].some((v) => v !== undefined && !(Number.isInteger(v) && v >= 1))
) {
  console.error(
    "fidelity: --seed must be an integer, --iterations ≥ 1, 1 ≤ --curve ≤ iterations, " +
      "--batch and --crop positive integers",
  );
  Deno.exit(2);
}

/** One point of a fidelity-vs-wall-clock curve. */
interface CurvePoint {
  readonly step: number;
  readonly trainSeconds: number;
  readonly deflow: MethodResult;
}

/** What a worker writes to `<out>/<family>/result.json`. */
interface FamilyResult {
  readonly family: string;
  readonly summary: string;
  readonly heldOut: boolean;
  readonly whiteIsTrue: boolean;
  readonly operator: string;
  readonly iterations: number;
  readonly trainSeconds: number;
  readonly testCrops: number;
  readonly whiteSigmas: number[];
  readonly real: MethodValues;
  readonly floor: MethodResult;
  readonly white: MethodResult;
  readonly deflow: MethodResult;
  readonly config: ModelConfig;
  readonly batch: number;
  readonly crop: number;
  /** Crop-corner grid and learning-rate multiples of the run (older results lack them). */
  readonly cropAlign?: number;
  readonly shiftLrMultiple?: number;
  readonly contractionLrMultiple?: number;
  /** Decay of the parameter average that was sampled (older results lack it; 0: none). */
  readonly averageDecay?: number;
  /** Factor of the downscaled degraded photos added to the clean domain (older results lack it). */
  readonly cleanFromDegraded?: number;
  /** With `cleanFromDegraded`: how much of the degradation its copies keep. */
  readonly copyResidue?: CopyResidue;
  /** Diagnostic run: both domains from the clean scenes (`--same-scenes`). */
  readonly sameScenes?: boolean;
  /** Diagnostic run: the degraded photos' clean sources ÷F in the clean domain. */
  readonly copiesOfSource?: number;
  /** Where the sampler decoded the shift's noise (`--noise-at`; absent: `"input"`). */
  readonly noiseAt?: "input" | "prior";
  /** Noise fields spun over the block grid (`--grid-offsets`; absent: 1). */
  readonly gridOffsets?: number;
  /** `--from`: the folder whose trained model was evaluated (no training in this run). */
  readonly evaluatedFrom?: string;
  readonly curve?: readonly CurvePoint[];
}

/** A model trained by an earlier run of the suite, and that run's training time. */
const loadTrained = async (dir: string) => {
  const model = await loadModel(`${dir}/checkpoint.safetensors`);
  const previous = JSON.parse(await Deno.readTextFile(`${dir}/result.json`)) as FamilyResult;
  return {
    model: { ...model, step: previous.iterations },
    trainSeconds: previous.trainSeconds,
  };
};

const runFamily = async (name: string): Promise<void> => {
  const family = familyByName(name);
  const dir = `${outRoot}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const log = (s: string) => console.log(`[${name}] ${s}`);
  await initBackend();
  const col = await loadCollections(defaultSplit);
  const op = family.make();
  // --same-scenes (diagnostic): the degraded domain from the clean domain's own scenes.
  const source = sameScenes ? col.clean : col.degradedSource;
  const sourceNames = sameScenes ? col.names.clean : col.names.degradedSource;
  const degraded = await degradeImages(op, source, foldIn(seed, 1));
  const batch = batchArg ?? (quick ? 4 : trainDefaults.batch);
  const crop = cropArg ?? (quick ? 32 : trainDefaults.crop);
  // Without --config, the setting `deflow train` would pick (or the one named).
  const pick = args.config ? undefined : pickSetting(settingArg, degraded, crop);
  const config = args.config
    ? configOrThrow(JSON.parse(await Deno.readTextFile(args.config)))
    : pick!.setting.config;
  if (pick && fromDir === undefined) log(`setting ${pick.setting.name}: ${pick.reason}`);
  const iterations = iterationsFor(pick);
  log(
    `${col.clean.length} clean photos (${defaultSplit.clean.join(", ")}), ${degraded.length} ` +
      `degraded (${(sameScenes ? defaultSplit.clean : defaultSplit.degraded).join(", ")}${
        sameScenes ? ": the clean scenes, diagnostic" : ""
      }); ${iterations} iterations`,
  );
  const t0 = performance.now();
  const every = Math.max(1, Math.round(iterations / curve));
  const snapshots: { step: number; path: string; trainSeconds: number }[] = [];
  const trained = fromDir === undefined ? undefined : await loadTrained(`${fromDir}/${name}`);
  if (trained) log(`evaluating the model in ${fromDir}/${name} (no training)`);
  const sourceCopies = copiesOfSource === undefined || trained
    ? []
    : await downscaledCopies(source, copiesOfSource, crop);
  const result = trained?.model ?? await train({
    clean: [...col.clean, ...sourceCopies],
    degraded,
    cleanNames: [...col.names.clean, ...sourceCopies.map((_, i) => `source copy ${i}`)],
    degradedNames: sourceNames,
    config,
    iterations,
    batch,
    crop,
    seed,
    ...(curve > 1 ? { checkpointEvery: every } : {}),
    lr: optionalNumber(args.lr),
    shiftLrMultiple: optionalNumber(args["shift-lr"]),
    contractionLrMultiple: optionalNumber(args["contraction-lr"]),
    averageDecay: optionalNumber(args["average-decay"]),
    cropAlign: optionalNumber(args["crop-align"]),
    cleanFromDegraded: args["clean-from-degraded"] === undefined
      ? pick?.setting.cleanFromDegraded
      : Number(args["clean-from-degraded"]),
    outDir: dir,
    onProgress: (p) => {
      if (curve > 1 && p.event === "checkpoint" && p.checkpoint && p.step < p.iterations) {
        const path = `${dir}/curve-${p.step}.safetensors`;
        Deno.copyFileSync(p.checkpoint, path);
        snapshots.push({ step: p.step, path, trainSeconds: (performance.now() - t0) / 1000 });
      }
      if (p.event === "step" && (p.step % 100 === 0 || p.step === p.iterations)) {
        log(
          `step ${p.step}/${p.iterations} clean ${p.clean.toFixed(3)} degraded ${
            p.degraded.toFixed(3)
          } bits/dim, ${p.itPerSec.toFixed(2)} it/s`,
        );
      }
    },
  });
  const trainSeconds = trained?.trainSeconds ?? (performance.now() - t0) / 1000;
  const gridOffsets = gridOffsetsArg ?? recommendedGridOffsets(result.config);
  const sampling = { noiseAt, gridOffsets } as const;
  if (gridOffsets > 1) log(`sampling over ${gridOffsets} offsets of the block grid`);

  // Held-out scenes: clean crops, their true degradation, a second true sample (floor).
  const size = quick ? 64 : 128;
  const { clean, real, floor: floorImgs, white, ours, sigmas, realValues } =
    await evaluateOnTestCrops(
      op,
      { test: col.test, clean: col.clean, degraded },
      result,
      seed,
      { size, perImage: quick ? 2 : Infinity },
      sampling,
    );
  disposeParams(result.params);
  const deflowResult = compareMethod(ours, real, clean, realValues);

  const curvePoints: CurvePoint[] = [];
  for (const snap of snapshots) {
    const m = await loadModel(snap.path);
    const imgs = await sampleDeflow(
      m.params,
      m.config,
      m.normalization,
      clean,
      foldIn(seed, 5),
      sampling,
    );
    disposeParams(m.params);
    curvePoints.push({
      step: snap.step,
      trainSeconds: snap.trainSeconds,
      deflow: compareMethod(imgs, real, clean, realValues),
    });
    await Deno.remove(snap.path);
    log(`curve: evaluated step ${snap.step}`);
  }
  // The run's settings as the trainer resolved them (loss.json), for the report.
  const ran = JSON.parse(await Deno.readTextFile(`${fromDir ?? outRoot}/${name}/loss.json`)).run;
  const runExtras = {
    cropAlign: ran.cropAlign,
    shiftLrMultiple: ran.shiftLrMultiple,
    contractionLrMultiple: ran.contractionLrMultiple,
    averageDecay: ran.averageDecay,
    cleanFromDegraded: ran.cleanFromDegraded,
    ...(ran.cleanFromDegraded
      ? { copyResidue: await copyResidue(degraded, source, ran.cleanFromDegraded, crop) }
      : {}),
  };
  const res: FamilyResult = {
    family: name,
    summary: family.summary,
    heldOut: family.heldOut,
    whiteIsTrue: family.whiteIsTrue,
    operator: describe(op),
    iterations: result.step,
    trainSeconds,
    testCrops: clean.length,
    whiteSigmas: sigmas,
    real: realValues,
    floor: compareMethod(floorImgs, real, clean, realValues),
    white: compareMethod(white, real, clean, realValues),
    deflow: deflowResult,
    config: trained?.model.config ?? config,
    batch,
    crop,
    ...runExtras,
    ...(sameScenes ? { sameScenes } : {}),
    ...(copiesOfSource !== undefined && !trained ? { copiesOfSource } : {}),
    ...(noiseAt !== "input" ? { noiseAt } : {}),
    ...(gridOffsets > 1 ? { gridOffsets } : {}),
    ...(fromDir !== undefined ? { evaluatedFrom: fromDir } : {}),
    ...(curvePoints.length > 0
      ? {
        curve: [
          ...curvePoints,
          { step: result.step, trainSeconds, deflow: deflowResult },
        ],
      }
      : {}),
  };
  await Deno.writeTextFile(`${dir}/result.json`, JSON.stringify(res, null, 2));
  const shown = Array.from(
    { length: Math.min(4, clean.length) },
    (_, k) => Math.floor(k * clean.length / Math.min(4, clean.length)),
  );
  await writePng(
    `${dir}/grid.png`,
    makeGrid(shown.map((i) => [clean[i], real[i], ours[i], white[i], floorImgs[i]]), { pad: 4 }),
  );
  log(`wrote ${dir}/result.json and grid.png (train ${trainSeconds.toFixed(0)} s)`);
};

const fmt = (
  v: number,
) => (Number.isFinite(v) ? (Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3)) : "n/a");
const f3 = (v: readonly number[]) => v.map((x) => x.toFixed(4)).join(" / ");

/** Markdown for a family's fidelity-vs-wall-clock curve (empty without `--curve`). */
const curveTable = (r: FamilyResult): string[] => {
  if (!r.curve || r.curve.length === 0) return [];
  const keys = ["noiseLevel", "flatNoise", "spectrum", "patchCov", "pairedSpectrum"] as const;
  const label = (k: string) => distanceLabels.find(([key]) => key === k)?.[1] ?? k;
  return [
    `Fidelity against training wall clock (batch ${r.batch}, crop ${r.crop}${
      r.cropAlign !== undefined ? ` on a ${r.cropAlign}-pixel grid` : ""
    }${
      r.shiftLrMultiple !== undefined && r.shiftLrMultiple !== 1
        ? `, shift learning rate ×${r.shiftLrMultiple}`
        : ""
    }${
      r.contractionLrMultiple !== undefined && r.contractionLrMultiple !== 1
        ? `, contraction learning rate ×${r.contractionLrMultiple}`
        : ""
    }${r.averageDecay ? `, parameter average ${r.averageDecay}` : ""}; intermediate ` +
    "points use the full run's learning-rate schedule):",
    "",
    `| step | train min | beats white | ${keys.map(label).join(" | ")} |`,
    `|---|---|---|${keys.map(() => "---").join("|")}|`,
    ...r.curve.map((c) => {
      const wins = distanceLabels.filter(([k]) => c.deflow.distances[k] < r.white.distances[k])
        .length;
      return `| ${c.step} | ${
        (c.trainSeconds / 60).toFixed(1)
      } | ${wins}/${distanceLabels.length} | ${
        keys.map((k) => fmt(c.deflow.distances[k])).join(" | ")
      } |`;
    }),
    "",
  ];
};

/** Markdown for one family. */
const familyTable = (r: FamilyResult): string[] => {
  const wins = distanceLabels.filter(([k]) => r.deflow.distances[k] < r.white.distances[k]).length;
  const lines = [
    `### ${r.family}${r.heldOut ? " (held out)" : ""}${
      r.sameScenes
        ? " — diagnostic: both domains from the clean scenes (not a fidelity result)"
        : ""
    }${
      r.copiesOfSource
        ? ` — diagnostic: clean domain + the degraded photos' clean sources ÷${r.copiesOfSource}`
        : ""
    }`,
    "",
    `${r.summary}. Operator: \`${r.operator}\`. ${r.iterations} iterations, training ${
      r.trainSeconds.toFixed(0)
    } s${r.averageDecay ? `, sampled from the parameter average (decay ${r.averageDecay})` : ""}${
      r.cleanFromDegraded ? `, clean domain + degraded photos ÷${r.cleanFromDegraded}` : ""
    }${
      r.copyResidue
        ? ` (the copies keep ${
          (100 * r.copyResidue.ratio).toFixed(0)
        } % of the degradation's high-pass std: ${f3(r.copyResidue.copies)} against ${
          f3(r.copyResidue.fullSize)
        } at full size)`
        : ""
    }; ${r.testCrops} test crops; white-noise σ = ${f3(r.whiteSigmas)}.`,
    "",
    "| distance to the real degradation (lower is better) | floor (2nd true sample) | white noise | DeFlow |",
    "|---|---|---|---|",
    ...distanceLabels.map(([k, label]) => {
      const d = r.deflow.distances[k], w = r.white.distances[k];
      return `| ${label} | ${fmt(r.floor.distances[k])} | ${fmt(w)} | ${fmt(d)}${
        d < w ? " ✓" : ""
      } |`;
    }),
    "",
    `DeFlow beats white noise on ${wins} of ${distanceLabels.length} statistics.`,
    "",
    "| values | real | white noise | DeFlow |",
    "|---|---|---|---|",
    `| noise std R/G/B | ${f3(r.real.noiseStd)} | ${f3(r.white.values.noiseStd)} | ${
      f3(r.deflow.values.noiseStd)
    } |`,
    `| flat-region noise std | ${f3(r.real.flatNoise)} | ${f3(r.white.values.flatNoise)} | ${
      f3(r.deflow.values.flatNoise)
    } |`,
    `| residual mean | ${f3(r.real.residualMean)} | ${f3(r.white.values.residualMean)} | ${
      f3(r.deflow.values.residualMean)
    } |`,
    `| blockiness | ${r.real.blockiness.toFixed(3)} | ${r.white.values.blockiness.toFixed(3)} | ${
      r.deflow.values.blockiness.toFixed(3)
    } |`,
    "",
    ...curveTable(r),
    `![${r.family}: clean | real | DeFlow | white noise | 2nd true sample](${r.family}/grid.png)`,
    "",
  ];
  return lines;
};

const aggregate = async (): Promise<void> => {
  const results = await readFamilyResults<FamilyResult>(outRoot, names, "fidelity");
  const md = [
    "# DeFlow fidelity suite",
    "",
    `Scenes: clean domain ${defaultSplit.clean.join(", ")}; degraded domain ${
      defaultSplit.degraded.join(", ")
    }; test ${defaultSplit.test.join(", ")} (disjoint). ${
      quick ? "**--quick run: not a fidelity measurement.**" : ""
    }`,
    "Grids: clean | real | DeFlow τ = 1 | white noise | 2nd true sample.",
    "",
    "## Tuning families",
    "",
    ...results.filter((r) => !r.heldOut).flatMap(familyTable),
    "## Held-out families (never used for tuning)",
    "",
    ...results.filter((r) => r.heldOut).flatMap(familyTable),
  ].join("\n");
  await Deno.writeTextFile(`${outRoot}/report.md`, md);
  console.log(md);
  if (results.length !== names.length) Deno.exit(1);
};

if (args.report) {
  await aggregate();
} else if (args.worker) {
  if (names.length !== 1) throw new Error("--worker runs exactly one --family");
  await runFamily(names[0]);
} else {
  const jobs = Math.max(1, Number(args.jobs));
  const passThrough = [
    ...(quick ? ["--quick"] : []),
    ...(iterationsArg !== undefined ? [`--iterations=${iterationsArg}`] : []),
    `--out=${outRoot}`,
    `--seed=${seed}`,
    ...(args.config ? [`--config=${args.config}`] : []),
    ...(args.lr ? [`--lr=${args.lr}`] : []),
    `--curve=${curve}`,
    ...(args.batch ? [`--batch=${args.batch}`] : []),
    ...(args.crop ? [`--crop=${args.crop}`] : []),
    ...(args["crop-align"] ? [`--crop-align=${args["crop-align"]}`] : []),
    ...(args["shift-lr"] ? [`--shift-lr=${args["shift-lr"]}`] : []),
    ...(args["contraction-lr"] ? [`--contraction-lr=${args["contraction-lr"]}`] : []),
    ...(args["average-decay"] ? [`--average-decay=${args["average-decay"]}`] : []),
    ...(args["clean-from-degraded"]
      ? [`--clean-from-degraded=${args["clean-from-degraded"]}`]
      : []),
    ...(sameScenes ? ["--same-scenes"] : []),
    ...(copiesOfSource !== undefined ? [`--copies-of-source=${copiesOfSource}`] : []),
    `--noise-at=${noiseAt}`,
    ...(gridOffsetsArg !== undefined ? [`--grid-offsets=${gridOffsetsArg}`] : []),
    ...(args.setting !== undefined ? [`--setting=${args.setting}`] : []),
    ...(fromDir !== undefined ? [`--from=${fromDir}`] : []),
  ];
  const failed =
    (await runFamilyWorkers(new URL(import.meta.url), names, passThrough, jobs, "fidelity"))
      .length;
  await aggregate();
  if (failed) Deno.exit(1);
}
