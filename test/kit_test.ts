/**
 * Tests of the law kit (`@x/deflow/testing`): correct bijectors pass, and each law fails
 * on a bijector broken in exactly the way that law exists to catch (mutation tests).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { type Bijector, bijector, checkInput } from "../src/core/bijector.ts";
import { foldIn } from "../src/core/random.ts";
import * as linalg from "../src/linalg/dense.ts";
import {
  autodiffLogDet,
  type BijectorCase,
  type Built,
  checkAllBijectorLaws,
  checkBijectorLaws,
  DEFAULT_TOLERANCES,
  elementwiseAffine,
  elementwiseAffineCase,
  type ElementwiseAffineCaseParams,
  formatLawReport,
  LAW_NAMES,
  LawError,
  type LawName,
  layerCase,
} from "../src/testing/mod.ts";
import { gpuTest, maxAbsDiff, noLeak, read, useBackend } from "./_helpers.ts";

/** Ways to break the per-channel affine map `y = x·exp(a) + b`; all off = correct. */
interface Knobs {
  /** Multiply the forward log-det by this and the inverse log-det by its negative. */
  readonly ldSign?: number;
  /** Return the forward log-det (not its negative) from the inverse. */
  readonly inverseLdNotNegated?: boolean;
  /** Inverse adds the shift instead of subtracting it. */
  readonly badInverse?: boolean;
  /** Forward adds `mix · batch mean of x` (exactly inverted), coupling the samples. */
  readonly mix?: number;
  /** Forward allocates a tensor it never frees (pushed here for cleanup). */
  readonly leakInto?: tf.Tensor[];
  /** Forward multiplies by sqrt(x − 1): NaN wherever x < 1. */
  readonly nan?: boolean;
  /** Log-dets of shape [batch, 1] instead of [batch]. */
  readonly ldColumn?: boolean;
  /** Both log-dets zero although the map scales. */
  readonly zeroLd?: boolean;
  /** Adds this constant to the forward log-det (and subtracts it from the inverse one). */
  readonly ldOffset?: number;
}

const affine = (a: tf.Tensor1D, b: tf.Tensor1D, k: Knobs = {}): Bijector => {
  const name = "testAffine";
  const c = a.shape[0];
  const logDet = (x: tf.Tensor4D, sign: number): tf.Tensor1D =>
    tf.tidy(() => {
      const [n, h, w] = x.shape;
      const s = k.zeroLd ? 0 : sign * (k.ldSign ?? 1);
      let ld = tf.add(tf.mul(tf.ones([n]), tf.mul(tf.sum(a), s * h * w)), sign * (k.ldOffset ?? 0));
      if (k.ldColumn) ld = tf.reshape(ld, [n, 1]);
      return ld as tf.Tensor1D;
    });
  return bijector({
    name,
    forward: (x) => {
      checkInput(name, x, c);
      if (k.leakInto) k.leakInto.push(tf.ones([1]));
      return tf.tidy(() => {
        let z: tf.Tensor = x;
        if (k.mix) z = tf.add(z, tf.mul(tf.mean(x, 0, true), k.mix));
        let y = tf.add(tf.mul(z, tf.exp(a)), b);
        if (k.nan) y = tf.mul(y, tf.sqrt(tf.sub(x, 1)));
        return { y: y as tf.Tensor4D, logDet: logDet(x, 1) };
      });
    },
    inverse: (y) => {
      checkInput(name, y, c);
      return tf.tidy(() => {
        const z = tf.mul(k.badInverse ? tf.add(y, b) : tf.sub(y, b), tf.exp(tf.neg(a)));
        const x = k.mix ? tf.sub(z, tf.mul(tf.mean(z, 0, true), k.mix / (1 + k.mix))) : z;
        return { y: x as tf.Tensor4D, logDet: logDet(y, k.inverseLdNotNegated ? 1 : -1) };
      });
    },
  });
};

interface AffineParams {
  readonly seed: number;
  readonly shape: readonly [number, number, number, number];
}

