/**
 * Shipped (built-in) models, loaded by a short name such as `builtin:camera`, and loading
 * a model from a checkpoint's bytes (for browsers, where there is no file system).
 *
 * A built-in model is a checkpoint inside the package, `src/builtin/<name>/model.safetensors`,
 * written with its model card by `examples/train_builtin.ts`. `deflow degrade --model
 * builtin:camera` resolves the name to that file; {@linkcode loadBuiltin} loads it as a
 * library call; {@linkcode loadModelBytes} loads any checkpoint from bytes.
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import type { DeflowParams } from "../model/network.ts";
import type { DomainNormalization } from "../model/sample.ts";
import { loadModelCheckpoint } from "./model.ts";

/** The prefix that names a shipped model (`builtin:camera`). */
export const BUILTIN_PREFIX = "builtin:";

/** The checkpoint's file name inside `src/builtin/<name>/`. */
export const BUILTIN_FILE = "model.safetensors";

/** The names of the shipped models. */
export const builtinModels: readonly string[] = ["camera"];

/** The model name of a `builtin:NAME` spec, or `undefined` for anything else (a path). */
export const builtinName = (spec: string): string | undefined =>
  spec.startsWith(BUILTIN_PREFIX) ? spec.slice(BUILTIN_PREFIX.length) : undefined;

/** Where the shipped model `name` is stored (a `file:` URL in a checkout). Throws on an unknown name. */
export const builtinUrl = (name: string): URL => {
  if (!builtinModels.includes(name)) {
    throw new Error(
      `unknown built-in model "${name}" (one of ${
        builtinModels.map((n) => BUILTIN_PREFIX + n).join(", ")
      })`,
    );
  }
  return new URL(`../builtin/${name}/${BUILTIN_FILE}`, import.meta.url);
};

/**
 * A model argument as a file path: `builtin:NAME` becomes the shipped checkpoint's path
 * (downloaded once to a temporary file when the package is not on the local disk); any
 * other string is returned unchanged.
 */
export const resolveModelPath = async (spec: string): Promise<string> => {
  const name = builtinName(spec);
  if (name === undefined) return spec;
  const url = builtinUrl(name);
  if (url.protocol === "file:") return decodeURIComponent(url.pathname);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${spec}: cannot download ${url} (HTTP ${res.status})`);
  const path = await Deno.makeTempFile({ prefix: `deflow-${name}-`, suffix: ".safetensors" });
  await Deno.writeFile(path, new Uint8Array(await res.arrayBuffer()));
  return path;
};

/**
 * `values` with its `model` field resolved by {@linkcode resolveModelPath} when it is a
 * string (CLI option records); other values are returned unchanged.
 */
export const withResolvedModel = async <T>(values: T): Promise<T> => {
  const v = values as { model?: unknown };
  if (v === null || typeof v !== "object" || typeof v.model !== "string") return values;
  return { ...values, model: await resolveModelPath(v.model) };
};

/** A model loaded from a checkpoint: parameters (the caller disposes them), config, normalisation. */
export interface LoadedModel {
  /** Parameters; dispose with `disposeParams`. */
  readonly params: DeflowParams;
  /** The validated model config. */
  readonly config: ModelConfig;
  /** The degraded-domain normalisation stored with the model, if any. */
  readonly normalization?: DomainNormalization;
  /** The number of training steps recorded in the checkpoint. */
  readonly steps: number;
}

/**
 * Load a model from a checkpoint file's bytes (as `deflow degrade` loads a path): validates
 * the config and normalisation and verifies the checksums. Rejects with a one-line message
 * naming `what` on any problem; allocates nothing then.
 */
export const loadModelBytes = async (
  bytes: Uint8Array,
  what = "checkpoint",
): Promise<LoadedModel> => {
  const m = await loadModelCheckpoint(bytes, { name: what });
  return {
    params: m.params,
    config: m.config,
    steps: m.training.step,
    ...(m.normalization ? { normalization: m.normalization } : {}),
  };
};

/** The shipped model `name` (e.g. `"camera"`), loaded; the caller disposes its parameters. */
export const loadBuiltin = async (name: string): Promise<LoadedModel> => {
  const url = builtinUrl(name);
  const bytes = url.protocol === "file:"
    ? await Deno.readFile(url)
    : new Uint8Array(await (await fetch(url)).arrayBuffer());
  return await loadModelBytes(bytes, BUILTIN_PREFIX + name);
};
