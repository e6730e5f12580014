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
 * `tf` is the `@tensorflow/tfjs-core` namespace; the type aliases merged into it below
 * are the tensor types deflow's public API uses (hidden from the docs: they are
 * tfjs's own).
 *
 * @module
 */
import * as tfc from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs";

/**
 * The `@tensorflow/tfjs-core` namespace, with gradients registered.
 * @ignore
 */
export const tf: typeof tfc = tfc;

/** @ignore */
export declare namespace tf {
  /** @ignore */
  export type Rank = tfc.Rank;
  /** @ignore */
  export type Tensor<R extends tfc.Rank = tfc.Rank> = tfc.Tensor<R>;
  /** @ignore */
  export type Scalar = tfc.Scalar;
  /** @ignore */
  export type Tensor1D = tfc.Tensor1D;
  /** @ignore */
  export type Tensor2D = tfc.Tensor2D;
  /** @ignore */
  export type Tensor3D = tfc.Tensor3D;
  /** @ignore */
  export type Tensor4D = tfc.Tensor4D;
  /** @ignore */
  export type TensorContainer = tfc.TensorContainer;
  /** @ignore */
  export type GradSaveFunc = tfc.GradSaveFunc;
}