/** A case of {@linkcode affine} with the given knobs; batch sizes 1..2 unless fixed. */
const affineCase = (
  name: string,
  knobs: Knobs = {},
  extra: Partial<BijectorCase<AffineParams>> & { batch?: number; leakBuild?: tf.Tensor[] } = {},
): BijectorCase<AffineParams> => ({
  name,
  params: fc.record({
    seed: fc.integer({ min: 0, max: 1e9 }),
    shape: fc.tuple(
      extra.batch ? fc.constant(extra.batch) : fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 3 }),
    ),
  }),
  related: (p) => fc.integer({ min: 0, max: 1e9 }).map((seed) => ({ ...p, seed })),
  build: ({ seed, shape }): Built => {
    const a = tf.randomNormal([shape[3]], 0, 0.7, "float32", foldIn(seed, 0)) as tf.Tensor1D;
    const b = tf.randomNormal([shape[3]], 0, 1, "float32", foldIn(seed, 1)) as tf.Tensor1D;
    const x = tf.randomNormal([...shape], 0, 1, "float32", foldIn(seed, 2)) as tf.Tensor4D;
    return {
      bijector: affine(a, b, knobs),
      x,
      dispose: () => {
        tf.dispose([a, b]);
        if (extra.leakBuild) extra.leakBuild.push(x);
        else x.dispose();
      },
    };
  },
  ...extra,
});

/** Run the kit and expect a LawError on `law` whose message is readable; no tensor leaks. */
const expectLawFailure = async (
  c: BijectorCase<AffineParams>,
  law: LawName,
  detail: RegExp,
  options: { numRuns?: number; skip?: LawName[] } = {},
): Promise<LawError> => {
  let caught: LawError | undefined;
  await assert.rejects(
    () => checkBijectorLaws(c, { numRuns: options.numRuns ?? 3, skip: options.skip }),
    (e: unknown) => {
      assert.ok(e instanceof LawError, `expected a LawError, got ${e}`);
      caught = e;
      return true;
    },
  );
  const e = caught!;
  assert.equal(e.law, law, `case ${c.name}: expected law ${law} to fail, got:\n${e.message}`);
  assert.match(e.message, new RegExp(`case "${c.name}" fails law "${law}"`));
  assert.match(e.message, detail);
  assert.equal(e.report.passed, false);
  const failed = e.report.laws.filter((l) => l.status === "failed").map((l) => l.law);
  assert.deepEqual(failed, [law]);
  return e;
};

const TOL_MSG = /max \|error\| \S+ > tolerance \S+ \(atol /;

Deno.test("kit: correct bijectors pass every law and report sane numbers", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("kit on correct cases", async () => {
    const report = await checkBijectorLaws(elementwiseAffineCase);
    assert.equal(report.passed, true);
    assert.equal(report.seed, 42);
    assert.equal(report.numRuns, 5);
    assert.deepEqual(report.tolerances, DEFAULT_TOLERANCES);
    assert.deepEqual(report.laws.map((l) => l.law), [...LAW_NAMES]);
    for (const l of report.laws) {
      assert.equal(l.status, "passed", `${l.law}: ${l.note}`);
      assert.equal(l.runs, 5, l.law);
      assert.ok(l.maxRatio <= 1, `${l.law} ratio ${l.maxRatio}`);
    }
    const jac = report.laws.find((l) => l.law === "jacobianLogDet")!;
    assert.ok(jac.maxError < 1e-4, `jacobian error ${jac.maxError}`);
    // the knob-free test affine (the base of every mutant below) passes too
    const base = await checkBijectorLaws(affineCase("testAffine"), { numRuns: 3 });
    assert.equal(base.passed, true, formatLawReport(base));
    // the table names the case and every law
    const table = formatLawReport([report, base]);
    for (const l of LAW_NAMES) {
      assert.match(table, new RegExp(`elementwiseAffine\\s+${l}\\s+passed`));
    }
    assert.match(table, /testAffine\s+algebra\s+passed/);
  });
});

Deno.test("kit: same seed gives the same report; options override the case", gpuTest, async () => {
  await useBackend("webgpu");
  const a = await checkBijectorLaws(elementwiseAffineCase, { numRuns: 2, seed: 7 });
  const b = await checkBijectorLaws(elementwiseAffineCase, { numRuns: 2, seed: 7 });
  assert.deepEqual(
    a.laws.map((l) => [l.law, l.maxError]),
    b.laws.map((l) => [l.law, l.maxError]),
  );
  assert.equal(a.numRuns, 2);
  const strict = await checkBijectorLaws(
    { ...elementwiseAffineCase, tolerances: { roundTripAtol: 0.5 } },
    { numRuns: 1, tolerances: { logDetAtol: 0.25 }, skip: ["algebra"] },
  );
  assert.equal(strict.tolerances.roundTripAtol, 0.5);
  assert.equal(strict.tolerances.logDetAtol, 0.25);
  assert.equal(strict.tolerances.roundTripRtol, DEFAULT_TOLERANCES.roundTripRtol);
  assert.equal(strict.laws.find((l) => l.law === "algebra")!.status, "skipped");
});

