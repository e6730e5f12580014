/**
 * How far a trained model's latent shift is from its likelihood optimum given the flow, and
 * what its samples look like there:
 *
 * ```sh
 * deno run -A examples/fidelity/fit_shift.ts CHECKPOINT FAMILY OUT_CHECKPOINT \
 *   [--fit mu,m,k,scale] [--steps N] [--lr X] [--hold SCENE] [--same-scenes]
 * ```
 *
 * The flow is frozen. The degraded domain's training scenes (the fidelity suite's split,
 * degraded by FAMILY's operator, 64×64 non-overlapping crops, conditioned and dequantised as
 * in training) are encoded once; then the chosen shift parameters are fitted by full-batch
 * Adam on the model's own degraded log-likelihood of those latents: `mu` (μ), `m` (M), `k`
 * (the contractions' K) and `scale` (the heads of `a(h)`); default `mu,m,k`. This is the
 * block-coordinate maximum of the training objective in the shift's parameters: what
 * training would reach for them if they could move as far as the data ask (in 600 steps
 * Adam moves each coordinate by at most about 0.3).
 *
 * `--same-scenes` fits on the clean domain's scenes degraded instead, for a model trained
 * with the suite's diagnostic `--same-scenes` (its degraded domain).
 *
 * `--hold SCENE` leaves one degraded scene (e.g. `motorcycle`) out of the fit and prints its
 * likelihood every 25 steps: does what the shift learns from the other scenes carry over to
 * a scene it has not seen (a degradation does, the scenes' content does not)?
 *
 * The fitted model is written to OUT_CHECKPOINT (the flow and the config unchanged, no
 * optimiser state); put it at `DIR/FAMILY/checkpoint.safetensors` with the original run's
 * `loss.json` and `result.json` next to it and evaluate it with
 * `deno task fidelity --family FAMILY --seed S --from DIR`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { either as E } from "fp-ts";
import { tf } from "../../src/tf.ts";
import { initBackend } from "../../src/core/backend.ts";
import { flattenParams, unflattenLike } from "../../src/core/params.ts";
import { imagesToTensor, type RgbImage } from "../../src/image/io.ts";
import { loadModel } from "../../src/cli/model.ts";
import { loadCheckpoint, saveCheckpoint } from "../../src/io/checkpoint.ts";
import { conditionInput } from "../../src/model/conditioning.ts";
import {
  type DeflowParams,
  encodeWithFeatures,
  latentShiftScales,
  levelFeatures,
} from "../../src/model/network.ts";
import { packShiftLatents } from "../../src/model/shiftLatents.ts";
import {
  degradedShiftLogProb,
  dequantize,
  disposeShiftStats,
  prepareShifts,
} from "../../src/model/objective.ts";
import { adamInit, adamStep } from "../../src/train/adam.ts";
import { degradeImages } from "../../src/degrade/types.ts";
import { cropsOf, defaultSplit, loadCollections, sceneOf } from "./scenes.ts";
import { familyByName } from "./families.ts";

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    fit: { type: "string", default: "mu,m,k" },
    steps: { type: "string", default: "150" },
    lr: { type: "string", default: "0.01" },
    hold: { type: "string" },
    "same-scenes": { type: "boolean", default: false },
  },
});
const [inPath, familyName, outPath] = positionals;
const steps = Number(args.steps), lr = Number(args.lr);
const fitted = new Set(args.fit.split(","));
const known = ["mu", "m", "k", "scale"];
if (
  !inPath || !familyName || !outPath || !(Number.isInteger(steps) && steps >= 0) ||
  !(lr > 0) || [...fitted].some((f) => !known.includes(f))
) {
  console.error(
    "usage: fit_shift.ts CHECKPOINT FAMILY OUT_CHECKPOINT [--fit mu,m,k,scale] [--steps N] " +
      "[--lr X] [--hold SCENE] [--same-scenes]",
  );
  Deno.exit(2);
}

await initBackend();
const model = await loadModel(inPath);
const { config } = model;
const P = model.params;
if (!config.contractShift || !config.adaptiveShift) {
  console.error("fit_shift: the model needs contractShift and adaptiveShift (the paper setting)");
  Deno.exit(2);
}

/** Side of the training crops (the suite's and `deflow train`'s default crop). */
const CROP = 64;

// The degraded domain's training scenes, degraded as the suite degrades them.
const collections = await loadCollections(defaultSplit);
const sources = args["same-scenes"] ? collections.clean : collections.degradedSource;
const sourceNames = args["same-scenes"]
  ? collections.names.clean
  : collections.names.degradedSource;
const degraded = await degradeImages(familyByName(familyName).make(), sources, 11);
const crops = degraded.flatMap((img, i) =>
  cropsOf(img, CROP, 400).map((crop) => ({ crop, scene: sceneOf(sourceNames[i]) }))
);
const scenes = [...new Set(crops.map((c) => c.scene))];
if (args.hold !== undefined && !scenes.includes(args.hold)) {
  console.error(`fit_shift: --hold ${args.hold} is not a degraded scene (${scenes.join(", ")})`);
  Deno.exit(2);
}

