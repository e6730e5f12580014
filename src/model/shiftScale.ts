/**
 * The per-position scale `a(h)` of the degraded domain's latent shift (see
 * `src/layers/scaledShift.ts`): a 1×1 linear map of the conditioning features at the
 * latent's level, `log a = B·tanh((h·w + b)/B)` with `B = 3` (so `a ∈ [e⁻³, e³]`).
 *
 * Why: the flow decodes latents through a gain that depends on the content (its
 * injectors and couplings scale by functions of the condition), so a position-invariant
 * latent noise comes out too weak in flat regions and too strong in texture. `a(h)` lets
 * the degraded model undo that gain where the condition shows it. Initialised at `w = 0`,
 * `b = 0`, i.e. `a = 1`: the model starts as the paper's position-invariant shift.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";

/** Parameters of one latent's scale head. */
export type ShiftScaleParams = {
  /** Weights `[F, 1]` over the `F` conditioning features. */
  readonly w: tf.Tensor2D;
  /** Bias `[1]`. */
  readonly b: tf.Tensor1D;
};

/** Bound `B` of `|log a|`. */
export const LOG_SCALE_BOUND = 3;

/** Fresh parameters (`a = 1` everywhere) for `features` conditioning channels. */
export const initShiftScale = (features: number): ShiftScaleParams => {
  if (!Number.isInteger(features) || features < 1) {
    throw new RangeError(`shiftScale.init: features must be a positive integer, got ${features}`);
  }
  return { w: tf.zeros([features, 1]), b: tf.zeros([1]) };
};

/** `log a(h)` per position, `[N, H, W, 1]`, for features `[N, H, W, F]`. */
export const logShiftScale = (p: ShiftScaleParams, features: tf.Tensor4D): tf.Tensor4D =>
  tf.tidy(() => {
    const [n, h, w, f] = features.shape;
    if (p.w.shape[0] !== f) {
      throw new ShapeError(
        `shiftScale: features ${showShape(features.shape)} do not fit weights ${
          showShape(p.w.shape)
        }`,
      );
    }
    const raw = tf.add(tf.matMul(tf.reshape(features, [n * h * w, f]), p.w), p.b);
    const bounded = tf.mul(tf.tanh(tf.div(raw, LOG_SCALE_BOUND)), LOG_SCALE_BOUND);
    return tf.reshape(bounded, [n, h, w, 1]);
  });

/** `a(h)²` per position, `[N, H, W, 1]` (what the densities take). */
export const shiftScale2 = (p: ShiftScaleParams, features: tf.Tensor4D): tf.Tensor4D =>
  tf.tidy(() => tf.exp(tf.mul(logShiftScale(p, features), 2)));

/** `a(h)` per position, `[N, H, W, 1]` (what the sampler takes). */
export const shiftScale = (p: ShiftScaleParams, features: tf.Tensor4D): tf.Tensor4D =>
  tf.tidy(() => tf.exp(logShiftScale(p, features)));