Deno.test(
  "kit mutants: log-det sign, offset and zero bugs fail jacobianLogDet",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("kit on failing cases", async () => {
      const e = await expectLawFailure(
        affineCase("wrongSign", { ldSign: -1 }),
        "jacobianLogDet",
        /forward log-det of sample 0 .* vs log\|det J\| of the autodiff Jacobian/,
      );
      assert.match(e.message, TOL_MSG);
      assert.match(e.message, /params: \{"seed":/);
      await expectLawFailure(affineCase("offset", { ldOffset: 0.05 }), "jacobianLogDet", TOL_MSG);
      await expectLawFailure(affineCase("zeroLd", { zeroLd: true }), "jacobianLogDet", TOL_MSG);
      // skipping the law lets the bug through: the law is what catches it
      const skipped = await checkBijectorLaws(affineCase("wrongSign", { ldSign: -1 }), {
        numRuns: 2,
        skip: ["jacobianLogDet"],
      });
      assert.equal(skipped.passed, true);
      assert.equal(skipped.laws.find((l) => l.law === "jacobianLogDet")!.status, "skipped");
    });
  },
);

Deno.test("kit mutants: inverse bugs fail roundTrip / inverseLogDet", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("kit on failing cases", async () => {
    await expectLawFailure(
      affineCase("badInverse", { badInverse: true }),
      "roundTrip",
      /inverse\(forward\(x\)\) vs x: max \|error\| \S+ > tolerance \S+ \(atol 0.0001 \+ rtol 0.0001 · max\|input\|/,
    );
    await expectLawFailure(
      affineCase("inverseLdNotNegated", { inverseLdNotNegated: true }),
      "inverseLogDet",
      /inverse log-det at forward\(x\) vs −forward log-det at x/,
    );
  });
});

Deno.test(
  "kit mutants: batch mixing fails batchIndependence (free and fixed batch)",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("kit on failing cases", async () => {
      await expectLawFailure(
        affineCase("batchMix", { mix: 0.5 }),
        "batchIndependence",
        /of sample \d alone vs in a batch of 2/,
      );
      await expectLawFailure(
        affineCase("batchMixFixed", { mix: 0.5 }, { batch: 2, fixedBatch: true }),
        "batchIndependence",
        /sample 0 after changing the other samples/,
      );
    });
  },
);

Deno.test(
  "kit mutants: NaN outputs and wrong log-det shapes fail finiteAndShapes",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("kit on failing cases", async () => {
      await expectLawFailure(
        affineCase("nan", { nan: true }),
        "finiteAndShapes",
        /forward output has a non-finite value \(NaN/,
      );
      // an "identity" that hands back its input: callers would dispose their own tensor
      const noClone: Bijector = bijector({
        name: "noClone",
        forward: (x) => ({ y: x, logDet: tf.zeros([x.shape[0]]) }),
        inverse: (y) => ({ y, logDet: tf.zeros([y.shape[0]]) }),
      });
      const base = affineCase("noClone");
      await expectLawFailure(
        {
          ...base,
          volumePreserving: true,
          build: async (p) => ({ ...(await base.build(p)), bijector: noClone }),
        },
        "finiteAndShapes",
        /noClone returned its input tensor as output/,
      );
      await expectLawFailure(
        affineCase("ldColumn", { ldColumn: true }),
        "finiteAndShapes",
        /forward log-det has shape \[\d, 1\], expected \[\d\]/,
      );
    });
  },
);

Deno.test("kit mutants: leaks in forward and in build/dispose fail noLeak", gpuTest, async () => {
  await useBackend("webgpu");
  const leaked: tf.Tensor[] = [];
  try {
    await expectLawFailure(
      affineCase("leakyForward", { leakInto: leaked }),
      "noLeak",
      /forward left 1 tensor\(s\) allocated after its outputs were disposed/,
    );
    const n = leaked.length;
    tf.dispose(leaked.splice(0));
    assert.ok(n >= 1);
    await expectLawFailure(
      affineCase("leakyDispose", {}, { leakBuild: leaked }),
      "noLeak",
      /\d+ tensor\(s\) remain after the run: build\(\) made tensors that dispose\(\) does not free/,
    );
  } finally {
    tf.dispose(leaked);
  }
});

