/**
 * Training checkpoints: one `.safetensors` file with the parameters, the Adam moments and
 * JSON metadata (model config, training state), written atomically.
 *
 * Tensor names: `params.<path>` for each leaf of the parameter tree (`params` alone when
 * the tree is a single tensor), `adam.m.<path>` and `adam.v.<path>` for the moments of each
 * trainable leaf, and `adam.x.<path>` for the optimiser's own point when the parameters are a
 * running average of its iterates (training with parameter averaging). Metadata (all strings):
 * - `deflow.format`: the checkpoint format version, {@linkcode CHECKPOINT_FORMAT} (`"1"`);
 * - `deflow.config`: the model config as JSON (opaque here; the model validates it);
 * - `deflow.training`: the {@linkcode TrainingState} as JSON;
 * - `deflow.adam`: `{"step": n}` as JSON, present when optimiser state was saved
 *   (`{"step": n, "iterate": true}` when the `adam.x.*` tensors are stored too);
 * - `deflow.checksums`: `{"tensors": {name: crc}, "metadata": crc}` as JSON, the CRC-32
 *   (8 hex digits) of every tensor's stored bytes and of the other metadata entries.
 *
 * **Integrity.** Loading verifies every checksum (a mismatch names the tensor) and that
 * every float in the parameters and moments is finite (Adam's second moments also ≥ 0).
 * Any other metadata key is an error (a corrupted key name cannot hide the checksums);
 * files written before checksums existed (no `deflow.checksums`) still load, with the
 * finite checks.
 *
 * @module
 */
import { either as E } from "fp-ts";
import { t } from "../iots.ts";
import { tf } from "../tf.ts";
import { flattenParams, type ParamTree, unflattenLike } from "../core/params.ts";
import { crc32, crc32Hex, crc32Of } from "./crc32.ts";
import { writeFileAtomic } from "./atomic.ts";
import {
  type DecodedTensor,
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensorsHeader,
  type SafetensorsDtype,
  type SafetensorsHeader,
  type SafetensorsTensor,
} from "./safetensors.ts";

/** Version written to (and required in) the `deflow.format` metadata entry. */
export const CHECKPOINT_FORMAT = "1";

/** One point of the loss history (bits per dimension, or whatever the loop records). */
export interface LossRecord {
  /** Training step. */
  readonly step: number;
  /** Loss on clean-domain samples (finite). */
  readonly clean: number;
  /** Loss on degraded-domain samples (finite). */
  readonly degraded: number;
}

/** Where training stands: enough to resume exactly. Extra JSON fields survive a round trip. */
export interface TrainingState {
  /** Number of completed training steps (integer ≥ 0). */
  readonly step: number;
  /** State of the training loop's PRNG (a 32-bit unsigned integer, `RngState.state`). */
  readonly rng: number;
  /** State of the data sampler, any JSON value. */
  readonly sampler: unknown;
  /** Optional loss history. */
  readonly lossHistory?: readonly LossRecord[];
}

const isNonNegativeInteger = (u: unknown): u is number =>
  typeof u === "number" && Number.isSafeInteger(u) && u >= 0;

