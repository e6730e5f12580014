/**
 * Safe file output: every file deflow writes goes to a fresh temporary file next to its
 * destination (`<name>.tmp-<random>`, created with `createNew`, so an existing file or
 * symbolic link there is never followed), is flushed, and is renamed over the destination
 * (a rename replaces a symbolic link at the destination, never its target). A failure
 * removes the temporary file and leaves the destination as it was.
 *
 * @module
 */

const randomSuffix = (): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0"))
    .join("");

/** The pattern of the temporary files {@linkcode writeFileAtomic} creates for `name`. */
export const TEMP_MARK = ".tmp-";

/** Options of {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /**
   * Replace an existing destination (default true). With `false` an existing file, folder
   * or symbolic link at `path` is an error (`AlreadyExists`) and nothing is written.
   */
  readonly overwrite?: boolean;
}

/** The error thrown when `overwrite: false` meets an existing destination. */
export class OutputExistsError extends Error {
  /**
   * Create the error.
   * @param path the destination that exists
   */
  constructor(readonly path: string) {
    super(`"${path}" already exists (not overwritten)`);
    this.name = "OutputExistsError";
  }
}

const lexists = async (path: string): Promise<boolean> => {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
};

const faultBudget = (): number | undefined => {
  try {
    const v = Deno.env.get("DEFLOW_FAULT_WRITE_LIMIT");
    return v === undefined ? undefined : Number(v);
  } catch {
    return undefined;
  }
};

let faultWritten = 0;

/**
 * Fault injection for tests: when the environment variable `DEFLOW_FAULT_WRITE_LIMIT` is
 * set to a byte count, writes beyond that many bytes in this process fail as a full disk
 * would (`No space left on device`). Used where no small tmpfs can be mounted.
 */
const writeAll = async (file: Deno.FsFile, bytes: Uint8Array): Promise<void> => {
  const limit = faultBudget();
  let off = 0;
  while (off < bytes.length) {
    if (limit !== undefined && faultWritten + (bytes.length - off) > limit) {
      throw new Error("No space left on device (os error 28, injected)");
    }
    const n = await file.write(bytes.subarray(off));
    off += n;
    faultWritten += n;
  }
};

/**
 * Write `bytes` to `path` atomically (see the module doc): the destination either keeps
 * its old contents or gets all of the new ones. Rejects with {@linkcode OutputExistsError}
 * when `overwrite` is false and `path` exists, and with the system's error otherwise
 * (the temporary file removed).
 */
export const writeFileAtomic = async (
  path: string,
  bytes: Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> => {
  if (options.overwrite === false && await lexists(path)) throw new OutputExistsError(path);
  const tmp = `${path}${TEMP_MARK}${randomSuffix()}`;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    try {
      await writeAll(file, bytes);
      await file.syncData();
    } finally {
      file.close();
    }
    if (options.overwrite === false && await lexists(path)) throw new OutputExistsError(path);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
};

/** {@linkcode writeFileAtomic} of UTF-8 text. */
export const writeTextFileAtomic = (
  path: string,
  text: string,
  options: AtomicWriteOptions = {},
): Promise<void> => writeFileAtomic(path, new TextEncoder().encode(text), options);

/**
 * Remove leftover temporary files of {@linkcode writeFileAtomic} for the given file names
 * in `dir` (`<name>.tmp-<12 hex digits>`, left by a process killed while writing).
 * Returns the names removed. Only plain files matching exactly are touched.
 */
export const removeStaleTemps = async (
  dir: string,
  names: readonly string[],
): Promise<string[]> => {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (!e.isFile) continue;
    const m = /^(.*)\.tmp-[0-9a-f]{12}$/.exec(e.name);
    if (!m || !names.includes(m[1])) continue;
    try {
      await Deno.remove(`${dir}/${e.name}`);
      removed.push(e.name);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
};
