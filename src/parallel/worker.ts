/**
 * Worker thread of the data-parallel gradient pool (src/parallel/pool.ts): runs its own
 * TensorFlow.js (wasm by default) and answers shard jobs with plain-data gradients.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type BackendName, initBackend } from "../core/backend.ts";
import type { ModelConfig } from "../model/config.ts";
import type { DeflowParams } from "../model/network.ts";
import { disposeParams } from "../core/params.ts";
import { fromPlainParams, type PlainParams, type PlainTensor, shardLossAndGrads } from "./shard.ts";

/** A message to the worker. */
export type WorkerRequest =
  | { readonly kind: "init"; readonly backend: BackendName }
  | {
    readonly kind: "shard";
    readonly id: number;
    readonly config: ModelConfig;
    readonly params: PlainParams;
    readonly x: PlainTensor;
    readonly mask: Float32Array;
    readonly seed: number;
    readonly begin: number;
    readonly size: number;
  };

/** A message from the worker. */
export type WorkerReply =
  | { readonly kind: "ready"; readonly backend: string }
  | {
    readonly kind: "shard";
    readonly id: number;
    readonly loss: number;
    readonly perSample: Float32Array;
    readonly grads: Float32Array[];
  }
  | { readonly kind: "error"; readonly id?: number; readonly message: string };

/** The worker global, typed locally (this module is type-checked with the window libs). */
const scope = self as unknown as {
  postMessage(message: unknown, transfer: ArrayBuffer[]): void;
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
};

const reply = (m: WorkerReply, transfer: ArrayBuffer[] = []) => scope.postMessage(m, transfer);

const runShard = async (m: Extract<WorkerRequest, { kind: "shard" }>) => {
  const params = fromPlainParams<DeflowParams>(m.params);
  const x = tf.tensor4d(m.x.data, m.x.shape as [number, number, number, number]);
  const mask = tf.tensor1d(m.mask);
  try {
    const r = await shardLossAndGrads(params, m.config, x, mask, m.seed, m.begin, m.size);
    const [loss, perSample, ...grads] = await Promise.all(
      [r.loss, r.perSample, ...r.grads].map((t) => t.data() as Promise<Float32Array>),
    );
    tf.dispose([r.loss, r.perSample, ...r.grads]);
    reply(
      { kind: "shard", id: m.id, loss: loss[0], perSample, grads },
      grads.map((g) => g.buffer as ArrayBuffer),
    );
  } finally {
    tf.dispose([x, mask]);
    disposeParams(params);
  }
};

scope.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const m = e.data;
  try {
    if (m.kind === "init") {
      const info = await initBackend({ backend: m.backend, log: false });
      reply({ kind: "ready", backend: info.backend });
    } else {
      await runShard(m);
    }
  } catch (err) {
    reply({
      kind: "error",
      id: m.kind === "shard" ? m.id : undefined,
      message: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
  }
};
