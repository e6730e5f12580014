import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import {
  defaultFeatureBlocks,
  type EncoderConfig,
  type EncoderParams,
  paperEncoderConfig,
  resizeFeatures,
  rrdbEncoder,
} from "../src/model/encoder.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { bicubicDownscale } from "../src/image/resize.ts";
import { disposeParams, flattenParams, leaves, unflattenLike } from "../src/core/params.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

const small: EncoderConfig = { nf: 4, nb: 2, gc: 2 };

// ---------------------------------------------------------------------------------------
// Independent float64 reference of the ESRGAN RRDB trunk (one image, HWC arrays).
interface Img {
  h: number;
  w: number;
  c: number;
  d: Float64Array;
}
interface RefConv {
  w: Float64Array; // [3,3,cin,cout]
  b: Float64Array;
  cin: number;
  cout: number;
}
const conv3 = (x: Img, p: RefConv): Img => {
  assert.equal(x.c, p.cin);
  const out = new Float64Array(x.h * x.w * p.cout);
  for (let i = 0; i < x.h; i++) {
    for (let j = 0; j < x.w; j++) {
      for (let o = 0; o < p.cout; o++) {
        let s = p.b[o];
        for (let di = 0; di < 3; di++) {
          for (let dj = 0; dj < 3; dj++) {
            const ii = i + di - 1;
            const jj = j + dj - 1;
            if (ii < 0 || jj < 0 || ii >= x.h || jj >= x.w) continue;
            for (let c = 0; c < x.c; c++) {
              s += x.d[(ii * x.w + jj) * x.c + c] * p.w[((di * 3 + dj) * p.cin + c) * p.cout + o];
            }
          }
        }
        out[(i * x.w + j) * p.cout + o] = s;
      }
    }
  }
  return { h: x.h, w: x.w, c: p.cout, d: out };
};
const cat = (xs: Img[]): Img => {
  const c = xs.reduce((n, x) => n + x.c, 0);
  const { h, w } = xs[0];
  const d = new Float64Array(h * w * c);
  for (let k = 0; k < h * w; k++) {
    let off = 0;
    for (const x of xs) {
      for (let q = 0; q < x.c; q++) d[k * c + off + q] = x.d[k * x.c + q];
      off += x.c;
    }
  }
  return { h, w, c, d };
};
const lrelu = (x: Img): Img => ({ ...x, d: x.d.map((v) => (v >= 0 ? v : 0.2 * v)) });
const axpy = (a: number, x: Img, y: Img): Img => ({ ...y, d: y.d.map((v, k) => a * x.d[k] + v) });

const toRef = async (p: { w: tf.Tensor4D; b: tf.Tensor1D }): Promise<RefConv> => ({
  w: await read(p.w),
  b: await read(p.b),
  cin: p.w.shape[2],
  cout: p.w.shape[3],
});

const refEncoder = async (
  p: EncoderParams,
  blocksOut: readonly number[],
  x: Img,
): Promise<Img> => {
  let fea = conv3(x, await toRef(p.convFirst));
  const saved: Img[] = [];
  for (let bi = 0; bi < p.blocks.length; bi++) {
    const blockIn = fea;
    let t = fea;
    for (const rdb of [p.blocks[bi].rdb1, p.blocks[bi].rdb2, p.blocks[bi].rdb3]) {
      const x0 = t;
      const x1 = lrelu(conv3(x0, await toRef(rdb.conv1)));
      const x2 = lrelu(conv3(cat([x0, x1]), await toRef(rdb.conv2)));
      const x3 = lrelu(conv3(cat([x0, x1, x2]), await toRef(rdb.conv3)));
      const x4 = lrelu(conv3(cat([x0, x1, x2, x3]), await toRef(rdb.conv4)));
      const x5 = conv3(cat([x0, x1, x2, x3, x4]), await toRef(rdb.conv5));
      t = axpy(0.2, x5, x0);
    }
    fea = axpy(0.2, t, blockIn);
    saved[bi] = fea;
  }
  const last = axpy(1, conv3(fea, await toRef(p.trunkConv)), fea);
  return cat([last, ...blocksOut.map((b) => saved[b])]);
};

