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
import type { DeflowParams } from "../model/network.ts";
import { loadModelCheckpointTask, type ModelHeader, modelHeaderTask } from "../io/model.ts";
import { CliError } from "./args.ts";

/** A checkpoint's header information with its validated config and normalisation. */
export type ModelInfo = ModelHeader;

/** A model's parameters (the caller disposes them) with its config and normalisation. */
export type LoadedModel = ModelInfo & { readonly params: DeflowParams };

const cliError = (e: Error): CliError => new CliError(e.message);

/** The header → config → normalisation pipeline of {@linkcode readModelInfo}. */
export const modelInfoTask = (path: string): TE.TaskEither<CliError, ModelInfo> =>
  F.pipe(modelHeaderTask(path), TE.mapLeft(cliError));

/**
 * The pipeline of {@linkcode loadModel}: {@linkcode modelInfoTask}, then the tensors read
 * and verified into a parameter template of that config (the template is always freed).
 */
export const loadModelTask = (path: string): TE.TaskEither<CliError, LoadedModel> =>
  F.pipe(
    loadModelCheckpointTask(path),
    TE.bimap(cliError, (m): LoadedModel => ({
      info: m.info,
      config: m.config,
      ...(m.normalization ? { normalization: m.normalization } : {}),
      params: m.params,
    })),
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
