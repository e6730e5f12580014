/**
 * The safetensors file format (https://github.com/huggingface/safetensors), without
 * TensorFlow.js: typed arrays in, bytes out, and back.
 *
 * Layout: an 8-byte little-endian unsigned header length N, N bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { key: "value" } }`
 * (padded with spaces; this writer pads so that the data starts at a multiple of 8), then
 * the raw little-endian tensor bytes, offsets counted from the end of the header.
 *
 * Supported dtypes: `F32`, `F64`, `I32`, `U8` and `BOOL` (one byte, 0 or 1).
 *
 * @module
 */
import { either as E } from "fp-ts";

/** A dtype this module reads and writes. */
export type SafetensorsDtype = "F32" | "F64" | "I32" | "U8" | "BOOL";

/** Typed array holding the elements of a tensor of each dtype. */
export interface SafetensorsArrayOf {
  /** 32-bit floats. */
  readonly F32: Float32Array;
  /** 64-bit floats. */
  readonly F64: Float64Array;
  /** 32-bit signed integers. */
  readonly I32: Int32Array;
  /** Unsigned bytes. */
  readonly U8: Uint8Array;
  /** Booleans, one byte each (0 or 1). */
  readonly BOOL: Uint8Array;
}

/** Any typed array {@linkcode SafetensorsArrayOf} allows. */
export type SafetensorsData = Float32Array | Float64Array | Int32Array | Uint8Array;

/** One tensor to write: its name, dtype, shape and elements (row-major). */
export interface SafetensorsTensor {
  /** Unique name (any string except `__metadata__`). */
  readonly name: string;
  /** Element type. */
  readonly dtype: SafetensorsDtype;
  /** Dimensions (non-negative integers; `[]` for a scalar). */
  readonly shape: readonly number[];
  /** Elements in row-major order; the array type must match `dtype`. */
  readonly data: SafetensorsData;
}

/** A decoded tensor: dtype, shape and a fresh copy of its elements. */
export interface DecodedTensor {
  /** Element type. */
  readonly dtype: SafetensorsDtype;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Elements (owned by the caller; not a view on the input bytes). */
  readonly data: SafetensorsData;
}

/** A decoded file. */
export interface DecodedSafetensors {
  /** Tensors by name, in file (data offset) order. */
  readonly tensors: Map<string, DecodedTensor>;
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Record<string, string>;
}

/** One header entry, as validated by {@linkcode parseSafetensorsHeader}. */
export interface SafetensorsEntry {
  /** Tensor name. */
  readonly name: string;
  /** Element type. */
  readonly dtype: SafetensorsDtype;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** First byte, relative to {@linkcode SafetensorsHeader.dataStart}. */
  readonly begin: number;
  /** One past the last byte, relative to {@linkcode SafetensorsHeader.dataStart}. */
  readonly end: number;
}

/** A validated header: entries sorted by offset, metadata, and where the data begins. */
export interface SafetensorsHeader {
  /** Entries in data-offset order. */
  readonly entries: readonly SafetensorsEntry[];
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Record<string, string>;
  /** Absolute byte offset of the data section (8 + header length). */
  readonly dataStart: number;
}

const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  I32: 4,
  U8: 1,
  BOOL: 1,
};

const isDtype = (s: unknown): s is SafetensorsDtype =>
  typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);

/** Size in bytes of one element of `dtype`. */
export const dtypeSize = (dtype: SafetensorsDtype): number => DTYPE_SIZE[dtype];

/** Largest header this reader accepts (as the reference implementation: 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const arrayMatches = (dtype: SafetensorsDtype, data: SafetensorsData): boolean => {
  switch (dtype) {
    case "F32":
      return data instanceof Float32Array;
    case "F64":
      return data instanceof Float64Array;
    case "I32":
      return data instanceof Int32Array;
    case "U8":
    case "BOOL":
      return data instanceof Uint8Array;
  }
};

const arrayName = (data: SafetensorsData): string => data.constructor.name;

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Little-endian bytes of a typed array (a copy). */
const toLittleEndian = (data: SafetensorsData): Uint8Array => {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const size = data.BYTES_PER_ELEMENT;
  if (!LITTLE_ENDIAN_HOST && size > 1) {
    for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  }
  return bytes;
};

