/**
 * Unit tests of the flow layers: round trips with non-trivial parameters, log-dets
 * against a brute-force Jacobian (one gradient over a batch of D copies, float64
 * slogdet), hand-built references, shape errors and tensor leaks. Runs on WebGPU.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import type { Bijector } from "../src/core/bijector.ts";
import { ShapeError } from "../src/core/errors.ts";
import {
  disposeParams,
  flattenParams,
  isTrainablePath,
  mapParams,
  type ParamTree,
  unflattenLike,
} from "../src/core/params.ts";
import { foldIn, normals, rng } from "../src/core/random.ts";
import * as la from "../src/linalg/dense.ts";
import { actNorm } from "../src/layers/actNorm.ts";
import { invConv1x1 } from "../src/layers/invConv1x1.ts";
import { affineCoupling } from "../src/layers/affineCoupling.ts";
import { affineInjector } from "../src/layers/affineInjector.ts";
import { squeeze } from "../src/layers/squeeze.ts";
import { split, type SplitParams } from "../src/layers/split.ts";
import { flowStep, transitionStep } from "../src/layers/flowStep.ts";
import { convNet } from "../src/nn/convNet.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

// ---------- helpers ----------

/** Add `scale · N(0,1)` to every trainable leaf (const leaves are shared, not copied). */
const perturb = <T extends ParamTree>(tree: T, seed: number, scale: number): T => {
  let k = 0;
  return mapParams(
    tree,
    (t, path) =>
      isTrainablePath(path)
        ? tf.tidy(() => tf.add(t, tf.randomNormal(t.shape, 0, scale, "float32", foldIn(seed, k++))))
        : t,
  );
};

/** Dispose a perturbed tree (its const leaves belong to the original). */
const disposeTrainable = (tree: ParamTree): void => {
  mapParams(tree, (t, path) => {
    if (isTrainablePath(path)) t.dispose();
    return t;
  });
};

const randn = (shape: [number, number, number, number], seed: number): tf.Tensor4D =>
  tf.randomNormal(shape, 0, 1, "float32", seed) as tf.Tensor4D;

/**
 * log|det ∂y/∂x| of `f` at a single sample `x` ([1, h, w, c]) by brute force: D copies of
 * `x`, one vector-Jacobian product with the identity rows gives the full D×D Jacobian,
 * then slogdet in float64.
 */
const bruteLogDet = async (
  f: (x: tf.Tensor4D) => tf.Tensor4D,
  x: tf.Tensor4D,
): Promise<number> => {
  const [, h, w, c] = x.shape;
  const d = h * w * c;
  const g = tf.tidy(() => {
    const xs = tf.tile(x, [d, 1, 1, 1]) as tf.Tensor4D;
    const grad = tf.grad((v: tf.Tensor) => {
      const y = f(v as tf.Tensor4D);
      assert.equal(y.size, d * d, "bruteLogDet: output size must equal input size");
      return tf.sum(tf.mul(tf.reshape(y, [d, d]), tf.eye(d)));
    });
    return grad(xs);
  });
  const jac = la.matrix(d, d, await read(g));
  g.dispose();
  const { sign, logAbsDet } = la.slogdet(jac);
  assert.notEqual(sign, 0, "Jacobian is singular");
  return logAbsDet;
};

/** Forward log-det of `b` at `x` vs brute force; also checks the inverse gives −it. */
const checkLogDet = async (
  b: Bijector,
  x: tf.Tensor4D,
  cond?: tf.Tensor4D,
  tol = 2e-3,
): Promise<number> => {
  const expected = await bruteLogDet((v) => {
    const c = cond && tf.tile(cond, [v.shape[0], 1, 1, 1]) as tf.Tensor4D;
    const r = b.forward(v, c);
    r.logDet.dispose();
    return r.y;
  }, x);
  const r = b.forward(x, cond);
  const got = (await read(r.logDet))[0];
  tf.dispose([r.y, r.logDet]);
  assert.ok(
    Math.abs(got - expected) < tol * Math.max(1, Math.abs(expected)),
    `${b.name}: logDet ${got} vs brute-force ${expected}`,
  );
  return expected;
};

