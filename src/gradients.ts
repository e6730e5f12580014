/**
 * Gradient functions for the tfjs kernels deflow differentiates through, registered
 * without the `@tensorflow/tfjs` union package.
 *
 * `@tensorflow/tfjs-core`'s Node entry registers no gradients, and its own
 * `register_all_gradients` module cannot be loaded under Deno (its ESM files import
 * each other by extensionless specifiers). Importing all of `@tensorflow/tfjs` for that
 * side effect costs about 240 MB of `node_modules` (layers, converter, webgl, data,
 * core-js). This module registers the same gradient functions for the kernels deflow
 * uses — and the common elementwise, reduction and shape kernels a user's own layer is
 * likely to use — ported from tfjs-core 4.22.0 (`src/gradients/*_grad.ts`, Copyright
 * 2020 Google LLC, Apache License 2.0) onto tfjs-core's public API.
 *
 * {@linkcode registerGradients} runs once when `src/tf.ts` loads. It registers a kernel's
 * gradient only where none is registered yet, so an application that also loads
 * `@tensorflow/tfjs` keeps tfjs's own. `test/gradients_test.ts` checks every gradient
 * against finite differences and, with `DEFLOW_TFJS_GRADIENTS=1`, against tfjs's.
 *
 * A kernel outside {@linkcode gradientKernels} has no gradient: `tf.grad` through it
 * fails with tfjs's "gradient function not found for <kernel>" error. Register one with
 * `tf.registerGradient` (or load `@tensorflow/tfjs`, which registers all of tfjs's).
 *
 * @module
 */
import * as tfc from "@tensorflow/tfjs-core";

type Tensor = tfc.Tensor;
type GradMap = { [input: string]: () => Tensor };

const f32 = (t: Tensor): Tensor => tfc.cast(t, "float32");

/** Sum `res` over the axes along which `shape` was broadcast to `outShape`, then reshape. */
const unbroadcast = (res: Tensor, shape: number[], outShape: number[]): Tensor => {
  const axes = tfc.broadcast_util.getReductionAxes(shape, outShape);
  return tfc.reshape(axes.length > 0 ? tfc.sum(res, axes) : res, shape);
};

const one = (dy: Tensor | Tensor[]): Tensor => dy as Tensor;
const many = (ts: Tensor[]): GradMap => Object.fromEntries(ts.map((t, i) => [String(i), () => t]));
const zeroGrad = (dy: Tensor | Tensor[]): GradMap => ({ x: () => tfc.zerosLike(one(dy)) });
const num = (v: unknown): number => v as number;
const nums = (v: unknown): number[] => v as number[];

/** Binary elementwise gradient with broadcasting: `da`, `db` before reduction. */
const binary = (
  kernelName: string,
  da: (dy: Tensor, a: Tensor, b: Tensor) => Tensor,
  db: (dy: Tensor, a: Tensor, b: Tensor) => Tensor,
): tfc.GradConfig => ({
  kernelName,
  inputsToSave: ["a", "b"],
  gradFunc: (dy, [a, b]) => {
    const out = tfc.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    return {
      a: () => unbroadcast(da(one(dy), a, b), a.shape, out),
      b: () => unbroadcast(db(one(dy), a, b), b.shape, out),
    };
  },
});

/** Unary gradient from the saved input `x`. */
const fromInput = (kernelName: string, dx: (dy: Tensor, x: Tensor) => Tensor): tfc.GradConfig => ({
  kernelName,
  inputsToSave: ["x"],
  gradFunc: (dy, [x]) => ({ x: () => dx(one(dy), x) }),
});

/** Unary gradient from the saved output `y`. */
const fromOutput = (kernelName: string, dx: (dy: Tensor, y: Tensor) => Tensor): tfc.GradConfig => ({
  kernelName,
  outputsToSave: [true],
  gradFunc: (dy, [y]) => ({ x: () => dx(one(dy), y) }),
});