/** A typed array of `dtype` from little-endian bytes (a copy). */
const fromLittleEndian = (dtype: SafetensorsDtype, src: Uint8Array): SafetensorsData => {
  const bytes = src.slice();
  const size = DTYPE_SIZE[dtype];
  if (!LITTLE_ENDIAN_HOST && size > 1) {
    for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  }
  const n = bytes.length / size;
  switch (dtype) {
    case "F32":
      return new Float32Array(bytes.buffer, 0, n);
    case "F64":
      return new Float64Array(bytes.buffer, 0, n);
    case "I32":
      return new Int32Array(bytes.buffer, 0, n);
    case "U8":
    case "BOOL":
      return bytes;
  }
};

const showShape = (shape: readonly number[]): string => `[${shape.join(", ")}]`;

/**
 * Encode tensors (and optional string metadata) as a safetensors file. Tensors are laid out
 * by decreasing element size, then in the given order, so every tensor is aligned to its
 * element size. Throws on duplicate or reserved names, invalid shapes, a typed array that
 * does not match the dtype, an element count that does not match the shape, a BOOL value
 * other than 0/1, or non-string metadata.
 */
export const encodeSafetensors = (
  tensors: readonly SafetensorsTensor[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array => {
  const seen = new Set<string>();
  for (const t of tensors) {
    const what = `encodeSafetensors: tensor "${t.name}"`;
    if (typeof t.name !== "string") {
      throw new Error(`encodeSafetensors: a tensor name is not a string`);
    }
    if (t.name === "__metadata__") throw new Error(`${what}: the name is reserved`);
    if (seen.has(t.name)) throw new Error(`${what}: duplicate name`);
    seen.add(t.name);
    if (!isDtype(t.dtype)) throw new Error(`${what}: unsupported dtype ${String(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${what}: invalid shape ${showShape(t.shape)}`);
    }
    if (!arrayMatches(t.dtype, t.data)) {
      throw new Error(`${what}: dtype ${t.dtype} does not match a ${arrayName(t.data)}`);
    }
    if (t.data.length !== product(t.shape)) {
      throw new Error(
        `${what}: shape ${showShape(t.shape)} needs ${product(t.shape)} elements, ` +
          `the data has ${t.data.length}`,
      );
    }
    if (t.dtype === "BOOL" && !(t.data as Uint8Array).every((b) => b === 0 || b === 1)) {
      throw new Error(`${what}: BOOL data must be 0 or 1`);
    }
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new Error(`encodeSafetensors: metadata "${k}" is a ${typeof v}, not a string`);
      }
    }
  }
  const order = tensors
    .map((t, i) => ({ t, i }))
    .sort((a, b) => DTYPE_SIZE[b.t.dtype] - DTYPE_SIZE[a.t.dtype] || a.i - b.i)
    .map((x) => x.t);
  // Null prototype: a tensor named "__proto__" must become an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) header.__metadata__ = Object.assign(Object.create(null), metadata);
  let offset = 0;
  for (const t of order) {
    const end = offset + t.data.byteLength;
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const t of order) {
    out.set(toLittleEndian(t.data), pos);
    pos += t.data.byteLength;
  }
  return out;
};

const fail = (msg: string): E.Either<Error, never> => E.left(new Error(`safetensors: ${msg}`));

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u);

/**
 * Read and validate the header of a safetensors file. `bytes` must hold at least the first
 * 8 + N bytes (N the header length); `fileLength` is the length of the whole file (default
 * `bytes.length`), against which the data offsets are checked. Checks: header length within
 * the file, UTF-8 JSON object, every dtype known, shapes of non-negative integers, offsets
 * integers with begin ≤ end, byte length = elements × dtype size, tensors contiguous
 * without gaps or overlaps and covering the data section exactly, metadata strings only.
 */
