/**
 * The combinators of src/core/bijector.ts (`chain`, `invert`, `identity`, `withCondition`,
 * `checked`) under the law kit, plus their error messages.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import {
  assertFinite,
  type Bijector,
  bijector,
  chain,
  checkCondition,
  checked,
  checkInput,
  identity,
  invert,
  type Shape4,
  withCondition,
} from "../src/core/bijector.ts";
import { NonFiniteError, ShapeError, showShape } from "../src/core/errors.ts";
import { foldIn } from "../src/core/random.ts";
import {
  type BijectorCase,
  type Built,
  checkBijectorLaws,
  elementwiseAffine,
  formatLawReport,
  LawError,
  type LawReport,
} from "../src/testing/mod.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

/** 2×2 space-to-depth, channel index `c·4 + i·2 + j` (volume preserving). */
const squeeze: Bijector = bijector({
  name: "squeeze",
  forward: (x) => {
    const [n, h, w, c] = checkInput("squeeze", x);
    squeezeShape([n, h, w, c]);
    return tf.tidy(() => {
      const t = tf.reshape(x, [n, h / 2, 2, w / 2, 2, c]);
      const y = tf.reshape(tf.transpose(t, [0, 1, 3, 5, 2, 4]), [n, h / 2, w / 2, c * 4]);
      return { y: y as tf.Tensor4D, logDet: tf.zeros([n]) as tf.Tensor1D };
    });
  },
  inverse: (y) => {
    const [n, h, w, c4] = checkInput("squeeze", y);
    unsqueezeShape([n, h, w, c4]);
    const c = c4 / 4;
    return tf.tidy(() => {
      const t = tf.reshape(y, [n, h, w, c, 2, 2]);
      const x = tf.reshape(tf.transpose(t, [0, 1, 4, 2, 5, 3]), [n, h * 2, w * 2, c]);
      return { y: x as tf.Tensor4D, logDet: tf.zeros([n]) as tf.Tensor1D };
    });
  },
  forwardShape: (s) => squeezeShape(s),
  inverseShape: (s) => unsqueezeShape(s),
});

function squeezeShape(s: Shape4): Shape4 {
  if (s[1] % 2 !== 0 || s[2] % 2 !== 0) {
    throw new ShapeError(`squeeze: height and width must be even, got ${showShape(s)}`);
  }
  return [s[0], s[1] / 2, s[2] / 2, s[3] * 4];
}

function unsqueezeShape(s: Shape4): Shape4 {
  if (s[3] % 4 !== 0) {
    throw new ShapeError(`squeeze: ${s[3]} channels are not divisible by 4 (${showShape(s)})`);
  }
  return [s[0], s[1] * 2, s[2] * 2, s[3] / 4];
}

/**
 * Conditional per-element affine map `y = x·exp(a + ½·tanh(h)) + b`, condition `h` with
 * the channels of `x`; log-det `Σ_{h,w,c} (a_c + ½·tanh(h))` per sample.
 */
const condAffine = (a: tf.Tensor1D, b: tf.Tensor1D): Bijector => {
  const name = "condAffine";
  const c = a.shape[0];
  const logScale = (cond: tf.Tensor4D) => tf.add(a, tf.mul(tf.tanh(cond), 0.5));
  const ld = (ls: tf.Tensor, sign: number) => tf.mul(tf.sum(ls, [1, 2, 3]), sign) as tf.Tensor1D;
  return bijector({
    name,
    forward: (x, cond) => {
      checkInput(name, x, c);
      const h = checkCondition(name, x, cond, c);
      return tf.tidy(() => {
        const ls = logScale(h);
        return { y: tf.add(tf.mul(x, tf.exp(ls)), b) as tf.Tensor4D, logDet: ld(ls, 1) };
      });
    },
    inverse: (y, cond) => {
      checkInput(name, y, c);
      const h = checkCondition(name, y, cond, c);
      return tf.tidy(() => {
        const ls = logScale(h);
        return { y: tf.mul(tf.sub(y, b), tf.exp(tf.neg(ls))) as tf.Tensor4D, logDet: ld(ls, -1) };
      });
    },
  });
};

interface P {
  readonly seed: number;
  readonly batch: number;
  readonly channels: number;
}

const params = (maxChannels: number, batch?: number) =>
  fc.record({
    seed: fc.integer({ min: 0, max: 1e9 }),
    batch: batch ? fc.constant(batch) : fc.integer({ min: 1, max: 2 }),
    channels: fc.integer({ min: 1, max: maxChannels }),
  });