Deno.test("rrdbEncoder: config arithmetic (paper 320 channels, default blocks)", () => {
  assert.deepEqual(defaultFeatureBlocks(23), [1, 8, 15, 22]);
  assert.deepEqual(defaultFeatureBlocks(2), [0, 1]);
  assert.deepEqual(defaultFeatureBlocks(4), [1, 2, 3]);
  assert.equal(rrdbEncoder.outChannels(paperEncoderConfig), 320);
  assert.equal(rrdbEncoder.outChannels({ nf: 64, nb: 23, gc: 32 }), 320);
  assert.equal(rrdbEncoder.outChannels(small), 12);
  assert.equal(rrdbEncoder.outChannels({ ...small, featureBlocks: [] }), 4);
  assert.throws(
    () => rrdbEncoder.outChannels({ ...small, featureBlocks: [2] }),
    /featureBlocks entry 2 is not a block index in \[0, 1\]/,
  );
  assert.throws(() => rrdbEncoder.outChannels({ ...small, featureBlocks: [1, 1] }), /repeats/);
  assert.throws(() => rrdbEncoder.outChannels({ ...small, gc: 0 }), /config.gc must be/);
});

Deno.test(
  "rrdbEncoder: output matches a float64 reference of the RRDB trunk",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("encoder forward", async () => {
      const cfg: EncoderConfig = { ...small, featureBlocks: [1, 0] };
      const p0 = rrdbEncoder.init(5, cfg);
      // Zero biases and tiny 0.1-scaled dense-block weights make the blocks near-identity;
      // perturb every leaf so each path of the network shows in the output.
      const p = unflattenLike(
        p0,
        flattenParams(p0).map((n, i) =>
          tf.tidy(() =>
            tf.add(n.tensor, tf.randomNormal(n.tensor.shape, 0, 0.2, "float32", 100 + i))
          )
        ),
      );
      disposeParams(p0);
      const x = tf.randomUniform([2, 5, 6, 3], 0, 1, "float32", 9) as tf.Tensor4D;
      const y = rrdbEncoder.apply(p, cfg, x);
      assert.deepEqual(y.shape, [2, 5, 6, 12]);
      const xs = await read(x);
      const ys = await read(y);
      for (let b = 0; b < 2; b++) {
        const img = { h: 5, w: 6, c: 3, d: xs.slice(b * 90, (b + 1) * 90) };
        const want = await refEncoder(p, [1, 0], img);
        const got = ys.slice(b * 5 * 6 * 12, (b + 1) * 5 * 6 * 12);
        const d = maxAbsDiff(got, want.d);
        const scale = Math.max(...want.d.map(Math.abs));
        assert.ok(d < 1e-4 * Math.max(1, scale), `image ${b}: max diff ${d} (scale ${scale})`);
      }
      disposeParams(p);
      tf.dispose([x, y]);
    });
  },
);

