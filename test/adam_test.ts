import assert from "node:assert/strict";
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import { disposeParams, flattenParams, type ParamTree } from "../src/core/params.ts";
import {
  adamInit,
  type AdamState,
  adamStep,
  disposeAdamState,
  trainableParams,
} from "../src/train/adam.ts";
import { multiStepLr } from "../src/train/schedule.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

/** Textbook Adam (Kingma & Ba, Algorithm 1) in float64 on plain arrays. */
const refAdam = (
  p: number[],
  gs: number[][],
  o: { lr: number; beta1: number; beta2: number; eps: number },
): { p: number[]; m: number[]; v: number[] } => {
  let m = p.map(() => 0);
  let v = p.map(() => 0);
  let x = [...p];
  gs.forEach((g, k) => {
    const t = k + 1;
    m = m.map((mi, i) => o.beta1 * mi + (1 - o.beta1) * g[i]);
    v = v.map((vi, i) => o.beta2 * vi + (1 - o.beta2) * g[i] * g[i]);
    const mHat = m.map((mi) => mi / (1 - o.beta1 ** t));
    const vHat = v.map((vi) => vi / (1 - o.beta2 ** t));
    x = x.map((xi, i) => xi - o.lr * mHat[i] / (Math.sqrt(vHat[i]) + o.eps));
  });
  return { p: x, m, v };
};

/** Deterministic "gradient" values for leaf `j` at step `k`. */
const gradValues = (n: number, j: number, k: number): number[] =>
  Array.from({ length: n }, (_, i) => Math.sin(1.3 * i + 2.1 * j + 0.7 * k) * (1 + j));

type Tree = {
  a: tf.Tensor;
  layers: readonly [{ w: tf.Tensor; const: { perm: tf.Tensor } }, { b: tf.Tensor }];
};

const makeTree = (): Tree => ({
  a: tf.tensor2d([[0.5, -1], [2, 0.25], [1.5, -0.75]]),
  layers: [
    { w: tf.tensor1d([1, 2, 3, -4]), const: { perm: tf.tensor1d([2, 0, 1], "int32") } },
    { b: tf.scalar(0.3) },
  ],
});

Deno.test(
  "adamStep matches a float64 Adam reference over 4 steps; const leaves untouched",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const opts = { lr: 0.05, beta1: 0.8, beta2: 0.95, eps: 1e-3 };
    let params: ParamTree = makeTree();
    const constLeaf = (params as Tree).layers[0].const.perm;
    const initial = await Promise.all(flattenParams(params).map((n) => read(n.tensor)));
    const paths = flattenParams(params).map((n) => n.path);
    let state: AdamState = adamInit(params);
    assert.deepEqual(state.paths, ["a", "layers.0.w", "layers.1.b"]);
    assert.equal(state.step, 0);
    const steps = 4;
    for (let k = 0; k < steps; k++) {
      const grads = trainableParams(params).map((n, j) =>
        tf.tensor(gradValues(n.tensor.size, j, k), n.tensor.shape)
      );
      const out: { params: ParamTree; state: AdamState } = adamStep(params, grads, state, opts);
      tf.dispose(grads);
      tf.dispose(trainableParams(params).map((n) => n.tensor));
      disposeAdamState(state);
      params = out.params;
      state = out.state;
    }
    assert.equal(state.step, steps);
    const after = flattenParams(params);
    assert.deepEqual(after.map((n) => n.path), paths);
    let j = 0;
    for (let i = 0; i < after.length; i++) {
      if (after[i].path.includes("const")) {
        assert.equal(after[i].tensor, constLeaf, "const leaf must be the same tensor object");
        assert.deepEqual(Array.from(await after[i].tensor.data()), [2, 0, 1]);
        continue;
      }
      const n = after[i].tensor.size;
      const ref = refAdam(
        Array.from(initial[i]),
        [0, 1, 2, 3].map((k) => gradValues(n, j, k)),
        opts,
      );
      const got = await read(after[i].tensor);
      assert.ok(maxAbsDiff(got, ref.p) < 2e-6, `${after[i].path}: ${got} vs ${ref.p}`);
      assert.ok(maxAbsDiff(await read(state.m[j]), ref.m) < 2e-6, `m of ${after[i].path}`);
      assert.ok(maxAbsDiff(await read(state.v[j]), ref.v) < 2e-6, `v of ${after[i].path}`);
      j++;
    }
    disposeParams(params);
    disposeAdamState(state);
  },
);