Deno.test(
  "kit: volume law needs a non-zero log-det unless declared volume preserving",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    // a pure shift (a = 0) has log-det exactly 0
    const shiftCase = (volumePreserving: boolean): BijectorCase<ElementwiseAffineCaseParams> => ({
      ...elementwiseAffineCase,
      name: volumePreserving ? "shiftDeclared" : "shiftUndeclared",
      volumePreserving,
      build: async (p) => {
        const built = await elementwiseAffineCase.build(p);
        const a = tf.zeros([p.shape[3]]) as tf.Tensor1D;
        const b = tf.fill([p.shape[3]], 0.3) as tf.Tensor1D;
        return {
          bijector: elementwiseAffine({ logScale: a, shift: b }, "shift"),
          x: built.x,
          dispose: () => {
            tf.dispose([a, b]);
            built.dispose();
          },
        };
      },
    });
    await noLeak("volume law", async () => {
      await assert.rejects(() => checkBijectorLaws(shiftCase(false), { numRuns: 2 }), (e) => {
        assert.ok(e instanceof LawError);
        assert.equal(e.law, "volume");
        assert.match(e.message, /log-det was ~0 in every run .* declare volumePreserving: true/);
        return true;
      });
      const ok = await checkBijectorLaws(shiftCase(true), { numRuns: 2 });
      assert.equal(ok.passed, true);
      // a scaling map that claims to preserve volume fails
      await assert.rejects(
        () =>
          checkBijectorLaws({ ...elementwiseAffineCase, volumePreserving: true }, { numRuns: 2 }),
        (e) =>
          e instanceof LawError && e.law === "volume" &&
          /volume-preserving case vs 0/.test(e.message),
      );
    });
  },
);

Deno.test("kit: throwOnFailure false, registries, oversized Jacobians", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("kit options", async () => {
    const r = await checkBijectorLaws(affineCase("badInverse", { badInverse: true }), {
      numRuns: 2,
      throwOnFailure: false,
    });
    assert.equal(r.passed, false);
    const rt = r.laws.find((l) => l.law === "roundTrip")!;
    assert.equal(rt.status, "failed");
    assert.ok(rt.maxRatio > 1);
    assert.match(rt.note!, /inverse\(forward\(x\)\) vs x/);
    assert.match(formatLawReport(r), /badInverse\s+roundTrip\s+failed/);

    await assert.rejects(
      () =>
        checkAllBijectorLaws([elementwiseAffineCase, affineCase("wrongSign", { ldSign: -1 })], {
          numRuns: 1,
        }),
      /checkAllBijectorLaws: 1 of 2 case\(s\) failed:\n.*case "wrongSign" fails law "jacobianLogDet"/,
    );
    const all = await checkAllBijectorLaws(
      [elementwiseAffineCase, affineCase("wrongSign", { ldSign: -1 })],
      { numRuns: 1, throwOnFailure: false },
    );
    assert.deepEqual(all.map((x) => x.passed), [true, false]);

    const big = affineCase("big", {}, {
      params: fc.record({ seed: fc.constant(1), shape: fc.constant([1, 3, 3, 8] as const) }),
    });
    await expectLawFailure(big, "jacobianLogDet", /72 entries, more than maxSize 64/, {
      numRuns: 1,
    });
  });
});

// A dense per-pixel channel mixer y = x·W: its Jacobian is not diagonal, and its inverse
// W⁻¹ and log-det are computed in float64 in an async build.
interface MixerParams {
  readonly seed: number;
  readonly channels: number;
  readonly batch: number;
}

const mixer = (w: tf.Tensor2D, wInv: tf.Tensor2D, hwLogDet: number, offset = 0): Bijector => {
  const c = w.shape[0];
  const apply = (x: tf.Tensor4D, m: tf.Tensor2D) =>
    tf.reshape(tf.matMul(tf.reshape(x, [-1, c]), m), x.shape) as tf.Tensor4D;
  const ld = (x: tf.Tensor4D, sign: number) =>
    tf.fill([x.shape[0]], sign * (hwLogDet * x.shape[1] * x.shape[2] + offset)) as tf.Tensor1D;
  return bijector({
    name: "mixer",
    forward: (x) => tf.tidy(() => ({ y: apply(x, w), logDet: ld(x, 1) })),
    inverse: (y) => tf.tidy(() => ({ y: apply(y, wInv), logDet: ld(y, -1) })),
  });
};

