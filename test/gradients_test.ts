/**
 * The gradients `src/gradients.ts` registers (in place of the `@tensorflow/tfjs` union
 * package): every kernel's gradient equals central finite differences of a random
 * projection of its output, each case runs the kernel it names, and every registered
 * kernel has a case. With `DEFLOW_TFJS_GRADIENTS=1` the same cases are also compared with
 * tfjs's own gradients (loads `npm:@tensorflow/tfjs@4.22.0`, about 240 MB, on demand).
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { gradientKernels } from "../src/gradients.ts";
import { useBackend } from "./_helpers.ts";

interface Case {
  /** The kernel whose gradient the case checks. */
  readonly kernel: string;
  /** Input values (shape, generator of element i). */
  readonly inputs: readonly Input[];
  /** The op(s) under test; outputs are projected on fixed random weights and summed. */
  readonly f: (xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
}

/** Values away from 0 (±0.2 … ±1.1): no kink of relu/abs/sign within a finite-difference step. */
const away = (i: number) => (i % 2 === 0 ? 1 : -1) * (0.2 + ((i * 0.37) % 0.9));
/** Positive values in [0.5, 1.5). */
const pos = (i: number) => 0.5 + ((i * 0.61) % 1);
/** Values in (k + 0.2, k + 0.8): far from the steps of floor/ceil/round. */
const midInt = (i: number) => (i % 5) - 2 + 0.2 + ((i * 0.29) % 0.6);
/** Distinct values (no ties for max/min). */
const distinct = (i: number) => Math.sin(i * 1.7 + 0.3) * 2;