/** forward then inverse gives x back; inverse log-det is minus the forward one. */
const checkRoundTrip = async (
  b: Bijector,
  x: tf.Tensor4D,
  cond?: tf.Tensor4D,
  tol = 1e-4,
): Promise<void> => {
  const f = b.forward(x, cond);
  const i = b.inverse(f.y, cond);
  const [xv, yv, bv, ldf, ldi] = await Promise.all([x, f.y, i.y, f.logDet, i.logDet].map(read));
  tf.dispose([f.y, f.logDet, i.y, i.logDet]);
  assert.ok(maxAbsDiff(xv, bv) < tol, `${b.name}: round trip error ${maxAbsDiff(xv, bv)}`);
  assert.ok(maxAbsDiff(xv, yv) > 1e-2, `${b.name}: forward is (nearly) the identity`);
  assert.ok(ldf.every((v) => Math.abs(v) > 1e-3), `${b.name}: log-det is zero: ${ldf}`);
  assert.ok(
    maxAbsDiff(ldf, ldi.map((v) => -v)) < 1e-3 * Math.max(1, ...ldf.map(Math.abs)),
    `${b.name}: inverse log-det ${ldi} is not minus ${ldf}`,
  );
};

/** `f` throws a ShapeError matching `pattern`; tensors it creates are disposed (tidy). */
const throwsShape = (f: () => unknown, pattern: RegExp): void =>
  assert.throws(
    () => tf.tidy(() => void f()),
    (e: unknown) => e instanceof ShapeError && pattern.test(e.message),
  );

// ---------- actNorm ----------

Deno.test("actNorm: data init normalises, round trip, log-det, shape error", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("actNorm", async () => {
    const x = tf.tidy(() => tf.add(tf.mul(randn([3, 2, 3, 4], 1), [1, 2, 0.5, 3]), [1, -2, 0, 4]));
    const p = actNorm.initFromData(x as tf.Tensor4D);
    const b = actNorm.bijector(p);
    const r = b.forward(x as tf.Tensor4D);
    const { mean, variance } = tf.moments(r.y, [0, 1, 2]);
    assert.ok(maxAbsDiff(await read(mean), [0, 0, 0, 0]) < 1e-4);
    assert.ok(maxAbsDiff(await read(variance), [1, 1, 1, 1]) < 1e-3);
    // log-det = H·W·Σ logs, computed here from the parameter values
    const logs = await read(p.logs);
    const want = 2 * 3 * logs.reduce((a, v) => a + v, 0);
    assert.ok(maxAbsDiff(await read(r.logDet), [want, want, want]) < 1e-3);
    await checkRoundTrip(b, x as tf.Tensor4D);
    const x1 = tf.slice(x, [0, 0, 0, 0], [1, 2, 2, 4]) as tf.Tensor4D;
    await checkLogDet(b, x1);
    const bad = tf.zeros([1, 2, 2, 5]) as tf.Tensor4D;
    throwsShape(() => b.forward(bad), /^actNorm: input has 5 channels, expected 4/);
    const z = actNorm.init({ channels: 8 });
    throwsShape(
      () => actNorm.bijector(z).forward(bad),
      /actNorm: input has 5 channels, expected 8/,
    );
    tf.dispose([x, x1, r.y, r.logDet, mean, variance, bad]);
    disposeParams(p);
    disposeParams(z);
  });
});

// ---------- invConv1x1 ----------

