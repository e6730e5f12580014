/**
 * `@x/deflow/model`: the DeFlow model — configuration, the multi-scale conditional flow
 * (`encode` / `decode`, the whole model as one bijector), the conditioning encoder, the
 * unpaired and paired likelihoods, the closed-form latent shift, and sampling
 * (`degrade` / `restore`, tiled, with temperature).
 *
 * @example Build a small model and count its parameters
 * ```ts
 * import { countParams, disposeParams } from "@x/deflow";
 * import { configOrThrow, initParams } from "@x/deflow/model";
 *
 * const config = configOrThrow({ levels: 2, steps: 1, hidden: 8, injectorHidden: 8 });
 * const params = initParams(config, 1);
 * console.log(`${countParams(params)} parameters`);
 * disposeParams(params);
 * ```
 *
 * @module
 */
export * from "./config.ts";
export * from "./layout.ts";
export * from "./network.ts";
export * from "./objective.ts";
export * from "./sample.ts";
export * from "./conditioning.ts";
export * from "./encoder.ts";
export * from "./closedForm.ts";
export * from "./flatBijector.ts";
export type { ShiftScaleParams } from "./shiftScale.ts";
