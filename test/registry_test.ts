/**
 * The registry: every exported layer, run through the law kit on the WebGPU backend
 * (round trips, inverse log-det, log-det vs the float64 autodiff Jacobian, finiteness,
 * batch independence, no leaks, chain/invert algebra). Parameters are perturbed away from
 * their identity initialisation so every log-det is non-zero.
 */
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import type { Bijector } from "../src/core/bijector.ts";
import { disposeParams, type ParamTree } from "../src/core/params.ts";
import { actNorm } from "../src/layers/actNorm.ts";
import { invConv1x1 } from "../src/layers/invConv1x1.ts";
import { affineCoupling } from "../src/layers/affineCoupling.ts";
import { affineInjector } from "../src/layers/affineInjector.ts";
import { squeeze } from "../src/layers/squeeze.ts";
import { split } from "../src/layers/split.ts";
import { flowStep, transitionStep } from "../src/layers/flowStep.ts";
import { latentShift } from "../src/layers/latentShift.ts";
import { type BijectorCase, type Built, checkBijectorLaws } from "../src/testing/mod.ts";
import { gpuTest, perturb, useBackend } from "./_helpers.ts";

/** A draw: seed, batch (incl. 1), height ≠ width allowed, channels (odd ones split unevenly). */
type P = {
  readonly seed: number;
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
};
const params: fc.Arbitrary<P> = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  n: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 3 }),
  w: fc.integer({ min: 1, max: 3 }),
  c: fc.integer({ min: 2, max: 5 }),
});
/** Related models (for the algebra laws) share the shapes and differ in the seed. */
const related = (p: P) => fc.integer({ min: 1, max: 1_000_000 }).map((seed) => ({ ...p, seed }));

const input = (seed: number, shape: [number, number, number, number]) =>
  tf.randomNormal(shape, 0, 1, "float32", seed) as tf.Tensor4D;

/** A case from a parameter constructor and a bijector builder. */
const layerCase = <T extends ParamTree>(spec: {
  name: string;
  init: (seed: number, c: number) => T;
  build: (p: T, c: number) => Bijector | Promise<{ bijector: Bijector; extra: tf.Tensor[] }>;
  shape?: (p: P) => [number, number, number, number];
  condChannels?: number;
  volumePreserving?: boolean;
}): BijectorCase<P> => ({
  name: spec.name,
  params,
  related,
  volumePreserving: spec.volumePreserving,
  build: async (draw): Promise<Built> => {
    const { seed, c } = draw;
    const shape = spec.shape ? spec.shape(draw) : [draw.n, draw.h, draw.w, c] as Shape;
    const base = spec.init(seed, c);
    const p = perturb(base, seed, 0.2);
    disposeParams(base);
    const made = await spec.build(p, c);
    const { bijector, extra } = "forward" in made ? { bijector: made, extra: [] } : made;
    const x = input(seed + 1, shape);
    const cond = spec.condChannels
      ? input(seed + 2, [shape[0], shape[1], shape[2], spec.condChannels])
      : undefined;
    return {
      bijector,
      x,
      cond,
      dispose: () => {
        disposeParams(p);
        tf.dispose([x, ...(cond ? [cond] : []), ...extra]);
      },
    };
  },
});

type Shape = [number, number, number, number];
const H = 3;
const registry: BijectorCase<P>[] = [
  layerCase({
    name: "actNorm",
    init: (_, c) => actNorm.init(c),
    build: (p) => actNorm.bijector(p),
  }),
  layerCase({
    name: "invConv1x1",
    init: (s, c) => invConv1x1.init(c, s),
    build: async (p) => {
      const q = await invConv1x1.withInverse(p);
      return { bijector: invConv1x1.bijector(q), extra: [q.const.inverse!] };
    },
  }),
  layerCase({
    name: "affineCoupling",
    init: (s, c) => affineCoupling.init(s, { channels: c, condChannels: H, hidden: 6 }),
    build: (p, c) => affineCoupling.bijector(p, { channels: c, condChannels: H }),
    condChannels: H,
  }),
  layerCase({
    name: "affineInjector",
    init: (s, c) => affineInjector.init(s, { channels: c, condChannels: H, hidden: 6 }),
    build: (p, c) => affineInjector.bijector(p, { channels: c, condChannels: H }),
    condChannels: H,
  }),
  layerCase({
    name: "squeeze",
    init: () => squeeze.init(),
    build: () => squeeze.bijector(),
    shape: ({ n, w, c }) => [n, 2, 2 * w, c], // Jacobian ≤ 2·6·5 = 60 entries
    volumePreserving: true,
  }),
  layerCase({
    name: "split",
    init: (_, c) => split.init(c),
    build: (p, c) => split.bijector(p, { channels: c }),
  }),
  layerCase({
    name: "transitionStep",
    init: (s, c) => transitionStep.init(s, { channels: c }),
    build: async (p, c) => {
      const q = await transitionStep.withInverse(p);
      return {
        bijector: transitionStep.bijector(q, { channels: c }),
        extra: [q.invConv.const.inverse!],
      };
    },
  }),
  layerCase({
    name: "flowStep",
    init: (s, c) => flowStep.init(s, { channels: c, condChannels: H, hidden: 6 }),
    build: async (p, c) => {
      const q = await flowStep.withInverse(p);
      return {
        bijector: flowStep.bijector(q, { channels: c, condChannels: H }),
        extra: [q.invConv.const.inverse!],
      };
    },
    condChannels: H,
  }),
  layerCase({
    name: "latentShift (whitening)",
    init: (s, c) => latentShift.init(c, s, 0.5),
    build: async (p) => {
      const stats = await latentShift.prepare(p);
      return {
        bijector: latentShift.bijector(p, stats),
        extra: [stats.aInv, stats.logDetA, stats.cholA, stats.cholInv, stats.postSqrt],
      };
    },
  }),
];

for (const c of registry) {
  Deno.test(`registry: ${c.name} obeys the bijector laws (WebGPU)`, gpuTest, async () => {
    await useBackend("webgpu");
    await checkBijectorLaws(c, { numRuns: 3 });
  });
}

/** Forward and inverse outputs of a case on the active backend, as plain arrays. */
const outputsOf = async (c: BijectorCase<P>, seed: number): Promise<Float64Array[]> => {
  const b = await c.build({ seed, n: 2, h: 2, w: 3, c: 5 });
  try {
    const f = b.bijector.forward(b.x, b.cond);
    const i = b.bijector.inverse(b.x.shape[3] === f.y.shape[3] ? b.x : f.y, b.cond);
    const out = await Promise.all(
      [f.y, f.logDet, i.y, i.logDet].map(async (t) => Float64Array.from(await t.data())),
    );
    tf.dispose([f.y, f.logDet, i.y, i.logDet]);
    return out;
  } finally {
    b.dispose();
  }
};

Deno.test("registry: WebGPU and wasm agree on every layer", gpuTest, async () => {
  for (const c of registry) {
    await useBackend("webgpu");
    const gpu = await outputsOf(c, 1234);
    await useBackend("wasm");
    const cpu = await outputsOf(c, 1234);
    gpu.forEach((g, k) => {
      let err = 0;
      let scale = 1;
      for (let j = 0; j < g.length; j++) {
        err = Math.max(err, Math.abs(g[j] - cpu[k][j]));
        scale = Math.max(scale, Math.abs(cpu[k][j]));
      }
      if (!(err <= 1e-4 * scale)) {
        throw new Error(`${c.name}: output ${k} differs between WebGPU and wasm by ${err}`);
      }
    });
  }
  await useBackend("webgpu");
});
