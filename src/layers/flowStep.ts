/**
 * Composite steps of the DeFlow flow, in the image→latent (forward) direction:
 *
 * - {@linkcode flowStep}: `actNorm → invConv1x1 → affineCoupling → affineInjector`, i.e.
 *   the encoding direction `z₂ ← z₂/s − t` (coupling) then `z ← z/s − t(h)` (injector);
 *   its inverse is the paper's generation direction. Parameters with a
 *   {@linkcode linearCoupling} in place of the affine coupling make the step affine in its
 *   input for a fixed condition.
 * - {@linkcode transitionStep}: `actNorm → invConv1x1` (no coupling, no condition).
 *
 * Both read their sizes from the parameters (the ActNorm's channels, the injector
 * network's condition channels).
 *
 * On WebGPU the inverse (latent→image) direction needs the 1x1 convolution's inverse
 * precomputed: use `await flowStep.withInverse(params)` (see {@linkcode invConv1x1}).
 *
 * @module
 */
import type { tf } from "../tf.ts";
import { type Bijector, chain } from "../core/bijector.ts";
import { ShapeError } from "../core/errors.ts";
import type { ChannelOptions, Layer } from "../core/layer.ts";
import { splitSeed } from "../core/random.ts";
import { actNorm, type ActNormParams } from "./actNorm.ts";
import { invConv1x1, type InvConv1x1Params } from "./invConv1x1.ts";
import {
  affineCoupling,
  type AffineCouplingParams,
  type AffineScaleOptions,
} from "./affineCoupling.ts";
import { affineInjector, type AffineInjectorParams } from "./affineInjector.ts";
import { linearCoupling, type LinearCouplingParams } from "./linearCoupling.ts";

/** Parameters of one conditional {@linkcode flowStep}. */
export type FlowStepParams = {
  /** ActNorm parameters. */
  readonly actNorm: ActNormParams;
  /** LU 1x1 convolution parameters. */
  readonly invConv: InvConv1x1Params;
  /**
   * The coupling: an affine coupling's conditioner, or a {@linkcode linearCoupling}'s
   * parameters (which have a `linear` convolution).
   */
  readonly coupling: AffineCouplingParams | LinearCouplingParams;
  /** Affine injector conditioner. */
  readonly injector: AffineInjectorParams;
};

/** Sizes for {@linkcode FlowStepLayer.init}. */
export interface FlowStepOptions {
  /** Channels of the flow tensor (at least 2). */
  readonly channels: number;
  /** Channels of the condition `h` (at least 1: the injector needs a condition). */
  readonly condChannels: number;
  /** Hidden channels of the coupling network (and of the injector's, by default). */
  readonly hidden: number;
  /** Hidden channels of the injector network (default: `hidden`). */
  readonly injectorHidden?: number;
  /**
   * Use a {@linkcode linearCoupling} (affine in the flow tensor for a fixed condition)
   * instead of the affine coupling. Default false.
   */
  readonly linearCoupling?: boolean;
}

/** Options for {@linkcode FlowStepLayer.bijector} (the sizes come from the parameters). */
export interface FlowStepBijectorOptions extends AffineScaleOptions {
  /**
   * The injector network's output for the condition this bijector will be called with,
   * computed once by the caller (`convNet.apply(p.injector.net, h)`): the injector depends
   * only on the condition, so encoding and decoding one tile can share it. Only valid
   * with that same condition.
   */
  readonly injectorOutput?: tf.Tensor4D;
  /**
   * A {@linkcode linearCoupling}'s condition-network output for that same condition
   * (`convNet.apply(p.coupling.net, h)`), shared in the same way; refused for an affine
   * coupling, whose network also sees the flow tensor.
   */
  readonly couplingOutput?: tf.Tensor4D;
  /** Additive coupling (default false): the coupling's `additive` option. */
  readonly additiveCoupling?: boolean;
  /**
   * The injector's and a linear coupling's scales are learned constants per channel
   * (default false; their `constantScale` option): with a linear coupling the step's
   * Jacobian is then the same at every position and for every condition.
   */
  readonly constantScale?: boolean;
}

