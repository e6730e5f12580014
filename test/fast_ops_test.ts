/**
 * The wasm fast paths (src/nn/fastOps.ts, the conv gradient, the shared-injector sampling
 * path) against independent references: tfjs-cpu's native ops and gradients, plain
 * strided slices, and the network's own encode/decode.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { flattenParams, isTrainablePath } from "../src/core/params.ts";
import { disposeParams } from "../src/core/params.ts";
import { foldIn, tfSeed } from "../src/core/random.ts";
import { scaledSample } from "../src/layers/scaledShift.ts";
import { constMatMul, evenOdd, matMul } from "../src/nn/fastOps.ts";
import { conv2dSame } from "../src/nn/conv.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import {
  decodeWithFeatures,
  encodeWithFeatures,
  latentShiftScales,
  levelFeatures,
} from "../src/model/network.ts";
import { degrade, prepareSampler } from "../src/model/sample.ts";
import { lossAndGrads } from "../src/train/step.ts";
import {
  gpuTest,
  maxAbsDiff,
  noLeak,
  perturbedModel,
  read,
  tinyConfig,
  useBackend,
} from "./_helpers.ts";

/** Value and gradients of `f` at `xs` (given as seeds/shapes) on `backend`, as arrays. */
const valueAndGrads = async (
  backend: "wasm" | "cpu",
  inputs: () => tf.Tensor[],
  f: (...a: tf.Tensor[]) => tf.Tensor,
): Promise<number[][]> => {
  await useBackend(backend);
  return tf.tidy(() => {
    const xs = inputs();
    const r = tf.randomNormal(f(...xs).shape, 0, 1, "float32", 99);
    const loss = (...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), r)) as tf.Scalar;
    const { value, grads } = tf.valueAndGrads(loss)(xs);
    return [Array.from(value.dataSync()), ...grads.map((g) => Array.from(g.dataSync()))];
  });
};

const close = (a: number[][], b: number[][], tol: number, what: string) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const scale = Math.max(1, ...b[i].map(Math.abs));
    const d = maxAbsDiff(a[i], b[i]);
    assert.ok(d <= tol * scale, `${what}: output ${i} differs by ${d} (scale ${scale})`);
  }
};

Deno.test("fast matMul (all transposes) and constMatMul match tfjs-cpu values and gradients", async () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    const inputs = () => [
      tf.randomNormal(ta ? [5, 7] : [7, 5], 0, 1, "float32", 1),
      tf.randomNormal(tb ? [3, 5] : [5, 3], 0, 1, "float32", 2),
    ];
    const ours = await valueAndGrads("wasm", inputs, (a, b) => matMul(a, b, ta, tb));
    const ref = await valueAndGrads(
      "cpu",
      inputs,
      (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb),
    );
    close(ours, ref, 1e-5, `matMul transposeA=${ta} transposeB=${tb}`);
  }
  const r = () => tf.randomNormal([4, 6], 0, 1, "float32", 3) as tf.Tensor2D;
  const inputs = () => [tf.randomNormal([6, 9], 0, 1, "float32", 4)];
  const ours = await valueAndGrads("wasm", inputs, (a) => constMatMul(r(), a));
  const ref = await valueAndGrads("cpu", inputs, (a) => tf.matMul(r(), a as tf.Tensor2D));
  close(ours, ref, 1e-5, "constMatMul");
  await useBackend("webgpu");
});

Deno.test("evenOdd equals strided slices (values and gradients) on wasm", async () => {
  await useBackend("wasm");
  const x = tf.randomNormal([2, 3, 5, 8], 0, 1, "float32", 5) as tf.Tensor4D;
  const w = tf.randomNormal([2, 3, 5, 4], 0, 1, "float32", 6);
  const v = tf.randomNormal([2, 3, 5, 4], 0, 1, "float32", 7);
  const data = x.dataSync();
  const [e, o] = evenOdd(x);
  const ed = e.dataSync();
  const od = o.dataSync();
  for (let i = 0; i < data.length / 2; i++) {
    assert.equal(ed[i], data[2 * i]);
    assert.equal(od[i], data[2 * i + 1]);
  }
  // d/dx Σ(w·even + v·odd) interleaves w and v.
  const g = tf.grad((t: tf.Tensor) => {
    const [a, b] = evenOdd(t as tf.Tensor4D);
    return tf.add(tf.sum(tf.mul(a, w)), tf.sum(tf.mul(b, v))) as tf.Scalar;
  })(x).dataSync();
  const wd = w.dataSync();
  const vd = v.dataSync();
  for (let i = 0; i < wd.length; i++) {
    assert.equal(g[2 * i], wd[i]);
    assert.equal(g[2 * i + 1], vd[i]);
  }
  tf.dispose([x, w, v, e, o]);
  await useBackend("webgpu");
});