Deno.test(
  "invConv1x1: init W = P·L·U is orthogonal and matches the stored factors",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("invConv1x1 init", async () => {
      const c = 6;
      const p = invConv1x1.init({ channels: c, seed: 7 });
      const w = invConv1x1.weight(p);
      const W = la.matrix(c, c, await read(w));
      assert.ok(la.maxAbsDiff(la.matmul(W, la.transpose(W)), la.eye(c)) < 1e-5, "W·Wᵀ ≠ I");
      // rebuild W in float64 from the stored factors
      const P = la.matrix(c, c, await read(p.const.perm));
      const Lr = await read(p.lower);
      const Ur = await read(p.upper);
      const s = await read(p.logS);
      const sg = await read(p.const.sign);
      const L = la.eye(c).data.slice();
      const U = new Float64Array(c * c);
      for (let i = 0; i < c; i++) {
        for (let j = 0; j < c; j++) {
          if (j < i) L[i * c + j] = Lr[i * c + j];
          if (j > i) U[i * c + j] = Ur[i * c + j];
        }
        U[i * c + i] = sg[i] * Math.exp(s[i]);
        assert.ok(sg[i] === 1 || sg[i] === -1);
      }
      const W2 = la.matmul(P, la.matmul(la.matrix(c, c, L), la.matrix(c, c, U)));
      assert.ok(la.maxAbsDiff(W, W2) < 1e-5);
      // P is a permutation matrix
      for (let i = 0; i < c; i++) {
        let row = 0;
        for (let j = 0; j < c; j++) row += la.at(P, i, j);
        assert.equal(row, 1);
      }
      // W is exactly Q of the QR of the seeded Gaussian matrix (not merely some rotation)
      const { q: Q } = la.qr(la.matrix(c, c, normals(rng(7), c * c)[0]));
      assert.ok(la.maxAbsDiff(W, Q) < 1e-6, "W is not the Q factor of the seeded matrix");
      // seeded: same seed, same W; other seed, other W
      const q = invConv1x1.init({ channels: c, seed: 7 });
      const r = invConv1x1.init({ channels: c, seed: 8 });
      const wq = invConv1x1.weight(q);
      const wr = invConv1x1.weight(r);
      assert.equal(maxAbsDiff(await read(wq), W.data), 0);
      assert.ok(maxAbsDiff(await read(wr), W.data) > 1e-2);
      tf.dispose([w, wq, wr]);
      for (const t of [p, q, r]) disposeParams(t);
    });
  },
);

Deno.test(
  "invConv1x1: forward is per-pixel W·x, round trip, log-det, WebGPU inverse guard",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("invConv1x1", async () => {
      const c = 4;
      const p0 = invConv1x1.init({ channels: c, seed: 3 });
      const p1 = perturb(p0, 11, 0.2);
      const b1 = invConv1x1.bijector(p1);
      const x = randn([2, 2, 3, c], 5);
      // forward against a float64 matrix-vector product per pixel
      const w = invConv1x1.weight(p1);
      const W = la.matrix(c, c, await read(w));
      const xv = await read(x);
      const r = b1.forward(x);
      const yv = await read(r.y);
      let err = 0;
      for (let pix = 0; pix < xv.length / c; pix++) {
        for (let i = 0; i < c; i++) {
          let s = 0;
          for (let k = 0; k < c; k++) s += la.at(W, i, k) * xv[pix * c + k];
          err = Math.max(err, Math.abs(s - yv[pix * c + i]));
        }
      }
      assert.ok(err < 1e-5, `forward error ${err}`);
      // without a precomputed inverse, the WebGPU inverse explains what to do
      assert.throws(() => b1.inverse(r.y), /invConv1x1\.withInverse/);
      const p2 = await invConv1x1.withInverse(p1);
      assert.equal(p1.const.inverse, undefined, "withInverse must not mutate its argument");
      const b2 = invConv1x1.bijector(p2);
      await checkRoundTrip(b2, x);
      const x1 = randn([1, 2, 2, c], 6);
      const brute = await checkLogDet(b2, x1);
      const s = await read(p1.logS);
      assert.ok(Math.abs(brute - 4 * s.reduce((a, v) => a + v, 0)) < 1e-3);
      throwsShape(
        () => b2.forward(tf.zeros([1, 1, 1, 3]) as tf.Tensor4D),
        /invConv1x1: input has 3 channels, expected 4/,
      );
      tf.dispose([x, x1, w, r.y, r.logDet, p2.const.inverse!]);
      disposeTrainable(p1);
      disposeParams(p0);
    });
  },
);

Deno.test(
  "invConv1x1: inverse without precomputed W⁻¹ works on the cpu backend",
  gpuTest,
  async () => {
    await useBackend("cpu");
    try {
      await noLeak("invConv1x1 cpu", async () => {
        const p0 = invConv1x1.init({ channels: 3, seed: 1 });
        const p = perturb(p0, 2, 0.3);
        const b = invConv1x1.bijector(p);
        const x = randn([1, 2, 2, 3], 3);
        await checkRoundTrip(b, x);
        tf.dispose(x);
        disposeTrainable(p);
        disposeParams(p0);
      });
    } finally {
      await useBackend("webgpu");
    }
  },
);

// ---------- convNet ----------

