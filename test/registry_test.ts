/**
 * The registry: every exported layer, as a `layerCase` of `@x/deflow/testing`
 * (`layerCases`, src/testing/registry.ts, also run by the browser kit page), run through
 * the law kit on the WebGPU and the wasm backends (round trips, inverse log-det, log-det vs
 * the float64 autodiff Jacobian, finiteness, batch independence, no leaks, chain/invert
 * algebra). `layerCase` perturbs parameters away from their identity initialisation so
 * every log-det is non-zero.
 */
import { tf } from "../src/tf.ts";
import {
  type BijectorCase,
  checkBijectorLaws,
  layerCases,
  type LayerDraw,
} from "../src/testing/mod.ts";
import { gpuTest, useBackend } from "./_helpers.ts";

const registry: readonly BijectorCase<LayerDraw>[] = layerCases;

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