export const parseSafetensorsHeader = (
  bytes: Uint8Array,
  fileLength: number = bytes.length,
): E.Either<Error, SafetensorsHeader> => {
  if (fileLength < 8 || bytes.length < 8) {
    return fail(
      `file is ${fileLength} bytes long, too short for the 8-byte header length (truncated?)`,
    );
  }
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(fileLength - 8)) {
    return fail(
      `header length ${n64} exceeds the ${fileLength - 8} bytes after the length field ` +
        `(truncated or not a safetensors file)`,
    );
  }
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) return fail(`header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`);
  if (n < 2) return fail(`header length ${n} is too small for a JSON object`);
  if (bytes.length < 8 + n) {
    return fail(`only ${bytes.length} bytes given, the header needs ${8 + n}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail("header is not valid UTF-8");
  }
  if (!text.startsWith("{")) return fail(`header does not start with "{" (not safetensors?)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(json)) return fail("header is not a JSON object");
  const dataStart = 8 + n;
  const dataLength = fileLength - dataStart;
  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === "__metadata__") {
      if (!isRecord(raw)) return fail(`__metadata__ is not an object`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") return fail(`__metadata__ "${k}" is not a string`);
      }
      metadata = Object.fromEntries(Object.entries(raw as Record<string, string>));
      continue;
    }
    const what = `tensor "${name}"`;
    if (!isRecord(raw)) return fail(`${what}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (!isDtype(dtype)) {
      return fail(
        `${what}: unsupported dtype ${JSON.stringify(dtype)} (expected one of ${
          Object.keys(DTYPE_SIZE).join(", ")
        })`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return fail(`${what}: shape ${JSON.stringify(shape)} is not a list of integers ≥ 0`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      return fail(`${what}: data_offsets ${JSON.stringify(offsets)} are not [begin ≤ end]`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = product(shape as number[]) * DTYPE_SIZE[dtype];
    if (end - begin !== expected) {
      return fail(
        `${what}: ${dtype} ${showShape(shape as number[])} needs ${expected} bytes, ` +
          `data_offsets [${begin}, ${end}] give ${end - begin}`,
      );
    }
    if (end > dataLength) {
      return fail(
        `${what}: data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data ` +
          `section (truncated file?)`,
      );
    }
    entries.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin < pos) {
      return fail(`tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap another tensor`);
    }
    if (e.begin > pos) {
      return fail(`tensor "${e.name}": gap in the data section before byte ${e.begin}`);
    }
    pos = e.end;
  }
  if (pos !== dataLength) {
    return fail(
      `the tensors cover ${pos} bytes but the data section has ${dataLength} ` +
        `(trailing bytes, or a missing tensor)`,
    );
  }
  return E.right({ entries, metadata, dataStart });
};

/**
 * Decode a whole safetensors file, validating it as {@linkcode parseSafetensorsHeader}
 * does. The tensor data are copies (not views on `bytes`). Never throws: every problem
 * is a `Left` with a message naming the tensor or field at fault.
 */
export const decodeSafetensors = (bytes: Uint8Array): E.Either<Error, DecodedSafetensors> => {
  const header = parseSafetensorsHeader(bytes);
  if (E.isLeft(header)) return header;
  const { entries, metadata, dataStart } = header.right;
  const tensors = new Map<string, DecodedTensor>();
  for (const e of entries) {
    const data = fromLittleEndian(
      e.dtype,
      bytes.subarray(dataStart + e.begin, dataStart + e.end),
    );
    if (e.dtype === "BOOL" && !(data as Uint8Array).every((b) => b === 0 || b === 1)) {
      return fail(`tensor "${e.name}": BOOL data holds a byte other than 0 or 1`);
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return E.right({ tensors, metadata });
};
