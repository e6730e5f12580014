/**
 * Loading a trained model (parameters, config, normalisation) from a checkpoint for the
 * CLI's sampling and info commands.
 *
 * @module
 */
import { either as E } from "fp-ts";
import { disposeParams } from "../core/params.ts";
import { decodeStoredConfig, type ModelConfig } from "../model/config.ts";
import { type DeflowParams, initParams } from "../model/network.ts";
import type { DomainNormalization } from "../model/sample.ts";
import { type CheckpointInfo, loadCheckpoint, readCheckpointInfo } from "../io/checkpoint.ts";
import { DomainNormalizationCodec } from "../train/normalize.ts";
import { CliError } from "./args.ts";

/** A checkpoint's header information with its validated config and normalisation. */
export interface ModelInfo {
  /** The raw header information. */
  readonly info: CheckpointInfo;
  /** The validated model config. */
  readonly config: ModelConfig;
  /** The degraded-domain normalisation stored with it, if any. */
  readonly normalization?: DomainNormalization;
}

/** Read and validate a checkpoint's header (no tensors); throws a one-line CliError. */
export const readModelInfo = async (path: string): Promise<ModelInfo> => {
  const info = await readCheckpointInfo(path);
  if (E.isLeft(info)) throw new CliError(info.left.message);
  const cfg = decodeStoredConfig(info.right.config);
  if (E.isLeft(cfg)) {
    throw new CliError(`${path}: invalid model config in the checkpoint: ${cfg.left.join("; ")}`);
  }
  const raw = (info.right.training as unknown as { normalization?: unknown }).normalization;
  let normalization: DomainNormalization | undefined;
  if (raw !== undefined) {
    const n = DomainNormalizationCodec.decode(raw);
    if (E.isLeft(n)) throw new CliError(`${path}: invalid normalization record in the checkpoint`);
    normalization = n.right;
  }
  return { info: info.right, config: cfg.right, ...(normalization ? { normalization } : {}) };
};

/** Load a model's parameters (caller disposes them) with its config and normalisation. */
export const loadModel = async (
  path: string,
): Promise<ModelInfo & { readonly params: DeflowParams }> => {
  const mi = await readModelInfo(path);
  const template = initParams(mi.config, 0);
  try {
    const loaded = await loadCheckpoint(path, { params: template });
    if (E.isLeft(loaded)) throw new CliError(loaded.left.message);
    return { ...mi, params: loaded.right.params };
  } finally {
    disposeParams(template);
  }
};
