/**
 * Shared test helpers: backend setup, leak checks, float comparisons.
 * Law and layer tests run on the WebGPU backend (Mesa llvmpipe on CI machines).
 */
import { tf } from "../src/tf.ts";
import { type BackendName, initBackend } from "../src/core/backend.ts";

/** Switch to `backend` (default webgpu) once; cheap when already active. */
export const useBackend = async (backend: BackendName = "webgpu"): Promise<void> => {
  if (tf.getBackend() !== backend) await initBackend({ backend, log: false });
};

/** Options for Deno.test on WebGPU: the device keeps async resources alive between tests. */
export const gpuTest = { sanitizeOps: false, sanitizeResources: false } as const;

/** Run `f` and fail if the number of live tensors grew. */
export const noLeak = async <T>(what: string, f: () => Promise<T> | T): Promise<T> => {
  const before = tf.memory().numTensors;
  const out = await f();
  const after = tf.memory().numTensors;
  if (after !== before) {
    throw new Error(`${what}: tensor count grew from ${before} to ${after}`);
  }
  return out;
};

/** Read a tensor as a Float64Array (async: works on WebGPU). */
export const read = async (t: tf.Tensor): Promise<Float64Array> =>
  Float64Array.from(await t.data() as Float32Array);

/** Largest |a − b| over two equal-length arrays. */
export const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
