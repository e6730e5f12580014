/**
 * One shard of a data-parallel training step, and the plain-data form of a parameter tree
 * that travels between threads.
 *
 * A shard computes, for batch rows `[begin, begin + size)`, the loss and gradients that
 * those rows contribute to the FULL batch's mean loss: the dequantisation and
 * conditioning noise are drawn for the whole batch with the step's seeds (exactly as
 * `lossAndGrads` in src/train/step.ts does) and then sliced, and the shard's mean loss is
 * weighted by `size / N`. The per-sample computation has no batch statistics, so the sum
 * of the shards' losses and gradients equals the single-process result up to float32
 * rounding.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { flattenParams, isTrainablePath, type ParamTree, unflattenLike } from "../core/params.ts";
import { foldIn } from "../core/random.ts";
import type { ModelConfig } from "../model/config.ts";
import { conditionInput } from "../model/conditioning.ts";
import type { DeflowParams } from "../model/network.ts";
import { dequantize, disposeShiftStats, prepareShifts, unpairedLoss } from "../model/objective.ts";

/** A tensor as plain data (structured-clone / transfer friendly). */
export interface PlainTensor {
  /** Shape. */
  readonly shape: number[];
  /** Values, row-major. */
  readonly data: Float32Array;
}

/** A parameter tree's structure: leaves replaced by their index in the leaf list. */
export type Skeleton = number | readonly Skeleton[] | { readonly [key: string]: Skeleton };

/** A parameter tree as plain data: its skeleton and its leaves in flattenParams order. */
export interface PlainParams {
  /** Structure with leaf indices. */
  readonly skeleton: Skeleton;
  /** Leaf values, in flattenParams order. */
  readonly leaves: PlainTensor[];
}

/** Read a tree into plain data (leaves in flattenParams order). */
export const toPlainParams = async (tree: ParamTree): Promise<PlainParams> => {
  const named = flattenParams(tree);
  const index = new Map(named.map((n, i) => [n.tensor, i]));
  const skel = (t: ParamTree): Skeleton => {
    if (t instanceof tf.Tensor) return index.get(t) as number;
    if (Array.isArray(t)) return (t as readonly ParamTree[]).map(skel);
    const rec = t as { readonly [key: string]: ParamTree };
    return Object.fromEntries(Object.keys(rec).map((k) => [k, skel(rec[k])]));
  };
  const data = await Promise.all(named.map((n) => n.tensor.data() as Promise<Float32Array>));
  return {
    skeleton: skel(tree),
    leaves: named.map((n, i) => ({ shape: [...n.tensor.shape], data: data[i] })),
  };
};

/** Rebuild tensors from plain data (the caller disposes them). */
export const fromPlainParams = <T extends ParamTree>(p: PlainParams): T => {
  const ts = p.leaves.map((l) => tf.tensor(l.data, l.shape, "float32"));
  const build = (s: Skeleton): ParamTree => {
    if (typeof s === "number") return ts[s];
    if (Array.isArray(s)) return (s as readonly Skeleton[]).map(build);
    const rec = s as { readonly [key: string]: Skeleton };
    return Object.fromEntries(Object.keys(rec).map((k) => [k, build(rec[k])]));
  };
  return build(p.skeleton) as T;
};

/** What one shard returns. */
export interface ShardResult {
  /** The shard's share of the full batch's mean loss (shard mean × size / N). */
  readonly loss: tf.Scalar;
  /** Per-sample losses of the shard's rows (bits/dim). */
  readonly perSample: tf.Tensor1D;
  /** The shard's share of every trainable gradient, in trainableParams order. */
  readonly grads: tf.Tensor[];
}

/**
 * Loss and gradients of batch rows `[begin, begin + size)` as their share of the full
 * batch's mean loss (see the module documentation). `x` and `degradedMask` are the FULL
 * batch.
 */
export const shardLossAndGrads = async (
  params: DeflowParams,
  config: ModelConfig,
  x: tf.Tensor4D,
  degradedMask: tf.Tensor1D,
  seed: number,
  begin: number,
  size: number,
): Promise<ShardResult> => {
  const n = x.shape[0];
  if (
    !(Number.isInteger(begin) && Number.isInteger(size) && begin >= 0 && size >= 1 &&
      begin + size <= n)
  ) {
    throw new RangeError(
      `shardLossAndGrads: rows [${begin}, ${begin + size}) outside a batch of ${n}`,
    );
  }
  const stats = await prepareShifts(params);
  try {
    const all = flattenParams(params);
    const trainable = all.filter((p) => isTrainablePath(p.path));
    const [cond, xd, mask] = tf.tidy(() => {
      const c = conditionInput(x, {
        factor: config.conditionFactor,
        noiseStd: config.conditionNoise,
        seed: foldIn(seed, 0),
      });
      const d = dequantize(x, config.bins, foldIn(seed, 1));
      const rows = <R extends tf.Rank>(t: tf.Tensor<R>): tf.Tensor<R> =>
        tf.slice(t, begin, size) as tf.Tensor<R>;
      return [rows(c), rows(d), rows(degradedMask)] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D];
    });
    try {
      let perSample: tf.Tensor1D | undefined;
      const f = (...vars: tf.Tensor[]): tf.Scalar => {
        let j = 0;
        const tree = unflattenLike(
          params,
          all.map((p) => (isTrainablePath(p.path) ? vars[j++] : p.tensor)),
        );
        const r = unpairedLoss(tree, config, stats, xd, cond, mask);
        perSample = tf.keep(r.perSample);
        return tf.mul(r.loss, size / n) as tf.Scalar;
      };
      const { value, grads } = tf.valueAndGrads(f)(trainable.map((p) => p.tensor));
      return { loss: value as tf.Scalar, perSample: perSample!, grads };
    } finally {
      tf.dispose([cond, xd, mask]);
    }
  } finally {
    disposeShiftStats(stats);
  }
};
