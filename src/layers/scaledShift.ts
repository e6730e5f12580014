/**
 * DeFlow's latent shift with a **per-position scale**: `u_p ~ N(μ, a_p²·M·Mᵀ)`.
 *
 * The plain shift ({@linkcode latentShift}) adds the same Gaussian `N(μ, M·Mᵀ)` at every
 * latent position. The flow that decodes the latents has a content-dependent gain (its
 * affine injectors and couplings scale by functions of the condition), so a
 * position-invariant latent noise decodes to image noise that is too weak where the flow
 * expands least (flat regions) and too strong in texture. Here each position `p` has a
 * positive scalar `a_p` (computed by the model from the conditioning features), so the
 * degraded latent is `z_y = z_x + u_p` with
 *
 *   `z_y ~ N(μ, B_p)`, `B_p = β·I + a_p²·M·Mᵀ` (β = 1 for the marginal, the paired
 *   likelihood uses `β = jitter` around the clean latent).
 *
 * With `a_p = 1` everywhere this is exactly the plain shift.
 *
 * **Computation.** In the eigenbasis `M·Mᵀ = V·diag(λ)·Vᵀ` (float64, outside the tape,
 * once per update of `M`, see {@linkcode prepareShiftEigen}), every `B_p` is diagonal:
 * with `w = Vᵀ(z − μ)`, `log N = −½·Σ_i (w_i²/v_i + log v_i + log 2π)`, `v_i = β + a_p²·λ_i`.
 * The gradients are exact and written out (a `tf.customGrad`):
 *
 * - `∂/∂(z − μ) = −e_p`, `e_p = B_p⁻¹(z − μ) = V·(w/v)`;
 * - `∂/∂a_p² = ½·Σ_i λ_i·(w_i²/v_i² − 1/v_i)`;
 * - `∂/∂M = Σ_p a_p²·(e_p·e_pᵀ − B_p⁻¹)·M` (from `∂L/∂B_p = −½(B_p⁻¹ − e_p·e_pᵀ)` and
 *   `B_p = β·I + a_p²·M·Mᵀ`).
 *
 * `V` and `λ` must be those of the `M` passed in (prepare again after every update).
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { Shape4 } from "../core/bijector.ts";
import { NonFiniteError, ShapeError, showShape } from "../core/errors.ts";
import { tfSeed } from "../core/random.ts";
import { matmul, symmetricEigen, transpose } from "../linalg/dense.ts";
import { fromMatrix, toMatrix } from "../linalg/tensor.ts";
import { matMul } from "../nn/fastOps.ts";
import type { LatentShiftParams, ShiftSampleOptions } from "./latentShift.ts";

/** The eigen-decomposition `M·Mᵀ = V·diag(λ)·Vᵀ`, computed in float64, stored as float32. */
export interface ShiftEigen {
  /** `V` (orthonormal columns), `[C, C]`. */
  readonly eigVectors: tf.Tensor2D;
  /** `λ ≥ 0` in descending order, `[C]`. */
  readonly eigValues: tf.Tensor1D;
}

const LOG_2PI = Math.log(2 * Math.PI);

/** {@linkcode ShiftEigen} of `M·Mᵀ` from an already-read float64 `M`. */
export const shiftEigenFromMatrix = (
  m: { readonly rows: number; readonly cols: number; readonly data: Float64Array },
): ShiftEigen => {
  const { values, vectors } = symmetricEigen(matmul(m, transpose(m)));
  return {
    eigVectors: fromMatrix(vectors),
    eigValues: tf.tensor1d(Float32Array.from(values, (v) => Math.max(v, 0)), "float32"),
  };
};

/** Read `M` and compute {@linkcode ShiftEigen} (asynchronous; outside the gradient tape). */
export const prepareShiftEigen = async (p: LatentShiftParams): Promise<ShiftEigen> => {
  const mm = await toMatrix(p.m);
  if (!mm.data.every(Number.isFinite)) {
    throw new NonFiniteError(`scaledShift: M contains NaN or Infinity`);
  }
  return shiftEigenFromMatrix(mm);
};

/** Dispose the tensors of {@linkcode ShiftEigen}. */
export const disposeShiftEigen = (e: ShiftEigen): void => {
  tf.dispose([e.eigVectors, e.eigValues]);
};