Deno.test("rrdbEncoder: shapes, determinism for a seed, init statistics", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("encoder init", async () => {
    const a = rrdbEncoder.init(42, small);
    const b = rrdbEncoder.init(42, small);
    const c = rrdbEncoder.init(43, small);
    const names = flattenParams(a).map((n) => n.path);
    assert.equal(names.length, 2 + 2 * 3 * 5 * 2 + 2);
    assert.ok(names.includes("blocks.1.rdb3.conv5.w"));
    assert.deepEqual(a.blocks[0].rdb2.conv4.w.shape, [3, 3, 4 + 3 * 2, 2]);
    assert.deepEqual(a.blocks[0].rdb2.conv5.w.shape, [3, 3, 4 + 4 * 2, 4]);
    const x = tf.randomUniform([1, 8, 8, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    const ya = rrdbEncoder.apply(a, small, x);
    const yb = rrdbEncoder.apply(b, small, x);
    const yc = rrdbEncoder.apply(c, small, x);
    assert.deepEqual(ya.shape, [1, 8, 8, rrdbEncoder.outChannels(small)]);
    const va = await read(ya);
    assert.deepEqual(va, await read(yb));
    assert.ok(maxAbsDiff(va, await read(yc)) > 1e-3);
    assert.ok(va.every(Number.isFinite));
    // 4 input channels.
    const p4 = rrdbEncoder.init(1, small, 4);
    const x4 = tf.zeros([1, 4, 4, 4]) as tf.Tensor4D;
    const y4 = rrdbEncoder.apply(p4, small, x4);
    assert.deepEqual(y4.shape, [1, 4, 4, 12]);
    assert.throws(
      () => rrdbEncoder.apply(a, small, x4),
      /rrdbEncoder: input has 4 channels, expected 3/,
    );
    assert.throws(
      () => rrdbEncoder.apply(a, { ...small, nb: 3 }, x),
      /parameters have 2 blocks but config.nb is 3/,
    );
    tf.dispose([x, ya, yb, yc, x4, y4]);
    for (const p of [a, b, c, p4]) disposeParams(p);
  });
  // Kaiming-normal (fan-in) × 0.1 inside the dense blocks; plain Kaiming outside.
  await noLeak("init statistics", async () => {
    const cfg: EncoderConfig = { nf: 16, nb: 1, gc: 8 };
    const p = rrdbEncoder.init(3, cfg);
    const std = async (t: tf.Tensor) => {
      const v = await read(t);
      const m = v.reduce((s, u) => s + u, 0) / v.length;
      return Math.sqrt(v.reduce((s, u) => s + (u - m) ** 2, 0) / v.length);
    };
    const s5 = await std(p.blocks[0].rdb1.conv5.w); // cin = 16 + 32 = 48
    const want5 = 0.1 * Math.sqrt(2 / (9 * 48));
    assert.ok(Math.abs(s5 / want5 - 1) < 0.1, `rdb conv5 std ${s5} vs ${want5}`);
    const st = await std(p.trunkConv.w);
    const wantT = Math.sqrt(2 / (9 * 16));
    assert.ok(Math.abs(st / wantT - 1) < 0.1, `trunk std ${st} vs ${wantT}`);
    assert.ok((await read(p.blocks[0].rdb1.conv5.b)).every((v) => v === 0));
    disposeParams(p);
  });
});

Deno.test(
  "rrdbEncoder: gradients w.r.t. every parameter are finite and non-zero",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const p = rrdbEncoder.init(7, small);
    const x = tf.randomUniform([1, 8, 8, 3], 0, 1, "float32", 2) as tf.Tensor4D;
    await noLeak("encoder grads", async () => {
      const named = flattenParams(p);
      const { value, grads } = tf.tidy(() =>
        tf.valueAndGrads((...ts: tf.Tensor[]) => {
          const q = unflattenLike(p, ts);
          const y = rrdbEncoder.apply(q, small, x);
          return tf.mean(tf.square(y)) as tf.Scalar;
        })(leaves(p))
      );
      assert.equal(grads.length, named.length);
      assert.ok(Number.isFinite((await read(value))[0]));
      for (let i = 0; i < grads.length; i++) {
        const g = await read(grads[i]);
        assert.ok(g.every(Number.isFinite), `${named[i].path}: non-finite gradient`);
        const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
        assert.ok(norm > 0, `${named[i].path}: zero gradient`);
      }
      tf.dispose([value, ...grads]);
    });
    disposeParams(p);
    x.dispose();
  },
);

Deno.test(
  "resizeFeatures: shapes for each flow level, values of a constant map",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("resizeFeatures", async () => {
      const f = tf.fill([2, 8, 8, 5], 1.5) as tf.Tensor4D;
      for (const s of [[16, 16], [8, 8], [4, 4], [2, 3]] as const) {
        const r = resizeFeatures(f, s);
        assert.deepEqual(r.shape, [2, s[0], s[1], 5]);
        assert.ok(maxAbsDiff(await read(r), new Array(r.size).fill(1.5)) < 1e-5);
        r.dispose();
      }
      const bad = tf.zeros([8, 8, 5]);
      assert.throws(
        () => resizeFeatures(bad as unknown as tf.Tensor4D, [4, 4]),
        /resizeFeatures: features: expected an NHWC tensor of rank 4/,
      );
      tf.dispose([f, bad]);
    });
  },
);

/** MATLAB's cubic kernel, a = −0.5. */
const cubic = (t: number): number => {
  const a = Math.abs(t);
  if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
};

