import assert from "node:assert/strict";
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import {
  bicubicDownscale,
  bicubicResize,
  clearResizeCache,
  resizeCacheSize,
  resizeMatrix,
} from "../src/image/resize.ts";
import type { Matrix } from "../src/linalg/dense.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

// ---------------------------------------------------------------------------------------
// Independent reference, written from the formulas (0-based coordinates this time):
// output pixel i covers input coordinate c = (i + 0.5)·in/out − 0.5; its weights are
// h(c − k) over every integer k, with h(t) = s·k(s·t) when s = out/in < 1 (else k), the
// taps folded back into [0, in) by half-sample symmetric reflection, then normalised.
const keys = (t: number): number => {
  // Keys' cubic convolution kernel, a = −0.5, written as the general formula.
  const a = -0.5;
  const x = Math.abs(t);
  if (x <= 1) return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1;
  if (x < 2) return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a;
  return 0;
};
const reflect = (k: number, n: number): number => {
  // half-sample symmetric: … 1 0 | 0 1 … n−1 | n−1 n−2 …
  let j = k;
  for (;;) {
    if (j < 0) j = -j - 1;
    else if (j >= n) j = 2 * n - 1 - j;
    else return j;
  }
};
const refMatrix = (inSize: number, outSize: number, s = outSize / inSize): number[][] => {
  const rows: number[][] = [];
  for (let i = 0; i < outSize; i++) {
    const c = (i + 0.5) / s - 0.5;
    const row = new Array<number>(inSize).fill(0);
    let total = 0;
    const reach = Math.ceil(2 / Math.min(s, 1)) + 2;
    for (let k = Math.floor(c) - reach; k <= Math.ceil(c) + reach; k++) {
      const w = s < 1 ? s * keys(s * (c - k)) : keys(c - k);
      row[reflect(k, inSize)] += w;
      total += w;
    }
    rows.push(row.map((v) => v / total));
  }
  return rows;
};
const rowsOf = (m: Matrix): number[][] =>
  Array.from(
    { length: m.rows },
    (_, i) => Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)),
  );
const flat = (rows: number[][]): number[] => rows.flat();

/** Apply 1-D matrices to an [N,H,W,C] array in float64: out = Rh · X · Rwᵀ per image/channel. */
const resizeRef = (
  x: Float64Array,
  shape: readonly [number, number, number, number],
  rh: number[][],
  rw: number[][],
): Float64Array => {
  const [n, h, w, c] = shape;
  const oh = rh.length;
  const ow = rw.length;
  const out = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let p = 0; p < h; p++) {
            for (let q = 0; q < w; q++) {
              s += rh[i][p] * rw[j][q] * x[((b * h + p) * w + q) * c + ch];
            }
          }
          out[((b * oh + i) * ow + j) * c + ch] = s;
        }
      }
    }
  }
  return out;
};

// Hand-derived weights (see the derivations below).
// k(0.25) = 0.8671875, k(0.75) = 0.2265625, k(1.25) = −0.0703125, k(1.75) = −0.0234375.
// 4 → 2 (scale ½, widened kernel h(t) = ½k(t/2), 8 taps): output 1 sits at u = 1.5 (1-based);
// taps at distances ±0.5, ±1.5, ±2.5, ±3.5 have weights ½k(.25), ½k(.75), ½k(1.25),
// ½k(1.75); mirror padding folds index 0 → 1, −1 → 2, −2 → 3, 5 → 4. Summing per pixel:
const DOWN_4_2_ROW0 = [
  (0.2265625 + 0.8671875) / 2, // pixel 1: taps at 0 (mirror) and 1
  (-0.0703125 + 0.8671875) / 2, // pixel 2: taps at −1 (mirror) and 2
  (-0.0234375 + 0.2265625) / 2, // pixel 3: taps at −2 (mirror) and 3
  (-0.0703125 - 0.0234375) / 2, // pixel 4: taps at 4 and 5 (mirror)
]; // = [0.546875, 0.3984375, 0.1015625, −0.046875]
// 4 → 8 (scale 2, plain kernel): u = x/2 + 0.25 → 0.75, 1.25, 1.75, 2.25 for x = 1..4.
const UP_4_8_ROWS_0_3 = [
  [0.2265625 + 0.8671875, -0.0234375 - 0.0703125, 0, 0], // taps −1→2, 0→1, 1, 2
  [-0.0703125 + 0.8671875, 0.2265625, -0.0234375, 0], // taps 0→1, 1, 2, 3
  [-0.0234375 + 0.2265625, 0.8671875, -0.0703125, 0], // taps 0→1, 1, 2, 3
  [-0.0703125, 0.8671875, 0.2265625, -0.0234375], // taps 1, 2, 3, 4
];

