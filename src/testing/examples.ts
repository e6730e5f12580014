/**
 * A tiny example bijector and its law case, for documentation and for testing the kit.
 *
 * @module
 */
import fc from "fast-check";
import { tf } from "../tf.ts";
import { type Bijector, bijector, checkInput, type Shape4 } from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { foldIn, tfSeed } from "../core/random.ts";
import type { BijectorCase, Built } from "./laws.ts";

/** Parameters of {@linkcode elementwiseAffine}: one log-scale and one shift per channel. */
export interface ElementwiseAffineParams {
  /** Per-channel log-scale `a`, shape `[C]`. */
  readonly logScale: tf.Tensor1D;
  /** Per-channel shift `b`, shape `[C]`. */
  readonly shift: tf.Tensor1D;
}

/**
 * The per-channel affine bijector `y = x·exp(a) + b` (forward), `x = (y − b)·exp(−a)`
 * (inverse), with forward log-det `H·W·Σ_c a_c` per sample. The caller keeps ownership of
 * the parameter tensors. Inputs with the wrong channel count are rejected with a
 * ShapeError naming the bijector.
 *
 * @example
 * ```ts
 * import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
 * import { elementwiseAffine } from "@x/deflow/testing";
 *
 * const f = elementwiseAffine({ logScale: tf.tensor1d([0.5, -1]), shift: tf.tensor1d([0, 2]) });
 * const { y, logDet } = f.forward(tf.ones([1, 2, 2, 2]) as tf.Tensor4D);
 * ```
 */
export const elementwiseAffine = (
  params: ElementwiseAffineParams,
  name = "elementwiseAffine",
): Bijector => {
  const { logScale, shift } = params;
  if (logScale.rank !== 1 || shift.rank !== 1 || logScale.shape[0] !== shift.shape[0]) {
    throw new ShapeError(
      `${name}: logScale ${showShape(logScale.shape)} and shift ${showShape(shift.shape)} ` +
        `must both have shape [C]`,
    );
  }
  const channels = logScale.shape[0];
  const logDet = (s: Shape4, sign: number): tf.Tensor1D =>
    tf.tidy(() => tf.mul(tf.ones([s[0]]), tf.mul(tf.sum(logScale), sign * s[1] * s[2])));
  const shapeFn = (s: Shape4): Shape4 => {
    if (s[3] !== channels) {
      throw new ShapeError(
        `${name}: input has ${s[3]} channels, expected ${channels} (shape ${showShape(s)})`,
      );
    }
    return s;
  };
  return bijector({
    name,
    forward: (x) => {
      const s = checkInput(name, x, channels);
      return tf.tidy(() => ({
        y: tf.add(tf.mul(x, tf.exp(logScale)), shift) as tf.Tensor4D,
        logDet: logDet(s, 1),
      }));
    },
    inverse: (y) => {
      const s = checkInput(name, y, channels);
      return tf.tidy(() => ({
        y: tf.mul(tf.sub(y, shift), tf.exp(tf.neg(logScale))) as tf.Tensor4D,
        logDet: logDet(s, -1),
      }));
    },
    forwardShape: shapeFn,
    inverseShape: shapeFn,
  });
};

/** Plain data that {@linkcode elementwiseAffineCase} builds an example from. */
export interface ElementwiseAffineCaseParams {
  /** Seed of the parameter and input draws. */
  readonly seed: number;
  /** Input shape `[batch, height, width, channels]`. */
  readonly shape: Shape4;
  /** Standard deviation of the log-scales. */
  readonly scaleSpread: number;
}

/**
 * The law case of {@linkcode elementwiseAffine}: random parameters and inputs of shape
 * up to `[2, 2, 2, 4]`, drawn from a seed. A template for writing cases of your own.
 */
export const elementwiseAffineCase: BijectorCase<ElementwiseAffineCaseParams> = {
  name: "elementwiseAffine",
  params: fc.record({
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    shape: fc.tuple(
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 4 }),
    ),
    scaleSpread: fc.double({ min: 0.1, max: 1, noNaN: true }),
  }),
  related: (p) => fc.integer({ min: 0, max: 0x7fffffff }).map((seed) => ({ ...p, seed: seed })),
  build: ({ seed, shape, scaleSpread }): Built => {
    const c = shape[3];
    const logScale = tf.randomNormal(
      [c],
      0,
      scaleSpread,
      "float32",
      tfSeed(foldIn(seed, 0)),
    ) as tf.Tensor1D;
    const shift = tf.randomNormal([c], 0, 1, "float32", tfSeed(foldIn(seed, 1))) as tf.Tensor1D;
    const x = tf.randomNormal([...shape], 0, 1, "float32", tfSeed(foldIn(seed, 2))) as tf.Tensor4D;
    return {
      bijector: elementwiseAffine({ logScale, shift }),
      x,
      dispose: () => tf.dispose([logScale, shift, x]),
    };
  },
};
