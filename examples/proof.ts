/**
 * The downstream proof (`deno task proof [--quick] [--family a,b,c] [--models DIR]
 * [--steps N] [--out out/proof]`): the paper's Tables 1–2 in miniature.
 *
 * For each degradation family (default grain, smooth-jpeg, poisson, jpeg and the held-out
 * camera): the same small residual CNN denoiser (`examples/proof/restorer.ts`), from the
 * same initialisation, for the same steps on the same batches of clean crops of the
 * **clean-domain** photos, is trained on inputs made by (a) no degradation, (b) fitted
 * white noise, (c) DeFlow samples (τ = 1) of the family's model, (d) the true degradation
 * (upper bound), then evaluated by PSNR / SSIM on true pairs of the **held-out test
 * scenes** (their crops degraded by the true operator with the fidelity suite's seed).
 *
 * The DeFlow model is `<models>/<family>/checkpoint.safetensors` (default models folder
 * `out/fidelity`, what `deno task fidelity` writes); when it is missing, one is trained
 * with the fidelity suite's settings (same data, seed and `train` call) into
 * `<out>/<family>/deflow/`, and sampled from the checkpoint written there.
 *
 * Writes `<out>/report.md`, `<out>/report.json` and, per family, `<out>/<family>/result.json`
 * and `<out>/<family>/examples.png` (degraded test input | restored by (a) (b) (c) (d) |
 * clean). Families run side by side, one subprocess each (`--jobs`, default 2).
 * `--quick` (CI) runs every path with tiny sizes: it checks the pipeline, not the claim.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../src/tf.ts";
import { initBackend } from "../src/core/backend.ts";
import { foldIn } from "../src/core/random.ts";
import { disposeParams } from "../src/core/params.ts";
import { type RgbImage, writePng } from "../src/image/io.ts";
import { makeGrid } from "../src/image/grid.ts";
import { degradeImages } from "../src/degrade/types.ts";
import { chooseSetting } from "../src/train/setting.ts";
import { prepareSampler, recommendedGridOffsets } from "../src/model/sample.ts";
import { CHECKPOINT_FILE, imagesFingerprint, train, trainDefaults } from "../src/train/loop.ts";
import { loadModel, readModelInfo } from "../src/cli/model.ts";
import { familyByName } from "./fidelity/families.ts";
import { cropsOf, defaultSplit, loadCollections } from "./fidelity/scenes.ts";
import { fitWhiteNoiseSigmas } from "./fidelity/evaluate.ts";
import { degradedVariants, makePool, type Method, methods, randomCrops } from "./proof/pairs.ts";
import {
  batchPlan,
  countRestorerParams,
  defaultRestorer,
  initRestorer,
  restoreImages,
  scoreImages,
  type Scores,
  trainRestorer,
} from "./proof/restorer.ts";
import {
  type FamilyProof,
  type MethodScore,
  type ModelSource,
  reportMarkdown,
  summaryLines,
} from "./proof/report.ts";
import { readFamilyResults, runFamilyWorkers } from "./fidelity/workers.ts";

/** The default families: three tuning families and one held-out family. */
const DEFAULT_FAMILIES = ["grain", "smooth-jpeg", "poisson", "jpeg", "camera"];

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    family: { type: "string" },
    models: { type: "string", default: "out/fidelity" },
    steps: { type: "string" },
    batch: { type: "string" },
    pool: { type: "string" },
    variants: { type: "string" },
    jobs: { type: "string", default: "2" },
    out: { type: "string", default: "out/proof" },
    seed: { type: "string", default: "1" },
    worker: { type: "boolean", default: false },
    "noise-at": { type: "string" },
    "grid-offsets": { type: "string" },
  },
});
const noiseArg = args["noise-at"] ?? "input";
if (noiseArg !== "input" && noiseArg !== "prior") {
  console.error(`proof: --noise-at must be "input" or "prior", got ${noiseArg}`);
  Deno.exit(2);
}
const noiseAt: "input" | "prior" = noiseArg === "prior" ? "prior" : "input";
/** `--grid-offsets K`; absent: what `deflow degrade` uses for the model (its recommendation). */
const gridOffsetsArg = args["grid-offsets"] === undefined
  ? undefined
  : Number(args["grid-offsets"]);