/** The conditional flow step. */
export interface FlowStepLayer
  extends Layer<FlowStepParams, FlowStepOptions, [options?: FlowStepBijectorOptions]> {
  /** Fresh parameters (ActNorm identity, random rotation, zero-output conditioners). */
  readonly init: (options: FlowStepOptions & { readonly seed: number }) => FlowStepParams;
  /** The step as one bijector (forward = image→latent); needs the condition. */
  readonly bijector: (p: FlowStepParams, options?: FlowStepBijectorOptions) => Bijector;
  /**
   * New params with the 1x1 convolution's inverse precomputed (see
   * {@linkcode InvConv1x1Layer.withInverse}); only `invConv.const.inverse` is a new tensor.
   */
  readonly withInverse: (p: FlowStepParams) => Promise<FlowStepParams>;
}

/** Parameters of one {@linkcode transitionStep}. */
export type TransitionStepParams = {
  /** ActNorm parameters. */
  readonly actNorm: ActNormParams;
  /** LU 1x1 convolution parameters. */
  readonly invConv: InvConv1x1Params;
};

/** The unconditional transition step (ActNorm → 1x1 conv). */
export interface TransitionStepLayer extends Layer<TransitionStepParams, ChannelOptions> {
  /** Fresh parameters (ActNorm identity, random rotation). */
  readonly init: (options: ChannelOptions & { readonly seed: number }) => TransitionStepParams;
  /** The step as one bijector (forward = image→latent); the condition is ignored. */
  readonly bijector: (p: TransitionStepParams) => Bijector;
  /** New params with the 1x1 convolution's inverse precomputed. */
  readonly withInverse: (p: TransitionStepParams) => Promise<TransitionStepParams>;
}

/** The conditional flow step, see the module documentation. */
export const flowStep: FlowStepLayer = {
  init: (
    { channels, condChannels, hidden, injectorHidden = hidden, linearCoupling: linear, seed },
  ) => {
    if (!Number.isInteger(condChannels) || condChannels < 1) {
      throw new ShapeError(
        `flowStep: condChannels must be a positive integer (the injector needs a condition), ` +
          `got ${condChannels}`,
      );
    }
    const [s0, s1, s2] = splitSeed(seed, 3);
    return {
      actNorm: actNorm.init({ channels }),
      invConv: invConv1x1.init({ channels, seed: s0 }),
      coupling: linear
        ? linearCoupling.init({ channels, condChannels, hidden, seed: s1 })
        : affineCoupling.init({ channels, condChannels, hidden, seed: s1 }),
      injector: affineInjector.init({ channels, condChannels, hidden: injectorHidden, seed: s2 }),
    };
  },
  bijector: (
    p,
    { eps, injectorOutput, couplingOutput, additiveCoupling, constantScale = false } = {},
  ) => {
    if (couplingOutput && !("linear" in p.coupling)) {
      throw new ShapeError(
        "flowStep: couplingOutput needs a linear coupling (an affine coupling's network also " +
          "sees the flow tensor, so its output cannot be computed ahead)",
      );
    }
    const injector = injectorOutput
      ? affineInjector.fromConditioner(() => injectorOutput, {
        ...affineInjector.sizes(p.injector),
        eps,
        scaleBias: constantScale ? p.injector.net.conv3.b : undefined,
      })
      : affineInjector.bijector(p.injector, { eps, constantScale });
    const b = chain(
      actNorm.bijector(p.actNorm),
      invConv1x1.bijector(p.invConv),
      "linear" in p.coupling
        ? linearCoupling.bijector(p.coupling, {
          eps,
          constantScale,
          conditionerOutput: couplingOutput,
        })
        : affineCoupling.bijector(p.coupling, { eps, additive: additiveCoupling }),
      injector,
    );
    b.forwardShape([1, 1, 1, p.actNorm.bias.shape[0]]); // the parameters must fit together
    return b;
  },
  withInverse: async (p) => ({ ...p, invConv: await invConv1x1.withInverse(p.invConv) }),
};

/** The transition step, see the module documentation. */
export const transitionStep: TransitionStepLayer = {
  init: ({ channels, seed }) => ({
    actNorm: actNorm.init({ channels }),
    invConv: invConv1x1.init({ channels, seed: splitSeed(seed, 1)[0] }),
  }),
  bijector: (p) => {
    const b = chain(actNorm.bijector(p.actNorm), invConv1x1.bijector(p.invConv));
    b.forwardShape([1, 1, 1, p.actNorm.bias.shape[0]]); // the parameters must fit together
    return b;
  },
  withInverse: async (p) => ({ ...p, invConv: await invConv1x1.withInverse(p.invConv) }),
};
