/**
 * Data-parallel gradients over several CPU cores. The wasm backend's own threads do not
 * start under Deno, so a pool runs `threads − 1` Deno Workers, each with its own
 * TensorFlow.js, plus the calling thread: every training batch is cut into contiguous
 * row shards, each thread computes its shard's share of the loss and gradients
 * (src/parallel/shard.ts) and the shares are summed. The result equals
 * `lossAndGrads` of src/train/step.ts up to float32 rounding.
 *
 * The parameters travel to the workers as plain arrays on every call (copy cost grows
 * with the model size; small next to the compute at the default configuration).
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { BackendName } from "../core/backend.ts";
import type { ModelConfig } from "../model/config.ts";
import type { DeflowParams } from "../model/network.ts";
import { type PlainParams, shardLossAndGrads, toPlainParams } from "./shard.ts";
import type { WorkerReply, WorkerRequest } from "./worker.ts";

/** Options of {@linkcode createGradientPool}. */
export interface GradientPoolOptions {
  /** Threads computing shards, the calling thread included (default 2). */
  readonly threads?: number;
  /** Backend of the worker threads (default wasm). */
  readonly backend?: BackendName;
}

/** The loss and gradients of one batch, as `lossAndGrads` in src/train/step.ts returns. */
export interface PooledGradients {
  /** Mean loss of the batch, bits/dim. */
  readonly loss: tf.Scalar;
  /** Per-sample losses in batch order, bits/dim. */
  readonly perSample: tf.Tensor1D;
  /** Gradients of every trainable leaf, in trainableParams order. */
  readonly grads: tf.Tensor[];
}

/** A pool of gradient threads; `close` it when done. */
export interface GradientPool {
  /** Threads computing shards (calling thread included). */
  readonly threads: number;
  /** Loss and gradients of a batch, computed in shards over the threads. */
  readonly lossAndGrads: (
    params: DeflowParams,
    config: ModelConfig,
    batch: { readonly x: tf.Tensor4D; readonly degradedMask: tf.Tensor1D },
    seed: number,
  ) => Promise<PooledGradients>;
  /** Terminate the workers. */
  readonly close: () => void;
}

type ShardReply = Extract<WorkerReply, { kind: "shard" }>;

/** Contiguous row ranges `[begin, size]` cutting `n` rows into at most `k` shards. */
export const shardRows = (n: number, k: number): [number, number][] => {
  const parts = Math.max(1, Math.min(n, k));
  const out: [number, number][] = [];
  let begin = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(n / parts) + (i < n % parts ? 1 : 0);
    out.push([begin, size]);
    begin += size;
  }
  return out;
};

/**
 * Start a pool of `threads − 1` workers (each loads TensorFlow.js; allow a few seconds).
 * With `threads: 1` no worker starts and `lossAndGrads` runs on the calling thread.
 */
export const createGradientPool = async (
  options: GradientPoolOptions = {},
): Promise<GradientPool> => {
  const threads = options.threads ?? 2;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`createGradientPool: threads must be a positive integer, got ${threads}`);
  }
  const backend = options.backend ?? "wasm";
  const pending = new Map<number, { ok: (r: ShardReply) => void; fail: (e: Error) => void }>();
  let nextId = 0;
  const workers = Array.from(
    { length: threads - 1 },
    () => new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" }),
  );
  const failAll = (msg: string) => {
    for (const p of pending.values()) p.fail(new Error(msg));
    pending.clear();
  };
  await Promise.all(workers.map((w, i) =>
    new Promise<void>((resolve, reject) => {
      w.onmessage = (e: MessageEvent<WorkerReply>) => {
        const m = e.data;
        if (m.kind === "ready") resolve();
        else if (m.kind === "shard") {
          pending.get(m.id)?.ok(m);
          pending.delete(m.id);
        } else {
          const err = new Error(`gradient pool worker ${i + 1}: ${m.message}`);
          if (m.id === undefined) reject(err);
          else {
            pending.get(m.id)?.fail(err);
            pending.delete(m.id);
          }
        }
      };
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        const msg = `gradient pool worker ${i + 1} crashed: ${e.message}`;
        reject(new Error(msg));
        failAll(msg);
      };
      w.postMessage({ kind: "init", backend } satisfies WorkerRequest);
    })
  ));

  const lossAndGrads: GradientPool["lossAndGrads"] = async (params, config, batch, seed) => {
    const n = batch.x.shape[0];
    const shards = shardRows(n, threads);
    const remote = shards.slice(1);
    let jobs: Promise<ShardReply>[] = [];
    if (remote.length > 0) {
      const plain: PlainParams = await toPlainParams(params);
      const x = { shape: [...batch.x.shape], data: (await batch.x.data()) as Float32Array };
      const mask = (await batch.degradedMask.data()) as Float32Array;
      jobs = remote.map(([begin, size], i) =>
        new Promise<ShardReply>((ok, fail) => {
          const id = nextId++;
          pending.set(id, { ok, fail });
          const req: WorkerRequest = {
            kind: "shard",
            id,
            config,
            params: plain,
            x,
            mask,
            seed,
            begin,
            size,
          };
          workers[i].postMessage(req);
        })
      );
    }
    const [b0, s0] = shards[0];
    const local = await shardLossAndGrads(
      params,
      config,
      batch.x,
      batch.degradedMask,
      seed,
      b0,
      s0,
    );
    let replies: ShardReply[];
    try {
      replies = await Promise.all(jobs);
    } catch (e) {
      tf.dispose([local.loss, local.perSample, ...local.grads]);
      throw e;
    }
    if (replies.length === 0) return local;
    return tf.tidy(() => {
      let loss: tf.Tensor = local.loss;
      const grads: tf.Tensor[] = [...local.grads];
      const per: tf.Tensor1D[] = [local.perSample];
      for (const r of replies) {
        loss = tf.add(loss, r.loss);
        for (let j = 0; j < grads.length; j++) {
          grads[j] = tf.add(grads[j], tf.tensor(r.grads[j], grads[j].shape, "float32"));
        }
        per.push(tf.tensor1d(r.perSample));
      }
      const out = { loss: loss as tf.Scalar, perSample: tf.concat(per) as tf.Tensor1D, grads };
      tf.dispose([local.loss, local.perSample, ...local.grads]);
      return out;
    });
  };

  return {
    threads,
    lossAndGrads,
    close: () => {
      failAll("gradient pool closed");
      for (const w of workers) w.terminate();
    },
  };
};
