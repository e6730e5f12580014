/**
 * `@x/deflow/train`: training DeFlow — Adam with the multi-step schedule, balanced
 * unpaired batches, per-domain normalisation, one training step and the whole resumable
 * loop, checkpoints (safetensors with CRCs) and loading a trained model from one,
 * parameter-tree flattening, and seeded random numbers.
 *
 * @example Train on two folders of photos (type-checked, not run)
 * ```ts
 * import { listImages, readImageOrThrow } from "@x/deflow/image";
 * import { chooseSetting, train } from "@x/deflow/train";
 *
 * const load = async (dir: string) =>
 *   await Promise.all((await listImages(dir)).map((path) => readImageOrThrow(path)));
 * const degraded = await load("photos/noisy");
 * // The noise setting, or the paper's flow if the degraded photos carry JPEG's block grid.
 * const { setting, reason } = chooseSetting(degraded, 64);
 * console.log(reason);
 * const result = await train({
 *   clean: await load("photos/clean"),
 *   degraded,
 *   config: setting.config,
 *   cleanFromDegraded: setting.cleanFromDegraded,
 *   iterations: 2000,
 *   outDir: "run", // checkpoint.safetensors, loss.json
 * });
 * console.log(`${result.step} steps`);
 * ```
 *
 * @module
 */
export * from "./adam.ts";
export * from "./schedule.ts";
export * from "./step.ts";
export * from "./sampler.ts";
export * from "./normalize.ts";
export * from "./loop.ts";
export * from "./setting.ts";
export * from "../io/checkpoint.ts";
export {
  loadModelCheckpoint,
  loadModelCheckpointTask,
  type ModelCheckpoint,
  type ModelHeader,
  modelHeaderTask,
  type ModelLoadOptions,
} from "../io/model.ts";
export * as safetensors from "../io/safetensors.ts";
export type { SafetensorsDtype } from "../io/safetensors.ts";
export { flattenParams, isTrainablePath, keepParams, unflattenLike } from "../core/params.ts";
export * from "../core/random.ts";
