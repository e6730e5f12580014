/**
 * deflow — DeFlow (Wolf et al., CVPR 2021) in TypeScript on TensorFlow.js.
 *
 * Learn stochastic image degradations from unpaired clean and degraded photos with a
 * conditional normalizing flow, then sample realistic degraded versions of clean images.
 *
 * @module
 */
export { tf } from "./src/tf.ts";
export * from "./src/core/backend.ts";
export * from "./src/core/bijector.ts";
export * from "./src/core/errors.ts";
export * from "./src/core/params.ts";
export * from "./src/core/random.ts";
export * from "./src/nn/conv.ts";
export * as linalg from "./src/linalg/dense.ts";