const checkFit = (
  name: string,
  p: LatentShiftParams,
  eig: ShiftEigen,
  z: tf.Tensor,
  scale: tf.Tensor,
): [number, number, number, number] => {
  const c = p.mu.shape[0];
  if (p.m.shape[0] !== c || p.m.shape[1] !== c || eig.eigVectors.shape[0] !== c) {
    throw new ShapeError(
      `${name}: parameters (mu ${showShape(p.mu.shape)}, m ${showShape(p.m.shape)}) and ` +
        `eigen-decomposition (${showShape(eig.eigVectors.shape)}) do not fit`,
    );
  }
  if (z.rank !== 4 || z.shape[3] !== c) {
    throw new ShapeError(`${name}: latent ${showShape(z.shape)} must be NHWC with ${c} channels`);
  }
  const [n, h, w] = z.shape;
  if (scale.rank !== 4 || scale.shape.join(",") !== [n, h, w, 1].join(",")) {
    throw new ShapeError(
      `${name}: scale ${showShape(scale.shape)} must be [${n}, ${h}, ${w}, 1] for latent ` +
        showShape(z.shape),
    );
  }
  return [n, h, w, c];
};

/**
 * Per-position `log N(d_p; 0, β·I + a2_p·M·Mᵀ)` (with the `2π` terms), `[P]`, for rows
 * `d` (`[P, C]`) and `a2` (`[P, 1]`); differentiable in `d`, `a2` and `m` (exact
 * gradients, see the module doc).
 */
const scaledGaussianRows = (
  d: tf.Tensor2D,
  a2: tf.Tensor2D,
  m: tf.Tensor2D,
  eig: ShiftEigen,
  beta: number,
): tf.Tensor1D => {
  const v = eig.eigVectors;
  const lam = eig.eigValues;
  const c = d.shape[1];
  const fn = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [dIn, a2In, mIn, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const dd = dIn as tf.Tensor2D;
    const aa = a2In as tf.Tensor2D;
    const w = matMul(dd, v); // [P, C]
    const variance = tf.add(tf.mul(aa, lam), beta); // [P, C]
    const terms = tf.add(tf.div(tf.square(w), variance), tf.log(variance));
    const value = tf.mul(tf.add(tf.sum(terms, 1), c * LOG_2PI), -0.5) as tf.Tensor1D;
    save([dd, aa, mIn]);
    return {
      value,
      gradFunc: (dy: tf.Tensor1D, saved: tf.Tensor[]) => {
        const [sd, sa, sm] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const ws = matMul(sd, v);
        const q = tf.reciprocal(tf.add(tf.mul(sa, lam), beta)); // 1/v, [P, C]
        const wq = tf.mul(ws, q);
        const e = matMul(wq, v, false, true); // B⁻¹d, [P, C]
        const dyc = tf.reshape(dy, [-1, 1]);
        const gd = tf.mul(tf.neg(e), dyc);
        const ga = tf.mul(
          tf.sum(tf.mul(tf.mul(tf.sub(tf.mul(wq, wq), q), lam), 0.5), 1, true),
          dyc,
        );
        const weight = tf.mul(dyc, sa); // dy·a², [P, 1]
        const r = tf.sum(tf.mul(q, weight), 0); // Σ_p dy a² q, [C]
        const eet = matMul(tf.mul(e, weight) as tf.Tensor2D, e as tf.Tensor2D, true, false);
        const bInv = matMul(tf.mul(v, r) as tf.Tensor2D, v, false, true);
        const gm = matMul(tf.sub(eet, bInv) as tf.Tensor2D, sm);
        return [gd, ga, gm];
      },
    };
  });
  return fn(d, a2, m) as tf.Tensor1D;
};

/**
 * Per-sample `Σ_positions log N(z_p; μ, I + a_p²·M·Mᵀ)`, `[N]`. `scale2` holds `a_p²`,
 * `[N, H, W, 1]`. Differentiable w.r.t. `p.mu`, `p.m`, `z` and `scale2`.
 */
export const scaledLogProb = (
  p: LatentShiftParams,
  eig: ShiftEigen,
  z: tf.Tensor4D,
  scale2: tf.Tensor4D,
): tf.Tensor1D =>
  tf.tidy(() => {
    const [n, h, w, c] = checkFit("scaledShift.logProb", p, eig, z, scale2);
    const d = tf.reshape(tf.sub(z, p.mu), [n * h * w, c]) as tf.Tensor2D;
    const rows = scaledGaussianRows(d, tf.reshape(scale2, [n * h * w, 1]), p.m, eig, 1);
    return tf.sum(tf.reshape(rows, [n, h * w]), 1) as tf.Tensor1D;
  });

/**
 * Paired likelihood with a per-position scale: per-sample
 * `Σ_positions log N(z_y; z_x + μ, jitter·I + a_p²·M·Mᵀ)`, `[N]`.
 */
