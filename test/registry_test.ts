/**
 * The registry: every exported layer, as a `layerCase` of `@x/deflow/testing`, run through
 * the law kit on the WebGPU and the wasm backends (round trips, inverse log-det, log-det vs
 * the float64 autodiff Jacobian, finiteness, batch independence, no leaks, chain/invert
 * algebra). `layerCase` perturbs parameters away from their identity initialisation so
 * every log-det is non-zero.
 */
import { tf } from "../src/tf.ts";
import { actNorm } from "../src/layers/actNorm.ts";
import { invConv1x1 } from "../src/layers/invConv1x1.ts";
import { affineCoupling } from "../src/layers/affineCoupling.ts";
import { affineInjector } from "../src/layers/affineInjector.ts";
import { squeeze } from "../src/layers/squeeze.ts";
import { split } from "../src/layers/split.ts";
import { flowStep, transitionStep } from "../src/layers/flowStep.ts";
import { latentShift } from "../src/layers/latentShift.ts";
import {
  type BijectorCase,
  checkBijectorLaws,
  layerCase,
  type LayerDraw,
} from "../src/testing/mod.ts";
import { gpuTest, useBackend } from "./_helpers.ts";

const H = 3;
const registry: BijectorCase<LayerDraw>[] = [
  layerCase({
    name: "actNorm",
    init: ({ channels, seed }) => actNorm.init({ channels, seed }),
    bijector: (p) => actNorm.bijector(p),
  }),
  layerCase({
    name: "invConv1x1",
    init: ({ seed, channels }) => invConv1x1.init({ channels, seed }),
    bijector: async (p) => {
      const q = await invConv1x1.withInverse(p);
      return { bijector: invConv1x1.bijector(q), extra: [q.const.inverse!] };
    },
  }),
  layerCase({
    name: "affineCoupling",
    init: ({ seed, channels }) =>
      affineCoupling.init({ channels, condChannels: H, hidden: 6, seed }),
    bijector: (p) => affineCoupling.bijector(p),
    condChannels: H,
  }),
  layerCase({
    name: "affineInjector",
    init: ({ seed, channels }) =>
      affineInjector.init({ channels, condChannels: H, hidden: 6, seed }),
    bijector: (p) => affineInjector.bijector(p),
    condChannels: H,
  }),
  layerCase({
    name: "squeeze",
    init: ({ seed }) => squeeze.init({ seed }),
    bijector: (p) => squeeze.bijector(p),
    shape: ({ batch, width, channels }) => [batch, 2, 2 * width, channels], // Jacobian ≤ 2·6·5 = 60 entries
    volumePreserving: true,
  }),
  layerCase({
    name: "split",
    init: ({ channels, seed }) => split.init({ channels, seed }),
    bijector: (p) => split.bijector(p),
  }),
  layerCase({
    name: "transitionStep",
    init: ({ seed, channels }) => transitionStep.init({ channels, seed }),
    bijector: async (p) => {
      const q = await transitionStep.withInverse(p);
      return { bijector: transitionStep.bijector(q), extra: [q.invConv.const.inverse!] };
    },
  }),
  layerCase({
    name: "flowStep",
    init: ({ seed, channels }) => flowStep.init({ channels, condChannels: H, hidden: 6, seed }),
    bijector: async (p) => {
      const q = await flowStep.withInverse(p);
      return { bijector: flowStep.bijector(q), extra: [q.invConv.const.inverse!] };
    },
    condChannels: H,
  }),
  layerCase({
    name: "latentShift (whitening)",
    init: ({ seed, channels }) => latentShift.init({ channels, seed, scale: 0.5 }),
    bijector: async (p) => {
      const stats = await latentShift.prepare(p);
      return {
        bijector: latentShift.bijector(p, stats),
        dispose: () => latentShift.disposeStats(stats),
      };
    },
  }),
];

for (const backend of ["webgpu", "wasm"] as const) {
  for (const c of registry) {
    Deno.test(`registry: ${c.name} obeys the bijector laws (${backend})`, gpuTest, async () => {
      await useBackend(backend);
      await checkBijectorLaws(c, { numRuns: 3 });
    });
  }
}

/** Forward and inverse outputs of a case on the active backend, as plain arrays. */
const outputsOf = async (c: BijectorCase<LayerDraw>, seed: number): Promise<Float64Array[]> => {
  const b = await c.build({ seed, batch: 2, height: 2, width: 3, channels: 5 });
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