/** An integer ≥ 0 (a plain number, not branded). */
export const NonNegativeInteger: t.Type<number, number, unknown> = new t.Type<number>(
  "NonNegativeInteger",
  isNonNegativeInteger,
  (u, c) => (isNonNegativeInteger(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

const isUint32 = (u: unknown): u is number => isNonNegativeInteger(u) && u <= 0xffffffff;

/** An integer in [0, 2³²) (a plain number, not branded). */
export const Uint32: t.Type<number, number, unknown> = new t.Type<number>(
  "Uint32",
  isUint32,
  (u, c) => (isUint32(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

const isFiniteNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u);

/** A finite number. */
export const FiniteNumber: t.Type<number, number, unknown> = new t.Type<number>(
  "FiniteNumber",
  isFiniteNumber,
  (u, c) => (isFiniteNumber(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** Codec of {@linkcode LossRecord}. */
export const LossRecordCodec: t.Type<LossRecord, LossRecord, unknown> = t.type({
  step: NonNegativeInteger,
  clean: FiniteNumber,
  degraded: FiniteNumber,
}, "LossRecord");

/**
 * Codec of {@linkcode TrainingState}: required fields in a `t.type`, optional ones in a
 * `t.partial`, joined by `t.intersection` — add new optional fields to the partial.
 */
export const TrainingStateCodec: t.Type<TrainingState, TrainingState, unknown> = t.intersection(
  [
    t.type({ step: NonNegativeInteger, rng: Uint32, sampler: t.unknown }),
    t.partial({ lossHistory: t.readonlyArray(LossRecordCodec) }),
  ],
  "TrainingState",
);

/** A JSON text whose parsed value is decoded by `inner` (encoding stringifies). */
class JsonOf<A, O> extends t.Type<A, string, unknown> {
  constructor(readonly inner: t.Type<A, O, unknown>) {
    super(
      `JSON<${inner.name}>`,
      inner.is,
      (u, c) => {
        if (typeof u !== "string") return t.failure(u, c, "expected a JSON string");
        let parsed: unknown;
        try {
          parsed = JSON.parse(u);
        } catch (e) {
          return t.failure(u, c, `invalid JSON: ${(e as Error).message}`);
        }
        return inner.validate(parsed, c);
      },
      (a) => JSON.stringify(inner.encode(a)),
    );
  }
}

const AdamMetaCodec = t.intersection([
  t.type({ step: NonNegativeInteger }),
  t.partial({ iterate: t.literal(true) }),
], "AdamMeta");

const Crc = new t.Type<string, string, unknown>(
  "CRC32",
  (u): u is string => typeof u === "string" && /^[0-9a-f]{8}$/.test(u),
  (u, c) => (typeof u === "string" && /^[0-9a-f]{8}$/.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

const ChecksumsCodec = t.type({ tensors: t.record(t.string, Crc), metadata: Crc }, "Checksums");

const CheckpointMetadataCodec = t.intersection([
  t.type({
    "deflow.format": t.literal(CHECKPOINT_FORMAT),
    "deflow.config": new JsonOf(t.unknown),
    "deflow.training": new JsonOf(TrainingStateCodec),
  }),
  t.partial({
    "deflow.adam": new JsonOf(AdamMetaCodec),
    "deflow.checksums": new JsonOf(ChecksumsCodec),
  }),
], "CheckpointMetadata");

/** CRC-32 of the metadata entries other than the checksums, in a fixed order. */
const metadataCrc = (raw: Record<string, string>): string => {
  const enc = new TextEncoder();
  let c = 0;
  for (const k of Object.keys(raw).filter((k) => k !== "deflow.checksums").sort()) {
    c = crc32(enc.encode(`${k}\u0000${raw[k]}\u0000`), c);
  }
  return crc32Hex(c);
};

type CheckpointMetadata = t.TypeOf<typeof CheckpointMetadataCodec>;

/**
 * Adam optimiser state as a checkpoint stores it (`adam.m.<path>`, `adam.v.<path>` and
 * `deflow.adam`): one first-moment (`m`) and one second-moment (`v`) tensor per trainable
 * leaf, aligned with `paths`, and the step count. Its tensors belong to the caller.
 * Defined here, with the file format, and used by the optimiser (`train/adam.ts`), so that
 * storage does not depend on training.
 */
export interface AdamState {
  /** Number of updates applied so far (0 for a fresh state). */
  readonly step: number;
  /** Paths of the trainable leaves, in `trainableParams` order. */
  readonly paths: readonly string[];
  /** First-moment estimates, aligned with `paths`. */
  readonly m: readonly tf.Tensor[];
  /** Second-moment estimates, aligned with `paths`. */
  readonly v: readonly tf.Tensor[];
  /**
   * The optimiser's own point (the iterate), aligned with `paths`, when the parameters saved
   * with this state are a running average of the iterates; absent when they are the iterate.
   */
  readonly iterate?: readonly tf.Tensor[];
}

/** What {@linkcode saveCheckpoint} writes. */
export interface Checkpoint {
  /** The parameter tree. */
  readonly params: ParamTree;
  /** Adam state, when training is to be resumed. */
  readonly optimizer?: AdamState;
  /** The model config (any JSON value; validated by the model's own codec). */
  readonly config: unknown;
  /** Where training stands. */
  readonly training: TrainingState;
}

/** What {@linkcode loadCheckpoint} needs to know: the tree structure and moment shapes. */
export interface CheckpointTemplate<P extends ParamTree> {
  /** A tree with the structure, shapes and dtypes of the saved one (values unused). */
  readonly params: P;
  /** When given, the optimiser state is loaded too (paths and shapes from it). */
  readonly optimizer?: AdamState;
}

/** A loaded checkpoint; its tensors are new and belong to the caller. */
export interface LoadedCheckpoint<P extends ParamTree> {
  /** New parameter tensors in the template's structure. */
  readonly params: P;
  /** New Adam state, present exactly when the template had one. */
  readonly optimizer?: AdamState;
  /** The config JSON value (unvalidated). */
  readonly config: unknown;
  /** The training state. */
  readonly training: TrainingState;
}

/** Name, dtype and shape of one stored tensor. */
export interface TensorSummary {
  /** Tensor name in the file. */
  readonly name: string;
  /** Stored dtype. */
  readonly dtype: SafetensorsDtype;
  /** Shape. */
  readonly shape: readonly number[];
}

/** What {@linkcode readCheckpointInfo} finds without building tensors. */
export interface CheckpointInfo {
  /** The config JSON value (unvalidated). */
  readonly config: unknown;
  /** The training state. */
  readonly training: TrainingState;
  /** Adam step count, when optimiser state is stored. */
  readonly adamStep?: number;
  /** Sizes. */
  readonly summary: {
    /** Number of tensors in the file (parameters and moments). */
    readonly tensorCount: number;
    /** Number of parameter tensors (`params.*`). */
    readonly paramTensorCount: number;
    /** Scalar parameters (elements of all `params.*` tensors). */
    readonly parameterCount: number;
    /** File size in bytes. */
    readonly fileBytes: number;
  };
  /** Every stored tensor, in file order. */
  readonly tensors: readonly TensorSummary[];
}

const paramName = (path: string): string => (path === "" ? "params" : `params.${path}`);
const momentName = (which: "m" | "v" | "x", path: string): string =>
  path === "" ? `adam.${which}` : `adam.${which}.${path}`;

const TF_TO_ST: Readonly<Record<string, SafetensorsDtype>> = {
  float32: "F32",
  int32: "I32",
  bool: "BOOL",
};

const toEntry = async (name: string, x: tf.Tensor): Promise<SafetensorsTensor> => {
  const dtype = TF_TO_ST[x.dtype]; // checked by the caller
  const raw = await x.data();
  const data = dtype === "F32"
    ? Float32Array.from(raw as Float32Array)
    : dtype === "I32"
    ? Int32Array.from(raw as Int32Array)
    : Uint8Array.from(raw as Uint8Array, (b) => (b ? 1 : 0));
  return { name, dtype, shape: x.shape, data };
};

/** Throws, naming the path, unless `v` survives JSON.stringify/parse unchanged. */
const checkJson = (what: string, v: unknown, path = "$"): void => {
  if (v === null || typeof v === "string" || typeof v === "boolean") return;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`saveCheckpoint: ${what} ${path} is ${v} (not JSON)`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => checkJson(what, x, `${path}[${i}]`));
    return;
  }
  if (typeof v === "object") {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      throw new Error(
        `saveCheckpoint: ${what} ${path} is a ${proto?.constructor?.name} (not JSON)`,
      );
    }
    for (const [k, x] of Object.entries(v)) checkJson(what, x, `${path}.${k}`);
    return;
  }
  throw new Error(`saveCheckpoint: ${what} ${path} is a ${typeof v} (not JSON)`);
};

const showValue = (v: unknown): string => {
  const s = typeof v === "string" ? JSON.stringify(v) : String(JSON.stringify(v) ?? v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

const isIntersection = (ty: t.Decoder<unknown, unknown> | undefined): boolean =>
  ty instanceof t.IntersectionType || (ty instanceof JsonOf && isIntersection(ty.inner));

/**
 * io-ts errors as `path.to.field: expected Type, got value` (members of an intersection
 * add no path segment), one per error, joined by "; ".
 */
const report = (errors: t.Errors): string =>
  errors.map((e) => {
    const keys = e.context
      .filter((c, i) => c.key !== "" && !isIntersection(e.context[i - 1]?.type))
      .map((c) => c.key);
    const path = keys.length > 0 ? keys.join(".") : "(root)";
    const last = e.context[e.context.length - 1];
    return `${path}: ${e.message ?? `expected ${last?.type.name ?? "?"}`}, got ${
      showValue(e.value)
    }`;
  }).join("; ");

/**
 * Write a checkpoint to `path` as one safetensors file, atomically: the bytes go to
 * `<path>.tmp-<random>`, are flushed to disk, and the file is renamed over `path`. Reads
 * the tensors (async, works on WebGPU) but neither disposes nor mutates them. Stores the
 * CRC-32 of every tensor and of the metadata. Rejects, without writing, when a float tensor
 * holds a non-finite value; rejects,
 * leaving no temporary file, when the config or training state is not plain JSON (e.g.
 * NaN losses), the optimiser state does not match the trainable leaves, or writing fails.
 */
export const saveCheckpoint = async (path: string, ckpt: Checkpoint): Promise<void> => {
  checkJson("config", ckpt.config);
  checkJson("training state", ckpt.training);
  const trainingCheck = TrainingStateCodec.decode(ckpt.training);
  if (E.isLeft(trainingCheck)) {
    throw new Error(`saveCheckpoint: invalid training state: ${report(trainingCheck.left)}`);
  }
  const named = flattenParams(ckpt.params);
  const items: [string, tf.Tensor][] = named.map((n) => [paramName(n.path), n.tensor]);
  const opt = ckpt.optimizer;
  if (opt !== undefined) {
    if (
      opt.m.length !== opt.paths.length || opt.v.length !== opt.paths.length ||
      (opt.iterate !== undefined && opt.iterate.length !== opt.paths.length)
    ) {
      throw new Error(
        `saveCheckpoint: optimizer has ${opt.paths.length} paths, ${opt.m.length} m, ` +
          `${opt.v.length} v${
            opt.iterate !== undefined ? `, ${opt.iterate.length} iterate` : ""
          } tensors`,
      );
    }
    const shapes = new Map(named.map((n) => [n.path, n.tensor.shape]));
    opt.paths.forEach((p, i) => {
      const s = shapes.get(p);
      if (s === undefined) {
        throw new Error(`saveCheckpoint: optimizer moment for "${p}", which is not a parameter`);
      }
      for (const x of [opt.m[i], opt.v[i], ...(opt.iterate ? [opt.iterate[i]] : [])]) {
        if (x.shape.join(",") !== s.join(",")) {
          throw new Error(
            `saveCheckpoint: moment of "${p}" has shape [${x.shape.join(", ")}], the ` +
              `parameter [${s.join(", ")}]`,
          );
        }
      }
      items.push([momentName("m", p), opt.m[i]], [momentName("v", p), opt.v[i]]);
      if (opt.iterate) items.push([momentName("x", p), opt.iterate[i]]);
    });
  }
  for (const [name, x] of items) {
    if (TF_TO_ST[x.dtype] === undefined) {
      throw new Error(`saveCheckpoint: tensor "${name}" has unsupported dtype ${x.dtype}`);
    }
  }
  // Validation is complete: start all reads at once (no rejected promise is left unawaited).
  const jobs = items.map(([name, x]) => toEntry(name, x));
  const entries = await Promise.all(jobs);
  for (const e of entries) {
    if (e.data instanceof Float32Array) {
      const bad = e.data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) {
        throw new Error(
          `saveCheckpoint: tensor "${e.name}" holds ${e.data[bad]} at element ${bad} ` +
            `(a model with non-finite values is not saved)`,
        );
      }
    }
  }
  const meta: Omit<CheckpointMetadata, "deflow.checksums"> = {
    "deflow.format": CHECKPOINT_FORMAT,
    "deflow.config": ckpt.config,
    "deflow.training": ckpt.training,
    ...(opt !== undefined
      ? { "deflow.adam": { step: opt.step, ...(opt.iterate ? { iterate: true as const } : {}) } }
      : {}),
  };
  const raw = CheckpointMetadataCodec.encode(meta as CheckpointMetadata) as Record<string, string>;
  const checksums = {
    tensors: Object.fromEntries(entries.map((e) => [e.name, crc32Hex(crc32Of(e.data))])),
    metadata: metadataCrc(raw),
  };
  const bytes = encodeSafetensors(entries, {
    ...raw,
    "deflow.checksums": JSON.stringify(checksums),
  });
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    throw new Error(`saveCheckpoint: writing ${path} failed: ${(e as Error).message}`, {
      cause: e,
    });
  }
};

/**
 * Check the stored checksums (format 2) of the metadata and of every tensor in `tensors`;
 * format 1 has none. The error names the first tensor whose bytes changed.
 */
const verifyChecksums = (
  where: string,
  raw: Record<string, string>,
  m: CheckpointMetadata,
  tensors: ReadonlyMap<string, DecodedTensor>,
): E.Either<Error, void> => {
  const sums = m["deflow.checksums"];
  if (sums === undefined) return E.right(undefined);
  if (metadataCrc(raw) !== sums.metadata) {
    return E.left(
      new Error(`${where}: the metadata (config / training state) fails its checksum (corrupt)`),
    );
  }
  for (const [name, d] of tensors) {
    const want = sums.tensors[name];
    if (want === undefined) return E.left(new Error(`${where}: tensor "${name}" has no checksum`));
    if (crc32Hex(crc32Of(d.data)) !== want) {
      return E.left(new Error(`${where}: tensor "${name}" fails its checksum (corrupt data)`));
    }
  }
  const missing = Object.keys(sums.tensors).filter((k) => !tensors.has(k));
  if (missing.length > 0) {
    return E.left(new Error(`${where}: tensor "${missing[0]}" is listed but not stored`));
  }
  return E.right(undefined);
};

/** Every float finite (and ≥ 0 for Adam's second moments), or an error naming the tensor. */
const verifyFinite = (
  where: string,
  name: string,
  d: DecodedTensor,
): E.Either<Error, DecodedTensor> => {
  if (!(d.data instanceof Float32Array || d.data instanceof Float64Array)) return E.right(d);
  const v = d.data;
  const nonNeg = name === "adam.v" || name.startsWith("adam.v.");
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i]) || (nonNeg && v[i] < 0)) {
      return E.left(
        new Error(`${where}: tensor "${name}" holds ${v[i]} at element ${i} (corrupt model)`),
      );
    }
  }
  return E.right(d);
};

const METADATA_KEYS = [
  "deflow.format",
  "deflow.config",
  "deflow.training",
  "deflow.adam",
  "deflow.checksums",
];

const decodeMetadata = (
  where: string,
  metadata: Record<string, string>,
): E.Either<Error, CheckpointMetadata> => {
  const unknown = Object.keys(metadata).filter((k) => !METADATA_KEYS.includes(k));
  if (unknown.length > 0) {
    return E.left(
      new Error(`${where}: unknown metadata entry ${JSON.stringify(unknown[0])} (corrupt?)`),
    );
  }
  const r = CheckpointMetadataCodec.decode(metadata);
  return E.isLeft(r)
    ? E.left(new Error(`${where}: invalid checkpoint metadata: ${report(r.left)}`))
    : r;
};

const shapeStr = (s: readonly number[]): string => `[${s.join(", ")}]`;

/** The tensor a template leaf expects, or why it does not fit. */
const expectTensor = (
  where: string,
  tensors: ReadonlyMap<string, DecodedTensor>,
  name: string,
  like: tf.Tensor,
): E.Either<Error, DecodedTensor> => {
  const d = tensors.get(name);
  if (d === undefined) return E.left(new Error(`${where}: tensor "${name}" is missing`));
  if (d.shape.join(",") !== like.shape.join(",")) {
    return E.left(
      new Error(
        `${where}: tensor "${name}" has shape ${shapeStr(d.shape)} in the file, the ` +
          `template expects ${shapeStr(like.shape)}`,
      ),
    );
  }
  const want = TF_TO_ST[like.dtype];
  if (d.dtype !== want) {
    return E.left(
      new Error(
        `${where}: tensor "${name}" is ${d.dtype} in the file, the template expects ` +
          `${want ?? like.dtype}`,
      ),
    );
  }
  return verifyFinite(where, name, d);
};

/**
 * Read a checkpoint file (or take its bytes), decode it and its metadata, and verify the
 * stored checksums.
 */
const readVerified = async (
  source: string | Uint8Array,
  where: string,
): Promise<
  E.Either<
    Error,
    { tensors: ReadonlyMap<string, DecodedTensor>; meta: CheckpointMetadata }
  >
> => {
  let bytes: Uint8Array;
  try {
    bytes = typeof source === "string" ? await Deno.readFile(source) : source;
  } catch (e) {
    return E.left(new Error(`${where}: cannot read the file: ${(e as Error).message}`));
  }
  const file = decodeSafetensors(bytes);
  if (E.isLeft(file)) return E.left(new Error(`${where}: ${file.left.message}`));
  const { tensors, metadata } = file.right;
  const meta = decodeMetadata(where, metadata);
  if (E.isLeft(meta)) return meta;
  const sums = verifyChecksums(where, metadata, meta.right, tensors);
  if (E.isLeft(sums)) return sums;
  return E.right({ tensors, meta: meta.right });
};

/**
 * Load a checkpoint saved by {@linkcode saveCheckpoint}. Validates the metadata with io-ts
 * (errors name the field path), checks that every template leaf (and, with
 * `template.optimizer`, every moment) is stored with the same shape and dtype, and that the
 * file holds no other `params.*` tensors nor any tensor outside `params.*`/`adam.*` (stored
 * moments are ignored when the template has no optimizer). With `template.optimizer`, the
 * iterate (`adam.x.*`) is loaded as `optimizer.iterate` when the file says it holds one. All
 * checks happen before any tensor is created, so a `Left` allocates nothing. The template's tensors are not used or
 * disposed. `source` is a file path or the file's bytes (e.g. fetched in a browser).
 */
export const loadCheckpoint = async <P extends ParamTree>(
  source: string | Uint8Array,
  template: CheckpointTemplate<P>,
): Promise<E.Either<Error, LoadedCheckpoint<P>>> => {
  const where = typeof source === "string"
    ? `loadCheckpoint(${source})`
    : `loadCheckpoint(${source.length} bytes)`;
  const file = await readVerified(source, where);
  if (E.isLeft(file)) return file;
  const { tensors, meta: m } = file.right;

  const plan: { data: DecodedTensor; like: tf.Tensor }[] = [];
  const expected = new Set<string>();
  for (const n of flattenParams(template.params)) {
    const name = paramName(n.path);
    const d = expectTensor(where, tensors, name, n.tensor);
    if (E.isLeft(d)) return d;
    expected.add(name);
    plan.push({ data: d.right, like: n.tensor });
  }
  const opt = template.optimizer;
  const momentPlan: { m: DecodedTensor; v: DecodedTensor; x?: DecodedTensor; like: tf.Tensor }[] =
    [];
  if (opt !== undefined) {
    if (m["deflow.adam"] === undefined) {
      return E.left(new Error(`${where}: the file holds no optimizer state (no deflow.adam)`));
    }
    const withIterate = m["deflow.adam"].iterate === true;
    for (let i = 0; i < opt.paths.length; i++) {
      const p = opt.paths[i];
      const mm = expectTensor(where, tensors, momentName("m", p), opt.m[i]);
      if (E.isLeft(mm)) return mm;
      const vv = expectTensor(where, tensors, momentName("v", p), opt.v[i]);
      if (E.isLeft(vv)) return vv;
      expected.add(momentName("m", p));
      expected.add(momentName("v", p));
      let x: DecodedTensor | undefined;
      if (withIterate) {
        const xx = expectTensor(where, tensors, momentName("x", p), opt.m[i]);
        if (E.isLeft(xx)) return xx;
        expected.add(momentName("x", p));
        x = xx.right;
      }
      momentPlan.push({ m: mm.right, v: vv.right, ...(x ? { x } : {}), like: opt.m[i] });
    }
  }
  const unexpected = [...tensors.keys()].filter((k) =>
    !expected.has(k) && !(opt === undefined && (k === "adam.m" || k === "adam.v" ||
      k === "adam.x" || k.startsWith("adam.m.") || k.startsWith("adam.v.") ||
      k.startsWith("adam.x.")))
  );
  if (unexpected.length > 0) {
    const shown = unexpected.slice(0, 5).map((k) => `"${k}"`).join(", ");
    return E.left(
      new Error(
        `${where}: ${unexpected.length} unexpected tensor(s) not in the template: ${shown}${
          unexpected.length > 5 ? ", …" : ""
        }`,
      ),
    );
  }

  const created: tf.Tensor[] = [];
  const make = (d: DecodedTensor, like: tf.Tensor): tf.Tensor => {
    const x = tf.tensor(d.data, [...d.shape], like.dtype);
    created.push(x);
    return x;
  };
  try {
    const params = unflattenLike(template.params, plan.map((q) => make(q.data, q.like)));
    const optimizer: AdamState | undefined = opt === undefined ? undefined : {
      step: m["deflow.adam"]!.step,
      paths: [...opt.paths],
      m: momentPlan.map((q) => make(q.m, q.like)),
      v: momentPlan.map((q) => make(q.v, q.like)),
      ...(m["deflow.adam"]!.iterate === true
        ? { iterate: momentPlan.map((q) => make(q.x!, q.like)) }
        : {}),
    };
    return E.right({
      params,
      ...(optimizer !== undefined ? { optimizer } : {}),
      config: m["deflow.config"],
      training: m["deflow.training"],
    });
  } catch (e) {
    tf.dispose(created);
    return E.left(new Error(`${where}: building tensors failed: ${(e as Error).message}`));
  }
};

/** What {@linkcode verifyCheckpoint} found. */
export interface CheckpointIntegrity {
  /** Number of tensors checked. */
  readonly tensors: number;
  /** True when the file carries checksums (all of which matched). */
  readonly checksummed: boolean;
}

/**
 * Check a checkpoint file without building tensors: its structure and metadata, every
 * checksum, and that every float is finite (Adam's second moments ≥ 0). `Left` names the
 * first problem (and the tensor, if any).
 */
export const verifyCheckpoint = async (
  path: string,
): Promise<E.Either<Error, CheckpointIntegrity>> => {
  const where = `verifyCheckpoint(${path})`;
  const file = await readVerified(path, where);
  if (E.isLeft(file)) return file;
  const { tensors, meta } = file.right;
  for (const [name, d] of tensors) {
    const ok = verifyFinite(where, name, d);
    if (E.isLeft(ok)) return ok;
  }
  return E.right({
    tensors: tensors.size,
    checksummed: meta["deflow.checksums"] !== undefined,
  });
};

const readExactly = async (file: Deno.FsFile, n: number): Promise<Uint8Array | null> => {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await file.read(buf.subarray(off));
    if (r === null) return null;
    off += r;
  }
  return buf;
};

/**
 * Read a checkpoint's config, training state and a summary (tensor and parameter counts,
 * file size, each tensor's name/dtype/shape) from its header alone: no tensor data is
 * read and no tensor is built. The header and metadata are validated as by
 * {@linkcode loadCheckpoint}. `source` is a file path or the file's bytes.
 */
export const readCheckpointInfo = async (
  source: string | Uint8Array,
): Promise<E.Either<Error, CheckpointInfo>> => {
  if (typeof source !== "string") {
    return headerInfo(
      `readCheckpointInfo(${source.length} bytes)`,
      parseSafetensorsHeader(source, source.length),
      source.length,
    );
  }
  const path = source;
  const where = `readCheckpointInfo(${path})`;
  let header: E.Either<Error, SafetensorsHeader>;
  let fileBytes: number;
  try {
    using file = await Deno.open(path, { read: true });
    fileBytes = (await file.stat()).size;
    const head = (await readExactly(file, Math.min(8, fileBytes))) ?? new Uint8Array(0);
    const n = head.length === 8 ? new DataView(head.buffer).getBigUint64(0, true) : -1n;
    if (n < 0n || n > BigInt(fileBytes - 8)) {
      header = parseSafetensorsHeader(head, fileBytes); // reports the bad length
    } else {
      const rest = await readExactly(file, Number(n));
      if (rest === null) {
        return E.left(new Error(`${where}: the file shrank while being read`));
      }
      const all = new Uint8Array(8 + Number(n));
      all.set(head, 0);
      all.set(rest, 8);
      header = parseSafetensorsHeader(all, fileBytes);
    }
  } catch (e) {
    return E.left(new Error(`${where}: cannot read the file: ${(e as Error).message}`));
  }
  return headerInfo(where, header, fileBytes);
};

/** {@linkcode CheckpointInfo} from a parsed header (metadata decoded and checksummed). */
const headerInfo = (
  where: string,
  header: E.Either<Error, SafetensorsHeader>,
  fileBytes: number,
): E.Either<Error, CheckpointInfo> => {
  if (E.isLeft(header)) return E.left(new Error(`${where}: ${header.left.message}`));
  const { entries, metadata } = header.right;
  const meta = decodeMetadata(where, metadata);
  if (E.isLeft(meta)) return meta;
  const sums = meta.right["deflow.checksums"];
  if (sums !== undefined && metadataCrc(metadata) !== sums.metadata) {
    return E.left(
      new Error(`${where}: the metadata (config / training state) fails its checksum (corrupt)`),
    );
  }
  const params = entries.filter((e) => e.name === "params" || e.name.startsWith("params."));
  const adam = meta.right["deflow.adam"];
  return E.right({
    config: meta.right["deflow.config"],
    training: meta.right["deflow.training"],
    ...(adam !== undefined ? { adamStep: adam.step } : {}),
    summary: {
      tensorCount: entries.length,
      paramTensorCount: params.length,
      parameterCount: params.reduce((s, e) => s + e.shape.reduce((a, b) => a * b, 1), 0),
      fileBytes,
    },
    tensors: entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape })),
  });
};
