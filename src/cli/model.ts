/**
 * Loading a trained model (parameters, config, normalisation) from a checkpoint for the
 * CLI's sampling and info commands.
 *
 * Each load is one `TaskEither` pipeline — read the header → validate the config →
 * validate the normalisation (→ read and verify the tensors) — whose first failure is a
 * one-line {@linkcode CliError}; {@linkcode readModelInfo} and {@linkcode loadModel} run
 * it and throw that error.
 *
 * @module
 */
import { either as E, function as F, taskEither as TE } from "fp-ts";
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

/** A model's parameters (the caller disposes them) with its config and normalisation. */
export type LoadedModel = ModelInfo & { readonly params: DeflowParams };

const cliError = (e: Error): CliError => new CliError(e.message);

/** The normalisation record of a checkpoint's training state, validated (absent is fine). */
const decodeNormalization = (
  path: string,
  info: CheckpointInfo,
): E.Either<CliError, DomainNormalization | undefined> => {
  const raw = (info.training as unknown as { normalization?: unknown }).normalization;
  return raw === undefined ? E.right(undefined) : F.pipe(
    DomainNormalizationCodec.decode(raw),
    E.mapLeft(() => new CliError(`${path}: invalid normalization record in the checkpoint`)),
  );
};

/** The header → config → normalisation pipeline of {@linkcode readModelInfo}. */
export const modelInfoTask = (path: string): TE.TaskEither<CliError, ModelInfo> =>
  F.pipe(
    () => readCheckpointInfo(path),
    TE.mapLeft(cliError),
    TE.chainEitherK((info) =>
      F.pipe(
        decodeStoredConfig(info.config),
        E.mapLeft((errors) =>
          new CliError(`${path}: invalid model config in the checkpoint: ${errors.join("; ")}`)
        ),
        E.chain((config) =>
          F.pipe(
            decodeNormalization(path, info),
            E.map((normalization): ModelInfo => ({
              info,
              config,
              ...(normalization ? { normalization } : {}),
            })),
          )
        ),
      )
    ),
  );

/**
 * The pipeline of {@linkcode loadModel}: {@linkcode modelInfoTask}, then the tensors read
 * and verified into a parameter template of that config (the template is always freed).
 */
export const loadModelTask = (path: string): TE.TaskEither<CliError, LoadedModel> =>
  F.pipe(
    modelInfoTask(path),
    TE.chain((model) =>
      TE.bracket(
        TE.fromIO(() => initParams(model.config, 0)),
        (template) =>
          F.pipe(
            () => loadCheckpoint(path, { params: template }),
            TE.mapLeft(cliError),
            TE.map((loaded): LoadedModel => ({ ...model, params: loaded.params })),
          ),
        (template) => TE.fromIO(() => disposeParams(template)),
      )
    ),
  );

/** Run a pipeline: its value, or its one-line CliError thrown. */
const orThrow = async <A>(task: TE.TaskEither<CliError, A>): Promise<A> => {
  const result = await task();
  if (E.isLeft(result)) throw result.left;
  return result.right;
};

/** Read and validate a checkpoint's header (no tensors); throws a one-line CliError. */
export const readModelInfo = (path: string): Promise<ModelInfo> => orThrow(modelInfoTask(path));

/** Load a model's parameters (caller disposes them) with its config and normalisation. */
export const loadModel = (path: string): Promise<LoadedModel> => orThrow(loadModelTask(path));
