/**
 * What a model option costs per training step: `--option contractShift` (default)
 * times the default config against the same without the contraction, `--option jointShift`
 * the joint shift against the default, `--option linearCoupling` the conditionally linear
 * couplings against the default (`stationaryScale` only with `linearCoupling`, in a list);
 * a comma-separated list (`linearCoupling,jointShift`) turns
 * the named options on together against all of them off. `--config FILE` instead times the
 * config in `FILE` (a `deflow train --config` file) against the paper setting's flow (what
 * `deflow train` uses for JPEG'd photos). One training step each (batch 8, 64×64 crops, as the
 * CLI trains), interleaved, `--rounds N` pairs (default 10) after two warm-up pairs. Prints
 * the median of the per-pair time ratios and their range; absolute times on shared machines
 * are noise.
 *
 * `deno run -A bench/shift_cost.ts [--option contractShift|jointShift|linearCoupling|stationaryScale[,…] | --config FILE] [--rounds N]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../src/tf.ts";
import { initBackend } from "../src/core/backend.ts";
import { configOrThrow, type ModelConfig } from "../src/model/config.ts";
import { readConfigFile } from "../src/cli/commands.ts";
import { initActNorms, initParams } from "../src/model/network.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { adamInit } from "../src/train/adam.ts";
import { trainStep } from "../src/train/step.ts";
import { settings } from "../src/train/setting.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string" },
    option: { type: "string", default: "contractShift" },
    config: { type: "string" },
  },
});
const rounds = Number(values.rounds ?? 10);
const option = values.option;
/** The boolean config fields an option list may name (comma-separated: toggled together). */
const known = ["contractShift", "jointShift", "linearCoupling", "stationaryScale"];
const names = option.split(",");
if (!(Number.isInteger(rounds) && rounds >= 1) || !names.every((n) => known.includes(n))) {
  console.error(
    "shift_cost: --rounds must be a positive integer, --option one or more (comma-separated) of " +
      known.join(", "),
  );
  Deno.exit(2);
}
if (values.config !== undefined && Deno.args.some((a) => a.startsWith("--option"))) {
  console.error("shift_cost: --option and --config exclude each other");
  Deno.exit(2);
}
/** The `--config` file's model (exit 2 with the CLI's one-line reason when it is not one). */
const configFromFile = async (path: string): Promise<ModelConfig> => {
  try {
    return await readConfigFile(path);
  } catch (e) {
    console.error(`shift_cost: ${(e as Error).message}`);
    Deno.exit(2);
  }
};
/** The two configs compared: [without the options, with them], or [paper setting, FILE]. */
const pair: [ModelConfig, ModelConfig] = values.config === undefined
  ? [
    configOrThrow(Object.fromEntries(names.map((n) => [n, false]))),
    configOrThrow(Object.fromEntries(names.map((n) => [n, true]))),
  ]
  : [settings.paper.config, await configFromFile(values.config)];
const label = values.config === undefined
  ? `${option} on / off`
  : `${values.config} / paper setting`;
await initBackend();

/** A timed training step of a config. */
const stepper = (config: ModelConfig) => {
  const x = tf.randomUniform([8, 64, 64, 3], 0, 1, "float32", 21) as tf.Tensor4D;
  const degradedMask = tf.tensor1d([0, 1, 0, 1, 0, 1, 0, 1]);
  const c0 = conditionInput(x, { factor: config.conditionFactor, seed: 1 });
  const params = initActNorms(initParams(config, 3), config, x, c0, true);
  c0.dispose();
  let state = { params, adam: adamInit(params) };
  let it = 0;
  return async (): Promise<number> => {
    const t0 = performance.now();
    const r = await trainStep(state, config, { x, degradedMask }, { lr: 1e-4, seed: 100 + it++ });
    state = r.state;
    await state.params.shifts[0].mu.data(); // include the update
    return performance.now() - t0;
  };
};

const off = stepper(pair[0]), on = stepper(pair[1]);
for (let i = 0; i < 2; i++) {
  await off();
  await on();
}
const ratios: number[] = [];
const offMs: number[] = [], onMs: number[] = [];
for (let r = 0; r < rounds; r++) {
  offMs.push(await off());
  onMs.push(await on());
  ratios.push(onMs[r] / offMs[r]);
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
const sorted = [...ratios].sort((a, b) => a - b);
console.log(
  `training step, ${label}: median ratio ${median(ratios).toFixed(3)} ` +
    `(range ${sorted[0].toFixed(3)}–${sorted[sorted.length - 1].toFixed(3)}, ${rounds} ` +
    `interleaved pairs); medians ${median(onMs).toFixed(0)} / ${median(offMs).toFixed(0)} ms`,
);