/** Shape of `dy` with size-1 axes restored at `axes` (for reductions without keepDims). */
const expandTo = (x: Tensor, axes: number[]): number[] => {
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return shape;
};

const minMax = (kernelName: string, axisAttr: string): tfc.GradConfig => ({
  kernelName,
  inputsToSave: ["x"],
  outputsToSave: [true],
  gradFunc: (dy, [x, y], attrs) => {
    const axes = tfc.util.parseAxisParam(nums(attrs[axisAttr]), x.shape);
    const shape = expandTo(x, axes);
    const d = tfc.reshape(one(dy), shape);
    return { x: () => tfc.mul(d, tfc.cast(tfc.equal(x, tfc.reshape(y, shape)), d.dtype)) };
  },
});

const SELU_SCALEALPHA = 1.7580993408473768599402175208123;
const SELU_SCALE = 1.0507009873554804934193349852946;

const configs: readonly tfc.GradConfig[] = [
  // Elementwise arithmetic (broadcasting).
  binary(tfc.Add, (dy) => dy, (dy) => dy),
  binary(tfc.Sub, (dy) => dy, (dy) => tfc.neg(dy)),
  binary(tfc.Multiply, (dy, _a, b) => tfc.mul(dy, f32(b)), (dy, a) => tfc.mul(dy, f32(a))),
  binary(
    tfc.RealDiv,
    (dy, _a, b) => tfc.div(dy, f32(b)),
    (dy, a, b) => tfc.neg(tfc.div(tfc.mul(dy, f32(a)), f32(tfc.square(b)))),
  ),
  binary(
    tfc.SquaredDifference,
    (dy, a, b) => tfc.mul(dy, tfc.mul(tfc.scalar(2), tfc.sub(a, b))),
    (dy, a, b) => tfc.mul(dy, tfc.mul(tfc.scalar(2), tfc.sub(b, a))),
  ),
  binary(
    tfc.Maximum,
    (dy, a, b) => tfc.mul(dy, f32(tfc.greaterEqual(a, b))),
    (dy, a, b) => tfc.mul(dy, f32(tfc.less(a, b))),
  ),
  binary(
    tfc.Minimum,
    (dy, a, b) => tfc.mul(dy, f32(tfc.lessEqual(a, b))),
    (dy, a, b) => tfc.mul(dy, f32(tfc.greater(a, b))),
  ),
  binary(
    tfc.Atan2,
    (dy, a, b) => tfc.mul(dy, tfc.div(b, tfc.add(tfc.square(a), tfc.square(b)))),
    (dy, a, b) => tfc.neg(tfc.mul(dy, tfc.div(a, tfc.add(tfc.square(a), tfc.square(b))))),
  ),
  {
    kernelName: tfc.Pow,
    inputsToSave: ["a", "b"],
    outputsToSave: [true],
    gradFunc: (dy, [a, b, y]) => {
      const out = tfc.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      return {
        a: () => {
          const e = f32(b);
          const d = tfc.mul(one(dy), tfc.mul(e, tfc.pow(a, tfc.sub(e, tfc.scalar(1)))));
          return unbroadcast(d, a.shape, out);
        },
        b: () => {
          const logA = tfc.where(tfc.greater(a, 0), tfc.log(a), tfc.zerosLike(a));
          return unbroadcast(tfc.mul(one(dy), tfc.mul(y, logA)), b.shape, out);
        },
      };
    },
  },
  {
    kernelName: tfc.AddN,
    saveAllInputs: true,
    gradFunc: (dy, saved) => many(saved.map(() => one(dy).clone())),
  },
  {
    kernelName: tfc.Prelu,
    inputsToSave: ["x", "alpha"],
    gradFunc: (dy, [x, alpha]) => {
      const d = one(dy);
      const mask = tfc.greater(x, 0);
      return {
        x: () => tfc.where(mask, d, tfc.mul(d, alpha)),
        alpha: () =>
          unbroadcast(tfc.where(mask, tfc.zerosLike(d), tfc.mul(d, x)), alpha.shape, d.shape),
      };
    },
  },

  // Elementwise unary.
  { kernelName: tfc.Neg, gradFunc: (dy) => ({ x: () => tfc.neg(one(dy)) }) },
  { kernelName: tfc.Identity, gradFunc: (dy) => ({ x: () => f32(one(dy)) }) },
  { kernelName: tfc.Cast, gradFunc: (dy) => ({ x: () => one(dy).clone() }) },
  fromOutput(tfc.Exp, (dy, y) => tfc.mul(dy, y)),
  fromInput(tfc.Expm1, (dy, x) => tfc.mul(dy, tfc.exp(x))),
  fromInput(tfc.Log, (dy, x) => tfc.div(dy, f32(x))),
  fromInput(tfc.Log1p, (dy, x) => tfc.div(dy, tfc.add(x, 1))),
  fromInput(tfc.Square, (dy, x) => tfc.mul(dy, tfc.mul(f32(x), 2))),
  fromInput(tfc.Sqrt, (dy, x) => tfc.div(dy, tfc.mul(tfc.sqrt(f32(x)), 2))),
  fromInput(tfc.Rsqrt, (dy, x) => tfc.neg(tfc.div(dy, tfc.mul(tfc.pow(x, 1.5), 2)))),
  fromInput(tfc.Reciprocal, (dy, x) => tfc.div(dy, tfc.neg(tfc.square(x)))),
  fromInput(tfc.Abs, (dy, x) => tfc.mul(dy, tfc.step(f32(x), -1))),
  fromInput(tfc.Sin, (dy, x) => tfc.mul(tfc.cos(f32(x)), dy)),
  fromInput(tfc.Cos, (dy, x) => tfc.mul(tfc.neg(tfc.sin(f32(x))), dy)),
  fromInput(tfc.Atan, (dy, x) => tfc.div(dy, tfc.add(tfc.square(f32(x)), 1))),
  fromInput(tfc.Sinh, (dy, x) => tfc.mul(tfc.cosh(f32(x)), dy)),
  fromInput(tfc.Cosh, (dy, x) => tfc.mul(tfc.sinh(f32(x)), dy)),
  fromInput(
    tfc.Erf,
    (dy, x) => tfc.mul(dy, tfc.mul(tfc.exp(tfc.neg(tfc.square(x))), 2 / Math.sqrt(Math.PI))),
  ),
  fromOutput(tfc.Sigmoid, (dy, y) => tfc.mul(dy, tfc.mul(y, tfc.sub(tfc.scalar(1), y)))),
  fromOutput(tfc.Tanh, (dy, y) => tfc.mul(tfc.sub(tfc.scalar(1), tfc.square(y)), dy)),
  fromInput(tfc.Softplus, (dy, x) => tfc.mul(dy, tfc.sigmoid(x))),
  fromInput(tfc.Relu, (dy, x) => tfc.mul(dy, f32(tfc.step(x)))),
  fromInput(tfc.Relu6, (dy, x) => tfc.mul(dy, f32(tfc.mul(tfc.lessEqual(x, 6), tfc.step(x))))),
  fromOutput(
    tfc.Elu,
    (dy, y) => tfc.engine().runKernel(tfc.EluGrad, { dy, y }) as Tensor,
  ),
  fromInput(tfc.Selu, (dy, x) =>
    tfc.where(
      tfc.greater(x, tfc.scalar(0)),
      tfc.mul(dy, tfc.scalar(SELU_SCALE)),
      tfc.mul(tfc.mul(dy, tfc.scalar(SELU_SCALEALPHA)), tfc.exp(f32(x))),
    )),
  {
    kernelName: tfc.LeakyRelu,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => ({
      x: () => tfc.where(tfc.greater(x, 0), one(dy), tfc.mul(one(dy), num(attrs.alpha))),
    }),
  },
  {
    kernelName: tfc.ClipByValue,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => ({
      x: () =>
        tfc.where(
          tfc.logicalAnd(
            tfc.greaterEqual(x, num(attrs.clipValueMin)),
            tfc.lessEqual(x, num(attrs.clipValueMax)),
          ),
          one(dy),
          tfc.zerosLike(one(dy)),
        ),
    }),
  },
  { kernelName: tfc.Step, gradFunc: zeroGrad },
  { kernelName: tfc.Floor, gradFunc: zeroGrad },
  { kernelName: tfc.Ceil, gradFunc: zeroGrad },
  { kernelName: tfc.Round, gradFunc: zeroGrad },
  { kernelName: tfc.Sign, gradFunc: zeroGrad },
  { kernelName: tfc.ZerosLike, gradFunc: zeroGrad },
  { kernelName: tfc.OnesLike, gradFunc: zeroGrad },

  // Reductions and softmax.
  {
    kernelName: tfc.Sum,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => {
      const axes = tfc.util.parseAxisParam(nums(attrs.axis), x.shape);
      const d = tfc.reshape(one(dy), expandTo(x, axes));
      return { x: () => tfc.mul(d, tfc.ones(x.shape, "float32")) };
    },
  },
  {
    kernelName: tfc.Mean,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => {
      const axes = tfc.util.parseAxisParam(nums(attrs.axis), x.shape);
      const [, reduceShape] = tfc.backend_util.computeOutAndReduceShapes(x.shape, axes);
      const size = tfc.util.sizeFromShape(reduceShape);
      return {
        x: () => {
          const d = tfc.reshape(one(dy), expandTo(x, axes));
          return tfc.div(tfc.mul(d, tfc.ones(x.shape, "float32")), size);
        },
      };
    },
  },
  minMax(tfc.Max, "reductionIndices"),
  minMax(tfc.Min, "axis"),
  {
    kernelName: tfc.Softmax,
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => {
      const dyY = tfc.mul(one(dy), y);
      return { logits: () => tfc.sub(dyY, tfc.mul(tfc.sum(dyY, [num(attrs.dim)], true), y)) };
    },
  },
  {
    kernelName: tfc.Cumsum,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const axis = num(attrs.axis);
        const perm = tfc.backend_util.getAxesPermutation([axis], x.rank);
        const out = tfc.cumsum(one(dy), axis, attrs.exclusive as boolean, !attrs.reverse);
        return perm != null ? tfc.transpose(out, perm) : out;
      },
    }),
  },

  // Shape and data movement.
  {
    kernelName: tfc.Reshape,
    inputsToSave: ["x"],
    gradFunc: (dy, [x]) => ({ x: () => tfc.reshape(one(dy), x.shape) }),
  },
  {
    kernelName: tfc.ExpandDims,
    inputsToSave: ["input"],
    gradFunc: (dy, [input]) => ({ input: () => tfc.reshape(one(dy), input.shape) }),
  },
  {
    kernelName: tfc.Transpose,
    gradFunc: (dy, _saved, attrs) => {
      const undo = tfc.backend_util.getUndoAxesPermutation(nums(attrs.perm));
      return { x: () => tfc.transpose(one(dy), undo) };
    },
  },
  {
    kernelName: tfc.Concat,
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tfc.util.parseAxisParam(num(attrs.axis), saved[0].shape)[0];
      return many(tfc.split(one(dy), saved.map((t) => t.shape[axis]), axis));
    },
  },
  {
    kernelName: tfc.SplitV,
    gradFunc: (dy, _saved, attrs) => ({ x: () => tfc.concat(dy as Tensor[], num(attrs.axis)) }),
  },
  {
    kernelName: tfc.Pack,
    saveAllInputs: true,
    gradFunc: (dy, _saved, attrs) => many(tfc.unstack(one(dy), num(attrs.axis))),
  },
  {
    kernelName: tfc.Unpack,
    gradFunc: (dy, _saved, attrs) => ({ value: () => tfc.stack(dy as Tensor[], num(attrs.axis)) }),
  },
  {
    kernelName: tfc.Slice,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => {
      const [begin, size] = tfc.slice_util.parseSliceParams(
        x,
        attrs.begin as number[],
        attrs.size as number[],
      );
      const paddings = x.shape.map((n, i): [number, number] => [
        begin[i],
        n - begin[i] - size[i],
      ]);
      return { x: () => tfc.pad(one(dy), paddings) };
    },
  },
  {
    kernelName: tfc.PadV2,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => {
      const begin = (attrs.paddings as number[][]).map((p) => p[0]);
      return { x: () => tfc.slice(one(dy), begin, x.shape) };
    },
  },
  {
    kernelName: tfc.Tile,
    inputsToSave: ["x"],
    gradFunc: (dy, [x], attrs) => ({
      // dy has shape reps[i]·x.shape[i]: view it as [reps₀, n₀, reps₁, n₁, …] and sum the reps.
      x: () => {
        const reps = nums(attrs.reps);
        const split = x.shape.flatMap((n, i) => [reps[i], n]);
        return tfc.sum(tfc.reshape(one(dy), split), reps.map((_, i) => 2 * i));
      },
    }),
  },

  // Linear algebra and convolution.
  {
    kernelName: tfc.BatchMatMul,
    inputsToSave: ["a", "b"],
    gradFunc: (dy, [a, b], attrs) => {
      const d = one(dy);
      const tA = attrs.transposeA === true;
      const tB = attrs.transposeB === true;
      if (!tA && !tB) {
        return { a: () => tfc.matMul(d, b, false, true), b: () => tfc.matMul(a, d, true, false) };
      }
      if (!tA && tB) {
        return { a: () => tfc.matMul(d, b, false, false), b: () => tfc.matMul(d, a, true, false) };
      }
      if (tA && !tB) {
        return { a: () => tfc.matMul(b, d, false, true), b: () => tfc.matMul(a, d, false, false) };
      }
      return { a: () => tfc.matMul(b, d, true, true), b: () => tfc.matMul(d, a, true, true) };
    },
  },
  {
    kernelName: tfc.Conv2D,
    inputsToSave: ["x", "filter"],
    gradFunc: (dy, [x, filter], attrs) => {
      const { dilations, strides, pad, dataFormat, dimRoundingMode } = attrs;
      tfc.util.assert(
        tfc.backend_util.tupleValuesAreOne(dilations as [number, number]),
        () =>
          "Error in gradient of conv2D: dilation rates greater than 1 are not yet supported " +
          `in gradients. Got dilations '${dilations}'`,
      );
      const common = { strides, pad, dataFormat, dimRoundingMode };
      return {
        x: () =>
          tfc.engine().runKernel(tfc.Conv2DBackpropInput, { dy: one(dy), filter }, {
            ...common,
            inputShape: x.shape,
          }) as Tensor,
        filter: () =>
          tfc.engine().runKernel(tfc.Conv2DBackpropFilter, { x, dy: one(dy) }, {
            ...common,
            filterShape: filter.shape,
          }) as Tensor,
      };
    },
  },
];

/** The kernels whose gradients deflow registers (see the module doc for the rest). */
export const gradientKernels: readonly string[] = configs.map((c) => c.kernelName);

/**
 * Register deflow's gradient functions with tfjs-core, for every kernel that has none yet
 * (idempotent; an application's own registrations, or `@tensorflow/tfjs`'s, are kept).
 * Called once by `src/tf.ts`.
 */
export const registerGradients = (): void => {
  for (const c of configs) {
    if (tfc.getGradient(c.kernelName) == null) tfc.registerGradient(c);
  }
};
