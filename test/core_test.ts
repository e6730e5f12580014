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