Deno.test("conv2dSame with bias, k = 3 and 5, ci ≠ co: wasm gradients equal tfjs-cpu's native ones", async () => {
  for (const k of [3, 5]) {
    const inputs = () => [
      tf.randomNormal([2, 7, 6, 5], 0, 1, "float32", 1),
      tf.randomNormal([k, k, 5, 3], 0, 1, "float32", 2),
      tf.randomNormal([3], 0, 1, "float32", 3),
    ];
    const ours = await valueAndGrads(
      "wasm",
      inputs,
      (x, w, b) => conv2dSame(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D),
    );
    const ref = await valueAndGrads(
      "cpu",
      inputs,
      (x, w, b) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"), b),
    );
    close(ours, ref, 1e-5, `conv k=${k}`);
  }
  await useBackend("webgpu");
});

const tiny = tinyConfig({ steps: 2, contractShift: false });

/** Tiny model with every trainable leaf perturbed so no layer is the identity. */
const perturbed = (seed: number) => perturbedModel(tiny, seed, 0.1);

Deno.test("training loss and every gradient: wasm fast paths equal tfjs-cpu", async () => {
  const run = async (backend: "wasm" | "cpu") => {
    await useBackend(backend);
    const params = perturbed(3);
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, "float32", 4) as tf.Tensor4D;
    const mask = tf.tensor1d([0, 1]);
    const r = await lossAndGrads(params, tiny, { x, degradedMask: mask }, 5);
    const out = [
      Array.from(await r.loss.data()),
      ...await Promise.all(r.grads.map(async (g) => Array.from(await g.data()))),
    ];
    const names = flattenParams(params).filter((n) => isTrainablePath(n.path)).map((n) => n.path);
    tf.dispose([x, mask, r.loss, r.perSample, ...r.grads]);
    disposeParams(params);
    return { out, names };
  };
  const ours = await run("wasm");
  const ref = await run("cpu");
  assert.deepEqual(ours.names, ref.names);
  for (let i = 0; i < ref.out.length; i++) {
    const scale = Math.max(1e-3, ...ref.out[i].map(Math.abs));
    const d = maxAbsDiff(ours.out[i], ref.out[i]);
    assert.ok(
      // Same algorithm, two backends: float32 summation order only (seen: ≤ 3e-6).
      d <= 5e-5 * scale,
      `${i === 0 ? "loss" : ref.names[i - 1]}: differs by ${d} (scale ${scale})`,
    );
  }
  await useBackend("webgpu");
});

Deno.test(
  "degrade (shared injectors, dequantised, scaled shift) equals encode → shift → decode of network.ts",
  gpuTest,
  async () => {
    await useBackend("wasm");
    const params = perturbed(7);
    const sampler = await prepareSampler(params, tiny);
    const x = tf.randomUniform([1, 8, 12, 3], 0, 1, "float32", 8) as tf.Tensor4D;
    await noLeak("degrade", async () => {
      const seed = 11;
      const [y] = degrade(sampler, x, { seed, tile: 64 });
      // Reference: one tile (the image fits), tile seed foldIn(foldIn(seed, 0), 0).
      const ref = tf.tidy(() => {
        const s = foldIn(foldIn(seed, 0), 0);
        const cond = conditionInput(x, {
          factor: tiny.conditionFactor,
          noiseStd: tiny.conditionNoise,
          seed: foldIn(s, 0),
        });
        const p = sampler.params;
        const feats = levelFeatures(p, tiny, cond, 8, 12);
        // The dequantised translation: x̃ = x + (U − ½)/bins, and the offset is removed after.
        const offset = tf.div(
          tf.sub(tf.randomUniform(x.shape, 0, 1, "float32", tfSeed(foldIn(s, 1000))), 0.5),
          tiny.bins,
        );
        const { latents } = encodeWithFeatures(p, tiny, tf.add(x, offset), feats);
        const scales = latentShiftScales(p, tiny, feats, false);
        assert.ok(scales !== null, "the tiny config has per-position shift scales");
        const shifted = latents.map((z, i) =>
          tf.add(
            z,
            scaledSample(
              p.shifts[i],
              z.shape as unknown as [number, number, number, number],
              scales[i],
              { temperature: 1, seed: foldIn(s, i + 1) },
            ),
          ) as tf.Tensor4D
        );
        return tf.clipByValue(
          tf.sub(decodeWithFeatures(p, tiny, shifted, feats).x, offset),
          0,
          1,
        );
      });
      const d = maxAbsDiff(await read(y), await read(ref));
      assert.ok(d < 1e-5, `degrade differs from the reference by ${d}`);
      assert.ok(maxAbsDiff(await read(y), await read(x)) > 1e-3, "the sample should differ from x");
      tf.dispose([y, ref]);
    });
    x.dispose();
    sampler.dispose();
    disposeParams(params);
    await useBackend("webgpu");
  },
);