/** Latents and level features of a set of crops under the frozen flow. */
interface Encoded {
  readonly z: tf.Tensor4D[];
  readonly features: tf.Tensor4D[];
  readonly count: number;
}
const encodeCrops = (images: readonly RgbImage[]): Encoded => {
  const z: tf.Tensor4D[][] = [], features: tf.Tensor4D[][] = [];
  for (let s = 0; s < images.length; s += 32) {
    const [lat, feats] = tf.tidy(() => {
      const x = imagesToTensor(images.slice(s, s + 32));
      const cond = conditionInput(x, {
        factor: config.conditionFactor,
        noiseStd: config.conditionNoise,
        seed: 3 + s,
      });
      const fs = levelFeatures(P, config, cond, x.shape[1], x.shape[2]);
      const xd = dequantize(x, config.bins, 9 + s);
      return [[...packShiftLatents(config, encodeWithFeatures(P, config, xd, fs).latents)], fs];
    });
    lat.forEach((t, l) => (z[l] ??= []).push(t));
    feats.forEach((t, l) => (features[l] ??= []).push(t));
  }
  const cat = (parts: tf.Tensor4D[][]) => parts.map((p) => tf.concat(p) as tf.Tensor4D);
  const out = { z: cat(z), features: cat(features), count: images.length };
  tf.dispose([...z.flat(), ...features.flat()]);
  return out;
};
const fitSet = encodeCrops(crops.filter((c) => c.scene !== args.hold).map((c) => c.crop));
const heldSet = args.hold === undefined
  ? undefined
  : encodeCrops(crops.filter((c) => c.scene === args.hold).map((c) => c.crop));

type Shift = Pick<DeflowParams, "shifts" | "shiftContractions" | "shiftScales">;
const isFitted = (path: string): boolean =>
  (fitted.has("mu") && /^shifts\.\d+\.mu$/.test(path)) ||
  (fitted.has("m") && /^shifts\.\d+\.m$/.test(path)) ||
  (fitted.has("k") && path.startsWith("shiftContractions.")) ||
  (fitted.has("scale") && path.startsWith("shiftScales."));

/** Degraded NLL of a set's latents, bits per image dimension (the flow's log-det left out). */
const nll = (
  set: Encoded,
  stats: Awaited<ReturnType<typeof prepareShifts>>,
  template: Shift,
) =>
(...leaves: tf.Tensor[]): tf.Scalar => {
  const params = { ...P, ...unflattenLike(template, leaves) };
  const scales2 = latentShiftScales(params, config, set.features, true);
  const logp = tf.sum(degradedShiftLogProb(params, config, stats, set.z, scales2));
  const dims = set.count * CROP * CROP * 3;
  return tf.div(tf.neg(logp), dims * Math.LN2) as tf.Scalar;
};

let shift: Shift = {
  shifts: P.shifts.map((s) => ({ mu: s.mu.clone(), m: s.m.clone() })),
  shiftContractions: P.shiftContractions.map((c) => ({ k: c.k.clone() })),
  shiftScales: P.shiftScales.map((s) => ({ w: s.w.clone(), b: s.b.clone() })),
};
const paths = flattenParams(shift).map((n) => n.path);
console.log(
  `fitting ${paths.filter(isFitted).length} of ${paths.length} shift leaves (${args.fit}) on ` +
    `${fitSet.count} crops of ${scenes.filter((s) => s !== args.hold).join(", ")}` +
    (args.hold === undefined ? "" : `; held out: ${args.hold} (${heldSet!.count} crops)`),
);
let adam = adamInit(shift);
for (let step = 0; step <= steps; step++) {
  const stats = await prepareShifts({ ...P, ...shift });
  const leaves = flattenParams(shift).map((n) => n.tensor);
  const { value, grads } = tf.tidy(() => tf.valueAndGrads(nll(fitSet, stats, shift))(leaves));
  const report = step % 25 === 0 || step === steps;
  if (report) {
    const held = heldSet ? tf.tidy(() => nll(heldSet, stats, shift)(...leaves)) : undefined;
    const v = (await value.data())[0];
    const h = held ? `  held-out scene ${(await held.data())[0].toFixed(5)}` : "";
    console.log(`step ${step}: fitted scenes ${v.toFixed(5)} bits/dim${h}`);
    held?.dispose();
  }
  disposeShiftStats(stats);
  if (step < steps) {
    const masked = grads.map((g, i) => isFitted(paths[i]) ? g : tf.zerosLike(g));
    const next = adamStep(shift, masked, adam, { lr });
    tf.dispose([...leaves, ...adam.m, ...adam.v, ...masked]);
    shift = next.params;
    adam = next.state;
  }
  tf.dispose([value, ...grads]);
}
tf.dispose([...adam.m, ...adam.v]);

const final = await prepareShifts({ ...P, ...shift });
for (const [l, s] of final.entries()) {
  const g = s.contraction!.gains;
  const m = (await shift.shifts[l].m.data()) as Float32Array;
  const mRms = Math.sqrt(m.reduce((a, v) => a + v * v, 0) / g.length);
  console.log(
    `latent ${l}: contraction gains min ${g[0].toFixed(2)} median ${
      g[Math.floor(g.length / 2)].toFixed(2)
    }, ${g.filter((v) => v < 0.8).length} of ${g.length} below 0.8; rms(M) ${mRms.toFixed(3)}`,
  );
}
disposeShiftStats(final);

const loaded = await loadCheckpoint(inPath, { params: P });
if (E.isLeft(loaded)) throw new Error(`fit_shift: ${String(loaded.left)}`);
const { shifts: _s, shiftContractions: _c, shiftScales: _a, ...flow } = loaded.right.params;
tf.dispose([_s, _c, _a].flatMap((t) => flattenParams(t).map((n) => n.tensor)));
await saveCheckpoint(outPath, {
  params: { ...flow, ...shift },
  config: loaded.right.config,
  training: loaded.right.training,
});
console.log(`wrote ${outPath}`);
