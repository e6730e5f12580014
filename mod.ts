/**
 * deflow — DeFlow (Wolf et al., CVPR 2021) in TypeScript on TensorFlow.js.
 *
 * Learn stochastic image degradations (noise, JPEG artifacts, sensor post-processing)
 * from unpaired clean and degraded photo collections with a conditional normalizing
 * flow, then sample realistic degraded versions of clean images.
 *
 * Every flow layer is a {@linkcode Bijector} record built from an immutable parameter
 * tree; compose them with {@linkcode chain}, {@linkcode invert} and
 * {@linkcode withCondition}, and property-test them with `@x/deflow/testing`.
 *
 * @example Compose a flow and run it
 * ```ts
 * import { actNorm, chain, initBackend, invConv1x1, squeeze, tf } from "@x/deflow";
 * await initBackend();
 * const flow = chain(squeeze.bijector(), actNorm.bijector(actNorm.init(12)),
 *   invConv1x1.bijector(invConv1x1.init(12, 7)));
 * const { y, logDet } = flow.forward(tf.randomUniform([1, 8, 8, 3]) as tf.Tensor4D);
 * ```
 *
 * @module
 */
// tfjs itself is not re-exported: import it from npm:@tensorflow/tfjs-core.

// Core: backend, the bijector contract, parameter trees, seeds, errors.
export * from "./src/core/backend.ts";
export * from "./src/core/bijector.ts";
export * from "./src/core/errors.ts";
export * from "./src/core/params.ts";
export * from "./src/core/random.ts";

// Layers.
export * from "./src/layers/actNorm.ts";
export * from "./src/layers/invConv1x1.ts";
export * from "./src/layers/affineCoupling.ts";
export * from "./src/layers/affineInjector.ts";
export * from "./src/layers/squeeze.ts";
export * from "./src/layers/split.ts";
export * from "./src/layers/flowStep.ts";
export * from "./src/layers/latentShift.ts";
export * from "./src/nn/conv.ts";
export * from "./src/nn/convNet.ts";

// Linear algebra (float64).
export * as linalg from "./src/linalg/mod.ts";

// The DeFlow model.
export * from "./src/model/config.ts";
export * from "./src/model/layout.ts";
export * from "./src/model/network.ts";
export * from "./src/model/objective.ts";
export * from "./src/model/sample.ts";
export * from "./src/model/conditioning.ts";
export * from "./src/model/encoder.ts";
export * from "./src/image/resize.ts";

// Training.
export * from "./src/train/adam.ts";
export * from "./src/train/schedule.ts";
export * from "./src/train/step.ts";
export * from "./src/io/checkpoint.ts";
export * as safetensors from "./src/io/safetensors.ts";

// Images, degradations, evaluation.
export * from "./src/image/io.ts";
export * from "./src/image/grid.ts";
export * from "./src/image/plot.ts";
export * as degradations from "./src/degrade/mod.ts";
export * as evaluation from "./src/eval/mod.ts";
export type { SpdStats } from "./src/linalg/spd.ts";
export type { SafetensorsDtype } from "./src/io/safetensors.ts";
export * from "./src/model/closedForm.ts";
export * from "./src/model/flatBijector.ts";
export * from "./src/train/sampler.ts";
export * from "./src/train/normalize.ts";
export * from "./src/train/loop.ts";
