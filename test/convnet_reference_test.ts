/**
 * The conditioner network (`convNet`: conv 3×3 → ActNorm → ReLU → conv 1×1 → ActNorm →
 * ReLU → conv 3×3 + bias, × exp(3·logs)) against a naive float64 implementation, with every
 * leaf perturbed by the shared helper (distinct noise per leaf path, so an ActNorm whose
 * `bias` and `logs` were swapped gives a different output).
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { disposeParams, flattenParams } from "../src/core/params.ts";
import { convNet } from "../src/nn/convNet.ts";
import { maxAbsDiff, noLeak, perturb, read, useBackend } from "./_helpers.ts";

/** Naive 'same' (zero-padded, odd kernel) convolution, NHWC, float64. */
const conv = (
  x: Float64Array,
  [n, h, w, ci]: readonly number[],
  k: Float64Array,
  [kh, kw, , co]: readonly number[],
  bias?: Float64Array,
): Float64Array => {
  const out = new Float64Array(n * h * w * co);
  const ph = (kh - 1) / 2;
  const pw = (kw - 1) / 2;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let o = 0; o < co; o++) {
          let s = bias ? bias[o] : 0;
          for (let dy = 0; dy < kh; dy++) {
            const yy = y + dy - ph;
            if (yy < 0 || yy >= h) continue;
            for (let dx = 0; dx < kw; dx++) {
              const xc = xx + dx - pw;
              if (xc < 0 || xc >= w) continue;
              for (let c = 0; c < ci; c++) {
                s += x[((b * h + yy) * w + xc) * ci + c] * k[((dy * kw + dx) * ci + c) * co + o];
              }
            }
          }
          out[((b * h + y) * w + xx) * co + o] = s;
        }
      }
    }
  }
  return out;
};

const normRelu = (v: Float64Array, bias: Float64Array, logs: Float64Array) =>
  v.map((u, i) => Math.max(0, (u + bias[i % bias.length]) * Math.exp(logs[i % logs.length])));

Deno.test("convNet equals a naive float64 reference on perturbed parameters", async () => {
  await useBackend("wasm");
  await noLeak("convNet reference", async () => {
    const base = convNet.init(3, { inChannels: 3, hidden: 5, outChannels: 4 });
    const p = perturb(base, 3, 0.3);
    disposeParams(base);
    const x = tf.randomUniform([2, 5, 6, 3], -1, 1, "float32", 4) as tf.Tensor4D;
    const y = convNet.apply(p, x);
    const v = Object.fromEntries(
      await Promise.all(flattenParams(p).map(async (n) => [n.path, await read(n.tensor)])),
    ) as Record<string, Float64Array>;
    let h = conv(await read(x), [2, 5, 6, 3], v["conv1.w"], [3, 3, 3, 5]);
    h = normRelu(h, v["norm1.bias"], v["norm1.logs"]);
    h = conv(h, [2, 5, 6, 5], v["conv2.w"], [1, 1, 5, 5]);
    h = normRelu(h, v["norm2.bias"], v["norm2.logs"]);
    h = conv(h, [2, 5, 6, 5], v["conv3.w"], [3, 3, 5, 4], v["conv3.b"]);
    const ref = h.map((u, i) => u * Math.exp(3 * v["conv3.logs"][i % 4]));
    const got = await read(y);
    const scale = Math.max(...ref.map(Math.abs));
    assert.ok(scale > 0.1, "the perturbed network should not be ~0");
    const err = maxAbsDiff(got, ref);
    assert.ok(err < 1e-5 * scale + 1e-6, `max |convNet − reference| ${err} (scale ${scale})`);
    tf.dispose([x, y]);
    disposeParams(p);
  });
});