if (
  gridOffsetsArg !== undefined &&
  !(Number.isInteger(gridOffsetsArg) && gridOffsetsArg >= 1 && gridOffsetsArg <= 64)
) {
  console.error(`proof: --grid-offsets must be an integer in [1, 64], got ${args["grid-offsets"]}`);
  Deno.exit(2);
}
const quick = args.quick ?? false;
const outRoot = args.out ?? "out/proof";
const modelsDir = args.models ?? "out/fidelity";
const seed = Number(args.seed);
const names = args.family ? args.family.split(",") : DEFAULT_FAMILIES;
const settings = {
  steps: Number(args.steps ?? (quick ? 4 : 600)),
  batch: Number(args.batch ?? (quick ? 4 : 8)),
  crop: quick ? 32 : 48,
  pool: Number(args.pool ?? (quick ? 12 : 512)),
  variants: Number(args.variants ?? (quick ? 2 : 4)),
  testSize: 64,
  testPerPhoto: quick ? 2 : Infinity,
};
for (const n of names) familyByName(n); // fail early on a typo
const counts = [settings.steps, settings.batch, settings.pool, settings.variants];
if (!Number.isInteger(seed) || seed < 0 || !counts.every((v) => Number.isInteger(v) && v >= 1)) {
  console.error("proof: --seed must be an integer ≥ 0; --steps, --batch, --pool, --variants ≥ 1");
  Deno.exit(2);
}

const exists = async (path: string): Promise<boolean> => {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
};

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** RMS of `input − clean` over a pool's variants. */
const residualRms = (clean: Float32Array, variants: readonly Float32Array[]): number => {
  let s = 0;
  for (const v of variants) for (let i = 0; i < v.length; i++) s += (v[i] - clean[i]) ** 2;
  return Math.sqrt(s / (clean.length * variants.length));
};

/** Nearest-neighbour 2× enlargement (for the example grid). */
const enlarge2 = (img: RgbImage): RgbImage => {
  const w = img.width * 2, h = img.height * 2;
  const data = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = ((y >> 1) * img.width + (x >> 1)) * 3, o = (y * w + x) * 3;
      data[o] = img.data[s];
      data[o + 1] = img.data[s + 1];
      data[o + 2] = img.data[s + 2];
    }
  }
  return { width: w, height: h, data };
};

