/**
 * One unpaired DeFlow training step: NLL of a mixed clean/degraded batch, gradients of
 * every trainable parameter, an Adam update. A non-finite loss skips the update.
 *
 * The only reads from the device per step are the small latent-shift matrices (for the
 * float64 statistics, before the gradient tape) and the per-sample losses that are logged.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { flattenParams, isTrainablePath, unflattenLike } from "../core/params.ts";
import { foldIn } from "../core/random.ts";
import type { ModelConfig } from "../model/config.ts";
import { conditionInput } from "../model/conditioning.ts";
import type { DeflowParams } from "../model/network.ts";
import { dequantize, disposeShiftStats, prepareShifts, unpairedLoss } from "../model/objective.ts";
import { type AdamState, adamStep, trainableParams } from "./adam.ts";

/** Model parameters and optimiser state between steps. */
export interface TrainState {
  /** Current parameters. */
  readonly params: DeflowParams;
  /** Adam moments. */
  readonly adam: AdamState;
}

/** A training batch: images and which of them are degraded. */
export interface Batch {
  /** Images NHWC in [0, 1]. */
  readonly x: tf.Tensor4D;
  /** 1 for a degraded sample, 0 for a clean one, `[N]`. */
  readonly degradedMask: tf.Tensor1D;
}

/** What one step measured (bits/dim; NaN when the batch has no sample of that domain). */
export interface StepResult {
  /** The new state (the old one is disposed unless the step was skipped). */
  readonly state: TrainState;
  /** Mean NLL of the batch, bits/dim. */
  readonly loss: number;
  /** Mean NLL of the clean samples, bits/dim. */
  readonly clean: number;
  /** Mean NLL of the degraded samples, bits/dim. */
  readonly degraded: number;
  /** True when the loss was not finite and no update was made. */
  readonly skipped: boolean;
}

/** Options of {@linkcode trainStep}. */
export interface StepOptions {
  /** Learning rate of this step. */
  readonly lr: number;
  /** Seed of this step's randomness (dequantisation and conditioning noise). */
  readonly seed: number;
  /** Clip the global gradient norm to this value (default 100; 0 disables). */
  readonly clipNorm?: number;
  /** Multiple of `lr` per trainable leaf path (default 1 for all, see `AdamOptions`). */
  readonly lrMultiple?: (path: string) => number;
}

const meanWhere = (values: Float32Array, mask: Float32Array, want: number): number => {
  let s = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask[i] === want) {
      s += values[i];
      n++;
    }
  }
  return n ? s / n : NaN;
};

/** The loss and gradients for one batch (no update); gradients align with trainableParams. */
export const lossAndGrads = async (
  params: DeflowParams,
  config: ModelConfig,
  batch: Batch,
  seed: number,
): Promise<{ loss: tf.Scalar; perSample: tf.Tensor1D; grads: tf.Tensor[] }> => {
  const stats = await prepareShifts(params);
  try {
    const all = flattenParams(params);
    const trainable = all.filter((n) => isTrainablePath(n.path));
    let perSample: tf.Tensor1D | undefined;
    const cond = conditionInput(batch.x, {
      factor: config.conditionFactor,
      noiseStd: config.conditionNoise,
      seed: foldIn(seed, 0),
    });
    const xd = dequantize(batch.x, config.bins, foldIn(seed, 1));
    try {
      const f = (...vars: tf.Tensor[]): tf.Scalar => {
        let j = 0;
        const tree = unflattenLike(
          params,
          all.map((n) => (isTrainablePath(n.path) ? vars[j++] : n.tensor)),
        );
        const r = unpairedLoss(tree, config, stats, xd, cond, batch.degradedMask);
        perSample = tf.keep(r.perSample);
        return r.loss;
      };
      const { value, grads } = tf.valueAndGrads(f)(trainable.map((n) => n.tensor));
      return { loss: value as tf.Scalar, perSample: perSample!, grads };
    } finally {
      tf.dispose([cond, xd]);
    }
  } finally {
    disposeShiftStats(stats);
  }
};

const clipGrads = (grads: tf.Tensor[], maxNorm: number): tf.Tensor[] => {
  if (!(maxNorm > 0)) return grads;
  return tf.tidy(() => {
    let sq: tf.Tensor = tf.scalar(0);
    for (const g of grads) sq = tf.add(sq, tf.sum(tf.square(g)));
    const scale = tf.minimum(1, tf.div(maxNorm, tf.add(tf.sqrt(sq), 1e-12)));
    return grads.map((g) => tf.mul(g, scale));
  });
};

/**
 * One training step. On success the old parameters' trainable leaves and the old Adam
 * moments are disposed and the new state returned; on a non-finite loss nothing changes
 * (`skipped: true`) and the same state is returned.
 */
export const trainStep = async (
  state: TrainState,
  config: ModelConfig,
  batch: Batch,
  options: StepOptions,
): Promise<StepResult> => {
  const { loss, perSample, grads } = await lossAndGrads(state.params, config, batch, options.seed);
  const [lossV, per, mask] = await Promise.all([
    loss.data() as Promise<Float32Array>,
    perSample.data() as Promise<Float32Array>,
    batch.degradedMask.data() as Promise<Float32Array>,
  ]);
  tf.dispose([loss, perSample]);
  const summary = {
    loss: lossV[0],
    clean: meanWhere(per, mask, 0),
    degraded: meanWhere(per, mask, 1),
  };
  if (!Number.isFinite(lossV[0])) {
    tf.dispose(grads);
    return { state, ...summary, skipped: true };
  }
  const clipped = clipGrads(grads, options.clipNorm ?? 100);
  const next = adamStep(state.params, clipped, state.adam, {
    lr: options.lr,
    ...(options.lrMultiple ? { lrMultiple: options.lrMultiple } : {}),
  });
  if (clipped !== grads) tf.dispose(clipped);
  tf.dispose(grads);
  tf.dispose(trainableParams(state.params).map((n) => n.tensor));
  tf.dispose([...state.adam.m, ...state.adam.v]);
  return { state: { params: next.params, adam: next.state }, ...summary, skipped: false };
};
