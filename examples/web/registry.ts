/**
 * The law registry for the browser kit page: every exported layer and combinator of the
 * library as a `BijectorCase` for `@x/deflow/testing`. The layer cases are those of
 * `test/registry_test.ts` (parameters perturbed away from their identity initialisation so
 * every log-det is non-zero); the combinator cases build `chain`, `invert`,
 * `withCondition`, `checked` and `identity` from them.
 *
 * @module
 */
import fc from "fast-check";
import { tf } from "../../src/tf.ts";
import {
  type Bijector,
  chain,
  checked,
  identity,
  invert,
  withCondition,
} from "../../src/core/bijector.ts";
import { disposeParams, mapParams, type ParamTree } from "../../src/core/params.ts";
import { actNorm } from "../../src/layers/actNorm.ts";
import { invConv1x1 } from "../../src/layers/invConv1x1.ts";
import { affineCoupling } from "../../src/layers/affineCoupling.ts";
import { affineInjector } from "../../src/layers/affineInjector.ts";
import { squeeze } from "../../src/layers/squeeze.ts";
import { split } from "../../src/layers/split.ts";
import { flowStep, transitionStep } from "../../src/layers/flowStep.ts";
import { latentShift } from "../../src/layers/latentShift.ts";
import type { BijectorCase, Built } from "../../src/testing/mod.ts";

/** A draw: seed, batch (incl. 1), height ≠ width allowed, channels (odd ones split unevenly). */
export type Draw = {
  readonly seed: number;
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
};

const draws: fc.Arbitrary<Draw> = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  n: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 3 }),
  w: fc.integer({ min: 1, max: 3 }),
  c: fc.integer({ min: 2, max: 5 }),
});
const related = (p: Draw) => fc.integer({ min: 1, max: 1_000_000 }).map((seed) => ({ ...p, seed }));

type Shape = [number, number, number, number];
const H = 3;

const hashString = (s: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
};

/** `tree` plus seeded Gaussian noise of std `std` on every trainable leaf (constants cloned). */
const perturb = <T extends ParamTree>(tree: T, seed: number, std: number): T =>
  mapParams(
    tree,
    (t, path) =>
      path.split(".").includes("const") ? tf.clone(t) : tf.tidy(() =>
        tf.add(
          t,
          tf.randomNormal(t.shape, 0, std, "float32", (seed * 7919 + hashString(path)) >>> 0),
        )
      ),
  );

const input = (seed: number, shape: Shape) =>
  tf.randomNormal(shape, 0, 1, "float32", seed) as tf.Tensor4D;

type Made = { bijector: Bijector; extra: tf.Tensor[]; free?: () => void };

/** A case from a parameter constructor and a bijector builder. */
const layerCase = <T extends ParamTree>(spec: {
  name: string;
  init: (seed: number, c: number) => T;
  build: (p: T, c: number, draw: Draw) => Bijector | Promise<Made>;
  shape?: (p: Draw) => Shape;
  condChannels?: number;
  volumePreserving?: boolean;
  /** Bind the condition into the bijector (`withCondition`): the case has no `cond`. */
  bindCondition?: boolean;
}): BijectorCase<Draw> => ({
  name: spec.name,
  params: draws,
  related,
  volumePreserving: spec.volumePreserving,
  fixedBatch: spec.bindCondition,
  build: async (draw): Promise<Built> => {
    const { seed, c } = draw;
    const shape = spec.shape ? spec.shape(draw) : [draw.n, draw.h, draw.w, c] as Shape;
    const base = spec.init(seed, c);
    const p = perturb(base, seed, 0.2);
    disposeParams(base);
    const made = await spec.build(p, c, draw);
    const { bijector, extra, free } = "forward" in made
      ? { bijector: made, extra: [], free: undefined }
      : made;
    const x = input(seed + 1, shape);
    const cond = spec.condChannels
      ? input(seed + 2, [shape[0], shape[1], shape[2], spec.condChannels])
      : undefined;
    const bound = spec.bindCondition && cond ? withCondition(bijector, cond) : bijector;
    return {
      bijector: bound,
      x,
      cond: spec.bindCondition ? undefined : cond,
      dispose: () => {
        disposeParams(p);
        tf.dispose([x, ...(cond ? [cond] : []), ...extra]);
        free?.();
      },
    };
  },
});