const runFamily = async (name: string): Promise<void> => {
  const family = familyByName(name);
  const dir = `${outRoot}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const log = (s: string) => console.log(`[proof ${name}] ${s}`);
  await initBackend();
  const tensorsAtStart = tf.memory().numTensors;

  // The fidelity suite's domains: same scenes, same operator, same seeds.
  const col = await loadCollections(defaultSplit);
  const op = family.make();
  const degraded = await degradeImages(op, col.degradedSource, foldIn(seed, 1));
  const sigmas = fitWhiteNoiseSigmas(col.clean, degraded);

  // The DeFlow model: the models folder's checkpoint, else one trained here.
  const modelPath = `${modelsDir}/${name}/${CHECKPOINT_FILE}`;
  const ownDir = `${dir}/deflow`;
  const ownPath = `${ownDir}/${CHECKPOINT_FILE}`;
  let path = modelPath, trainedHere = false;
  if (!(await exists(modelPath))) {
    const crop = quick ? 32 : trainDefaults.crop;
    const { setting, reason } = chooseSetting(degraded, crop);
    // `deflow train`'s default length for the setting it would pick.
    const iterations = quick ? 3 : setting.iterations;
    const own = (await exists(ownPath)) ? await readModelInfo(ownPath) : undefined;
    path = ownPath;
    if (own?.info.training.step !== iterations) {
      log(`no ${modelPath}: training DeFlow (${iterations} iterations, fidelity settings)`);
      log(`setting ${setting.name}: ${reason}`);
      const t0 = performance.now();
      const result = await train({
        clean: col.clean,
        degraded,
        cleanNames: col.names.clean,
        degradedNames: col.names.degradedSource,
        config: setting.config,
        cleanFromDegraded: setting.cleanFromDegraded,
        iterations,
        batch: quick ? 4 : trainDefaults.batch,
        crop,
        seed,
        outDir: ownDir,
        onProgress: (p) => {
          if (p.event === "step" && (p.step % 100 === 0 || p.step === p.iterations)) {
            log(`DeFlow step ${p.step}/${p.iterations}, ${p.itPerSec.toFixed(2)} it/s`);
          }
        },
      });
      disposeParams(result.params);
      log(`DeFlow trained in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      trainedHere = true;
    }
  }
  const model = await loadModel(path);
  const gridOffsets = gridOffsetsArg ?? recommendedGridOffsets(model.config);
  const stored = (model.info.training as unknown as {
    data?: { clean: string; degraded: string };
  }).data;
  const sameDomains = stored === undefined ? undefined : stored.clean ===
      imagesFingerprint(col.clean) && stored.degraded === imagesFingerprint(degraded);
  if (sameDomains === false) {
    log(`warning: ${path} was trained on other data than this run's domains`);
  }
  const modelSource: ModelSource = {
    path,
    trainedHere,
    iterations: model.info.training.step,
    ...(noiseAt === "prior" ? { noiseAt } : {}),
    ...(gridOffsets > 1 ? { gridOffsets } : {}),
    ...(sameDomains === undefined ? {} : { sameDomains }),
  };
  const sampler = await prepareSampler(model.params, model.config, model.normalization);

  // Test pairs: crops of the held-out scenes and their true degradation (fidelity's seed).
  const testClean = col.test.flatMap((img) =>
    cropsOf(img, settings.testSize, settings.testPerPhoto)
  );
  const testInput = await degradeImages(op, testClean, foldIn(seed, 2));
  const inputScores = scoreImages(testInput, testClean);

  // Training pairs: one pool of clean crops, the same batches for every method.
  const crops = randomCrops(col.clean, settings.crop, settings.pool, foldIn(seed, 10));
  const plan = batchPlan(crops.length, settings.steps, settings.batch, foldIn(seed, 11));
  const initSeed = foldIn(seed, 12);
  const sources = { op, sigmas, sampler, sampling: { noiseAt, gridOffsets } };
  const scores = {} as Record<Method, MethodScore>;
  const perCrop = {} as Record<Method, Scores>;
  const restoredShown = {} as Record<Method, RgbImage[]>;
  const nShow = Math.min(4, testClean.length);
  const shown = Array.from(
    { length: nShow },
    (_, k) => Math.floor(k * testClean.length / nShow),
  );
  let deflowMs = 0, stepSeconds = 0;
  try {
    for (const [mi, m] of methods.entries()) {
      const t0 = performance.now();
      const variants = await degradedVariants(
        m,
        crops,
        settings.variants,
        sources,
        foldIn(seed, 20 + mi),
      );
      const pool = makePool(crops, variants);
      const pairSeconds = (performance.now() - t0) / 1000;
      if (m === "deflow") deflowMs = pairSeconds * 1000 / (crops.length * settings.variants);
      const trained = await trainRestorer({ pool, plan, seed: initSeed });
      const restored = await restoreImages(trained.params, testInput);
      disposeParams(trained.params);
      const sc = scoreImages(restored, testClean);
      perCrop[m] = sc;
      restoredShown[m] = shown.map((i) => restored[i]);
      const tail = trained.losses.slice(-Math.max(1, Math.floor(trained.losses.length / 10)));
      scores[m] = {
        psnr: sc.meanPsnr,
        ssim: sc.meanSsim,
        trainResidualRms: residualRms(pool.clean, pool.degraded),
        pairSeconds,
        trainSeconds: trained.seconds,
        finalLoss: mean(tail),
      };
      stepSeconds += trained.seconds / plan.length / methods.length;
      log(
        `${m}: PSNR ${sc.meanPsnr.toFixed(2)} dB, SSIM ${sc.meanSsim.toFixed(4)} (pairs ${
          pairSeconds.toFixed(1)
        } s, training ${trained.seconds.toFixed(1)} s)`,
      );
    }
  } finally {
    sampler.dispose();
    disposeParams(model.params);
  }

  const diffs = perCrop.deflow.psnr.map((v, i) => v - perCrop.white.psnr[i]);
  const dm = mean(diffs);
  const se = diffs.length > 1
    ? Math.sqrt(diffs.reduce((a, d) => a + (d - dm) ** 2, 0) / (diffs.length - 1) / diffs.length)
    : NaN;
  await writePng(
    `${dir}/examples.png`,
    makeGrid(
      shown.map((i, k) =>
        [testInput[i], ...methods.map((m) => restoredShown[m][k]), testClean[i]].map(enlarge2)
      ),
      { pad: 4 },
    ),
  );
  const probe = initRestorer(defaultRestorer, 0);
  const restorerParams = countRestorerParams(probe);
  disposeParams(probe);
  const tensorsAtEnd = tf.memory().numTensors;
  const res: FamilyProof = {
    family: name,
    summary: family.summary,
    heldOut: family.heldOut,
    whiteIsTrue: family.whiteIsTrue,
    model: modelSource,
    whiteSigmas: sigmas,
    settings: {
      steps: settings.steps,
      batch: settings.batch,
      crop: settings.crop,
      pool: settings.pool,
      variants: settings.variants,
      testCrops: testClean.length,
      testSize: settings.testSize,
      restorerParams,
      seed,
      quick,
    },
    input: { psnr: inputScores.meanPsnr, ssim: inputScores.meanSsim },
    methods: scores,
    deflowMinusWhite: { mean: dm, se },
    secondsPerStep: stepSeconds,
    deflowMsPerSample: deflowMs,
    tensors: { start: tensorsAtStart, end: tensorsAtEnd },
  };
  await Deno.writeTextFile(`${dir}/result.json`, JSON.stringify(res, null, 2));
  log(
    `input PSNR ${inputScores.meanPsnr.toFixed(2)} dB; DeFlow − white ${dm.toFixed(2)} ± ${
      se.toFixed(2)
    } dB; wrote ${dir}/result.json and examples.png`,
  );
  log(`tensors: ${tensorsAtStart} at start, ${tensorsAtEnd} at end`);
  if (tensorsAtEnd !== tensorsAtStart) {
    throw new Error(`leaked ${tensorsAtEnd - tensorsAtStart} tensors`);
  }
};