Deno.test("convNet: zero output at init, shapes, perturbed output non-zero", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("convNet", async () => {
    const p = convNet.init(1, { inChannels: 3, hidden: 8, outChannels: 4 });
    assert.deepEqual(p.conv1.w.shape, [3, 3, 3, 8]);
    assert.deepEqual(p.conv2.w.shape, [1, 1, 8, 8]);
    assert.deepEqual(p.conv3.w.shape, [3, 3, 8, 4]);
    const w1 = await read(p.conv1.w);
    const sd = Math.sqrt(w1.reduce((a, v) => a + v * v, 0) / w1.length);
    assert.ok(sd > 0.03 && sd < 0.07, `conv1 std ${sd}`);
    const x = randn([1, 3, 3, 3], 2);
    const y0 = convNet.apply(p, x);
    assert.deepEqual(y0.shape, [1, 3, 3, 4]);
    assert.equal(maxAbsDiff(await read(y0), new Float64Array(36)), 0);
    const q = perturb(p, 4, 0.3);
    const y1 = convNet.apply(q, x);
    assert.ok(maxAbsDiff(await read(y1), new Float64Array(36)) > 1e-2);
    // reference built from tf.conv2d, following the documented layer order
    const ref = tf.tidy(() => {
      const an = (v: tf.Tensor4D, n: { bias: tf.Tensor1D; logs: tf.Tensor1D }) =>
        tf.relu(tf.mul(tf.add(v, n.bias), tf.exp(n.logs))) as tf.Tensor4D;
      let v = an(tf.conv2d(x, q.conv1.w, 1, "same"), q.norm1);
      v = an(tf.conv2d(v, q.conv2.w, 1, "same"), q.norm2);
      v = tf.add(tf.conv2d(v, q.conv3.w, 1, "same"), q.conv3.b);
      return tf.mul(v, tf.exp(tf.mul(q.conv3.logs, 3)));
    });
    assert.ok(maxAbsDiff(await read(y1), await read(ref)) < 1e-5);
    throwsShape(
      () => convNet.apply(p, tf.zeros([1, 3, 3, 2]) as tf.Tensor4D),
      /conv1: input has 2 channels, expected 3/,
    );
    tf.dispose([x, y0, y1, ref]);
    disposeParams(p);
    disposeParams(q);
  });
});

// ---------- affineCoupling ----------

Deno.test("affineCoupling: formula vs a hand-written conditioner", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("coupling formula", async () => {
    // C = 3: z1 = channel 0, z2 = channels 1, 2; conditioner output [t0, r0, t1, r1]
    const cond = (z1: tf.Tensor4D, h: tf.Tensor4D | undefined) =>
      tf.tidy(() =>
        tf.concat([tf.mul(z1, 0.5), tf.add(z1, h!), tf.neg(z1), tf.mul(h!, 2)], 3)
      ) as tf.Tensor4D;
    const b = affineCoupling.fromConditioner(cond, { channels: 3, condChannels: 1, eps: 0.01 });
    const x = randn([2, 1, 2, 3], 1);
    const h = randn([2, 1, 2, 1], 2);
    // forward (image→latent): z₂/s − t, log-det −Σ log s; inverse: (z₂ + t)·s, +Σ log s
    const r = b.forward(x, h);
    const g = b.inverse(x, h);
    const [xv, hv, yv, ld, gv, gld] = await Promise.all(
      [x, h, r.y, r.logDet, g.y, g.logDet].map(read),
    );
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const want = new Float64Array(xv.length);
    const wantGen = new Float64Array(xv.length);
    const wantLd = [0, 0];
    for (let pix = 0; pix < 4; pix++) {
      const [a, b1, b2] = [xv[pix * 3], xv[pix * 3 + 1], xv[pix * 3 + 2]];
      const hh = hv[pix];
      const s1 = sig(a + hh + 2) + 0.01;
      const s2 = sig(2 * hh + 2) + 0.01;
      want[pix * 3] = wantGen[pix * 3] = a;
      want[pix * 3 + 1] = b1 / s1 - 0.5 * a;
      want[pix * 3 + 2] = b2 / s2 + a;
      wantGen[pix * 3 + 1] = (b1 + 0.5 * a) * s1;
      wantGen[pix * 3 + 2] = (b2 - a) * s2;
      wantLd[pix >> 1] -= Math.log(s1) + Math.log(s2);
    }
    assert.ok(maxAbsDiff(yv, want) < 1e-5);
    assert.ok(maxAbsDiff(ld, wantLd) < 1e-5);
    assert.ok(maxAbsDiff(gv, wantGen) < 1e-5);
    assert.ok(maxAbsDiff(gld, wantLd.map((v) => -v)) < 1e-5);
    throwsShape(
      () => b.forward(x, tf.zeros([2, 1, 2, 5]) as tf.Tensor4D),
      /affineCoupling: condition has 5 channels, expected 1/,
    );
    throwsShape(() => b.forward(x), /affineCoupling: a condition is required/);
    throwsShape(
      () => b.forward(tf.zeros([2, 1, 2, 4]) as tf.Tensor4D, h),
      /affineCoupling: input has 4 channels, expected 3/,
    );
    const badNet = affineCoupling.fromConditioner((z1) => tf.clone(z1), {
      channels: 3,
      condChannels: 0,
    });
    throwsShape(
      () => badNet.forward(x),
      /conditioner returned shape \[2, 1, 2, 1\], expected \[2, 1, 2, 4\]/,
    );
    tf.dispose([x, h, r.y, r.logDet, g.y, g.logDet]);
  });
});

