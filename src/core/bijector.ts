/**
 * The bijector contract and its combinators.
 *
 * A bijector is a plain record of two functions on NHWC float32 tensors. `forward` maps
 * `x` (with an optional condition `h`) to `y` and returns the per-sample
 * `log|det ∂y/∂x|` (shape `[batch]`); `inverse` maps `y` back to `x` and returns the
 * log-det of the inverse map, which is minus the forward log-det at the matching point.
 * In deflow, `forward` is the image→latent (encoding) direction.
 *
 * Bijectors hold no state: they close over an immutable parameter tree. Every function
 * returns new tensors and disposes its intermediates; callers own (and dispose) the
 * returned `y` and `logDet`.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { NonFiniteError, ShapeError, showShape } from "./errors.ts";

/** An NHWC shape `[batch, height, width, channels]`. */
export type Shape4 = readonly [number, number, number, number];

/** The result of either direction: the mapped tensor and the per-sample log-det. */
export interface FlowResult {
  /** The mapped tensor (NHWC). */
  readonly y: tf.Tensor4D;
  /** Per-sample log|det J| of the map just applied, shape `[batch]`. */
  readonly logDet: tf.Tensor1D;
}

/** One direction of a bijector. */
export type FlowFn = (x: tf.Tensor4D, cond?: tf.Tensor4D) => FlowResult;

/** An invertible map with log-determinants: the one contract every flow layer obeys. */
export interface Bijector {
  /** Name used in error messages, e.g. `"actNorm"` or `"chain(actNorm, invConv1x1)"`. */
  readonly name: string;
  /** Image→latent direction: `x ↦ (y, log|det ∂y/∂x|)`. */
  readonly forward: FlowFn;
  /** Latent→image direction: `y ↦ (x, log|det ∂x/∂y|)`. */
  readonly inverse: FlowFn;
  /** Shape of `forward`'s output for an input shape; throws a ShapeError if it does not fit. */
  readonly forwardShape: (shape: Shape4) => Shape4;
  /** Shape of `inverse`'s output for an input shape; throws a ShapeError if it does not fit. */
  readonly inverseShape: (shape: Shape4) => Shape4;
}

const INVERTED = Symbol("deflow.inverted");

interface InvertedBijector extends Bijector {
  readonly [INVERTED]: Bijector;
}

const asShape4 = (t: tf.Tensor, name: string): Shape4 => {
  if (t.rank !== 4) {
    throw new ShapeError(
      `${name}: expected an NHWC tensor of rank 4, got shape ${showShape(t.shape)}`,
    );
  }
  return t.shape as unknown as Shape4;
};

/**
 * Check that `x` is NHWC with `channels` channels (when given); returns its shape.
 * The message names the layer, e.g. `"actNorm: input has 5 channels, expected 8 ..."`.
 */
export const checkInput = (
  name: string,
  x: tf.Tensor,
  channels?: number,
  what = "input",
): Shape4 => {
  const s = asShape4(x, `${name}: ${what}`);
  if (channels !== undefined && s[3] !== channels) {
    throw new ShapeError(
      `${name}: ${what} has ${s[3]} channels, expected ${channels} (shape ${showShape(s)})`,
    );
  }
  return s;
};

/**
 * Check a condition tensor against the input: rank 4, same batch and spatial size, and
 * `channels` channels when given. Throws a ShapeError naming the layer.
 */
export const checkCondition = (
  name: string,
  x: tf.Tensor,
  cond: tf.Tensor | undefined,
  channels?: number,
): tf.Tensor4D => {
  if (cond === undefined) {
    throw new ShapeError(`${name}: a condition is required but none was given`);
  }
  const c = asShape4(cond, `${name}: condition`);
  const s = x.shape;
  if (c[0] !== s[0] || c[1] !== s[1] || c[2] !== s[2]) {
    throw new ShapeError(
      `${name}: condition shape ${showShape(c)} does not match input ${showShape(s)} ` +
        `in batch/height/width`,
    );
  }
  if (channels !== undefined && c[3] !== channels) {
    throw new ShapeError(`${name}: condition has ${c[3]} channels, expected ${channels}`);
  }
  return cond as tf.Tensor4D;
};