Deno.test(
  "adamStep: random leaves and hyper-parameters agree with the reference (fast-check)",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 6 }),
        fc.array(
          fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 6, maxLength: 6 }),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        fc.record({
          lr: fc.double({ min: 1e-4, max: 0.1, noNaN: true }),
          beta1: fc.double({ min: 0, max: 0.99, noNaN: true }),
          beta2: fc.double({ min: 0.5, max: 0.9999, noNaN: true }),
          eps: fc.double({ min: 1e-8, max: 1e-2, noNaN: true }),
        }),
        async (p0, gsFull, opts) => {
          const p32 = Array.from(Float32Array.from(p0));
          const gs = gsFull.map((g) => Array.from(Float32Array.from(g.slice(0, p0.length))));
          const o = { ...opts, beta1: Math.fround(opts.beta1), beta2: Math.fround(opts.beta2) };
          await noLeak("adamStep property", async () => {
            let params: ParamTree = { w: tf.tensor1d(p32) };
            let state = adamInit(params);
            for (const g of gs) {
              const gt = tf.tensor1d(g);
              const out: { params: ParamTree; state: AdamState } = adamStep(
                params,
                new Map([["w", gt]]),
                state,
                o,
              );
              gt.dispose();
              disposeParams(params);
              disposeAdamState(state);
              params = out.params;
              state = out.state;
            }
            const ref = refAdam(p32, gs, o);
            const got = await read((params as { w: tf.Tensor }).w);
            const tol = 1e-5 * (1 + Math.max(...ref.p.map(Math.abs)));
            assert.ok(maxAbsDiff(got, ref.p) < tol, `${got} vs ${ref.p}`);
            disposeParams(params);
            disposeAdamState(state);
          });
        },
      ),
      { seed: 42, numRuns: 12 },
    );
  },
);

Deno.test(
  "adamStep: first step moves each entry by about lr against the gradient sign",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const p = tf.tensor1d([0, 0, 0, 0]);
    const g = tf.tensor1d([3, -0.01, 200, -7]);
    const s0 = adamInit({ p });
    const { params, state } = adamStep({ p }, [g], s0, { lr: 0.01 });
    const got = await read(params.p);
    // Bias-corrected m̂ = g and v̂ = g², so the step is lr·g/(|g|+ε) ≈ lr·sign(g).
    assert.ok(maxAbsDiff(got, [-0.01, 0.01, -0.01, 0.01]) < 1e-7, `${got}`);
    tf.dispose([p, g, params.p]);
    disposeAdamState(s0);
    disposeAdamState(state);
  },
);

Deno.test(
  "adamStep: Map and array gradients agree; inputs untouched; no tensor leaks",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const params = makeTree();
    const state0 = adamInit(params);
    const grads = trainableParams(params).map((n, j) =>
      tf.tensor(gradValues(n.tensor.size, j, 0), n.tensor.shape)
    );
    const before = await Promise.all(flattenParams(params).map((n) => read(n.tensor)));
    await noLeak("adamStep", async () => {
      const a = adamStep(params, grads, state0, { lr: 0.1 });
      const map = new Map(trainableParams(params).map((n, j) => [n.path, grads[j]]));
      const b = adamStep(params, map, state0, { lr: 0.1 });
      const la = flattenParams(a.params);
      const lb = flattenParams(b.params);
      for (let i = 0; i < la.length; i++) {
        assert.deepEqual(await la[i].tensor.data(), await lb[i].tensor.data(), la[i].path);
      }
      // Dispose only the new (trainable) outputs: const leaves are shared with `params`.
      tf.dispose(trainableParams(a.params).map((n) => n.tensor));
      tf.dispose(trainableParams(b.params).map((n) => n.tensor));
      disposeAdamState(a.state);
      disposeAdamState(b.state);
    });
    const after = await Promise.all(flattenParams(params).map((n) => read(n.tensor)));
    assert.deepEqual(after, before);
    assert.equal(state0.step, 0);
    for (const m of [...state0.m, ...state0.v]) {
      assert.ok((await read(m)).every((x) => x === 0));
    }
    disposeParams(params);
    disposeAdamState(state0);
    tf.dispose(grads);
  },
);

Deno.test("adamStep: clear errors for misaligned gradients or state", gpuTest, async () => {
  await useBackend("webgpu");
  const params = makeTree();
  const state = adamInit(params);
  const good = trainableParams(params).map((n) => tf.zerosLike(n.tensor));
  const before = tf.memory().numTensors;
  assert.throws(() => adamStep(params, good.slice(1), state, { lr: 1 }), /2 gradients for 3/);
  const bad = [good[0], tf.zeros([5]), good[2]];
  assert.throws(
    () => adamStep(params, bad, state, { lr: 1 }),
    /gradient of "layers\.0\.w" has shape \[5\], the parameter has \[4\]/,
  );
  assert.throws(
    () => adamStep(params, new Map([["a", good[0]], ["layers.0.w", good[1]]]), state, { lr: 1 }),
    /no gradient for trainable leaf "layers\.1\.b"/,
  );
  assert.throws(
    () =>
      adamStep(
        params,
        new Map([["a", good[0]], ["layers.0.w", good[1]], ["layers.1.b", good[2]], ["x", good[2]]]),
        state,
        { lr: 1 },
      ),
    /"x"/,
  );
  assert.throws(
    () => adamStep({ z: params.a }, [good[0]], state, { lr: 1 }),
    /state has 3 moments/,
  );
  assert.throws(() => adamStep(params, good, state, { lr: NaN }), /lr = NaN/);
  assert.throws(() => adamStep(params, good, state, { lr: 1, beta2: 1 }), /beta2 = 1/);
  assert.equal(tf.memory().numTensors, before + 1); // only the tf.zeros([5]) above
  assert.throws(() => adamInit({ n: tf.tensor1d([1], "int32") }), /"n" has dtype int32/);
  tf.dispose([...good, bad[1]]);
  disposeParams(params);
  disposeAdamState(state);
});

