/**
 * Adam (Kingma & Ba, 2015) as pure functions over immutable parameter trees.
 *
 * The optimiser state holds one first-moment (`m`) and one second-moment (`v`) tensor per
 * trainable leaf, in {@linkcode trainableParams} order, together with the leaf paths and
 * the step count. Leaves under a `const` key (see {@linkcode isTrainablePath}) are never
 * updated and get no moments.
 *
 * Gradients are given either as an array aligned with `trainableParams(params)` (what
 * `tf.grads` / `tf.valueAndGrads` return when called on those tensors) or as a map from
 * leaf path to gradient.
 *
 * @module
 */
import { tf } from "../tf.ts";
import {
  flattenParams,
  isTrainablePath,
  type NamedTensor,
  type ParamTree,
  unflattenLike,
} from "../core/params.ts";
import { showShape } from "../core/errors.ts";
import type { AdamState } from "../io/checkpoint.ts";

// The optimiser state is defined with the checkpoint format that stores it.
export type { AdamState };

/** Hyper-parameters of one {@linkcode adamStep}. */
export interface AdamOptions {
  /** Learning rate (step size) for this update. */
  readonly lr: number;
  /** Decay of the first-moment average (default 0.9). */
  readonly beta1?: number;
  /** Decay of the second-moment average (default 0.999). */
  readonly beta2?: number;
  /** Added to the bias-corrected √v̂ in the denominator (default 1e-8). */
  readonly eps?: number;
  /**
   * A multiple of `lr` per trainable leaf, by its path (default: 1 for every leaf). Adam's
   * step is about `lr` per coordinate whatever the gradient's size, so a leaf that must
   * travel far in a short run (see `TrainOptions.shiftLrMultiple`) gets a larger multiple.
   */
  readonly lrMultiple?: (path: string) => number;
}

/**
 * Gradients for {@linkcode adamStep}: an array aligned with `trainableParams(params)`, or
 * a map from leaf path to gradient (one entry per trainable leaf).
 */
export type AdamGrads = readonly tf.Tensor[] | ReadonlyMap<string, tf.Tensor>;

/** The trainable leaves of a tree (no `const` path segment), in {@linkcode flattenParams} order. */
export const trainableParams = (params: ParamTree): NamedTensor[] =>
  flattenParams(params).filter((n) => isTrainablePath(n.path));

/** Fresh Adam state: zero moments shaped like the trainable leaves of `params`, step 0. */
export const adamInit = (params: ParamTree): AdamState => {
  const named = trainableParams(params);
  for (const n of named) {
    if (n.tensor.dtype !== "float32") {
      throw new Error(
        `adamInit: trainable leaf "${n.path}" has dtype ${n.tensor.dtype}; only float32 ` +
          `leaves can be trained (put fixed tensors under a "const" key)`,
      );
    }
  }
  return {
    step: 0,
    paths: named.map((n) => n.path),
    m: named.map((n) => tf.zerosLike(n.tensor)),
    v: named.map((n) => tf.zerosLike(n.tensor)),
  };
};

/** Dispose every tensor of an Adam state: the moments and, when present, the iterate. */
export const disposeAdamState = (state: AdamState): void => {
  tf.dispose([...state.m, ...state.v, ...(state.iterate ?? [])]);
};

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

const checkHyper = (name: string, value: number, ok: boolean, expected: string): void => {
  if (!ok) throw new Error(`adamStep: ${name} = ${value}, expected ${expected}`);
};

const gradsInOrder = (named: readonly NamedTensor[], grads: AdamGrads): tf.Tensor[] => {
  if (Array.isArray(grads)) {
    const arr = grads as readonly tf.Tensor[];
    if (arr.length !== named.length) {
      throw new Error(
        `adamStep: ${arr.length} gradients for ${named.length} trainable leaves ` +
          `(the array must align with trainableParams(params))`,
      );
    }
    return [...arr];
  }
  const map = grads as ReadonlyMap<string, tf.Tensor>;
  const out = named.map((n) => {
    const g = map.get(n.path);
    if (g === undefined) throw new Error(`adamStep: no gradient for trainable leaf "${n.path}"`);
    return g;
  });
  if (map.size !== named.length) {
    const known = new Set(named.map((n) => n.path));
    const extra = [...map.keys()].filter((k) => !known.has(k));
    throw new Error(
      `adamStep: gradients given for leaves that are not trainable or do not exist: ${
        extra.map((k) => `"${k}"`).join(", ")
      }`,
    );
  }
  return out;
};

