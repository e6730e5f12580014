/**
 * The one place that loads TensorFlow.js.
 *
 * `tf` is `@tensorflow/tfjs-core` with gradients registered. tfjs-core's Node entry
 * registers no gradient functions, and its per-op gradient modules cannot be imported
 * under Deno (they use extensionless ESM specifiers); the `@tensorflow/tfjs` union
 * package registers them but costs ~240 MB of `node_modules`. So `src/gradients.ts`
 * registers the gradients deflow needs (ported from tfjs-core) when this module loads,
 * and `@tensorflow/tfjs-backend-cpu` is loaded as the fallback backend (what tfjs picks
 * in Deno when no other backend was initialised). Every module of deflow imports `tf`
 * from this file, never from the package directly, so gradients are always available.
 *
 * tfjs-core alone does not install the chained tensor methods (`x.add(y)`): deflow uses
 * the functional ops (`tf.add(x, y)`) only.
 *
 * `tf` is the `@tensorflow/tfjs-core` namespace; the type aliases merged into it below
 * are the tensor types deflow's public API uses (hidden from the docs: they are
 * tfjs's own).
 *
 * @module
 */
import * as tfc from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { registerGradients } from "./gradients.ts";

registerGradients();

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
