/**
 * The registry: every exported layer of deflow, and every combinator built from them, as
 * a {@linkcode layerCase} of the law kit. Parameters are perturbed away from their
 * (often identity) initialisation so every log-det is non-zero. The Deno tests run
 * {@linkcode layerCases} on WebGPU and wasm, the browser kit page runs
 * {@linkcode registryCases} on the browser's WebGPU; run them on a backend of your own to
 * check it against every layer.
 *
 * @example Check every layer on the active backend
 * ```ts
 * import { checkAllBijectorLaws, layerCases } from "@x/deflow/testing";
 *
 * Deno.test("every deflow layer obeys the laws here", async () => {
 *   await checkAllBijectorLaws(layerCases, { numRuns: 3 });
 * });
 * ```
 *
 * @module
 */
import { tf } from "../tf.ts";
import { chain, checked, identity, invert } from "../core/bijector.ts";
import { actNorm } from "../layers/actNorm.ts";
import { affineCoupling } from "../layers/affineCoupling.ts";
import { affineInjector } from "../layers/affineInjector.ts";
import { flowStep, transitionStep } from "../layers/flowStep.ts";
import { invConv1x1 } from "../layers/invConv1x1.ts";
import { latentShift } from "../layers/latentShift.ts";
import { linearCoupling } from "../layers/linearCoupling.ts";
import {
  contractionBijector,
  disposeContractionStats,
  initContraction,
  prepareContraction,
} from "../layers/latentContraction.ts";
import { split } from "../layers/split.ts";
import { squeeze } from "../layers/squeeze.ts";
import type { BijectorCase } from "./laws.ts";
import { layerCase, type LayerDraw } from "./layerCase.ts";

/** Channels of the condition of the conditional cases. */
const H = 3;
/** Hidden channels of the conditioner networks (small: the Jacobian law is exact). */
const HIDDEN = 6;

const couplingInit = ({ channels, seed }: LayerDraw) =>
  affineCoupling.init({ channels, condChannels: H, hidden: HIDDEN, seed });
const injectorInit = ({ channels, seed }: LayerDraw) =>
  affineInjector.init({ channels, condChannels: H, hidden: HIDDEN, seed });