/** 1-D antialiased bicubic weights of output `i` for a 1/`k` downscale of `n` samples. */
const taps = (i: number, n: number, k: number): [number, number][] => {
  const u = (i + 0.5) * k - 0.5; // output centre in input coordinates (0-based)
  const out: [number, number][] = [];
  let total = 0;
  for (let j = Math.floor(u - 2 * k) - 1; j <= Math.ceil(u + 2 * k) + 1; j++) {
    const w = cubic((u - j) / k) / k;
    if (w === 0) continue;
    const m = j < 0 ? -j - 1 : j >= n ? 2 * n - 1 - j : j; // symmetric mirror
    out.push([m, w]);
    total += w;
  }
  return out.map(([m, w]) => [m, w / total]);
};

/** imresize(x, 1/k, 'bicubic') of an NHWC [1, h, w, 3] image, float64. */
const imresizeDown = (x: ArrayLike<number>, h: number, w: number, k: number): Float64Array => {
  const oh = h / k, ow = w / k;
  const rows = new Float64Array(oh * w * 3);
  for (let i = 0; i < oh; i++) {
    for (const [m, wt] of taps(i, h, k)) {
      for (let j = 0; j < w * 3; j++) rows[i * w * 3 + j] += wt * x[m * w * 3 + j];
    }
  }
  const out = new Float64Array(oh * ow * 3);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      for (const [m, wt] of taps(j, w, k)) {
        for (let c = 0; c < 3; c++) out[(i * ow + j) * 3 + c] += wt * rows[(i * w + m) * 3 + c];
      }
    }
  }
  return out;
};

Deno.test("conditionInput: bicubic ×k plus seeded N(0, σ²) noise", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("conditionInput", async () => {
    const x = tf.randomUniform([1, 32, 24, 3], 0, 1, "float32", 4) as tf.Tensor4D;
    const down = bicubicDownscale(x, 4);
    const clean = conditionInput(x, { factor: 4, noiseStd: 0, seed: 1 });
    assert.deepEqual(clean.shape, [1, 8, 6, 3]);
    const dv = await read(down);
    assert.deepEqual(await read(clean), dv);
    // Independent float64 MATLAB imresize(x, 1/4, 'bicubic'): antialiased cubic (a = −0.5)
    // widened by 4, symmetric mirroring at the borders, rows then columns.
    const ref = imresizeDown(await read(x), 32, 24, 4);
    const err = maxAbsDiff(dv, ref);
    assert.ok(err < 2e-6, `conditionInput vs float64 imresize: ${err}`);
    const a = conditionInput(x, { factor: 4, seed: 1 });
    const b = conditionInput(x, { factor: 4, seed: 1 });
    const c = conditionInput(x, { factor: 4, seed: 2 });
    const av = await read(a);
    assert.deepEqual(av, await read(b));
    assert.ok(maxAbsDiff(av, await read(c)) > 1e-3);
    // The noise a − down: mean ≈ 0 and std ≈ 0.03 (default σ) over 144 samples (~3 SE).
    const n = av.map((v, i) => v - dv[i]);
    const mean = n.reduce((s, v) => s + v, 0) / n.length;
    const std = Math.sqrt(n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length);
    assert.ok(Math.abs(mean) < 0.008, `noise mean ${mean}`);
    assert.ok(Math.abs(std - 0.03) < 0.006, `noise std ${std}`);
    const e8 = conditionInput(x, { factor: 8, noiseStd: 0, seed: 0 });
    assert.deepEqual(e8.shape, [1, 4, 3, 3]);
    const odd = tf.zeros([1, 12, 10, 3]) as tf.Tensor4D;
    assert.throws(
      () => conditionInput(odd, { factor: 4, seed: 0 }),
      /conditionInput: height 12 and width 10 must be divisible by the factor 4/,
    );
    assert.throws(
      () => conditionInput(x, { factor: 3 as 4, seed: 0 }),
      /conditionInput: factor must be 2, 4 or 8, got 3/,
    );
    assert.throws(
      () => conditionInput(x, { factor: 4, noiseStd: -1, seed: 0 }),
      /noiseStd must be finite and ≥ 0/,
    );
    tf.dispose([x, down, clean, a, b, c, e8, odd]);
  });
});