Deno.test("resizeMatrix: 4→2 and 4→8 weights equal the hand-computed kernel values", () => {
  const down = resizeMatrix(4, 2);
  assert.equal(down.rows, 2);
  assert.equal(down.cols, 4);
  const wantDown = [...DOWN_4_2_ROW0, ...[...DOWN_4_2_ROW0].reverse()];
  assert.ok(maxAbsDiff(down.data, wantDown) < 1e-15, `4→2: ${down.data}`);
  // MATLAB: imresize([1 2 3 4], [1 2]) = [1.4609 3.5391].
  const v = [1, 2, 3, 4];
  const y = [0, 1].map((i) => v.reduce((s, x, j) => s + x * down.data[i * 4 + j], 0));
  assert.ok(maxAbsDiff(y, [1.4609375, 3.5390625]) < 1e-12, `imresize([1 2 3 4], 0.5) = ${y}`);

  const up = resizeMatrix(4, 8);
  const mirrorRow = (r: number[]) => [...r].reverse();
  const wantUp = [
    ...UP_4_8_ROWS_0_3,
    ...[...UP_4_8_ROWS_0_3].reverse().map(mirrorRow),
  ];
  assert.ok(maxAbsDiff(up.data, flat(wantUp)) < 1e-15, `4→8: ${up.data}`);
});

Deno.test("resizeMatrix matches the independent formula; rows sum to 1 (property)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), (n, m) => {
      const r = resizeMatrix(n, m);
      const want = refMatrix(n, m);
      assert.ok(maxAbsDiff(r.data, flat(want)) < 1e-12, `${n}→${m}`);
      for (const row of rowsOf(r)) {
        assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12, `${n}→${m} row sum`);
      }
    }),
    { seed: 42, numRuns: 150 },
  );
  // Same size is the identity.
  const id = resizeMatrix(5, 5);
  assert.deepEqual(Array.from(id.data), flat(refMatrix(5, 5)));
  assert.deepEqual(rowsOf(id).map((r) => r.indexOf(1)), [0, 1, 2, 3, 4]);
  // An explicit scale (imresize(x, 1/3) on 10 pixels: ceil(10/3) = 4 outputs).
  assert.ok(maxAbsDiff(resizeMatrix(10, 4, 1 / 3).data, flat(refMatrix(10, 4, 1 / 3))) < 1e-12);
  assert.throws(() => resizeMatrix(0, 3), /resizeMatrix: inSize must be a positive integer/);
});

Deno.test("resizeMatrix: ×2 down twice ≈ ×4 down on a smooth signal (within 2e-3)", () => {
  const n = 64;
  const sig = Array.from(
    { length: n },
    (_, i) => Math.sin((2 * Math.PI * i) / n) + 0.3 * Math.cos((4 * Math.PI * i) / n),
  );
  const apply = (m: Matrix, v: number[]) =>
    rowsOf(m).map((row) => row.reduce((s, w, j) => s + w * v[j], 0));
  const twice = apply(resizeMatrix(32, 16), apply(resizeMatrix(64, 32), sig));
  const once = apply(resizeMatrix(64, 16), sig);
  const d = maxAbsDiff(twice, once);
  assert.ok(d < 2e-3, `max |down2∘down2 − down4| = ${d}`); // measured 8.8e-4
});

