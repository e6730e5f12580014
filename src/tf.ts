/**
 * The one place that loads TensorFlow.js.
 *
 * `@tensorflow/tfjs-core` alone registers no gradient functions, and its per-op
 * gradient modules cannot be imported one by one under Deno (they use extensionless
 * ESM specifiers). The `@tensorflow/tfjs` union package registers all of them when it
 * loads, so it is imported here once for that side effect. Every module of deflow
 * imports `tf` from this file, never from the package directly, so gradients are
 * always available.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs";

export { tf };