const mixerCase = (offset = 0, fixedBatch = false): BijectorCase<MixerParams> => ({
  name: offset ? "mixerOffset" : fixedBatch ? "mixerFixedBatch" : "mixer",
  fixedBatch,
  params: fc.record({
    seed: fc.integer({ min: 0, max: 1e9 }),
    channels: fc.integer({ min: 2, max: 4 }),
    batch: fc.constant(2),
  }),
  build: async ({ seed, channels, batch }): Promise<Built> => {
    const wt = tf.tidy(() =>
      tf.add(tf.eye(channels), tf.randomNormal([channels, channels], 0, 0.3, "float32", seed))
    );
    const wData = Float64Array.from(await wt.data());
    wt.dispose();
    const wm = linalg.matrix(channels, channels, wData);
    const w = tf.tensor2d(Float32Array.from(wData), [channels, channels]);
    const wInv = tf.tensor2d(Float32Array.from(linalg.inverse(wm).data), [channels, channels]);
    const x = tf.randomNormal(
      [batch, 2, 2, channels],
      0,
      1,
      "float32",
      foldIn(seed, 1),
    ) as tf.Tensor4D;
    return {
      bijector: mixer(w, wInv, linalg.slogdet(wm).logAbsDet, offset),
      x,
      dispose: () => tf.dispose([w, wInv, x]),
    };
  },
});

Deno.test(
  "kit: a non-diagonal Jacobian (async float64 build) is checked exactly",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    await noLeak("mixer", async () => {
      const ok = await checkBijectorLaws(mixerCase(), { numRuns: 3 });
      assert.equal(ok.passed, true, formatLawReport(ok));
      const okFixed = await checkBijectorLaws(mixerCase(0, true), { numRuns: 2 });
      assert.equal(okFixed.passed, true, formatLawReport(okFixed));
      // log-det off by 0.02: inside no round-trip tolerance, but the Jacobian law sees it
      await assert.rejects(
        () => checkBijectorLaws(mixerCase(0.02), { numRuns: 2 }),
        (e) => e instanceof LawError && e.law === "jacobianLogDet",
      );
      // and so does the fixed-batch (row by row) Jacobian
      await assert.rejects(
        () => checkBijectorLaws({ ...mixerCase(0.02), fixedBatch: true }, { numRuns: 1 }),
        (e) => e instanceof LawError && e.law === "jacobianLogDet",
      );
    });
  },
);

Deno.test("autodiffLogDet: tile and rows modes match log|det W| per pixel", gpuTest, async () => {
  await useBackend("webgpu");
  await noLeak("autodiffLogDet", async () => {
    const built = await mixerCase().build({ seed: 5, channels: 3, batch: 2 });
    try {
      // the rows of y for the identity matrix as input are the rows of W
      const eye = tf.tidy(() => tf.reshape(tf.eye(3), [1, 1, 3, 3]) as tf.Tensor4D);
      const r = built.bijector.forward(eye);
      const w = linalg.matrix(3, 3, await read(r.y));
      tf.dispose([eye, r.y, r.logDet]);
      const expected = 4 * linalg.slogdet(w).logAbsDet; // 2×2 pixels
      const tile = await autodiffLogDet(built.bijector, built.x);
      const rows = await autodiffLogDet(built.bijector, built.x, undefined, { mode: "rows" });
      assert.ok(maxAbsDiff(tile, [expected, expected]) < 1e-4, `tile ${tile} vs ${expected}`);
      assert.ok(maxAbsDiff(rows, [expected, expected]) < 1e-4, `rows ${rows} vs ${expected}`);
    } finally {
      built.dispose();
    }
  });
});

/** A one-draw case around a fixed bijector and input (for the structural tests below). */
const fixedCase = (name: string, make: () => Bijector, shape: [number, number, number, number]) =>
  ({
    name,
    params: fc.constant(0),
    build: () => {
      const x = tf.randomNormal(shape, 0, 1, "float32", 5) as tf.Tensor4D;
      return { bijector: make(), x, dispose: () => x.dispose() };
    },
  }) satisfies BijectorCase<number>;