type Input = readonly [number[], (i: number) => number];
const x23: Input = [[2, 3], away];
const cases: readonly Case[] = [
  { kernel: "Add", inputs: [x23, [[3], pos]], f: ([a, b]) => tf.add(a, b) },
  { kernel: "Sub", inputs: [x23, [[2, 1], pos]], f: ([a, b]) => tf.sub(a, b) },
  { kernel: "Multiply", inputs: [x23, [[1, 3], away]], f: ([a, b]) => tf.mul(a, b) },
  { kernel: "RealDiv", inputs: [x23, [[3], pos]], f: ([a, b]) => tf.div(a, b) },
  {
    kernel: "SquaredDifference",
    inputs: [x23, [[2, 3], pos]],
    f: ([a, b]) => tf.squaredDifference(a, b),
  },
  { kernel: "Maximum", inputs: [x23, [[2, 3], pos]], f: ([a, b]) => tf.maximum(a, b) },
  { kernel: "Minimum", inputs: [x23, [[2, 3], pos]], f: ([a, b]) => tf.minimum(a, b) },
  { kernel: "Atan2", inputs: [[[2, 3], pos], [[3], pos]], f: ([a, b]) => tf.atan2(a, b) },
  { kernel: "Pow", inputs: [[[2, 3], pos], [[3], away]], f: ([a, b]) => tf.pow(a, b) },
  { kernel: "AddN", inputs: [x23, x23, [[2, 3], pos]], f: (xs) => tf.addN(xs) },
  { kernel: "Prelu", inputs: [x23, [[3], pos]], f: ([x, a]) => tf.prelu(x, a) },
  { kernel: "Neg", inputs: [x23], f: ([x]) => tf.neg(x) },
  { kernel: "Identity", inputs: [x23], f: ([x]) => tf.clone(x) },
  { kernel: "Cast", inputs: [x23], f: ([x]) => tf.cast(tf.mul(x, 1), "float32") },
  { kernel: "Exp", inputs: [x23], f: ([x]) => tf.exp(x) },
  { kernel: "Expm1", inputs: [x23], f: ([x]) => tf.expm1(x) },
  { kernel: "Log", inputs: [[[2, 3], pos]], f: ([x]) => tf.log(x) },
  { kernel: "Log1p", inputs: [[[2, 3], pos]], f: ([x]) => tf.log1p(x) },
  { kernel: "Square", inputs: [x23], f: ([x]) => tf.square(x) },
  { kernel: "Sqrt", inputs: [[[2, 3], pos]], f: ([x]) => tf.sqrt(x) },
  { kernel: "Rsqrt", inputs: [[[2, 3], pos]], f: ([x]) => tf.rsqrt(x) },
  { kernel: "Reciprocal", inputs: [[[2, 3], pos]], f: ([x]) => tf.reciprocal(x) },
  { kernel: "Abs", inputs: [x23], f: ([x]) => tf.abs(x) },
  { kernel: "Sin", inputs: [x23], f: ([x]) => tf.sin(x) },
  { kernel: "Cos", inputs: [x23], f: ([x]) => tf.cos(x) },
  { kernel: "Atan", inputs: [x23], f: ([x]) => tf.atan(x) },
  { kernel: "Sinh", inputs: [x23], f: ([x]) => tf.sinh(x) },
  { kernel: "Cosh", inputs: [x23], f: ([x]) => tf.cosh(x) },
  { kernel: "Erf", inputs: [x23], f: ([x]) => tf.erf(x) },
  { kernel: "Sigmoid", inputs: [x23], f: ([x]) => tf.sigmoid(x) },
  { kernel: "Tanh", inputs: [x23], f: ([x]) => tf.tanh(x) },
  { kernel: "Softplus", inputs: [x23], f: ([x]) => tf.softplus(x) },
  { kernel: "Relu", inputs: [x23], f: ([x]) => tf.relu(x) },
  {
    kernel: "Relu6",
    inputs: [[[2, 4], (i) => [-0.5, 0.5, 3, 5.5, 6.5, 7, -2, 1][i]]],
    f: ([x]) => tf.relu6(x),
  },
  { kernel: "Elu", inputs: [x23], f: ([x]) => tf.elu(x) },
  { kernel: "Selu", inputs: [x23], f: ([x]) => tf.selu(x) },
  { kernel: "LeakyRelu", inputs: [x23], f: ([x]) => tf.leakyRelu(x, 0.2) },
  { kernel: "ClipByValue", inputs: [x23], f: ([x]) => tf.clipByValue(x, -0.5, 0.6) },
  { kernel: "Step", inputs: [x23], f: ([x]) => tf.step(x) },
  { kernel: "Floor", inputs: [[[2, 3], midInt]], f: ([x]) => tf.floor(x) },
  { kernel: "Ceil", inputs: [[[2, 3], midInt]], f: ([x]) => tf.ceil(x) },
  { kernel: "Round", inputs: [[[2, 3], midInt]], f: ([x]) => tf.round(tf.add(x, 0.5)) },
  { kernel: "Sign", inputs: [x23], f: ([x]) => tf.sign(x) },
  { kernel: "ZerosLike", inputs: [x23], f: ([x]) => tf.zerosLike(x) },
  { kernel: "OnesLike", inputs: [x23], f: ([x]) => tf.onesLike(x) },
  { kernel: "Sum", inputs: [[[2, 3, 2], away]], f: ([x]) => tf.sum(x, 1) },
  { kernel: "Mean", inputs: [[[2, 3, 2], away]], f: ([x]) => tf.mean(x, [0, 2]) },
  { kernel: "Max", inputs: [[[2, 4], distinct]], f: ([x]) => tf.max(x, 1) },
  { kernel: "Min", inputs: [[[2, 4], distinct]], f: ([x]) => tf.min(x, 0) },
  { kernel: "Softmax", inputs: [[[2, 4], distinct]], f: ([x]) => tf.softmax(x) },
  {
    kernel: "Cumsum",
    inputs: [[[2, 4], away]],
    f: ([x]) => [tf.cumsum(x, 1), tf.cumsum(x, 1, true, true)],
  },
  { kernel: "Reshape", inputs: [x23], f: ([x]) => tf.reshape(x, [3, 2]) },
  { kernel: "ExpandDims", inputs: [x23], f: ([x]) => tf.expandDims(x, 1) },
  { kernel: "Transpose", inputs: [[[2, 3, 2], away]], f: ([x]) => tf.transpose(x, [2, 0, 1]) },
  {
    kernel: "Concat",
    inputs: [x23, [[2, 1], pos], [[2, 2], away]],
    f: (xs) => tf.concat(xs, 1),
  },
  { kernel: "SplitV", inputs: [[[2, 5], away]], f: ([x]) => tf.split(x, [1, 3, 1], 1) },
  { kernel: "Pack", inputs: [x23, [[2, 3], pos]], f: (xs) => tf.stack(xs, 1) },
  { kernel: "Unpack", inputs: [[[2, 3, 2], away]], f: ([x]) => tf.unstack(x, 1) },
  { kernel: "Slice", inputs: [[[3, 4], away]], f: ([x]) => tf.slice(x, [1, 1], [2, -1]) },
  { kernel: "PadV2", inputs: [x23], f: ([x]) => tf.pad(x, [[1, 0], [2, 1]], 0.5) },
  { kernel: "Tile", inputs: [x23], f: ([x]) => tf.tile(x, [2, 3]) },
  {
    kernel: "Tile",
    inputs: [[[2, 1, 3, 2], away]],
    f: ([x]) => tf.tile(x, [1, 2, 3, 2]),
  },
  { kernel: "Tile", inputs: [[[1, 3], away]], f: ([x]) => tf.broadcastTo(x, [2, 2, 3]) },
  ...[[false, false], [false, true], [true, false], [true, true]].map(([ta, tb]): Case => ({
    kernel: "BatchMatMul",
    inputs: [[ta ? [2, 4, 3] : [2, 3, 4], away], [tb ? [2, 5, 4] : [2, 4, 5], pos]],
    f: ([a, b]) => tf.matMul(a, b, ta, tb),
  })),
  {
    kernel: "Conv2D",
    inputs: [[[1, 5, 5, 2], away], [[3, 3, 2, 3], away]],
    f: ([x, w]) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"),
  },
  {
    kernel: "Conv2D",
    inputs: [[[2, 6, 5, 2], away], [[3, 2, 2, 2], pos]],
    f: ([x, w]) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "valid"),
  },
];