/**
 * A shape function (for `forwardShape` / `inverseShape`) that keeps the shape and accepts
 * only `channels` channels; a misfit throws a ShapeError naming the layer and the shape.
 */
export const channelShape = (name: string, channels: number): (s: Shape4) => Shape4 => (s) => {
  if (s[3] !== channels) {
    throw new ShapeError(
      `${name}: input has ${s[3]} channels, expected ${channels} (shape ${showShape(s)})`,
    );
  }
  return s;
};

/** A zero log-det for a batch of `n`. */
export const zeroLogDet = (n: number): tf.Tensor1D => tf.zeros([n]);

/**
 * Sum log-dets pairwise. Never uses `addN`: on WebGPU, `addN` with 8 or more inputs
 * silently returns wrong values (tfjs binds only 8 storage buffers per stage).
 */
export const sumLogDets = (terms: readonly tf.Tensor1D[]): tf.Tensor1D =>
  tf.tidy(() => {
    if (terms.length === 0) throw new Error("sumLogDets: no terms");
    let acc: tf.Tensor1D = tf.add(terms[0], 0);
    for (let i = 1; i < terms.length; i++) acc = tf.add(acc, terms[i]);
    return acc;
  });

/** Build a bijector record; the helper every layer uses. */
export const bijector = (spec: {
  readonly name: string;
  readonly forward: FlowFn;
  readonly inverse: FlowFn;
  readonly forwardShape?: (shape: Shape4) => Shape4;
  readonly inverseShape?: (shape: Shape4) => Shape4;
}): Bijector => ({
  name: spec.name,
  forward: spec.forward,
  inverse: spec.inverse,
  forwardShape: spec.forwardShape ?? ((s) => s),
  inverseShape: spec.inverseShape ?? ((s) => s),
});

/** The identity map: `y = x`, log-det 0. */
export const identity: Bijector = bijector({
  name: "identity",
  forward: (x) => ({ y: tf.clone(x), logDet: zeroLogDet(x.shape[0]) }),
  inverse: (y) => ({ y: tf.clone(y), logDet: zeroLogDet(y.shape[0]) }),
});

const inverses = new WeakMap<Bijector, Bijector>();

/**
 * The inverse bijector: swaps the directions. `invert(invert(f))` returns `f` itself, and
 * inverting the same bijector twice gives the same object.
 */
export const invert = (b: Bijector): Bijector => {
  const original = (b as Partial<InvertedBijector>)[INVERTED];
  if (original) return original;
  const known = inverses.get(b);
  if (known) return known;
  const inv: InvertedBijector = {
    name: `invert(${b.name})`,
    forward: b.inverse,
    inverse: b.forward,
    forwardShape: b.inverseShape,
    inverseShape: b.forwardShape,
    [INVERTED]: b,
  };
  inverses.set(b, inv);
  return inv;
};

const applyAll = (
  steps: readonly Bijector[],
  dir: "forward" | "inverse",
  x: tf.Tensor4D,
  cond: tf.Tensor4D | undefined,
): FlowResult =>
  tf.tidy(() => {
    let cur = x;
    const lds: tf.Tensor1D[] = [];
    for (const b of steps) {
      const r = b[dir](cur, cond);
      cur = r.y;
      lds.push(r.logDet);
    }
    return {
      y: cur === x ? tf.clone(x) : cur,
      logDet: lds.length ? sumLogDets(lds) : zeroLogDet(x.shape[0]),
    };
  });

/**
 * Compose bijectors in order: `chain(f, g).forward = g.forward ∘ f.forward`, and the
 * inverse runs them backwards. Log-dets add. The condition (if any) is passed to every
 * member. Neighbours' shapes are checked when the chain is applied: a misfit names both
 * layers and the shapes.
 */