Deno.test("kit: a wrong forwardShape is named before inverse is ever called", async () => {
  await useBackend("cpu");
  let inverseCalls = 0;
  const liar = (): Bijector =>
    bijector({
      name: "liar",
      forward: (x) => ({ y: tf.mul(x, 2) as tf.Tensor4D, logDet: tf.zeros([x.shape[0]]) }),
      inverse: (y) => {
        inverseCalls++;
        return { y: tf.div(y, 2) as tf.Tensor4D, logDet: tf.zeros([y.shape[0]]) };
      },
      forwardShape: ([n, h, w, c]) => [n, h / 2, w / 2, c * 4],
    });
  const caught = await checkBijectorLaws(fixedCase("liar", liar, [2, 2, 2, 1]), {
    numRuns: 1,
    throwOnFailure: false,
  });
  const law = caught.laws.find((l) => l.law === "finiteAndShapes")!;
  assert.equal(law.status, "failed");
  assert.match(
    law.note!,
    /forward output has shape \[2, 2, 2, 1\], forwardShape says \[2, 1, 1, 4\]/,
  );
  assert.match(law.note!, /inverse not called/);
  assert.equal(inverseCalls, 0, "inverse was called with a wrongly shaped input");
});

Deno.test("kit: a kernel missing on the backend is named, with the backends that have it", async () => {
  const kernelName = "DeflowKitTestCpuOnly";
  tf.registerKernel({
    kernelName,
    backendName: "cpu",
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs.x as TensorInfo;
      const cpu = backend as unknown as {
        makeTensorInfo: (s: number[], d: string, v: Float32Array) => TensorInfo;
        readSync: (id: unknown) => Float32Array;
      };
      return cpu.makeTensorInfo(x.shape, "float32", Float32Array.from(cpu.readSync(x.dataId)));
    },
  });
  try {
    const usesIt = (): Bijector =>
      bijector({
        name: "usesCpuOnlyKernel",
        forward: (x) => ({
          y: tf.engine().runKernel(kernelName, { x }) as tf.Tensor4D,
          logDet: tf.zeros([x.shape[0]]),
        }),
        inverse: (y) => ({ y: tf.clone(y), logDet: tf.zeros([y.shape[0]]) }),
      });
    await useBackend("wasm");
    const report = await checkBijectorLaws(fixedCase("cpuOnly", usesIt, [2, 1, 1, 2]), {
      numRuns: 1,
      throwOnFailure: false,
    });
    const failed = report.laws.find((l) => l.status === "failed")!;
    assert.match(
      failed.note!,
      /the wasm backend has no DeflowKitTestCpuOnly kernel; run this case on cpu/,
    );
    assert.match(failed.note!, /DEFLOW_BACKEND=cpu/);
  } finally {
    tf.unregisterKernel(kernelName, "cpu");
    await useBackend("webgpu");
  }
});

Deno.test(
  "kit: layerCase tests a layer in a few lines, and catches a broken one",
  gpuTest,
  async () => {
    await useBackend("wasm");
    const { actNorm } = await import("../src/layers/actNorm.ts");
    const report = await checkBijectorLaws(
      layerCase({
        name: "actNorm",
        init: ({ channels }) => actNorm.init({ channels }),
        bijector: (params) => actNorm.bijector(params),
      }),
      { numRuns: 3 },
    );
    assert.ok(report.passed);
    assert.ok(report.laws.every((l) => l.status === "passed"), formatLawReport(report));
    // The same layer with its log-det sign flipped fails the Jacobian law.
    const flipped = layerCase({
      name: "actNorm (log-det sign flipped)",
      init: ({ channels }) => actNorm.init({ channels }),
      bijector: (params) => {
        const b = actNorm.bijector(params);
        const flip = (r: { y: tf.Tensor4D; logDet: tf.Tensor1D }) => {
          const logDet = tf.neg(r.logDet) as tf.Tensor1D;
          r.logDet.dispose();
          return { y: r.y, logDet };
        };
        return bijector({
          name: "flipped",
          forward: (x, c) => flip(b.forward(x, c)),
          inverse: (y, c) => flip(b.inverse(y, c)),
        });
      },
    });
    await assert.rejects(
      () => checkBijectorLaws(flipped, { numRuns: 2 }),
      (e: unknown) => e instanceof LawError && e.law === "jacobianLogDet",
    );
    await useBackend("webgpu");
  },
);