Deno.test(
  "affineCoupling: conditional net round trip and brute-force log-det",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("coupling", async () => {
      const cfg = { channels: 4, condChannels: 2, hidden: 8 };
      const p0 = affineCoupling.init({ ...cfg, seed: 3 });
      assert.deepEqual(p0.net.conv1.w.shape, [3, 3, 4, 8]);
      assert.deepEqual(p0.net.conv3.w.shape, [3, 3, 8, 4]);
      const p = perturb(p0, 9, 0.3);
      const b = affineCoupling.bijector(p);
      const x = randn([2, 2, 2, 4], 1);
      const h = randn([2, 2, 2, 2], 2);
      await checkRoundTrip(b, x, h);
      const x1 = randn([1, 2, 2, 4], 3);
      const h1 = randn([1, 2, 2, 2], 4);
      await checkLogDet(b, x1, h1);
      throwsShape(
        () => b.forward(x, tf.zeros([2, 2, 2, 5]) as tf.Tensor4D),
        /affineCoupling: condition has 5 channels, expected 2/,
      );
      // sizes from the weights: these fit C = 4 (2 condition channels) or C = 3 (3)
      throwsShape(
        () => b.forward(randn([2, 2, 2, 5], 7)),
        /affineCoupling: input has 5 channels, expected 3 or 4/,
      );
      throwsShape(
        () => b.forward(randn([2, 2, 2, 3], 7), h),
        /affineCoupling: condition has 2 channels, expected 3/,
      );
      // unconditional: the condition is ignored
      const u0 = affineCoupling.init({ channels: 4, condChannels: 0, hidden: 8, seed: 5 });
      const u = perturb(u0, 6, 0.3);
      const ub = affineCoupling.bijector(u);
      await checkRoundTrip(ub, x);
      await checkLogDet(ub, x1);
      tf.dispose([x, h, x1, h1]);
      for (const t of [p0, p, u0, u]) disposeParams(t);
    });
  },
);

// ---------- affineInjector ----------