export const chain = (...steps: readonly Bijector[]): Bijector => {
  if (steps.length === 0) return identity;
  if (steps.length === 1) return steps[0];
  const name = `chain(${steps.map((s) => s.name).join(", ")})`;
  const forwardShape = (s: Shape4): Shape4 => {
    let cur = s;
    for (let i = 0; i < steps.length; i++) {
      try {
        cur = steps[i].forwardShape(cur);
      } catch (e) {
        if (i === 0 || !(e instanceof ShapeError)) throw e;
        throw new ShapeError(
          `chain: ${steps[i].name} cannot follow ${steps[i - 1].name} ` +
            `(output ${showShape(cur)}): ${e.message}`,
        );
      }
    }
    return cur;
  };
  const inverseShape = (s: Shape4): Shape4 => {
    let cur = s;
    for (let i = steps.length - 1; i >= 0; i--) {
      try {
        cur = steps[i].inverseShape(cur);
      } catch (e) {
        if (i === steps.length - 1 || !(e instanceof ShapeError)) throw e;
        throw new ShapeError(
          `chain: inverse of ${steps[i].name} cannot follow inverse of ${steps[i + 1].name} ` +
            `(output ${showShape(cur)}): ${e.message}`,
        );
      }
    }
    return cur;
  };
  const reversed = [...steps].reverse();
  return {
    name,
    forward: (x, cond) => {
      forwardShape(asShape4(x, `${name}: input`));
      return applyAll(steps, "forward", x, cond);
    },
    inverse: (y, cond) => {
      inverseShape(asShape4(y, `${name}: input`));
      return applyAll(reversed, "inverse", y, cond);
    },
    forwardShape,
    inverseShape,
  };
};

/**
 * Fix the condition of a conditional bijector: the result ignores any condition passed
 * to it and always uses `cond`. The caller keeps ownership of `cond`.
 */
export const withCondition = (b: Bijector, cond: tf.Tensor4D): Bijector => ({
  name: `withCondition(${b.name})`,
  forward: (x) => b.forward(x, cond),
  inverse: (y) => b.inverse(y, cond),
  forwardShape: b.forwardShape,
  inverseShape: b.inverseShape,
});

/** True on backends that can read tensors synchronously (not WebGPU). */
const canReadSync = (): boolean => tf.getBackend() !== "webgpu";

/**
 * Throw a NonFiniteError naming `name` if `x` holds NaN or ±Infinity. Asynchronous, so
 * it works on every backend (WebGPU cannot read synchronously); use it at boundaries.
 */
export const assertFinite = async (name: string, x: tf.Tensor): Promise<void> => {
  const flag = tf.tidy(() => tf.all(tf.isFinite(x)));
  const ok = (await flag.data())[0];
  flag.dispose();
  if (!ok) throw new NonFiniteError(`${name}: input contains NaN or Infinity`);
};

/**
 * Wrap a bijector with input validation for public entry points: rank-4 input, the
 * shapes the bijector accepts, and finite values (this reads the input back, so use it
 * at boundaries, not inside training loops). Errors name the bijector.
 */
export const checked = (b: Bijector): Bijector => {
  const guard = (dir: "forward" | "inverse", x: tf.Tensor4D) => {
    const s = asShape4(x, `${b.name}: input`);
    (dir === "forward" ? b.forwardShape : b.inverseShape)(s);
    if (!canReadSync()) return;
    const finite = tf.tidy(() => tf.all(tf.isFinite(x)).dataSync()[0]);
    if (!finite) {
      throw new NonFiniteError(`${b.name}: input contains NaN or Infinity`);
    }
  };
  return {
    ...b,
    forward: (x, cond) => {
      guard("forward", x);
      return b.forward(x, cond);
    },
    inverse: (y, cond) => {
      guard("inverse", y);
      return b.inverse(y, cond);
    },
  };
};
