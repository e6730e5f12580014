/**
 * `@x/deflow/image`: image files ↔ tensors (PNG / JPEG decoding with size limits,
 * atomic PNG writing), MATLAB-style antialiased bicubic resizing, image grids and loss
 * plots.
 *
 * @example Downscale an image by 4 (bicubic, antialiased)
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
 * import { initBackend } from "@x/deflow";
 * import { bicubicDownscale } from "@x/deflow/image";
 *
 * await initBackend();
 * const x = tf.randomUniform([1, 32, 32, 3]) as tf.Tensor4D;
 * const small = bicubicDownscale(x, 4); // [1, 8, 8, 3]
 * tf.dispose([x, small]);
 * ```
 *
 * @module
 */
export * from "./io.ts";
export * from "./grid.ts";
export * from "./plot.ts";
export {
  bicubicDownscale,
  bicubicResize,
  clearResizeCache,
  resizeCacheSize,
  resizeMatrix,
} from "./resize.ts";