const makeInputs = (c: Case): tf.Tensor[] =>
  c.inputs.map(([shape, g]) =>
    tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => g(i)), shape)
  );

/** The scalar loss: each output times fixed pseudo-random weights, summed. */
const lossOf = (c: Case) => (...xs: tf.Tensor[]): tf.Scalar =>
  tf.tidy(() => {
    const out = c.f(xs);
    const outs = Array.isArray(out) ? out : [out];
    return tf.addN(outs.map((o, k) => {
      const w = tf.tensor(
        Array.from({ length: o.size }, (_, i) => Math.cos(i * 2.3 + k + 0.5)),
        o.shape,
      );
      return tf.sum(tf.mul(o, w));
    })) as tf.Scalar;
  });

/** Analytic gradients of the case's loss (values), via whatever gradients are registered. */
const analytic = (c: Case): number[][] =>
  tf.tidy(() => {
    const xs = makeInputs(c);
    return tf.grads(lossOf(c))(xs).map((g) => Array.from(g.dataSync()));
  });

/** Central finite differences of the loss, in float64 around float32 evaluations. */
const numeric = (c: Case, eps: number): number[][] => {
  const base = c.inputs.map(([shape, g]) =>
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => g(i))
  );
  const evalAt = (vals: number[][]): number =>
    tf.tidy(() => lossOf(c)(...vals.map((v, k) => tf.tensor(v, c.inputs[k][0]))).dataSync()[0]);
  return base.map((v, k) =>
    v.map((_, i) => {
      const at = (d: number) =>
        evalAt(base.map((u, j) => j === k ? u.map((e, m) => m === i ? e + d : e) : u));
      return (at(eps) - at(-eps)) / (2 * eps);
    })
  );
};

const worst = (a: number[][], b: number[][]): number => {
  let m = 0;
  a.forEach((row, k) =>
    row.forEach((v, i) => m = Math.max(m, Math.abs(v - b[k][i]) / (1 + Math.abs(b[k][i]))))
  );
  return m;
};

Deno.test("gradients: every registered kernel equals finite differences and has a case", async () => {
  await useBackend("cpu");
  const before = tf.memory().numTensors;
  for (const c of cases) {
    // The case must run its kernel's gradient: wrap it for the duration of the case.
    const config = tf.getGradient(c.kernel);
    assert.ok(config, `${c.kernel}: no gradient registered`);
    const original = config.gradFunc;
    let ran = false;
    config.gradFunc = (dy, saved, attrs) => {
      ran = true;
      return original(dy, saved, attrs);
    };
    try {
      let got: number[][];
      try {
        got = analytic(c);
      } catch (e) {
        throw new Error(`${c.kernel}: ${e}`);
      }
      assert.ok(ran, `${c.kernel}: the case does not run the kernel's gradient`);
      const err = worst(got, numeric(c, 1e-2));
      assert.ok(err < 2e-3, `${c.kernel}: gradient differs from finite differences by ${err}`);
    } finally {
      config.gradFunc = original;
    }
  }
  assert.equal(tf.memory().numTensors, before, "tensors leaked");
  const covered = new Set(cases.map((c) => c.kernel));
  const missing = gradientKernels.filter((k) => !covered.has(k));
  assert.deepEqual(missing, [], `kernels without a case: ${missing.join(", ")}`);
});

Deno.test("gradients: deflow's training kernels are all registered", () => {
  // The kernels a training step of the model differentiates through (recorded with the
  // tfjs union package): a new one must get a gradient here before deflow can train.
  const used = [
    "Add",
    "BatchMatMul",
    "Concat",
    "Conv2D",
    "Exp",
    "Identity",
    "LeakyRelu",
    "Log",
    "Mean",
    "Multiply",
    "Neg",
    "RealDiv",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Slice",
    "SplitV",
    "Square",
    "SquaredDifference",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Unpack",
  ];
  for (const k of used) assert.ok(tf.getGradient(k), `${k}: no gradient registered`);
});

Deno.test({
  name: "gradients: equal @tensorflow/tfjs's own (DEFLOW_TFJS_GRADIENTS=1)",
  ignore: Deno.env.get("DEFLOW_TFJS_GRADIENTS") !== "1",
  fn: async () => {
    await useBackend("cpu");
    const ours = cases.map(analytic);
    const saved = gradientKernels.map((k) => ({ ...tf.getGradient(k) }));
    // Not a literal: a fresh clone's `deno test` must not download the union package.
    const union = ["npm:@tensorflow", "tfjs@4.22.0"].join("/");
    await import(union); // registers (overwrites) tfjs's gradients
    try {
      cases.forEach((c, i) => {
        assert.notEqual(
          tf.getGradient(c.kernel).gradFunc,
          saved.find((s) => s.kernelName === c.kernel)?.gradFunc,
        );
        const err = worst(ours[i], analytic(c));
        assert.ok(err < 1e-6, `${c.kernel}: differs from tfjs's gradient by ${err}`);
      });
    } finally {
      for (const s of saved) tf.registerGradient(s);
    }
  },
});
