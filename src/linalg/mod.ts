/**
 * Small dense float64 linear algebra, the tensor bridge, and the differentiable SPD op.
 *
 * @module
 */
export * from "./dense.ts";
export * from "./tensor.ts";
export * from "./spd.ts";
