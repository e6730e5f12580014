/**
 * A training step whose gradients come from a {@linkcode GradientPool}: the same update
 * as `trainStep` of src/train/step.ts (gradient-norm clipping, Adam, a non-finite loss
 * skips the update), with the batch computed in shards over several threads.
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { ModelConfig } from "../model/config.ts";
import { adamStep, trainableParams } from "../train/adam.ts";
import type { Batch, StepOptions, StepResult, TrainState } from "../train/step.ts";
import type { GradientPool } from "./pool.ts";

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
 * `trainStep` with the gradients computed by `pool` (see src/train/step.ts for the
 * contract: on success the old trainable leaves and Adam moments are disposed).
 */
export const parallelTrainStep = async (
  pool: GradientPool,
  state: TrainState,
  config: ModelConfig,
  batch: Batch,
  options: StepOptions,
): Promise<StepResult> => {
  const { loss, perSample, grads } = await pool.lossAndGrads(
    state.params,
    config,
    batch,
    options.seed,
  );
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
  const next = adamStep(state.params, clipped, state.adam, { lr: options.lr });
  if (clipped !== grads) tf.dispose(clipped);
  tf.dispose(grads);
  tf.dispose(trainableParams(state.params).map((n) => n.tensor));
  tf.dispose([...state.adam.m, ...state.adam.v]);
  return { state: { params: next.params, adam: next.state }, ...summary, skipped: false };
};