/** Every exported layer. */
export const layerCases: readonly BijectorCase<LayerDraw>[] = [
  layerCase({
    name: "actNorm",
    init: actNorm.init,
    bijector: (p) => actNorm.bijector(p),
  }),
  layerCase({
    name: "invConv1x1",
    init: invConv1x1.init,
    bijector: async (p) => {
      const q = await invConv1x1.withInverse(p);
      return { bijector: invConv1x1.bijector(q), extra: [q.const.inverse!] };
    },
  }),
  layerCase({
    name: "affineCoupling",
    init: couplingInit,
    bijector: (p) => affineCoupling.bijector(p),
    condChannels: H,
  }),
  layerCase({
    name: "affineCoupling (additive)",
    init: couplingInit,
    bijector: (p) => affineCoupling.bijector(p, { additive: true }),
    condChannels: H,
    volumePreserving: true,
  }),
  layerCase({
    name: "linearCoupling",
    init: ({ channels, seed }) =>
      linearCoupling.init({ channels, condChannels: H, hidden: HIDDEN, seed }),
    bijector: (p) => linearCoupling.bijector(p),
    condChannels: H,
  }),
  layerCase({
    name: "affineInjector",
    init: injectorInit,
    bijector: (p) => affineInjector.bijector(p),
    condChannels: H,
  }),
  layerCase({
    name: "squeeze",
    init: squeeze.init,
    bijector: (p) => squeeze.bijector(p),
    shape: ({ batch, width, channels }) => [batch, 2, 2 * width, channels], // Jacobian ≤ 2·6·5 = 60 entries
    volumePreserving: true,
  }),
  layerCase({
    name: "split",
    init: split.init,
    bijector: (p) => split.bijector(p),
  }),
  layerCase({
    name: "split (constant scale)",
    init: split.init,
    bijector: (p) => split.bijector(p, { constantScale: true }),
  }),
  layerCase({
    name: "transitionStep",
    init: transitionStep.init,
    bijector: async (p) => {
      const q = await transitionStep.withInverse(p);
      return { bijector: transitionStep.bijector(q), extra: [q.invConv.const.inverse!] };
    },
  }),
  layerCase({
    name: "flowStep",
    init: ({ channels, seed }) =>
      flowStep.init({ channels, condChannels: H, hidden: HIDDEN, seed }),
    bijector: async (p) => {
      const q = await flowStep.withInverse(p);
      return { bijector: flowStep.bijector(q), extra: [q.invConv.const.inverse!] };
    },
    condChannels: H,
  }),
  layerCase({
    name: "flowStep (linear coupling)",
    init: ({ channels, seed }) =>
      flowStep.init({ channels, condChannels: H, hidden: HIDDEN, linearCoupling: true, seed }),
    bijector: async (p) => {
      const q = await flowStep.withInverse(p);
      return { bijector: flowStep.bijector(q), extra: [q.invConv.const.inverse!] };
    },
    condChannels: H,
  }),
  layerCase({
    name: "flowStep (linear coupling, constant scales)",
    init: ({ channels, seed }) =>
      flowStep.init({ channels, condChannels: H, hidden: HIDDEN, linearCoupling: true, seed }),
    bijector: async (p) => {
      const q = await flowStep.withInverse(p);
      return {
        bijector: flowStep.bijector(q, { constantScale: true }),
        extra: [q.invConv.const.inverse!],
      };
    },
    condChannels: H,
  }),
  layerCase({
    name: "latentShift (whitening)",
    init: ({ channels, seed }) => latentShift.init({ channels, seed, scale: 0.5 }),
    bijector: async (p) => {
      const stats = await latentShift.prepare(p);
      return {
        bijector: latentShift.bijector(p, stats),
        dispose: () => latentShift.disposeStats(stats),
      };
    },
  }),
  layerCase({
    name: "latentContraction (degraded latent → shift variables)",
    init: ({ channels, seed }) => ({
      ...initContraction({ channels, seed, scale: 0.5 }),
      mu: tf.zeros([channels]) as tf.Tensor1D,
    }),
    bijector: async (p) => {
      const stats = await prepareContraction(p);
      return {
        bijector: contractionBijector(stats, p.mu),
        dispose: () => disposeContractionStats(stats),
      };
    },
  }),
];

/** The combinators (`chain`, `invert`, `withCondition`, `checked`, `identity`), built from layers. */
export const combinatorCases: readonly BijectorCase<LayerDraw>[] = [
  layerCase({
    name: "chain(actNorm, invConv1x1, affineCoupling)",
    init: (draw) => ({
      a: actNorm.init(draw),
      i: invConv1x1.init(draw),
      k: couplingInit({ ...draw, seed: draw.seed + 1 }),
    }),
    bijector: async (p) => {
      const q = await invConv1x1.withInverse(p.i);
      return {
        bijector: chain(
          actNorm.bijector(p.a),
          invConv1x1.bijector(q),
          affineCoupling.bijector(p.k),
        ),
        extra: [q.const.inverse!],
      };
    },
    condChannels: H,
  }),
  layerCase({
    name: "invert(affineInjector)",
    init: injectorInit,
    bijector: (p) => invert(affineInjector.bijector(p)),
    condChannels: H,
  }),
  layerCase({
    name: "withCondition(affineCoupling, h)",
    init: couplingInit,
    bijector: (p) => affineCoupling.bijector(p),
    condChannels: H,
    bindCondition: true,
  }),
  layerCase({
    name: "checked(actNorm)",
    init: actNorm.init,
    bijector: (p) => checked(actNorm.bijector(p)),
  }),
  layerCase({
    name: "identity",
    init: () => ({}),
    bijector: () => identity,
    volumePreserving: true,
  }),
];

/** The whole registry: {@linkcode layerCases}, then {@linkcode combinatorCases}. */
export const registryCases: readonly BijectorCase<LayerDraw>[] = [
  ...layerCases,
  ...combinatorCases,
];
