/**
 * Shared test helpers: backend setup, leak checks, float comparisons.
 * Law and layer tests run on the WebGPU backend (Mesa llvmpipe on CI machines).
 */
import { tf } from "../src/tf.ts";
import { type BackendName, initBackend } from "../src/core/backend.ts";
import { cholesky, type Matrix } from "../src/linalg/dense.ts";

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

import { disposeParams, mapParams, type ParamTree } from "../src/core/params.ts";
import { configOrThrow, type ModelConfig, type ModelConfigInput } from "../src/model/config.ts";
import { type DeflowParams, initParams } from "../src/model/network.ts";

/** A tiny DeFlow config (L 2, K 1, 2× conditioning) for fast model tests. */
export const tinyConfig = (overrides: ModelConfigInput = {}): ModelConfig =>
  configOrThrow({
    levels: 2,
    steps: 1,
    transitionSteps: 1,
    splitLevels: [1],
    hidden: 8,
    injectorHidden: 8,
    conditionFactor: 2,
    encoder: { nf: 4, nb: 1, gc: 4 },
    ...overrides,
  });

/** FNV-1a hash of a string (32 bits): distinct leaf paths get unrelated seeds. */
export const hashString = (s: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
};

/**
 * A copy of `tree` with N(0, std²) added to every trainable leaf (`const` leaves are
 * cloned), so zero-initialised layers are no longer the identity. The copy is new tensors.
 * Each leaf's noise is seeded by `seed` and a hash of its full path, so two leaves never
 * share noise (e.g. an ActNorm's `bias` and `logs`, whose names have equal length).
 */
export const perturb = <T extends ParamTree>(tree: T, seed: number, std: number): T =>
  mapParams(
    tree,
    (t, path) =>
      path.split(".").includes("const") ? tf.clone(t) : tf.tidy(() =>
        tf.add(
          t,
          tf.randomNormal(t.shape, 0, std, "float32", (seed * 7919 + hashString(path)) >>> 0),
        )
      ),
  );

/** Fresh parameters of `config` from `seed`, perturbed by {@linkcode perturb}. */
export const perturbedModel = (config: ModelConfig, seed: number, std: number): DeflowParams => {
  const base = initParams(config, seed);
  const p = perturb(base, seed, std);
  disposeParams(base);
  return p;
};

/** Deterministic pseudo-random numbers in [-1, 1) (a 32-bit LCG), for test inputs. */
export const lcg = (seed: number): () => number => {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
};

/**
 * Reference `log N(d; 0, S)` in float64 (with the `2π` terms), through an explicit Cholesky
 * factor `S = L·Lᵀ`: `quad = |L⁻¹d|²`, `log det S = 2·Σ log L_ii`.
 */
export const gaussianLogPdf64 = (d: ArrayLike<number>, s: Matrix): number => {
  const c = d.length;
  const l = cholesky(s);
  const y = new Float64Array(c);
  let logDet = 0;
  for (let i = 0; i < c; i++) {
    let v = d[i];
    for (let k = 0; k < i; k++) v -= l.data[i * c + k] * y[k];
    y[i] = v / l.data[i * c + i];
    logDet += 2 * Math.log(l.data[i * c + i]);
  }
  return -0.5 * (y.reduce((a, v) => a + v * v, 0) + logDet + c * Math.log(2 * Math.PI));
};