const related = (p: P) => fc.integer({ min: 0, max: 1e9 }).map((seed) => ({ ...p, seed }));

/** A tiny pool of per-channel parameters for one build. */
const vec = (owned: tf.Tensor[], n: number, std: number, seed: number): tf.Tensor1D => {
  const t = tf.randomNormal([n], 0, std, "float32", seed) as tf.Tensor1D;
  owned.push(t);
  return t;
};

/** Make a case whose bijector is assembled from fresh parameters by `make`. */
const makeCase = (
  name: string,
  make: (p: P, owned: tf.Tensor[]) => { b: Bijector; x: tf.Tensor4D; cond?: tf.Tensor4D },
  extra: Partial<BijectorCase<P>> & { maxChannels?: number; batch?: number } = {},
): BijectorCase<P> => ({
  name,
  params: params(extra.maxChannels ?? 3, extra.batch),
  related,
  build: (p): Built => {
    const owned: tf.Tensor[] = [];
    const { b, x, cond } = make(p, owned);
    owned.push(x);
    if (cond) owned.push(cond);
    return { bijector: b, x, cond, dispose: () => tf.dispose(owned) };
  },
  ...extra,
});

const input = (p: P, h: number, w: number, c: number, k = 9): tf.Tensor4D =>
  tf.randomNormal([p.batch, h, w, c], 0, 1, "float32", foldIn(p.seed, k)) as tf.Tensor4D;

const affineOf = (p: P, owned: tf.Tensor[], c: number, k: number, name?: string): Bijector =>
  elementwiseAffine({
    logScale: vec(owned, c, 0.6, foldIn(p.seed, k)),
    shift: vec(owned, c, 1, foldIn(p.seed, k + 100)),
  }, name);

const cases: readonly BijectorCase<P>[] = [
  makeCase("chain(affine, affine)", (p, o) => ({
    b: chain(affineOf(p, o, p.channels, 1, "a1"), affineOf(p, o, p.channels, 2, "a2")),
    x: input(p, 2, 2, p.channels),
  })),
  makeCase("chain(affine, squeeze, affine)", (p, o) => ({
    b: chain(affineOf(p, o, p.channels, 1), squeeze, affineOf(p, o, 4 * p.channels, 2)),
    x: input(p, 2, 2, p.channels),
  }), { maxChannels: 2 }),
  makeCase("invert(chain(affine, squeeze, affine))", (p, o) => ({
    b: invert(chain(affineOf(p, o, p.channels, 1), squeeze, affineOf(p, o, 4 * p.channels, 2))),
    x: input(p, 1, 1, 4 * p.channels),
  }), { maxChannels: 2 }),
  makeCase("invert(affine)", (p, o) => ({
    b: invert(affineOf(p, o, p.channels, 1)),
    x: input(p, 2, 2, p.channels),
  })),
  makeCase("identity", (p) => ({ b: identity, x: input(p, 2, 2, p.channels) }), {
    volumePreserving: true,
  }),
  makeCase("squeeze", (p) => ({ b: squeeze, x: input(p, 2, 2, p.channels) }), {
    volumePreserving: true,
    maxChannels: 2,
  }),
  makeCase("condAffine (condition as input)", (p, o) => ({
    b: condAffine(
      vec(o, p.channels, 0.6, foldIn(p.seed, 1)),
      vec(o, p.channels, 1, foldIn(p.seed, 2)),
    ),
    x: input(p, 2, 2, p.channels),
    cond: input(p, 2, 2, p.channels, 3),
  })),
  makeCase("chain(condAffine, affine) with a condition", (p, o) => ({
    b: chain(
      condAffine(
        vec(o, p.channels, 0.6, foldIn(p.seed, 1)),
        vec(o, p.channels, 1, foldIn(p.seed, 2)),
      ),
      affineOf(p, o, p.channels, 4),
    ),
    x: input(p, 2, 2, p.channels),
    cond: input(p, 2, 2, p.channels, 3),
  })),
  makeCase("withCondition(condAffine, h)", (p, o) => {
    const h = input(p, 2, 2, p.channels, 3);
    o.push(h);
    return {
      b: withCondition(
        condAffine(
          vec(o, p.channels, 0.6, foldIn(p.seed, 1)),
          vec(o, p.channels, 1, foldIn(p.seed, 2)),
        ),
        h,
      ),
      x: input(p, 2, 2, p.channels),
    };
  }, { fixedBatch: true, batch: 2 }),
  makeCase("invert(withCondition(condAffine, h))", (p, o) => {
    const h = input(p, 1, 2, p.channels, 3);
    o.push(h);
    return {
      b: invert(withCondition(
        condAffine(
          vec(o, p.channels, 0.6, foldIn(p.seed, 1)),
          vec(o, p.channels, 1, foldIn(p.seed, 2)),
        ),
        h,
      )),
      x: input(p, 1, 2, p.channels),
    };
  }, { fixedBatch: true, batch: 2 }),
];

