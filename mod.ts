/**
 * deflow — DeFlow (Wolf et al., CVPR 2021) in TypeScript on TensorFlow.js.
 *
 * Learn stochastic image degradations (noise, JPEG artifacts, sensor post-processing)
 * from unpaired clean and degraded photo collections with a conditional normalizing
 * flow, then sample realistic degraded versions of clean images.
 *
 * The root holds the algebra: the {@linkcode Bijector} contract, its combinators
 * ({@linkcode chain}, {@linkcode invert}, {@linkcode withCondition}, …), the flow layers,
 * parameter trees and the backend. The rest is in subpath modules:
 *
 * | import                 | what                                                        |
 * | ---------------------- | ----------------------------------------------------------- |
 * | `@x/deflow/model`      | the DeFlow model: config, encode/decode, likelihoods, sampling |
 * | `@x/deflow/train`      | Adam, schedule, training step and loop, checkpoints, batches |
 * | `@x/deflow/image`      | image files ↔ tensors, bicubic resize, grids, plots          |
 * | `@x/deflow/degrade`    | synthetic degradations (noise, blur, JPEG, tone)             |
 * | `@x/deflow/eval`       | fidelity statistics, PSNR/SSIM, set comparison reports       |
 * | `@x/deflow/linalg`     | small dense float64 linear algebra                           |
 * | `@x/deflow/testing`    | the bijector law kit: property-test a layer of your own      |
 *
 * TensorFlow.js itself is not re-exported: import it from `npm:@tensorflow/tfjs-core`
 * (deflow registers the gradients it needs when it loads).
 *
 * @example Compose a flow and run it
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
 * import { actNorm, chain, initBackend, invConv1x1, squeeze } from "@x/deflow";
 *
 * await initBackend();
 * const flow = chain(
 *   squeeze.bijector(),
 *   actNorm.bijector(actNorm.init({ channels: 12 })),
 *   invConv1x1.bijector(invConv1x1.init({ channels: 12, seed: 7 })),
 * );
 * const x = tf.randomUniform([1, 8, 8, 3]) as tf.Tensor4D;
 * const { y, logDet } = flow.forward(x);
 * tf.dispose([x, y, logDet]);
 * ```
 *
 * @module
 */

// Backend, the bijector contract and combinators, errors.
export * from "./src/core/backend.ts";
export * from "./src/core/bijector.ts";
export * from "./src/core/layer.ts";
export * from "./src/core/errors.ts";

// Parameter trees (the training helpers flattenParams, unflattenLike, keepParams and
// isTrainablePath are in `./train`).
export {
  cloneParams,
  CONST_KEY,
  countParams,
  disposeParams,
  leaves,
  mapParams,
  type NamedTensor,
  type ParamTree,
} from "./src/core/params.ts";

// Layers.
export * from "./src/layers/actNorm.ts";
export * from "./src/layers/invConv1x1.ts";
export {
  affineCoupling,
  type AffineCouplingLayer,
  type AffineCouplingOptions,
  type AffineCouplingParams,
  type AffineScaleOptions,
  type ConstantScaleOptions,
  type CouplingConditioner,
  type CouplingFromConditionerOptions,
  type CouplingOptions,
} from "./src/layers/affineCoupling.ts";
export * from "./src/layers/linearCoupling.ts";
export * from "./src/layers/affineInjector.ts";
export * from "./src/layers/squeeze.ts";
export * from "./src/layers/split.ts";
export * from "./src/layers/flowStep.ts";
export * from "./src/layers/latentShift.ts";
export * from "./src/layers/latentContraction.ts";
export type { ShiftEigen } from "./src/layers/scaledShift.ts";
export * from "./src/nn/convNet.ts";
export { conv2dSame } from "./src/nn/conv.ts";