/** PyTorch MultiStepLR semantics, stepped one step at a time (independent of multiStepLr). */
const simulateMultiStep = (
  base: number,
  total: number,
  fractions: readonly number[],
  gamma: number,
  upTo: number,
): number[] => {
  const milestones = fractions.map((f) => Math.floor(f * total));
  const out: number[] = [];
  let lr = base;
  for (let s = 0; s <= upTo; s++) {
    for (const m of milestones) if (m === s) lr *= gamma;
    out.push(lr);
  }
  return out;
};

Deno.test("multiStepLr: the paper's schedule halves at 50k, 75k, 90k, 95k of 100k", () => {
  const lr = multiStepLr({ base: 1e-4, totalSteps: 100_000 });
  const at = (s: number) => lr(s);
  assert.equal(at(0), 1e-4);
  assert.equal(at(49_999), 1e-4);
  assert.equal(at(50_000), 1e-4 / 2);
  assert.equal(at(74_999), 1e-4 / 2);
  assert.equal(at(75_000), 1e-4 / 4);
  assert.equal(at(90_000), 1e-4 / 8);
  assert.equal(at(94_999), 1e-4 / 8);
  assert.equal(at(95_000), 1e-4 / 16);
  assert.equal(at(99_999), 1e-4 / 16);
});

Deno.test("multiStepLr agrees with a step-by-step MultiStepLR simulation (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 1e-6, max: 1, noNaN: true }),
      fc.integer({ min: 1, max: 300 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
      fc.double({ min: 0.05, max: 2, noNaN: true }),
      (base, total, fractions, gamma) => {
        const lr = multiStepLr({ base, totalSteps: total, milestones: fractions, gamma });
        const ref = simulateMultiStep(base, total, fractions, gamma, total + 2);
        ref.forEach((r, s) => {
          const got = lr(s);
          assert.ok(Math.abs(got - r) <= 1e-12 * Math.abs(r), `step ${s}: ${got} vs ${r}`);
        });
      },
    ),
    { seed: 42, numRuns: 200 },
  );
});

Deno.test("multiStepLr rejects invalid options and steps", () => {
  assert.throws(() => multiStepLr({ base: -1, totalSteps: 10 }), /base = -1/);
  assert.throws(() => multiStepLr({ base: 1, totalSteps: 0 }), /totalSteps = 0/);
  assert.throws(() => multiStepLr({ base: 1, totalSteps: 10, gamma: 0 }), /gamma = 0/);
  assert.throws(() => multiStepLr({ base: 1, totalSteps: 10, milestones: [1.5] }), /1\.5/);
  assert.throws(() => multiStepLr({ base: 1, totalSteps: 10 })(-1), /step = -1/);
});

Deno.test("adamStep: lrMultiple scales each leaf's step by its path, 0 freezes it", async () => {
  await useBackend("wasm");
  await noLeak("adamStep lrMultiple", async () => {
    const mk = (): ParamTree => ({ a: tf.tensor1d([1, -2, 3]), b: tf.tensor1d([0.5, 4]) });
    const grads = () => new Map([["a", tf.tensor1d([0.3, -1, 2])], ["b", tf.tensor1d([-1, 5])]]);
    const run = async (mult?: (p: string) => number) => {
      const p = mk();
      const s = adamInit(p);
      const g = grads();
      const out = adamStep(p, g, s, { lr: 0.01, ...(mult ? { lrMultiple: mult } : {}) });
      const tree = out.params as { a: tf.Tensor; b: tf.Tensor };
      const r = { a: await read(tree.a), b: await read(tree.b) };
      tf.dispose([...g.values()]);
      disposeParams(p);
      disposeParams(out.params);
      disposeAdamState(s);
      disposeAdamState(out.state);
      return r;
    };
    const plain = await run();
    const scaled = await run((path) => (path === "a" ? 3 : 0));
    const a0 = [1, -2, 3];
    plain.a.forEach((v, i) => {
      const d1 = v - a0[i], d3 = scaled.a[i] - a0[i];
      assert.ok(Math.abs(d1) > 1e-3, `leaf a moved ${d1}`);
      assert.ok(Math.abs(d3 - 3 * d1) < 1e-5, `leaf a: step ${d3} vs 3 × ${d1}`);
    });
    assert.deepEqual(Array.from(scaled.b), [0.5, 4], "leaf b (multiple 0) did not stay put");
    assert.ok(plain.b.some((v, i) => Math.abs(v - [0.5, 4][i]) > 1e-3));
  });
  const p: ParamTree = { a: tf.tensor1d([1]) };
  const s = adamInit(p);
  const g = new Map([["a", tf.tensor1d([1])]]);
  assert.throws(
    () => adamStep(p, g, s, { lr: 0.1, lrMultiple: () => NaN }),
    /lrMultiple\("a"\) = NaN/,
  );
  tf.dispose([...g.values()]);
  disposeParams(p);
  disposeAdamState(s);
});
