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

type P = { readonly seed: number };
const params = fc.record({ seed: fc.integer({ min: 1, max: 1_000_000 }) });
const related = (p: P) => fc.integer({ min: 1, max: 1_000_000 }).map((seed) => ({ ...p, seed }));

const input = (seed: number, shape: [number, number, number, number]) =>
  tf.randomNormal(shape, 0, 1, "float32", seed) as tf.Tensor4D;

/** A case from a parameter constructor and a bijector builder. */
const layerCase = <T extends ParamTree>(spec: {
  name: string;
  init: (seed: number) => T;
  build: (p: T) => Bijector | Promise<{ bijector: Bijector; extra: tf.Tensor[] }>;
  shape: [number, number, number, number];
  condChannels?: number;
  volumePreserving?: boolean;
}): BijectorCase<P> => ({
  name: spec.name,
  params,
  related,
  volumePreserving: spec.volumePreserving,
  build: async ({ seed }): Promise<Built> => {
    const base = spec.init(seed);
    const p = perturb(base, seed, 0.2);
    disposeParams(base);
    const made = await spec.build(p);
    const { bijector, extra } = "forward" in made ? { bijector: made, extra: [] } : made;
    const x = input(seed + 1, spec.shape);
    const cond = spec.condChannels
      ? input(seed + 2, [spec.shape[0], spec.shape[1], spec.shape[2], spec.condChannels])
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

const C = 4;
const H = 3;
const registry: BijectorCase<P>[] = [
  layerCase({
    name: "actNorm",
    init: () => actNorm.init(C),
    build: (p) => actNorm.bijector(p),
    shape: [2, 2, 2, C],
  }),
  layerCase({
    name: "invConv1x1",
    init: (s) => invConv1x1.init(C, s),
    build: async (p) => {
      const q = await invConv1x1.withInverse(p);
      return { bijector: invConv1x1.bijector(q), extra: [q.const.inverse!] };
    },
    shape: [2, 2, 2, C],
  }),
  layerCase({
    name: "affineCoupling",
    init: (s) => affineCoupling.init(s, { channels: C, condChannels: H, hidden: 6 }),
    build: (p) => affineCoupling.bijector(p, { channels: C, condChannels: H }),
    shape: [2, 2, 2, C],
    condChannels: H,
  }),
  layerCase({
    name: "affineInjector",
    init: (s) => affineInjector.init(s, { channels: C, condChannels: H, hidden: 6 }),
    build: (p) => affineInjector.bijector(p, { channels: C, condChannels: H }),
    shape: [2, 2, 2, C],
    condChannels: H,
  }),
  layerCase({
    name: "squeeze",
    init: () => squeeze.init(),
    build: () => squeeze.bijector(),
    shape: [2, 4, 2, 2],
    volumePreserving: true,
  }),
  layerCase({
    name: "split",
    init: () => split.init(C),
    build: (p) => split.bijector(p, { channels: C }),
    shape: [2, 2, 2, C],
  }),
  layerCase({
    name: "transitionStep",
    init: (s) => transitionStep.init(s, { channels: C }),
    build: async (p) => {
      const q = await transitionStep.withInverse(p);
      return {
        bijector: transitionStep.bijector(q, { channels: C }),
        extra: [q.invConv.const.inverse!],
      };
    },
    shape: [2, 2, 2, C],
  }),
  layerCase({
    name: "flowStep",
    init: (s) => flowStep.init(s, { channels: C, condChannels: H, hidden: 6 }),
    build: async (p) => {
      const q = await flowStep.withInverse(p);
      return {
        bijector: flowStep.bijector(q, { channels: C, condChannels: H }),
        extra: [q.invConv.const.inverse!],
      };
    },
    shape: [2, 2, 2, C],
    condChannels: H,
  }),
  layerCase({
    name: "latentShift (whitening)",
    init: (s) => latentShift.init(C, s, 0.5),
    build: async (p) => {
      const stats = await latentShift.prepare(p);
      return {
        bijector: latentShift.bijector(p, stats),
        extra: [stats.aInv, stats.logDetA, stats.cholA, stats.cholInv, stats.postSqrt],
      };
    },
    shape: [2, 2, 2, C],
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
  const b = await c.build({ seed });
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
