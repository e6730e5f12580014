/**
 * Command-line option parsing for the `deflow` CLI: `node:util` `parseArgs` splits the
 * arguments, io-ts codecs validate and convert each value (types and ranges), and every
 * problem becomes a {@linkcode UsageError} with a one-line message naming the option.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { either as E } from "fp-ts";
import { t } from "../iots.ts";

/** A bad command line (exit code 2). */
export class UsageError extends Error {
  /**
   * Create the error.
   * @param message one line naming the option and the problem
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A failure the user can fix (missing folder, bad checkpoint…): exit code 1, no stack. */
export class CliError extends Error {
  /**
   * Create the error.
   * @param message one line
   */
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

const numberFrom = (
  name: string,
  ok: (n: number) => boolean,
  integer: boolean,
): t.Type<number, string, unknown> =>
  new t.Type<number, string, unknown>(
    name,
    (u): u is number => typeof u === "number" && ok(u),
    (u, c) => {
      if (typeof u !== "string" || u.trim() === "") return t.failure(u, c);
      const n = Number(u);
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || !ok(n)) {
        return t.failure(u, c);
      }
      return t.success(n);
    },
    String,
  );

/** An integer ≥ `min` given as text. */
export const intArg = (min: number, max = Number.MAX_SAFE_INTEGER): t.Type<number, string> =>
  numberFrom(
    max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`,
    (n) => n >= min && n <= max,
    true,
  );

/** A finite number `> min` (or `≥ min` with `inclusive`) given as text. */
export const numArg = (min: number, inclusive = false): t.Type<number, string> =>
  numberFrom(
    `a number ${inclusive ? "≥" : ">"} ${min}`,
    (n) => (inclusive ? n >= min : n > min),
    false,
  );

/** A number in `[0, 1)` given as text (a decay; 0 is allowed). */
export const decayArg: t.Type<number, string, unknown> = numberFrom(
  "a number in [0, 1)",
  (n) => n >= 0 && n < 1,
  false,
);

/** A finite number in `(min, max]` given as text. */
export const numRangeArg = (min: number, max: number): t.Type<number, string> =>
  numberFrom(`a number in (${min}, ${max}]`, (n) => n > min && n <= max, false);

/** A power of two in `[min, max]` given as text. */
export const powerOfTwoArg = (min: number, max: number): t.Type<number, string> =>
  numberFrom(
    `a power of 2 in [${min}, ${max}]`,
    (n) => n >= min && n <= max && (n & (n - 1)) === 0,
    true,
  );

/** A non-empty string. */
export const textArg: t.Type<string, string, unknown> = new t.Type<string, string, unknown>(
  "a non-empty value",
  (u): u is string => typeof u === "string" && u !== "",
  (u, c) => (typeof u === "string" && u !== "" ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** One of the given words. */
export const oneOf = <K extends string>(...words: K[]): t.Type<K, string, unknown> =>
  new t.Type<K, string, unknown>(
    `one of ${words.join(", ")}`,
    (u): u is K => typeof u === "string" && (words as string[]).includes(u),
    (u, c) =>
      typeof u === "string" && (words as string[]).includes(u)
        ? t.success(u as K)
        : t.failure(u, c),
    t.identity,
  );

/** A flag (present or not). */
export const flagArg: t.Type<boolean, boolean, unknown> = t.boolean;

/** One option of a command. */
export interface OptionSpec {
  /** Value codec (text → value); `flagArg` for flags. */
  readonly codec: t.Decoder<unknown, unknown>;
  /** Required option. */
  readonly required?: boolean;
  /** Placeholder for the value in help (omit for flags). */
  readonly value?: string;
  /** One-line description for help. */
  readonly help: string;
}

/** A command: name, summary and options. */
export interface CommandSpec {
  /** Command name. */
  readonly name: string;
  /** One-line summary. */
  readonly summary: string;
  /** Options by long name (without `--`). */
  readonly options: Readonly<Record<string, OptionSpec>>;
}

/** The help text of a command. */
export const commandHelp = (spec: CommandSpec): string => {
  const rows = Object.entries(spec.options).map(([name, o]) => [
    `  --${name}${o.value ? ` ${o.value}` : ""}`,
    `${o.help}${o.required ? " (required)" : ""}`,
  ]);
  rows.push(["  --help, -h", "show this help"]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return [
    `deflow ${spec.name} — ${spec.summary}`,
    "",
    `usage: deflow ${spec.name} [options]`,
    "",
    "options:",
    ...rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`),
  ].join("\n");
};

/** Parsed options: `help` true when `--help` was given (then nothing was validated). */
export type Parsed<T> = { readonly help: true } | { readonly help: false; readonly values: T };

const showValue = (v: unknown): string => (typeof v === "string" ? JSON.stringify(v) : String(v));

/**
 * Parse and validate a command's arguments. Throws {@linkcode UsageError} for unknown
 * options, missing values, positional arguments, missing required options and values
 * that do not fit their codec (`--batch: expected an integer ≥ 1, got "0"`).
 */
export const parseCommand = <T>(spec: CommandSpec, args: readonly string[]): Parsed<T> => {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: (o.codec as unknown) === flagArg ? "boolean" : "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    const r = parseArgs({ args: [...args], options, strict: true, allowPositionals: false });
    values = r.values as Record<string, string | boolean | undefined>;
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    const dashed = /^Option '(--[\w-]+)' argument is ambiguous/.exec(msg);
    if (dashed) {
      throw new UsageError(
        `${spec.name}: ${dashed[1]}: a value starting with "-" must be written ${dashed[1]}=VALUE`,
      );
    }
    throw new UsageError(`${spec.name}: ${msg.replace(/\. To specify a positional.*$/, "")}`);
  }
  if (values.help) return { help: true };
  const out: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const raw = values[name];
    if (raw === undefined) {
      if (o.required) throw new UsageError(`${spec.name}: --${name} is required`);
      continue;
    }
    const r = o.codec.decode(raw);
    if (E.isLeft(r)) {
      throw new UsageError(
        `${spec.name}: --${name}: expected ${o.codec.name}, got ${showValue(raw)}`,
      );
    }
    out[name] = r.right;
  }
  return { help: false, values: out as T };
};