const couplingInit = (seed: number, channels: number) =>
  affineCoupling.init({ channels, condChannels: H, hidden: 6, seed });
const injectorInit = (seed: number, channels: number) =>
  affineInjector.init({ channels, condChannels: H, hidden: 6, seed });

/** Every exported layer, perturbed away from its identity initialisation. */
export const layerCases: readonly BijectorCase<Draw>[] = [
  layerCase({
    name: "actNorm",
    init: (_, c) => actNorm.init({ channels: c }),
    build: (p) => actNorm.bijector(p),
  }),
  layerCase({
    name: "invConv1x1",
    init: (s, c) => invConv1x1.init({ channels: c, seed: s }),
    build: async (p) => {
      const q = await invConv1x1.withInverse(p);
      return { bijector: invConv1x1.bijector(q), extra: [q.const.inverse!] };
    },
  }),
  layerCase({
    name: "affineCoupling",
    init: couplingInit,
    build: (p) => affineCoupling.bijector(p),
    condChannels: H,
  }),
  layerCase({
    name: "affineInjector",
    init: injectorInit,
    build: (p) => affineInjector.bijector(p),
    condChannels: H,
  }),
  layerCase({
    name: "squeeze",
    init: (seed) => squeeze.init({ seed }),
    build: (p) => squeeze.bijector(p),
    shape: ({ n, w, c }) => [n, 2, 2 * w, c],
    volumePreserving: true,
  }),
  layerCase({
    name: "split",
    init: (_, c) => split.init({ channels: c }),
    build: (p) => split.bijector(p),
  }),
  layerCase({
    name: "transitionStep",
    init: (seed, channels) => transitionStep.init({ channels, seed }),
    build: async (p) => {
      const q = await transitionStep.withInverse(p);
      return { bijector: transitionStep.bijector(q), extra: [q.invConv.const.inverse!] };
    },
  }),
  layerCase({
    name: "flowStep",
    init: (seed, channels) => flowStep.init({ channels, condChannels: H, hidden: 6, seed }),
    build: async (p) => {
      const q = await flowStep.withInverse(p);
      return { bijector: flowStep.bijector(q), extra: [q.invConv.const.inverse!] };
    },
    condChannels: H,
  }),
  layerCase({
    name: "latentShift (whitening)",
    init: (s, c) => latentShift.init({ channels: c, seed: s, scale: 0.5 }),
    build: async (p) => {
      const stats = await latentShift.prepare(p);
      return {
        bijector: latentShift.bijector(p, stats),
        extra: [],
        free: () => latentShift.disposeStats(stats),
      };
    },
  }),
];

/** The combinators, each built from layers. */
export const combinatorCases: readonly BijectorCase<Draw>[] = [
  layerCase({
    name: "chain(actNorm, invConv1x1, affineCoupling)",
    init: (s, c) => ({
      a: actNorm.init({ channels: c }),
      i: invConv1x1.init({ channels: c, seed: s }),
      k: couplingInit(s + 1, c),
    }),
    build: async (p) => {
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
    build: (p) => invert(affineInjector.bijector(p)),
    condChannels: H,
  }),
  layerCase({
    name: "withCondition(affineCoupling, h)",
    init: couplingInit,
    build: (p) => affineCoupling.bijector(p),
    condChannels: H,
    bindCondition: true,
  }),
  layerCase({
    name: "checked(actNorm)",
    init: (_, c) => actNorm.init({ channels: c }),
    build: (p) => checked(actNorm.bijector(p)),
  }),
  layerCase({
    name: "identity",
    init: () => ({}),
    build: () => identity,
    volumePreserving: true,
  }),
];

/** The whole registry: layers, then combinators. */
export const registry: readonly BijectorCase<Draw>[] = [...layerCases, ...combinatorCases];