Deno.test(
  "affineInjector: formula, net round trip, brute-force log-det, shape errors",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("injector", async () => {
      // hand-written conditioner on C = 2: [t0, r0, t1, r1] = [h, −h, 2h, h²]
      const hand = affineInjector.fromConditioner(
        (h) =>
          tf.tidy(() => tf.concat([h, tf.neg(h), tf.mul(h, 2), tf.square(h)], 3)) as tf.Tensor4D,
        { channels: 2, condChannels: 1 },
      );
      const x = randn([1, 2, 1, 2], 1);
      const h = randn([1, 2, 1, 1], 2);
      // inverse: the generation direction (z + t)·s; forward undoes it
      const r = hand.inverse(x, h);
      const [xv, hv, yv, ld] = await Promise.all([x, h, r.y, r.logDet].map(read));
      const sig = (v: number) => 1 / (1 + Math.exp(-v));
      const want: number[] = [];
      let wantLd = 0;
      for (let pix = 0; pix < 2; pix++) {
        const hh = hv[pix];
        const s0 = sig(-hh + 2) + 1e-3;
        const s1 = sig(hh * hh + 2) + 1e-3;
        want.push((xv[pix * 2] + hh) * s0, (xv[pix * 2 + 1] + 2 * hh) * s1);
        wantLd += Math.log(s0) + Math.log(s1);
      }
      assert.ok(maxAbsDiff(yv, want) < 1e-5);
      assert.ok(Math.abs(ld[0] - wantLd) < 1e-5);
      const back = hand.forward(r.y, h);
      assert.ok(maxAbsDiff(await read(back.y), xv) < 1e-5);
      assert.ok(Math.abs((await read(back.logDet))[0] + wantLd) < 1e-5);
      tf.dispose([x, h, r.y, r.logDet, back.y, back.logDet]);

      const cfg = { channels: 4, condChannels: 3, hidden: 8 };
      const p0 = affineInjector.init({ ...cfg, seed: 1 });
      assert.deepEqual(p0.net.conv1.w.shape, [3, 3, 3, 8]);
      assert.deepEqual(p0.net.conv3.w.shape, [3, 3, 8, 8]);
      const p = perturb(p0, 2, 0.3);
      assert.deepEqual(affineInjector.sizes(p), { channels: 4, condChannels: 3 });
      const b = affineInjector.bijector(p);
      const x2 = randn([2, 2, 2, 4], 3);
      const h2 = randn([2, 2, 2, 3], 4);
      await checkRoundTrip(b, x2, h2);
      const x1 = randn([1, 2, 2, 4], 5);
      const h1 = randn([1, 2, 2, 3], 6);
      await checkLogDet(b, x1, h1);
      throwsShape(
        () => b.forward(x2, tf.zeros([2, 2, 2, 5]) as tf.Tensor4D),
        /affineInjector: condition has 5 channels, expected 3/,
      );
      throwsShape(
        () => b.forward(x2, tf.zeros([2, 2, 1, 3]) as tf.Tensor4D),
        /affineInjector: condition shape \[2, 2, 1, 3\] does not match/,
      );
      throwsShape(
        () => affineInjector.init({ channels: 4, condChannels: 0, hidden: 8, seed: 1 }),
        /condChannels/,
      );
      tf.dispose([x2, h2, x1, h1]);
      disposeParams(p0);
      disposeParams(p);
    });
  },
);

// ---------- squeeze ----------

Deno.test("squeeze: channel order c·4 + i·2 + j, round trip, odd-size error", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("squeeze", async () => {
    const [n, H, W, C] = [2, 4, 2, 3];
    const vals = Float32Array.from({ length: n * H * W * C }, (_, k) => k);
    const x = tf.tensor4d(vals, [n, H, W, C]);
    const b = squeeze.bijector();
    assert.deepEqual(b.forwardShape([n, H, W, C]), [n, 2, 1, 12]);
    const r = b.forward(x);
    assert.deepEqual(r.y.shape, [n, 2, 1, 12]);
    const yv = await read(r.y);
    // out[b, a, bb, c·4 + i·2 + j] = in[b, 2a + i, 2bb + j, c]
    for (let s = 0; s < n; s++) {
      for (let a = 0; a < 2; a++) {
        for (let c = 0; c < C; c++) {
          for (let i = 0; i < 2; i++) {
            for (let j = 0; j < 2; j++) {
              const out = ((s * 2 + a) * 1 + 0) * 12 + c * 4 + i * 2 + j;
              const inp = ((s * H + 2 * a + i) * W + j) * C + c;
              assert.equal(yv[out], vals[inp], `out ${out}`);
            }
          }
        }
      }
    }
    assert.equal(maxAbsDiff(await read(r.logDet), [0, 0]), 0);
    const back = b.inverse(r.y);
    assert.deepEqual(Array.from(await read(back.y)), Array.from(vals));
    // a permutation: |det| = 1, and the gradient must flow (rank-5 ops on WebGPU)
    const x1 = randn([1, 2, 2, 4], 9);
    assert.ok(Math.abs(await checkLogDet(b, x1)) < 1e-6);
    const odd = tf.zeros([1, 5, 6, 1]) as tf.Tensor4D;
    throwsShape(() => b.forward(odd), /^squeeze: height 5 and width 6 must be even/);
    throwsShape(() => b.inverse(odd), /squeeze: inverse needs a channel count divisible by 4/);
    assert.deepEqual(squeeze.init(), {});
    tf.dispose([x, x1, r.y, r.logDet, back.y, back.logDet, odd]);
  });
});

// ---------- split ----------

