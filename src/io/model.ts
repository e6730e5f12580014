/**
 * Loading a DeFlow model from a checkpoint, written once: read the header → validate the
 * stored config and normalisation → build a parameter template of that config → read and
 * verify the tensors into it (the template is always freed). The CLI (`src/cli/model.ts`),
 * resuming training (`src/train/loop.ts`), `loadModelBytes` / `loadBuiltin`
 * (`src/io/builtin.ts`) and the examples all load through {@linkcode loadModelCheckpointTask}.
 *
 * Both steps are fp-ts `TaskEither`s whose `Left` is a one-line `Error` naming the
 * checkpoint; nothing is allocated on a `Left`.
 *
 * @module
 */
import { either as E, function as F, taskEither as TE } from "fp-ts";
import { t } from "../iots.ts";
import { tf } from "../tf.ts";
import { disposeParams } from "../core/params.ts";
import { decodeStoredConfig, type ModelConfig } from "../model/config.ts";
import { type DeflowParams, initParams } from "../model/network.ts";
import type { DomainNormalization } from "../model/sample.ts";
import {
  type AdamState,
  type CheckpointInfo,
  loadCheckpoint,
  readCheckpointInfo,
  type TrainingState,
} from "./checkpoint.ts";

const Finite = new t.Type<number>(
  "FiniteNumber",
  (u): u is number => typeof u === "number" && Number.isFinite(u),
  (u, c) => (typeof u === "number" && Number.isFinite(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);
const Moments = t.type({ mean: t.array(Finite), std: t.array(Finite) }, "ChannelMoments");

/** io-ts codec of {@linkcode DomainNormalization} (as stored in a checkpoint). */
export const DomainNormalizationCodec: t.Type<DomainNormalization, DomainNormalization, unknown> = t
  .type({ clean: Moments, degraded: Moments }, "DomainNormalization") as unknown as t.Type<
    DomainNormalization,
    DomainNormalization,
    unknown
  >;

/** A checkpoint's header with its validated model config and normalisation. */
export interface ModelHeader {
  /** The raw header information (config and training state unvalidated, tensor list). */
  readonly info: CheckpointInfo;
  /** The validated model config. */
  readonly config: ModelConfig;
  /** The degraded-domain normalisation stored with the model, if any. */
  readonly normalization?: DomainNormalization;
}

/** A loaded model checkpoint; its tensors are new and belong to the caller. */
export interface ModelCheckpoint extends ModelHeader {
  /** The parameters (dispose with `disposeParams`). */
  readonly params: DeflowParams;
  /** The optimiser state, when {@linkcode ModelLoadOptions.optimizer} was given. */
  readonly optimizer?: AdamState;
  /** The stored training state. */
  readonly training: TrainingState;
}

/** Options of {@linkcode loadModelCheckpointTask}. */
export interface ModelLoadOptions {
  /** The name used in error messages (default: the path, or `"checkpoint"` for bytes). */
  readonly name?: string;
  /** The header, when already read by {@linkcode modelHeaderTask} (not read again). */
  readonly header?: ModelHeader;
  /**
   * Load the optimiser state too: called with the parameter template, it returns a state
   * with the moment paths and shapes to expect (e.g. `adamInit`); its tensors are freed.
   */
  readonly optimizer?: (template: DeflowParams) => AdamState;
}

/** Where an error happened, for messages: the name, else the path, else "checkpoint". */
const nameOf = (source: string | Uint8Array, name: string | undefined): string =>
  name ?? (typeof source === "string" ? source : "checkpoint");

/** A reader's error; for bytes it does not name the model, so the name is prefixed. */
const readError = (source: string | Uint8Array, name: string | undefined) => (e: Error): Error =>
  typeof source === "string" ? e : new Error(`${nameOf(source, name)}: ${e.message}`);

/**
 * Read a checkpoint's header (no tensors) and validate its model config and normalisation
 * record. `source` is a file path or the file's bytes; `name` names it in messages.
 */
export const modelHeaderTask = (
  source: string | Uint8Array,
  name?: string,
): TE.TaskEither<Error, ModelHeader> => {
  const where = nameOf(source, name);
  return F.pipe(
    () => readCheckpointInfo(source),
    TE.mapLeft(readError(source, name)),
    TE.chainEitherK((info) =>
      F.pipe(
        decodeStoredConfig(info.config, info.tensors),
        E.mapLeft((errors) =>
          new Error(`${where}: invalid model config in the checkpoint: ${errors.join("; ")}`)
        ),
        E.chain((config) => {
          const raw = (info.training as { normalization?: unknown }).normalization;
          return raw === undefined ? E.right<Error, ModelHeader>({ info, config }) : F.pipe(
            DomainNormalizationCodec.decode(raw),
            E.bimap(
              () => new Error(`${where}: invalid normalization record in the checkpoint`),
              (normalization): ModelHeader => ({ info, config, normalization }),
            ),
          );
        }),
      )
    ),
  );
};

/**
 * Load a model: {@linkcode modelHeaderTask} (unless `options.header` is given), then the
 * tensors read and verified into a parameter template of the stored config (and, with
 * `options.optimizer`, the optimiser moments). Templates are freed on every path.
 */
export const loadModelCheckpointTask = (
  source: string | Uint8Array,
  options: ModelLoadOptions = {},
): TE.TaskEither<Error, ModelCheckpoint> =>
  F.pipe(
    options.header !== undefined ? TE.right(options.header) : modelHeaderTask(source, options.name),
    TE.chain((header) =>
      TE.bracket(
        TE.fromIO(() => {
          const params = initParams(header.config, 0);
          return { params, optimizer: options.optimizer?.(params) };
        }),
        (template) =>
          F.pipe(
            () => loadCheckpoint(source, template),
            TE.mapLeft(readError(source, options.name)),
            TE.map((loaded): ModelCheckpoint => ({
              ...header,
              params: loaded.params,
              ...(loaded.optimizer !== undefined ? { optimizer: loaded.optimizer } : {}),
              training: loaded.training,
            })),
          ),
        (template) =>
          TE.fromIO(() => {
            disposeParams(template.params);
            if (template.optimizer) tf.dispose([...template.optimizer.m, ...template.optimizer.v]);
          }),
      )
    ),
  );

/** Run {@linkcode loadModelCheckpointTask}: the loaded model, or its one-line error thrown. */
export const loadModelCheckpoint = async (
  source: string | Uint8Array,
  options: ModelLoadOptions = {},
): Promise<ModelCheckpoint> => {
  const result = await loadModelCheckpointTask(source, options)();
  if (E.isLeft(result)) throw result.left;
  return result.right;
};
