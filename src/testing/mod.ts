/**
 * `@x/deflow/testing`: law-based property tests for bijectors, yours included.
 *
 * A {@linkcode BijectorCase} says how to build a bijector and its inputs from plain data
 * that fast-check draws (numbers, seeds, shapes). {@linkcode checkBijectorLaws} runs a
 * case for a few draws from a fixed seed and checks the laws every bijector must obey:
 * finite outputs with the declared shapes, no leaked tensors, round trips both ways,
 * inverse log-det = −forward log-det, log-dets equal to `log|det J|` of the autodiff
 * Jacobian (float64 `slogdet`), samples independent of the rest of the batch, the
 * `chain`/`invert` algebra, and a non-zero log-det somewhere unless the case is declared
 * volume preserving. It returns a report and throws a {@linkcode LawError} naming the
 * case, the law, the error and the tolerance when a law fails.
 *
 * For a layer, {@linkcode layerCase} makes the case from its `init` and `bijector` (seeds,
 * shapes, perturbation away from the identity, disposal); a registry of layers is just an
 * array of cases: run it with {@linkcode checkAllBijectorLaws}, or one `Deno.test` per
 * case. deflow's own registry is {@linkcode layerCases} (every layer) and
 * {@linkcode combinatorCases}. Each law is also its own function ({@linkcode lawRoundTrip}, … in
 * {@linkcode LAWS}) over a {@linkcode LawRun}. When tfjs fails because the active backend
 * lacks a kernel, the failure says so and names the backends that have it.
 *
 * Default settings: seed 42, 5 runs, and for float32
 * - round trip: `max|err| ≤ 1e-4 + 1e-4 · max|input|`;
 * - log-dets (Jacobian, inverse vs forward, zero log-det of identities):
 *   `|err| ≤ 1e-3 + 1e-3 · |log-det|`;
 * - consistency (sample alone vs in a batch, chain associativity):
 *   `max|err| ≤ 1e-5 + 1e-5 · max|reference|`;
 * - some run must have `|log-det| > 1e-2` unless `volumePreserving: true`.
 *
 * Keep inputs tiny: the Jacobian law needs a sample of at most 64 entries (`H·W·C`).
 * Tensors are read with `await t.data()`, so the kit runs on WebGPU.
 *
 * @example Checking a bijector of your own
 * ```ts
 * import fc from "fast-check";
 * import * as tf from "@tensorflow/tfjs-core"; // npm:@tensorflow/tfjs-core@4.22.0
 * import { type BijectorCase, checkBijectorLaws, elementwiseAffine, printLawReport } from "@x/deflow/testing";
 *
 * const affine: BijectorCase<{ seed: number; channels: number }> = {
 *   name: "elementwiseAffine",
 *   params: fc.record({
 *     seed: fc.integer({ min: 0, max: 1_000_000 }),
 *     channels: fc.integer({ min: 1, max: 4 }),
 *   }),
 *   // g and h of the chain associativity law: same shapes, other seeds
 *   related: (p) => fc.integer({ min: 0, max: 1_000_000 }).map((seed) => ({ ...p, seed })),
 *   build: ({ seed, channels }) => {
 *     const logScale = tf.randomNormal([channels], 0, 0.5, "float32", seed) as tf.Tensor1D;
 *     const shift = tf.randomNormal([channels], 0, 1, "float32", seed + 1) as tf.Tensor1D;
 *     const x = tf.randomNormal([2, 2, 2, channels], 0, 1, "float32", seed + 2) as tf.Tensor4D;
 *     return {
 *       bijector: elementwiseAffine({ logScale, shift }),
 *       x,
 *       dispose: () => tf.dispose([logScale, shift, x]),
 *     };
 *   },
 * };
 *
 * Deno.test("my bijector obeys the laws", async () => {
 *   const report = await checkBijectorLaws(affine, { numRuns: 5 }); // throws on failure
 *   printLawReport(report);
 * });
 * ```
 *
 * Conditional bijectors put the condition in `cond` (the kit slices and tiles it with
 * `x`); bijectors that only accept one batch size (e.g. `withCondition(b, h)`) set
 * `fixedBatch: true`. `build` may be async. For the `chain` associativity law the kit
 * builds two more draws; give `related: (p) => ...` (same shapes, other seeds) so that
 * they fit together, else runs whose shapes differ skip it. Tolerances, number of runs and skipped laws
 * can be set per case or per call.
 *
 * @module
 */
export {
  autodiffLogDet,
  type AutodiffLogDetOptions,
  type BijectorCase,
  type Built,
  DEFAULT_MAX_JACOBIAN_SIZE,
  DEFAULT_NUM_RUNS,
  DEFAULT_SEED,
  DEFAULT_TOLERANCES,
  explainError,
  type Law,
  LAW_NAMES,
  lawAlgebra,
  lawBatchIndependence,
  type LawCheck,
  LawError,
  lawFiniteAndShapes,
  lawInverseLogDet,
  lawJacobianLogDet,
  type LawName,
  lawNoLeak,
  type LawOptions,
  type LawReport,
  type LawResult,
  lawRoundTrip,
  type LawRun,
  LAWS,
  type LawStatus,
  LawViolation,
  lawVolume,
  type RoundTrips,
  type RunValues,
  type Tolerances,
} from "./laws.ts";
export { checkAllBijectorLaws, checkBijectorLaws } from "./runner.ts";
export { formatLawReport, printLawReport } from "./report.ts";
export {
  type IntRange,
  type LayerBuild,
  layerCase,
  type LayerCaseSpec,
  type LayerDraw,
} from "./layerCase.ts";
export { combinatorCases, layerCases, registryCases } from "./registry.ts";
export {
  elementwiseAffine,
  elementwiseAffineCase,
  type ElementwiseAffineCaseParams,
  type ElementwiseAffineParams,
} from "./examples.ts";
