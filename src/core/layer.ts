/**
 * The layer module type: the one shape every flow layer of deflow has.
 *
 * A layer is a record of pure functions over an immutable parameter tree:
 *
 * - `init(options & { seed })` makes fresh parameters. Every layer takes one options
 *   record with the seed in it (layers without randomness accept and ignore it), so two
 *   numbers cannot be swapped by accident.
 * - `bijector(params, ...args)` makes the {@linkcode Bijector} (forward = image→latent).
 *   Sizes (channels, condition channels) are read from the parameters' shapes, never
 *   passed again. The further arguments are what the parameters cannot say (an `eps`,
 *   precomputed statistics); a conditional layer takes its condition `h` as the second
 *   argument of `forward` / `inverse`, like every bijector.
 *
 * A layer declares its type as an interface that extends {@linkcode Layer}, so a layer
 * whose `init` or `bijector` has another shape fails to type-check.
 *
 * @example A layer of your own, checked by the type system
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
 * import { bijector, type Layer } from "@x/deflow";
 *
 * type ScaleParams = { readonly logScale: tf.Scalar };
 * const scale: Layer<ScaleParams, { readonly logScale: number }> = {
 *   init: ({ logScale }) => ({ logScale: tf.scalar(logScale) }),
 *   bijector: (p) =>
 *     bijector({
 *       name: "scale",
 *       forward: (x) =>
 *         tf.tidy(() => {
 *           const [n, h, w, c] = x.shape;
 *           return {
 *             y: tf.mul(x, tf.exp(p.logScale)) as tf.Tensor4D,
 *             logDet: tf.mul(tf.ones([n]), tf.mul(p.logScale, h * w * c)) as tf.Tensor1D,
 *           };
 *         }),
 *       inverse: (y) =>
 *         tf.tidy(() => {
 *           const [n, h, w, c] = y.shape;
 *           return {
 *             y: tf.mul(y, tf.exp(tf.neg(p.logScale))) as tf.Tensor4D,
 *             logDet: tf.mul(tf.ones([n]), tf.mul(p.logScale, -h * w * c)) as tf.Tensor1D,
 *           };
 *         }),
 *     }),
 * };
 * const params = scale.init({ logScale: 0.5, seed: 1 });
 * const b = scale.bijector(params);
 * ```
 *
 * @module
 */
import type { Bijector } from "./bijector.ts";

/** Options of the layers whose only size is the number of channels. */
export interface ChannelOptions {
  /** Channels of the flow tensor. */
  readonly channels: number;
}

/**
 * A flow layer: `init` from options and a seed, `bijector` from the parameters (sizes
 * inferred from their shapes) and `Args`, the further arguments the parameters cannot
 * supply (e.g. `[options?: { eps?: number }]`). `Options` holds the sizes and settings of
 * a fresh initialisation (e.g. `{ channels: number }`).
 */
export interface Layer<
  Params,
  Options = Record<never, never>,
  Args extends readonly unknown[] = [],
> {
  /**
   * Fresh parameters for `options` (sizes, settings) and `options.seed`, the integer seed
   * of the random initialisation (ignored by deterministic layers).
   */
  readonly init: (options: Options & { readonly seed: number }) => Params;
  /** The bijector (forward = image→latent) of `params`; sizes come from their shapes. */
  readonly bijector: (params: Params, ...args: Args) => Bijector;
}