/**
 * One Adam update. Returns a NEW parameter tree and a NEW state; the inputs (params, grads,
 * state) are neither mutated nor disposed — the caller disposes the old ones. Leaves under
 * a `const` key are passed through as the very same tensor objects.
 *
 * With t = state.step + 1: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
 * p ← p − lr·m̂ / (√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ) (computed in the equivalent
 * form p − lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε√(1−β₂ᵗ)), 12 kernels per leaf).
 *
 * Throws (naming the leaf) when the state does not belong to this tree or a gradient is
 * missing or misshapen.
 */
export const adamStep = <P extends ParamTree>(
  params: P,
  grads: AdamGrads,
  state: AdamState,
  options: AdamOptions,
): { params: P; state: AdamState } => {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = options;
  checkHyper("lr", lr, Number.isFinite(lr) && lr >= 0, "a finite number ≥ 0");
  checkHyper("beta1", beta1, beta1 >= 0 && beta1 < 1, "0 ≤ beta1 < 1");
  checkHyper("beta2", beta2, beta2 >= 0 && beta2 < 1, "0 ≤ beta2 < 1");
  checkHyper("eps", eps, Number.isFinite(eps) && eps >= 0, "a finite number ≥ 0");

  const all = flattenParams(params);
  const named = all.filter((n) => isTrainablePath(n.path));
  if (
    named.length !== state.paths.length || state.m.length !== named.length ||
    state.v.length !== named.length
  ) {
    throw new Error(
      `adamStep: state has ${state.paths.length} moments, the tree has ${named.length} ` +
        `trainable leaves`,
    );
  }
  const g = gradsInOrder(named, grads);
  named.forEach((n, i) => {
    if (state.paths[i] !== n.path) {
      throw new Error(
        `adamStep: state moment ${i} is for "${state.paths[i]}", the tree's leaf is "${n.path}"`,
      );
    }
    const s = n.tensor.shape;
    for (const [what, t] of [["gradient", g[i]], ["m", state.m[i]], ["v", state.v[i]]] as const) {
      if (!sameShape(t.shape, s)) {
        throw new Error(
          `adamStep: ${what} of "${n.path}" has shape ${showShape(t.shape)}, ` +
            `the parameter has ${showShape(s)}`,
        );
      }
    }
  });

  const t = state.step + 1;
  const bc1 = 1 - Math.pow(beta1, t);
  const sqrtBc2 = Math.sqrt(1 - Math.pow(beta2, t));
  const stepSize = (lr * sqrtBc2) / bc1;
  const epsHat = eps * sqrtBc2;

  const [newP, newM, newV] = tf.tidy(() => {
    const b1 = tf.scalar(beta1);
    const c1 = tf.scalar(1 - beta1);
    const b2 = tf.scalar(beta2);
    const c2 = tf.scalar(1 - beta2);
    const ss = tf.scalar(stepSize);
    const eh = tf.scalar(epsHat);
    const ps: tf.Tensor[] = [];
    const ms: tf.Tensor[] = [];
    const vs: tf.Tensor[] = [];
    named.forEach((n, i) => {
      const gi = g[i];
      const k = options.lrMultiple?.(n.path) ?? 1;
      checkHyper(`lrMultiple("${n.path}")`, k, Number.isFinite(k) && k >= 0, "a finite number ≥ 0");
      const m = tf.add(tf.mul(state.m[i], b1), tf.mul(gi, c1));
      const v = tf.add(tf.mul(state.v[i], b2), tf.mul(tf.square(gi), c2));
      const stepI = k === 1 ? ss : tf.mul(ss, k);
      const p = tf.sub(n.tensor, tf.div(tf.mul(m, stepI), tf.add(tf.sqrt(v), eh)));
      ps.push(p);
      ms.push(m);
      vs.push(v);
    });
    return [ps, ms, vs];
  });

  let k = 0;
  const leavesOut = all.map((n) => (isTrainablePath(n.path) ? newP[k++] : n.tensor));
  return {
    params: unflattenLike(params, leavesOut),
    state: { step: t, paths: [...state.paths], m: newM, v: newV },
  };
};