Deno.test("combinators obey the bijector laws (kit, WebGPU)", gpuTest, async () => {
  await useBackend("webgpu");
  const reports: LawReport[] = [];
  await noLeak("combinator laws", async () => {
    for (const c of cases) reports.push(await checkBijectorLaws(c, { numRuns: 3 }));
  });
  const table = formatLawReport(reports);
  for (const r of reports) {
    assert.equal(r.passed, true, table);
    for (const l of r.laws) assert.equal(l.status, "passed", `${r.name} ${l.law}\n${table}`);
  }
  // associativity really ran on the shape-preserving cases and was noted as skipped where
  // the case changes shapes
  const algebra = (name: string) =>
    reports.find((r) => r.name === name)!.laws.find((l) => l.law === "algebra")!;
  assert.equal(algebra("chain(affine, affine)").note, undefined);
  assert.match(algebra("chain(affine, squeeze, affine)").note!, /the case changes shapes/);
});

Deno.test("a fixed-batch bijector not declared fixedBatch gets a hint", gpuTest, async () => {
  await useBackend("webgpu");
  const wc = cases.find((c) => c.name === "withCondition(condAffine, h)")!;
  await noLeak("hint", () =>
    assert.rejects(
      () => checkBijectorLaws({ ...wc, fixedBatch: false }, { numRuns: 1 }),
      (e: unknown) =>
        e instanceof LawError && e.law === "batchIndependence" &&
        /threw ShapeError: condAffine: condition shape .* set fixedBatch: true/.test(e.message),
    ));
});

Deno.test(
  "chain composes in order and adds log-dets (independent reference)",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("chain values", async () => {
      const [a1, b1, a2, b2] = [[0.5, -0.3], [1, 2], [-0.2, 0.1], [0.5, -1]].map((v) =>
        tf.tensor1d(v)
      );
      const f = elementwiseAffine({ logScale: a1, shift: b1 }, "f");
      const g = elementwiseAffine({ logScale: a2, shift: b2 }, "g");
      const x = tf.tensor4d([0.1, -0.4, 1.5, 2], [1, 1, 2, 2]);
      const r = chain(f, g).forward(x);
      const [y, ld] = [await read(r.y), await read(r.logDet)];
      // by hand: y = (x·e^a1 + b1)·e^a2 + b2 per channel; log-det = 2 pixels · Σ(a1 + a2)
      const xs = [0.1, -0.4, 1.5, 2];
      const want = xs.map((v, i) => {
        const c = i % 2;
        const a1v = [0.5, -0.3][c], b1v = [1, 2][c], a2v = [-0.2, 0.1][c], b2v = [0.5, -1][c];
        return (v * Math.exp(a1v) + b1v) * Math.exp(a2v) + b2v;
      });
      assert.ok(maxAbsDiff(y, want) < 1e-5, `y ${y} vs ${want}`);
      assert.ok(Math.abs(ld[0] - 2 * (0.5 - 0.3 - 0.2 + 0.1)) < 1e-5, `logDet ${ld}`);
      assert.equal(chain(f, g).name, "chain(f, g)");
      assert.equal(invert(invert(f)), f);
      tf.dispose([a1, b1, a2, b2, x, r.y, r.logDet]);
    });
  },
);

