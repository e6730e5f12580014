/**
 * Parameter averaging for the training loop (`averageDecay`): a bias-corrected exponential
 * moving average of the optimiser's iterates, kept as a parameter tree whose trainable
 * leaves are its own and whose fixed (`const`) leaves are shared with the iterate.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { flattenParams, isTrainablePath, mapParams, type ParamTree } from "../core/params.ts";
import { trainableParams } from "./adam.ts";

/** A copy of the trainable leaves of `params`; the fixed (`const`) leaves are shared. */
export const copyTrainable = <T extends ParamTree>(params: T): T =>
  mapParams(params, (x, p) => (isTrainablePath(p) ? tf.clone(x) : x));

/** Dispose the trainable leaves of `params` (not the fixed ones, which are shared). */
export const disposeTrainable = (params: ParamTree): void =>
  tf.dispose(trainableParams(params).map((n) => n.tensor));

/**
 * The `n`-th update of the bias-corrected parameter average: `a + (x − a)·(1 − d)/(1 − dⁿ)`
 * for every trainable leaf (the first update gives `x`). Disposes the old average's
 * trainable leaves.
 */
export const foldIntoAverage = <T extends ParamTree>(
  average: T,
  iterate: T,
  decay: number,
  n: number,
): T => {
  const w = (1 - decay) / (1 - decay ** n);
  const x = new Map(flattenParams(iterate).map((l) => [l.path, l.tensor]));
  const next = mapParams(
    average,
    (a, p) => isTrainablePath(p) ? tf.tidy(() => tf.add(a, tf.mul(tf.sub(x.get(p)!, a), w))) : a,
  );
  disposeTrainable(average);
  return next;
};