const aggregate = async (): Promise<boolean> => {
  const results = await readFamilyResults<FamilyProof>(outRoot, names, "proof");
  const split = `clean domain ${defaultSplit.clean.join(", ")}; degraded domain ${
    defaultSplit.degraded.join(", ")
  }; test ${defaultSplit.test.join(", ")} (disjoint)`;
  await Deno.writeTextFile(`${outRoot}/report.md`, reportMarkdown(results, { split, quick }));
  await Deno.writeTextFile(
    `${outRoot}/report.json`,
    JSON.stringify({ split: defaultSplit, quick, families: results }, null, 2),
  );
  console.log(summaryLines(results).join("\n"));
  if (quick) console.log("(--quick: tiny sizes, checks the pipeline, not the claim)");
  console.log(`wrote ${outRoot}/report.md and report.json`);
  return results.length === names.length;
};

if (args.worker) {
  if (names.length !== 1) throw new Error("--worker runs exactly one --family");
  await runFamily(names[0]);
} else {
  const t0 = performance.now();
  await Deno.mkdir(outRoot, { recursive: true });
  // Stale results of an earlier run must not be reported as this run's.
  for (const n of names) await Deno.remove(`${outRoot}/${n}/result.json`).catch(() => {});
  const jobs = Math.max(1, Number(args.jobs));
  const passThrough = [
    ...(quick ? ["--quick"] : []),
    `--models=${modelsDir}`,
    `--out=${outRoot}`,
    `--seed=${seed}`,
    `--steps=${settings.steps}`,
    `--batch=${settings.batch}`,
    `--pool=${settings.pool}`,
    `--variants=${settings.variants}`,
    `--noise-at=${noiseAt}`,
    ...(gridOffsetsArg !== undefined ? [`--grid-offsets=${gridOffsetsArg}`] : []),
  ];
  const failed =
    (await runFamilyWorkers(new URL(import.meta.url), names, passThrough, jobs, "proof"))
      .length;
  const complete = await aggregate();
  console.log(`proof: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (failed || !complete) Deno.exit(1);
}