Deno.test(
  "bicubicResize: matches the float64 reference (down H, up W, odd sizes)",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("bicubicResize", async () => {
      const shape = [2, 7, 5, 3] as const;
      const x = tf.randomUniform([...shape], 0, 1, "float32", 7) as tf.Tensor4D;
      const y = bicubicResize(x, [3, 11]);
      assert.deepEqual(y.shape, [2, 3, 11, 3]);
      const want = resizeRef(await read(x), shape, refMatrix(7, 3), refMatrix(5, 11));
      const d = maxAbsDiff(await read(y), want);
      assert.ok(d < 1e-5, `max diff ${d}`);
      tf.dispose([x, y]);
    });
  },
);

Deno.test("bicubicDownscale: ×2 twice ≈ ×4 on a smooth image (within 2e-3)", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("down2∘down2", async () => {
    const n = 32;
    const v: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        v.push(0.5 + 0.3 * Math.sin((2 * Math.PI * i) / n) * Math.cos((2 * Math.PI * j) / n));
      }
    }
    const x = tf.tensor4d(v, [1, n, n, 1]);
    const h = bicubicDownscale(x, 2);
    const twice = bicubicDownscale(h, 2);
    const once = bicubicDownscale(x, 4);
    assert.deepEqual(twice.shape, [1, 8, 8, 1]);
    const d = maxAbsDiff(await read(twice), await read(once));
    assert.ok(d < 2e-3, `max |down2∘down2 − down4| = ${d}`); // measured 6.5e-4
    // Not trivially close: ×4 of the image differs from the image's own samples.
    const sub = Array.from({ length: 64 }, (_, k) => v[(4 * (k >> 3) + 2) * n + 4 * (k & 7) + 2]);
    assert.ok(maxAbsDiff(await read(once), sub) > 0.01);
    tf.dispose([x, h, twice, once]);
  });
});

Deno.test(
  "bicubicResize: constant images stay constant (up and down, odd sizes)",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("constant", async () => {
      const x = tf.fill([1, 9, 6, 2], 0.37) as tf.Tensor4D;
      for (const size of [[4, 13], [17, 3], [9, 6]] as const) {
        const y = bicubicResize(x, size);
        assert.deepEqual(y.shape, [1, size[0], size[1], 2]);
        const d = maxAbsDiff(await read(y), new Array(y.size).fill(0.37));
        assert.ok(d < 1e-6, `${size}: ${d}`);
        y.dispose();
      }
      const z = bicubicDownscale(x, 3);
      assert.deepEqual(z.shape, [1, 3, 2, 2]);
      assert.ok(maxAbsDiff(await read(z), new Array(z.size).fill(0.37)) < 1e-6);
      tf.dispose([x, z]);
    });
  },
);

Deno.test("bicubicDownscale ×2 removes a ±1 checkerboard (antialiasing)", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("checkerboard", async () => {
    const n = 16;
    const s = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1 : -1));
    const board = tf.tensor4d(s.flatMap((a) => s.map((b) => a * b)), [1, n, n, 1]);
    const y = bicubicDownscale(board, 2);
    // 1-D: the widened kernel (8 taps at distances ±½, ±3/2, ±5/2, ±7/2 with weights
    // ½k(¼), ½k(¾), ½k(5/4), ½k(7/4)) pairs taps of opposite sign around each output
    // centre, so the ±1 alternation cancels, except near the borders where mirror
    // padding repeats the edge pixel. Output 1 (u = 1.5): the pairs at ±3/2, ±5/2, ±7/2
    // land on equal signs: r₀ = 2·(½k(¾) − ½k(5/4) + ½k(7/4)) = 0.2734375.
    // Output 2 (u = 3.5): only the pair at ±7/2 (taps 0 → 1 and 7) does: r₁ = 2·½k(7/4).
    const a = 0.2265625 + 0.0703125 - 0.0234375; // 0.2734375
    const b = -0.0234375;
    const r = [a, b, 0, 0, 0, 0, -b, -a];
    const want = r.flatMap((u) => r.map((v) => u * v));
    const got = await read(y);
    assert.ok(maxAbsDiff(got, want) < 1e-6, `got ${got}`);
    // Naive subsampling keeps the full-amplitude checkerboard (+1 everywhere).
    const naive = tf.tidy(() =>
      tf.slice(tf.reshape(board, [n / 2, 2, n / 2, 2]), [0, 0, 0, 0], [n / 2, 1, n / 2, 1])
    );
    assert.ok((await read(naive)).every((v) => v === 1));
    tf.dispose([board, y, naive]);
  });
});