export const scaledPairedLogProb = (
  p: LatentShiftParams,
  eig: ShiftEigen,
  zy: tf.Tensor4D,
  zx: tf.Tensor4D,
  scale2: tf.Tensor4D,
  jitter = 1e-4,
): tf.Tensor1D =>
  tf.tidy(() => {
    const [n, h, w, c] = checkFit("scaledShift.pairedLogProb", p, eig, zy, scale2);
    if (zx.shape.join(",") !== zy.shape.join(",")) {
      throw new ShapeError(
        `scaledShift.pairedLogProb: z_y ${showShape(zy.shape)} and z_x ${
          showShape(zx.shape)
        } differ`,
      );
    }
    if (!Number.isFinite(jitter) || jitter <= 0) {
      throw new RangeError(
        `scaledShift.pairedLogProb: jitter must be finite and > 0, got ${jitter}`,
      );
    }
    const d = tf.reshape(tf.sub(tf.sub(zy, zx), p.mu), [n * h * w, c]) as tf.Tensor2D;
    const rows = scaledGaussianRows(d, tf.reshape(scale2, [n * h * w, 1]), p.m, eig, jitter);
    return tf.sum(tf.reshape(rows, [n, h * w]), 1) as tf.Tensor1D;
  });

const temperatureOf = (name: string, o: ShiftSampleOptions): number => {
  const t = o.temperature ?? 1;
  if (!Number.isFinite(t) || t < 0) {
    throw new RangeError(`${name}: temperature must be a finite number ≥ 0, got ${t}`);
  }
  return t;
};

/**
 * `τ·u` with `u_p = μ + a_p·M·n_p`, `n ~ N(0, I)` per position; `scale` holds `a_p`
 * (not squared), `[N, H, W, 1]`. The same seed draws the same `n` as
 * `latentShift.sample`, so `a = 1` reproduces it exactly.
 */
export const scaledSample = (
  p: LatentShiftParams,
  shape: Shape4,
  scale: tf.Tensor4D,
  options: ShiftSampleOptions,
): tf.Tensor4D =>
  tf.tidy(() => {
    const name = "scaledShift.sample";
    const c = p.mu.shape[0];
    const [n, h, w, cs] = shape;
    if (cs !== c || ![n, h, w].every((k) => Number.isInteger(k) && k > 0)) {
      throw new ShapeError(`${name}: cannot sample shape ${showShape(shape)} for ${c} channels`);
    }
    if (scale.rank !== 4 || scale.shape.join(",") !== [n, h, w, 1].join(",")) {
      throw new ShapeError(
        `${name}: scale ${showShape(scale.shape)} must be [${n}, ${h}, ${w}, 1]`,
      );
    }
    const tau = temperatureOf(name, options);
    const noise = tf.randomNormal([n * h * w, c], 0, 1, "float32", tfSeed(options.seed));
    const mn = tf.mul(matMul(noise, p.m, false, true), tf.reshape(scale, [n * h * w, 1]));
    return tf.reshape(tf.mul(tf.add(mn, p.mu), tau), [n, h, w, c]);
  });

/**
 * A posterior sample of the clean latent given a degraded one, per position:
 * `z_x | z_y ~ N(B_p⁻¹(z_y − μ), a_p²·M·Mᵀ·B_p⁻¹)`, `B_p = I + a_p²·M·Mᵀ`; the noise is
 * scaled by `τ`. `scale2` holds `a_p²`, `[N, H, W, 1]`.
 */
export const scaledSamplePosterior = (
  p: LatentShiftParams,
  eig: ShiftEigen,
  zy: tf.Tensor4D,
  scale2: tf.Tensor4D,
  options: ShiftSampleOptions,
): tf.Tensor4D =>
  tf.tidy(() => {
    const name = "scaledShift.samplePosterior";
    const [n, h, w, c] = checkFit(name, p, eig, zy, scale2);
    const tau = temperatureOf(name, options);
    const v = eig.eigVectors;
    const a2 = tf.reshape(scale2, [n * h * w, 1]);
    const al = tf.mul(a2, eig.eigValues); // a²λ, [P, C]
    const q = tf.reciprocal(tf.add(al, 1));
    const wv = matMul(tf.reshape(tf.sub(zy, p.mu), [n * h * w, c]) as tf.Tensor2D, v);
    const noise = tf.randomNormal([n * h * w, c], 0, 1, "float32", tfSeed(options.seed));
    const eigenSample = tf.add(tf.mul(wv, q), tf.mul(tf.mul(noise, tf.sqrt(tf.mul(al, q))), tau));
    return tf.reshape(matMul(eigenSample as tf.Tensor2D, v, false, true), [n, h, w, c]);
  });
