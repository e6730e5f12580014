/**
 * Synthetic degradation operators (seeded, on NHWC tensors in [0, 1]).
 *
 * @module
 */
export * from "./types.ts";
export * from "./noise.ts";
export * from "./blur.ts";
export * from "./jpeg.ts";
export * from "./tone.ts";