Deno.test(
  "split: zero-init is identity-like, perturbed round trip, brute-force log-det",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("split", async () => {
      assert.deepEqual(split.sizes(5), { kept: 2, emitted: 3 });
      const p0 = split.init({ channels: 5 });
      assert.deepEqual(p0.prior.w.shape, [3, 3, 2, 6]);
      const b0 = split.bijector(p0);
      const x = randn([2, 2, 2, 5], 1);
      const r0 = b0.forward(x);
      assert.ok(maxAbsDiff(await read(r0.y), await read(x)) < 1e-6, "zero prior must be identity");
      assert.equal(maxAbsDiff(await read(r0.logDet), [0, 0]), 0);
      const p = perturb(p0, 3, 0.3);
      const b = split.bijector(p);
      await checkRoundTrip(b, x);
      // emitted part vs a manual computation from the prior output
      const r = b.forward(x);
      const prior = tf.tidy(() =>
        tf.add(tf.conv2d(tf.slice(x, [0, 0, 0, 0], [2, 2, 2, 2]), p.prior.w, 1, "same"), p.prior.b)
      );
      const [pv, xv, yv] = await Promise.all([prior, x, r.y].map(read));
      let err = 0;
      for (let pix = 0; pix < 8; pix++) {
        for (let k = 0; k < 3; k++) {
          const mean = pv[pix * 6 + 2 * k];
          const logs = pv[pix * 6 + 2 * k + 1];
          const eps = (xv[pix * 5 + 2 + k] - mean) * Math.exp(-logs);
          err = Math.max(err, Math.abs(eps - yv[pix * 5 + 2 + k]));
        }
      }
      assert.ok(err < 1e-4, `split eps error ${err}`);
      const x1 = randn([1, 2, 2, 4], 2);
      const p40 = split.init({ channels: 4 });
      const p4 = perturb(p40, 4, 0.3);
      await checkLogDet(split.bijector(p4), x1);
      throwsShape(() => b.forward(x1), /split: input has 4 channels, expected 5/);
      // sizes come from the prior: 3 kept + 2 emitted is not a split of 5 channels
      const bad = { prior: { w: tf.zeros([3, 3, 3, 4]), b: tf.zeros([4]) } } as SplitParams;
      throwsShape(() => split.bijector(bad), /split: prior weight \[3, 3, 3, 4\].*fit no channel/);
      disposeParams(bad);
      tf.dispose([x, x1, r0.y, r0.logDet, r.y, r.logDet, prior]);
      for (const t of [p0, p, p40, p4]) disposeParams(t);
    });
  },
);

// ---------- flowStep / transitionStep ----------

Deno.test("flowStep and transitionStep: round trip and brute-force log-det", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("flowStep", async () => {
    const cfg = { channels: 4, condChannels: 2, hidden: 8 };
    const p0 = flowStep.init({ ...cfg, seed: 1 });
    const pp = perturb(p0, 2, 0.2);
    const p = await flowStep.withInverse(pp);
    const b = flowStep.bijector(p);
    assert.equal(b.name, "chain(actNorm, invConv1x1, affineCoupling, affineInjector)");
    const x = randn([2, 2, 2, 4], 3);
    const h = randn([2, 2, 2, 2], 4);
    await checkRoundTrip(b, x, h);
    // forward = encoding: every layer's forward, in order
    const manual = tf.tidy(() => {
      let y = actNorm.bijector(p.actNorm).forward(x).y;
      y = invConv1x1.bijector(p.invConv).forward(y).y;
      y = affineCoupling.bijector(p.coupling).forward(y, h).y;
      return affineInjector.bijector(p.injector).forward(y, h).y;
    });
    const r = b.forward(x, h);
    assert.ok(maxAbsDiff(await read(r.y), await read(manual)) < 1e-5);
    const x1 = randn([1, 2, 2, 4], 5);
    const h1 = randn([1, 2, 2, 2], 6);
    await checkLogDet(b, x1, h1);
    throwsShape(
      () => b.forward(x, tf.zeros([2, 2, 2, 3]) as tf.Tensor4D),
      /condition has 3 channels, expected 2/,
    );

    const t0 = transitionStep.init({ channels: 4, seed: 7 });
    const t = await transitionStep.withInverse(perturb(t0, 8, 0.2));
    const tb = transitionStep.bijector(t);
    await checkRoundTrip(tb, x);
    await checkLogDet(tb, x1);
    // sizes come from the parameters: an ActNorm of another width does not fit the rest
    const a6 = actNorm.init({ channels: 6 });
    const a3 = actNorm.init({ channels: 3 });
    throwsShape(
      () => flowStep.bijector({ ...p, actNorm: a6 }),
      /invConv1x1: input has 6 channels, expected 4/,
    );
    throwsShape(
      () => transitionStep.bijector({ ...t, actNorm: a3 }),
      /input has 3 channels, expected 4/,
    );
    disposeParams(a6);
    disposeParams(a3);

    tf.dispose([
      x,
      h,
      x1,
      h1,
      manual,
      r.y,
      r.logDet,
      p.invConv.const.inverse!,
      t.invConv.const.inverse!,
    ]);
    disposeTrainable(pp);
    disposeTrainable(t);
    disposeParams(p0);
    disposeParams(t0);
  });
});