Deno.test("chain shape errors name both layers and the shape", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("chain shape errors", () => {
    const [a, b] = [tf.zeros([2]) as tf.Tensor1D, tf.zeros([2]) as tf.Tensor1D];
    const affine2 = elementwiseAffine({ logScale: a, shift: b }, "affine2");
    const net = chain(squeeze, affine2);
    const x = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    const y = tf.zeros([1, 1, 1, 2]) as tf.Tensor4D;
    const odd = tf.zeros([1, 3, 2, 2]) as tf.Tensor4D;
    try {
      assert.throws(() => net.forward(x), (e: unknown) => {
        assert.ok(e instanceof ShapeError);
        assert.match(e.message, /^chain: affine2 cannot follow squeeze \(output \[1, 1, 1, 4\]\)/);
        assert.match(e.message, /affine2: input has 4 channels, expected 2/);
        return true;
      });
      assert.throws(() => net.inverse(y), (e: unknown) => {
        assert.ok(e instanceof ShapeError);
        assert.match(
          e.message,
          /^chain: inverse of squeeze cannot follow inverse of affine2 \(output \[1, 1, 1, 2\]\)/,
        );
        return true;
      });
      // the first layer's own error passes through unchanged
      assert.throws(
        () => chain(squeeze, identity).forward(odd),
        (e: unknown) =>
          e instanceof ShapeError &&
          /^squeeze: height and width must be even, got \[1, 3, 2, 2\]$/.test(e.message),
      );
      assert.throws(() => net.forwardShape([1, 2, 2, 1]), /affine2 cannot follow squeeze/);
    } finally {
      tf.dispose([a, b, x, y, odd]);
    }
  });
});

Deno.test("checked() passes finite input through and rejects bad shapes", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("checked", async () => {
    const [a, b] = [tf.tensor1d([0.3, -0.2]), tf.tensor1d([1, -1])];
    const inner = elementwiseAffine({ logScale: a, shift: b }, "affineC");
    const safe = checked(inner);
    const good = tf.tensor4d([0.5, -1, 2, 3], [1, 1, 2, 2]);
    const rank3 = tf.zeros([1, 2, 2]);
    const threeCh = tf.zeros([1, 1, 1, 3]) as tf.Tensor4D;
    try {
      assert.throws(
        () => safe.forward(rank3 as unknown as tf.Tensor4D),
        (e: unknown) =>
          e instanceof ShapeError &&
          /^affineC: input: expected an NHWC tensor of rank 4, got shape \[1, 2, 2\]$/.test(
            e.message,
          ),
      );
      assert.throws(
        () => safe.inverse(threeCh),
        (e: unknown) =>
          e instanceof ShapeError && /^affineC: input has 3 channels, expected 2/.test(e.message),
      );
      const r1 = safe.forward(good);
      const r2 = inner.forward(good);
      // WebGPU may differ in the last bit between two dispatches of the same op.
      assert.ok(maxAbsDiff(await read(r1.y), await read(r2.y)) < 1e-6);
      assert.ok(maxAbsDiff(await read(r1.logDet), await read(r2.logDet)) < 1e-6);
      tf.dispose([r1.y, r1.logDet, r2.y, r2.logDet]);
    } finally {
      tf.dispose([a, b, good, rank3, threeCh]);
    }
  });
});

Deno.test(
  "NaN and Infinity input: assertFinite rejects on WebGPU; checked() rejects on wasm",
  gpuTest,
  async () => {
    for (const backend of ["webgpu", "wasm"] as const) {
      await useBackend(backend);
      await noLeak(`non-finite input (${backend})`, async () => {
        const [a, b] = [tf.tensor1d([0.3, -0.2]), tf.tensor1d([1, -1])];
        const safe = checked(elementwiseAffine({ logScale: a, shift: b }, "affineC"));
        const nan = tf.tensor4d([0.5, NaN, 2, 3], [1, 1, 2, 2]);
        const inf = tf.tensor4d([0.5, 1, -Infinity, 3], [1, 1, 2, 2]);
        const fine = tf.tensor4d([0.5, 1, 2, 3], [1, 1, 2, 2]);
        try {
          for (const bad of [nan, inf]) {
            await assert.rejects(assertFinite("affineC", bad), (e: unknown) => {
              assert.ok(e instanceof NonFiniteError, `expected a NonFiniteError, got ${e}`);
              assert.match(e.message, /^affineC: input contains NaN or Infinity/);
              return true;
            });
          }
          await assertFinite("affineC", fine);
          if (backend === "wasm") {
            for (
              const [dir, bad] of [["forward", nan], ["inverse", nan], ["forward", inf]] as const
            ) {
              assert.throws(() => safe[dir](bad), (e: unknown) => {
                assert.ok(
                  e instanceof NonFiniteError,
                  `${dir}: expected a NonFiniteError, got ${e}`,
                );
                assert.match(e.message, /^affineC: input contains NaN or Infinity/);
                return true;
              });
            }
          }
        } finally {
          tf.dispose([a, b, nan, inf, fine]);
        }
      });
    }
    await useBackend("webgpu");
  },
);