Deno.test("bicubicResize: 1-D MATLAB example and its gradient", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("gradient", async () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 1, 4, 1]);
    const y = bicubicResize(x, [1, 2]);
    assert.ok(maxAbsDiff(await read(y), [1.4609375, 3.5390625]) < 1e-6);
    // d/dx Σ g·resize(x) = Rhᵀ · G · Rw for a 2-D image.
    const shape = [1, 6, 5, 1] as const;
    const img = tf.randomUniform([...shape], 0, 1, "float32", 3) as tf.Tensor4D;
    const g = tf.randomNormal([1, 4, 9, 1], 0, 1, "float32", 4) as tf.Tensor4D;
    const grad = tf.grad((t: tf.Tensor) =>
      tf.sum(tf.mul(bicubicResize(t as tf.Tensor4D, [4, 9]), g))
    )(img);
    const rh = refMatrix(6, 4);
    const rw = refMatrix(5, 9);
    const gv = await read(g);
    const want: number[] = [];
    for (let p = 0; p < 6; p++) {
      for (let q = 0; q < 5; q++) {
        let s = 0;
        for (let i = 0; i < 4; i++) {
          for (let j = 0; j < 9; j++) s += rh[i][p] * rw[j][q] * gv[i * 9 + j];
        }
        want.push(s);
      }
    }
    const d = maxAbsDiff(await read(grad), want);
    assert.ok(d < 1e-5, `gradient max diff ${d}`);
    tf.dispose([x, y, img, g, grad]);
  });
});

Deno.test("bicubicResize runs on wasm with the same values", gpuTest, async () => {
  await useBackend("wasm");
  try {
    await noLeak("wasm", async () => {
      const shape = [1, 6, 8, 2] as const;
      const x = tf.randomUniform([...shape], -1, 1, "float32", 11) as tf.Tensor4D;
      const y = bicubicDownscale(x, 2);
      const want = resizeRef(await read(x), shape, refMatrix(6, 3), refMatrix(8, 4));
      assert.ok(maxAbsDiff(await read(y), want) < 1e-5);
      tf.dispose([x, y]);
    });
  } finally {
    await useBackend("webgpu");
  }
});

Deno.test("resize: cache holds no tensors; errors name the function", gpuTest, async () => {
  await useBackend("webgpu");
  clearResizeCache();
  assert.equal(resizeCacheSize(), 0);
  const before = tf.memory().numTensors;
  const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  const y = bicubicResize(x, [2, 8]);
  assert.equal(resizeCacheSize(), 2);
  tf.dispose([x, y]);
  assert.equal(tf.memory().numTensors, before);
  clearResizeCache();
  assert.equal(resizeCacheSize(), 0);
  const x3 = tf.zeros([4, 4, 1]);
  assert.throws(
    () => bicubicResize(x3 as unknown as tf.Tensor4D, [2, 2]),
    /bicubicResize: expected an NHWC tensor of rank 4, got \[4, 4, 1\]/,
  );
  const x4 = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
  assert.throws(
    () => bicubicResize(x4, [0, 2]),
    /bicubicResize: output size must be two positive integers/,
  );
  assert.throws(
    () => bicubicDownscale(x4, 0.5),
    /bicubicDownscale: factor must be a finite number ≥ 1/,
  );
  tf.dispose([x3, x4]);
});
