/**
 * Train the shipped model `builtin:camera` and write its model card, in one go:
 *
 * ```sh
 * nice -n 10 deno run -A examples/train_builtin.ts [--iterations N] [--seed S] [--out DIR]
 * ```
 *
 * Data: the bundled photos (`examples/data/photos`) split **by scene**
 * (`examples/fidelity/scenes.ts`): the clean domain, the degraded domain (degraded by the
 * `camera` family of `examples/fidelity/families.ts`: shot + read noise in linear light,
 * sRGB gamma, JPEG q80 4:2:0) and held-out test scenes. DeFlow is trained **unpaired** with
 * the CLI's defaults, then evaluated like the fidelity suite on crops of the test scenes
 * (DeFlow τ = 1 vs fitted white noise vs a second true sample). Writes, to `--out`
 * (default `src/builtin/camera`, where `builtin:camera` is loaded from):
 *
 * - `model.safetensors` — the parameters only (no optimiser state), the config and the
 *   training state (loss history) in the checkpoint format of `src/io/checkpoint.ts`;
 * - `MODEL_CARD.md` — data, degradation, config, iterations, wall time, the statistics
 *   table, licence; `card.json` — the same numbers as JSON.
 *
 * The training run itself (resumable checkpoints with Adam state, `loss.png`, a grid)
 * goes to `out/builtin-camera/`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../src/tf.ts";
import { initBackend } from "../src/core/backend.ts";
import { foldIn } from "../src/core/random.ts";
import { disposeParams } from "../src/core/params.ts";
import { writePng } from "../src/image/io.ts";
import { makeGrid } from "../src/image/grid.ts";
import { degradeImages, describe } from "../src/degrade/types.ts";
import { configToJson } from "../src/model/config.ts";
import { train, trainDefaults } from "../src/train/loop.ts";
import { settings } from "../src/train/setting.ts";
import { saveCheckpoint } from "../src/io/checkpoint.ts";
import { loadModelCheckpoint } from "../src/io/model.ts";
import { BUILTIN_FILE } from "../src/io/builtin.ts";
import { familyByName } from "./fidelity/families.ts";
import { defaultSplit, loadCollections } from "./fidelity/scenes.ts";
import { compareMethod, distanceLabels, evaluateOnTestCrops } from "./fidelity/evaluate.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    iterations: { type: "string" },
    seed: { type: "string", default: "1" },
    out: { type: "string" },
    run: { type: "string", default: "out/builtin-camera" },
  },
});
// The paper setting's default length, as `deflow train` picks for these JPEG-compressed photos.
const iterations = Number(args.iterations ?? settings.paper.iterations);
const seed = Number(args.seed);
const outDir = args.out ?? new URL("../src/builtin/camera", import.meta.url).pathname;
const runDir = args.run ?? "out/builtin-camera";
if (!Number.isInteger(iterations) || iterations < 1 || !Number.isInteger(seed)) {
  console.error("train_builtin: --iterations must be an integer ≥ 1 and --seed an integer");
  Deno.exit(2);
}

const FAMILY = "camera";
await initBackend();
await Deno.mkdir(outDir, { recursive: true });
await Deno.mkdir(runDir, { recursive: true });
const family = familyByName(FAMILY);
const col = await loadCollections(defaultSplit);
const op = family.make();
const degraded = await degradeImages(op, col.degradedSource, foldIn(seed, 1));
const config = settings.paper.config;
console.log(
  `train_builtin: ${col.clean.length} clean photos, ${degraded.length} degraded (${FAMILY}); ` +
    `${iterations} iterations`,
);
const t0 = performance.now();
const result = await train({
  clean: col.clean,
  degraded,
  cleanNames: col.names.clean,
  degradedNames: col.names.degradedSource,
  config,
  iterations,
  seed,
  outDir: runDir,
  onProgress: (p) => {
    if (p.event === "step" && (p.step % 50 === 0 || p.step === p.iterations)) {
      console.log(
        `step ${p.step}/${p.iterations} clean ${p.clean.toFixed(3)} degraded ${
          p.degraded.toFixed(3)
        } bits/dim, ${p.itPerSec.toFixed(2)} it/s`,
      );
    }
  },
});
const trainSeconds = (performance.now() - t0) / 1000;

// The shipped file: parameters only (the run's checkpoint also holds Adam's moments).
const loaded = await loadModelCheckpoint(result.checkpoint!);
const modelPath = `${outDir}/${BUILTIN_FILE}`;
await saveCheckpoint(modelPath, {
  params: loaded.params,
  config: configToJson(result.config),
  training: loaded.training,
});
disposeParams(loaded.params);
const modelBytes = (await Deno.stat(modelPath)).size;

// Evaluation on crops of the held-out scenes, as the fidelity suite does.
const size = 128;
const { clean, real, floor: floorImgs, white, ours, realValues } = await evaluateOnTestCrops(
  op,
  { test: col.test, clean: col.clean, degraded },
  result,
  seed,
  {
    size,
  },
);
disposeParams(result.params);

const floor = compareMethod(floorImgs, real, clean, realValues);
const whiteRes = compareMethod(white, real, clean, realValues);
const deflowRes = compareMethod(ours, real, clean, realValues);
const wins = distanceLabels.filter(([k]) => deflowRes.distances[k] < whiteRes.distances[k]).length;
const shown = [0, 1, 2, 3].map((k) => Math.floor(k * clean.length / 4));
await writePng(
  `${runDir}/grid.png`,
  makeGrid(shown.map((i) => [clean[i], real[i], ours[i], white[i]]), { pad: 4 }),
);

const fmt = (v: number) =>
  Number.isFinite(v) ? (Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3)) : "n/a";
const f3 = (v: readonly number[]) => v.map((q) => q.toFixed(4)).join(" / ");
const card = [
  "# Model card: `builtin:camera`",
  "",
  "A small DeFlow model (Wolf et al., CVPR 2021) that adds a **camera-like degradation** to",
  "clean sRGB photos: shot and read noise in linear light, sRGB gamma, JPEG. Load it with",
  '`deflow degrade --model builtin:camera …`, `loadBuiltin("camera")` or on the web page',
  "(`deno task web`). Written by `examples/train_builtin.ts` (this card and",
  `\`${BUILTIN_FILE}\` come from the same run).`,
  "",
  "## Data",
  "",
  "The bundled photos (`examples/data/photos`, public domain / CC0 / BSD-3-Clause, see",
  "`examples/data/ATTRIBUTION.md`), split by scene (`examples/fidelity/scenes.ts`), so the",
  "clean and degraded training photos never show the same scene:",
  "",
  `- clean domain: ${defaultSplit.clean.join(", ")} (${col.clean.length} photos);`,
  `- degraded domain: ${defaultSplit.degraded.join(", ")} (${degraded.length} photos, degraded`,
  "  by the operator below with a fixed seed);",
  `- held out for the table: ${defaultSplit.test.join(", ")} (${clean.length} crops of`,
  `  ${size}×${size}).`,
  "",
  "Training is **unpaired**: the model never sees a clean photo and its degraded version.",
  "",
  "## Degradation",
  "",
  `${family.summary} — the \`${FAMILY}\` family of \`examples/fidelity/families.ts\`, held out of`,
  "all tuning of the library. Operator:",
  "",
  "```",
  describe(op),
  "```",
  "",
  "## Training",
  "",
  `- iterations: ${result.step} (batch ${trainDefaults.batch}, ${trainDefaults.crop}×${trainDefaults.crop}`,
  `  crops, learning rate ${trainDefaults.lr}, seed ${seed});`,
  `- wall time: ${trainSeconds.toFixed(0)} s on the CPU (tfjs wasm backend${
    tf.getBackend() === "wasm" ? "" : `; here: ${tf.getBackend()}`
  }), ${navigator.hardwareConcurrency} logical cores;`,
  `- file: \`${BUILTIN_FILE}\`, ${(modelBytes / 1e6).toFixed(2)} MB (float32 parameters, no`,
  "  optimiser state);",
  "- config (the paper setting's: the library's `defaultConfig` with additive couplings and",
  "  constant split-prior scales):",
  "",
  "```json",
  JSON.stringify(configToJson(result.config)),
  "```",
  "",
  "## Statistics on the held-out scenes",
  "",
  "Distances to the real degradation of the same clean crops (lower is better): DeFlow at",
  "τ = 1 (8-bit output) against white noise with per-channel σ fitted on the unpaired",
  "training domains, and a second sample of the true process (the floor).",
  "",
  "| statistic | floor (2nd true sample) | white noise | DeFlow |",
  "|---|---|---|---|",
  ...distanceLabels.map(([k, label]) => {
    const d = deflowRes.distances[k], w = whiteRes.distances[k];
    const cell = label.replace(/\|/g, "\\|");
    return `| ${cell} | ${fmt(floor.distances[k])} | ${fmt(w)} | ${fmt(d)}${d < w ? " ✓" : ""} |`;
  }),
  "",
  `DeFlow beats white noise on **${wins} of ${distanceLabels.length}** statistics.`,
  "",
  "| values | real | white noise | DeFlow |",
  "|---|---|---|---|",
  `| noise std R/G/B | ${f3(realValues.noiseStd)} | ${f3(whiteRes.values.noiseStd)} | ${
    f3(deflowRes.values.noiseStd)
  } |`,
  `| flat-region noise std | ${f3(realValues.flatNoise)} | ${f3(whiteRes.values.flatNoise)} | ${
    f3(deflowRes.values.flatNoise)
  } |`,
  `| residual mean | ${f3(realValues.residualMean)} | ${f3(whiteRes.values.residualMean)} | ${
    f3(deflowRes.values.residualMean)
  } |`,
  `| blockiness | ${realValues.blockiness.toFixed(3)} | ${
    whiteRes.values.blockiness.toFixed(3)
  } | ${deflowRes.values.blockiness.toFixed(3)} |`,
  "",
  "## Limitations",
  "",
  `Trained on ${col.clean.length + degraded.length} small photos (at most 512 px) for a single ` +
  "synthetic degradation: it",
  "reproduces that process, not a particular camera. Its noise in flat regions is weaker",
  "than the real process's (see the table and the README's fidelity section).",
  "",
  "## Licence",
  "",
  "The weights are released under the MIT licence of this package. The training photos",
  "keep their own licences (public domain, CC0 1.0, BSD-3-Clause; see",
  "`examples/data/ATTRIBUTION.md`); no photo is contained in the weights file.",
  "",
].join("\n");
await Deno.writeTextFile(`${outDir}/MODEL_CARD.md`, card);
await Deno.writeTextFile(
  `${outDir}/card.json`,
  JSON.stringify(
    {
      name: `builtin:${FAMILY}`,
      family: FAMILY,
      operator: describe(op),
      iterations: result.step,
      seed,
      trainSeconds: Math.round(trainSeconds),
      bytes: modelBytes,
      winsOverWhiteNoise: wins,
      statistics: distanceLabels.length,
      floor: floor.distances,
      white: whiteRes.distances,
      deflow: deflowRes.distances,
    },
    null,
    1,
  ) + "\n",
);
console.log(
  `train_builtin: wrote ${modelPath} (${(modelBytes / 1e6).toFixed(2)} MB) and MODEL_CARD.md; ` +
    `DeFlow beats white noise on ${wins} of ${distanceLabels.length} statistics; ` +
    `training ${trainSeconds.toFixed(0)} s`,
);