// ---------- gradients ----------

/**
 * Gradient of `loss(params)` w.r.t. every trainable leaf: finite and non-zero for each
 * leaf, and the directional derivative along a random direction matches central
 * differences.
 */
const checkParamGrads = async <T extends ParamTree>(
  what: string,
  params: T,
  loss: (p: T) => tf.Scalar,
): Promise<void> => {
  const leaves = flattenParams(params);
  const train = leaves.filter((l) => isTrainablePath(l.path));
  const rebuild = (ts: readonly tf.Tensor[]): T => {
    let k = 0;
    return unflattenLike(params, leaves.map((l) => isTrainablePath(l.path) ? ts[k++] : l.tensor));
  };
  const grads = tf.grads((...ts: tf.Tensor[]) => loss(rebuild(ts)))(train.map((l) => l.tensor));
  const dirs = train.map((l, i) => tf.randomNormal(l.tensor.shape, 0, 1, "float32", 100 + i));
  let analytic = 0;
  for (let i = 0; i < train.length; i++) {
    const g = await read(grads[i]);
    assert.ok(g.every(Number.isFinite), `${what}: non-finite gradient for ${train[i].path}`);
    assert.ok(g.some((v) => v !== 0), `${what}: zero gradient for ${train[i].path}`);
    const d = await read(dirs[i]);
    for (let j = 0; j < g.length; j++) analytic += g[j] * d[j];
  }
  // small step: larger ones cross ReLU kinks inside the conditioner networks
  const h = 2e-3;
  const at = async (sign: number): Promise<number> => {
    const l = tf.tidy(() =>
      loss(rebuild(train.map((t, i) => tf.add(t.tensor, tf.mul(dirs[i], sign * h)))))
    );
    const v = (await read(l))[0];
    l.dispose();
    return v;
  };
  const numeric = (await at(1) - await at(-1)) / (2 * h);
  tf.dispose([...grads, ...dirs]);
  assert.ok(
    Math.abs(numeric - analytic) < 0.02 * Math.max(1, Math.abs(analytic)),
    `${what}: directional derivative ${analytic} vs central difference ${numeric}`,
  );
};

Deno.test(
  "gradients reach every trainable parameter and match finite differences",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("gradients", async () => {
      const cfg = { channels: 4, condChannels: 2, hidden: 4 };
      const x = randn([1, 2, 2, 4], 1);
      const h = randn([1, 2, 2, 2], 2);
      const loss = (r: { y: tf.Tensor4D; logDet: tf.Tensor1D }): tf.Scalar =>
        tf.tidy(() => tf.add(tf.mul(tf.sum(tf.square(r.y)), 0.1), tf.sum(r.logDet)));
      const p0 = flowStep.init({ ...cfg, seed: 3 });
      const p = perturb(p0, 4, 0.2);
      await checkParamGrads("flowStep", p, (q) => {
        const r = flowStep.bijector(q).forward(x, h);
        const l = loss(r);
        tf.dispose([r.y, r.logDet]);
        return l;
      });
      const s0 = split.init({ channels: 4 });
      const s = perturb(s0, 5, 0.2);
      await checkParamGrads("split", s, (q) => {
        const r = split.bijector(q).forward(x);
        const l = loss(r);
        tf.dispose([r.y, r.logDet]);
        return l;
      });
      tf.dispose([x, h]);
      disposeTrainable(p);
      disposeParams(p0);
      disposeParams(s0);
      disposeParams(s);
    });
  },
);
