import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { chain, identity, invert, sumLogDets } from "../src/core/bijector.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

Deno.test("sumLogDets adds 12 terms correctly on WebGPU (addN bug guard)", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("sumLogDets", async () => {
    const terms = Array.from({ length: 12 }, (_, i) => tf.tensor1d([i + 1, -(i + 1) * 0.5]));
    const s = sumLogDets(terms);
    const got = await read(s);
    assert.ok(maxAbsDiff(got, [78, -39]) < 1e-5, `got ${got}`);
    tf.dispose([...terms, s]);
  });
});

Deno.test("invert(invert(f)) is f; chain of nothing is identity", () => {
  assert.equal(invert(invert(identity)), identity);
  assert.equal(chain(), identity);
});

Deno.test("conv2dSame gradients (wasm: as forward convs) equal tfjs-cpu's native conv gradients", async () => {
  const { conv2dSame } = await import("../src/nn/conv.ts");
  for (const k of [1, 3]) {
    const grads = async (backend: "wasm" | "cpu", native: boolean) => {
      await useBackend(backend);
      return tf.tidy(() => {
        const x = tf.randomNormal([2, 6, 5, 3], 0, 1, "float32", 1) as tf.Tensor4D;
        const w = tf.randomNormal([k, k, 3, 4], 0, 1, "float32", 2) as tf.Tensor4D;
        const r = tf.randomNormal([2, 6, 5, 4], 0, 1, "float32", 3);
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(
            native
              ? tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same")
              : conv2dSame(a as tf.Tensor4D, b as tf.Tensor4D),
            r,
          ));
        return tf.grads(f)([x, w]).map((g) => Array.from(g.dataSync()));
      });
    };
    const ours = await grads("wasm", false);
    const ref = await grads("cpu", true);
    for (let i = 0; i < 2; i++) {
      assert.ok(maxAbsDiff(ours[i], ref[i]) < 1e-4, `k=${k}, grad ${i}`);
    }
  }
  await useBackend("webgpu");
});
