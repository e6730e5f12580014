/**
 * The law checker: property tests every bijector must pass.
 *
 * @module
 */
import fc from "fast-check";
import type { fcTypes } from "./arbitrary.ts";
import { tf } from "../tf.ts";
import { type Bijector, chain, type FlowResult, invert, type Shape4 } from "../core/bijector.ts";
import { showShape } from "../core/errors.ts";
import { foldIn, rng, tfSeed, uniforms } from "../core/random.ts";
import { matrix, slogdet } from "../linalg/dense.ts";

/** What a case's `build` returns: a bijector, its inputs, and how to free them. */
export interface Built {
  /** The bijector under test. */
  readonly bijector: Bijector;
  /**
   * Input of `forward` (NHWC). A batch of 2 is best (batch independence compares samples);
   * keep one sample at most {@linkcode LawOptions.maxJacobianSize} entries (default 64,
   * e.g. `[2, 2, 2, 4]` has 16 per sample) so its Jacobian stays cheap.
   */
  readonly x: tf.Tensor4D;
  /**
   * Input of `inverse`, with shape `bijector.forwardShape(x.shape)`. Optional: by default
   * the kit draws standard normal values. Give it when the inverse has a restricted domain.
   */
  readonly y?: tf.Tensor4D;
  /** Condition passed to both directions (same batch as `x`), for conditional bijectors. */
  readonly cond?: tf.Tensor4D;
  /** Dispose every tensor `build` made (parameters, `x`, `y`, `cond`). */
  readonly dispose: () => void;
}

/** The laws, in the order they are checked within a run. */
export type LawName =
  | "finiteAndShapes"
  | "noLeak"
  | "roundTrip"
  | "inverseLogDet"
  | "volume"
  | "batchIndependence"
  | "jacobianLogDet"
  | "algebra";

/** Every law, in checking order. */
export const LAW_NAMES: readonly LawName[] = [
  "finiteAndShapes",
  "noLeak",
  "roundTrip",
  "inverseLogDet",
  "volume",
  "batchIndependence",
  "jacobianLogDet",
  "algebra",
];

/**
 * Tolerances for float32 bijectors. A comparison of `got` with `want` passes when
 * `max|got − want| ≤ atol + rtol · scale`, with the scale named in each law.
 */
export interface Tolerances {
  /** Round trips, scale `max|input|`; also `chain(f, invert(f)) ≈ identity`. */
  readonly roundTripAtol: number;
  /** Relative part of the round-trip tolerance. */
  readonly roundTripRtol: number;
  /**
   * Log-dets against the float64 autodiff Jacobian (scale `|reference|`), inverse against
   * minus forward (scale `max|forward log-det|`), and the zero log-det of identities.
   */
  readonly logDetAtol: number;
  /** Relative part of the log-det tolerance. */
  readonly logDetRtol: number;
  /**
   * Results that should agree up to float rounding: a sample alone versus in a batch,
   * `chain` associativity. Scale `max|reference|`.
   */
  readonly consistencyAtol: number;
  /** Relative part of the consistency tolerance. */
  readonly consistencyRtol: number;
  /**
   * Unless the case is `volumePreserving`, some run must have a forward or inverse
   * log-det with `|log-det| > minAbsLogDet`, so a sign bug cannot hide behind zeros.
   */
  readonly minAbsLogDet: number;
}

/** Default tolerances (float32). */
export const DEFAULT_TOLERANCES: Tolerances = {
  roundTripAtol: 1e-4,
  roundTripRtol: 1e-4,
  logDetAtol: 1e-3,
  logDetRtol: 1e-3,
  consistencyAtol: 1e-5,
  consistencyRtol: 1e-5,
  minAbsLogDet: 1e-2,
};

/** Default fast-check seed. */
export const DEFAULT_SEED = 42;
/** Default number of runs (parameter draws) per case. */
export const DEFAULT_NUM_RUNS = 5;
/** Default largest number of entries per sample for the Jacobian law. */
export const DEFAULT_MAX_JACOBIAN_SIZE = 64;

/**
 * How to build a bijector and its inputs from plain data drawn by fast-check.
 *
 * `params` generates plain data (numbers, seeds, shapes), never tensors; `build` turns one
 * draw into tensors. The kit calls `build` three times per run (the case under test and
 * two more draws for the `chain` associativity law) and calls `dispose` on each result.
 */
export interface BijectorCase<P> {
  /** Name used in reports and error messages. */
  readonly name: string;
  /** Generator of the plain data `build` needs. */
  readonly params: fcTypes.Arbitrary<P>;
  /** Build the bijector and its inputs (may be async, e.g. float64 precomputations). */
  build(p: P): Built | Promise<Built>;
  /**
   * Parameters compatible with `p` (same input shape and condition shape), used to build
   * the `g` and `h` of the `chain` associativity law, e.g. `(p) => fc.integer().map((seed)
   * => ({ ...p, seed }))`. Default: independent draws from `params`; runs where their
   * shapes differ from `p`'s skip associativity (noted in the report).
   */
  related?(p: P): fcTypes.Arbitrary<P>;
  /** True when the log-det is identically 0 (checked); otherwise some run must be non-zero. */
  readonly volumePreserving?: boolean;
  /**
   * True when the bijector accepts only the batch size of `x` (e.g. `withCondition` with a
   * fixed condition). The kit then never changes the batch: Jacobians are taken one output
   * entry at a time, and batch independence perturbs the other samples instead of running
   * each sample alone.
   */
  readonly fixedBatch?: boolean;
  /** Per-case tolerance overrides. */
  readonly tolerances?: Partial<Tolerances>;
  /** Per-case number of runs (default {@linkcode DEFAULT_NUM_RUNS}). */
  readonly numRuns?: number;
  /** Laws not to check for this case (reported as skipped). */
  readonly skip?: readonly LawName[];
}

/** Options of {@linkcode checkBijectorLaws}; they override the case's own settings. */
export interface LawOptions {
  /** fast-check seed (default 42). */
  readonly seed?: number;
  /** Number of runs (default: the case's, else 5). */
  readonly numRuns?: number;
  /** Tolerance overrides (applied over the case's). */
  readonly tolerances?: Partial<Tolerances>;
  /** Laws to skip (added to the case's). */
  readonly skip?: readonly LawName[];
  /** Let fast-check shrink a failing draw (default false: slow on a GPU). */
  readonly shrink?: boolean;
  /** Throw a {@linkcode LawError} when a law fails (default true). */
  readonly throwOnFailure?: boolean;
  /** Largest sample size (H·W·C) for the Jacobian law (default 64). */
  readonly maxJacobianSize?: number;
}

/** Outcome of one law. */
export type LawStatus = "passed" | "failed" | "skipped";

/** Result of one law over all runs. */
export interface LawResult {
  /** The law. */
  readonly law: LawName;
  /** Passed in every run, failed in one, or skipped. */
  readonly status: LawStatus;
  /** `status === "passed"`. */
  readonly passed: boolean;
  /** Runs in which the law was checked in full. */
  readonly runs: number;
  /**
   * Largest absolute error seen (for `volume`: the largest |log-det| seen; for `noLeak`:
   * the most tensors leaked).
   */
  readonly maxError: number;
  /** Largest error divided by its tolerance (a law passes while this is ≤ 1). */
  readonly maxRatio: number;
  /** Why it failed or was skipped, or partial skips (e.g. associativity not applicable). */
  readonly note?: string;
}

/** Report of {@linkcode checkBijectorLaws}. */
export interface LawReport {
  /** Case name. */
  readonly name: string;
  /** True when no law failed. */
  readonly passed: boolean;
  /** fast-check seed used. */
  readonly seed: number;
  /** Runs requested. */
  readonly numRuns: number;
  /** Tolerances used. */
  readonly tolerances: Tolerances;
  /** One result per law, in {@linkcode LAW_NAMES} order. */
  readonly laws: readonly LawResult[];
  /** Wall time in milliseconds. */
  readonly millis: number;
}

/** A law failed: the message names the case, the law, the error and the tolerance. */
export class LawError extends Error {
  /** The full report (the failed law has status `"failed"`). */
  readonly report: LawReport;
  /** The law that failed. */
  readonly law: LawName;
  /**
   * Make the error (thrown by {@linkcode checkBijectorLaws}).
   *
   * @param message full message
   * @param report the report of the failing check
   * @param law the failed law
   */
  constructor(message: string, report: LawReport, law: LawName) {
    super(message);
    this.name = "LawError";
    this.report = report;
    this.law = law;
  }
}

// ---------------------------------------------------------------------------------------
// Internals

class Violation extends Error {
  constructor(readonly law: LawName, message: string) {
    super(message);
    this.name = "Violation";
  }
}

const fmt = (v: number): string =>
  Number.isFinite(v) ? (v === 0 ? "0" : v.toExponential(2)) : String(v);

const read = async (t: tf.Tensor): Promise<Float64Array> =>
  Float64Array.from(await t.data() as Float32Array);

/** Largest |a − b|; NaN anywhere counts as Infinity. */
const maxAbsErr = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
};

const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((v, i) => v === b[i]);

const prod = (s: readonly number[]): number => s.reduce((p, v) => p * v, 1);

const sample = (t: tf.Tensor4D, s: number): tf.Tensor4D =>
  tf.slice(t, [s, 0, 0, 0], [1, -1, -1, -1]);

const disposeResult = (r: FlowResult | undefined, input: tf.Tensor): void => {
  if (!r) return;
  if (r.y !== input) r.y.dispose();
  if ((r.logDet as tf.Tensor) !== input) r.logDet.dispose();
};

/**
 * A copy of `t` whose samples `s ≥ from` are replaced by a seeded permutation of the
 * entries of sample `s − 1` (so values stay in the same domain, but differ).
 */
const shuffledFrom = async (t: tf.Tensor4D, from: number, seed: number): Promise<tf.Tensor4D> => {
  const data = await read(t);
  const [b] = t.shape;
  const d = data.length / b;
  const out = Float32Array.from(data);
  let r = rng(seed);
  for (let s = Math.max(from, 1); s < b; s++) {
    const src = Array.from(data.subarray((s - 1) * d, s * d));
    const [u, next] = uniforms(r, d);
    r = next;
    for (let i = d - 1; i > 0; i--) {
      const j = Math.floor(u[i] * (i + 1));
      [src[i], src[j]] = [src[j], src[i]];
    }
    out.set(src, s * d);
  }
  return tf.tensor4d(out, t.shape);
};

/** One sample repeated to a batch of 2 and shuffled in the second slot (batch-1 inputs). */
const augment = async (t: tf.Tensor4D, seed: number): Promise<tf.Tensor4D> => {
  const two = tf.concat([t, t], 0) as tf.Tensor4D;
  try {
    return await shuffledFrom(two, 1, seed);
  } finally {
    two.dispose();
  }
};

/** Options of {@linkcode autodiffLogDet}. */
export interface AutodiffLogDetOptions {
  /**
   * `"tile"` (default): repeat each sample D times in the batch and take one gradient;
   * needs a bijector that accepts any batch size. `"rows"`: one gradient per output
   * entry over the given batch (works for fixed-batch bijectors).
   */
  readonly mode?: "tile" | "rows";
  /** Largest sample size allowed (default 64). */
  readonly maxSize?: number;
}

/**
 * The reference per-sample `log|det ∂y/∂x|` of `bijector.forward` at `x`: the full
 * Jacobian of each sample by autodiff (tfjs, float32 entries), then `slogdet` in float64.
 * Valid when samples are independent (what the `batchIndependence` law checks).
 * Returns one value per sample; throws when a sample has more than `maxSize` entries or
 * the output size differs from the input size.
 */
export const autodiffLogDet = async (
  bijector: Bijector,
  x: tf.Tensor4D,
  cond?: tf.Tensor4D,
  options: AutodiffLogDetOptions = {},
): Promise<Float64Array> => {
  const mode = options.mode ?? "tile";
  const maxSize = options.maxSize ?? DEFAULT_MAX_JACOBIAN_SIZE;
  const [batch, h, w, c] = x.shape;
  const d = h * w * c;
  const outShape = bijector.forwardShape(x.shape as unknown as Shape4);
  if (prod(outShape) !== prod(x.shape)) {
    throw new Error(
      `autodiffLogDet: ${bijector.name} maps ${showShape(x.shape)} to ${showShape(outShape)}: ` +
        `a different number of entries, so its Jacobian is not square`,
    );
  }
  if (d > maxSize) {
    throw new Error(
      `autodiffLogDet: a sample of ${showShape(x.shape)} has ${d} entries, more than ` +
        `maxSize ${maxSize}; use smaller inputs (or skip the jacobianLogDet law)`,
    );
  }
  const out = new Float64Array(batch);
  if (mode === "tile") {
    const mask = tf.eye(d);
    try {
      for (let s = 0; s < batch; s++) {
        const g = tf.tidy(() => {
          const xt = tf.tile(sample(x, s), [d, 1, 1, 1]) as tf.Tensor4D;
          const ct = cond ? tf.tile(sample(cond, s), [d, 1, 1, 1]) as tf.Tensor4D : undefined;
          const f = (xx: tf.Tensor) => {
            const r = bijector.forward(xx as tf.Tensor4D, ct);
            return tf.sum(tf.mul(tf.reshape(r.y, [d, d]), mask));
          };
          return tf.grad(f)(xt);
        });
        const rows = await read(g);
        g.dispose();
        out[s] = slogdet(matrix(d, d, rows)).logAbsDet;
      }
    } finally {
      mask.dispose();
    }
    return out;
  }
  const jac = Array.from({ length: batch }, () => new Float64Array(d * d));
  for (let i = 0; i < d; i++) {
    const g = tf.tidy(() => {
      const f = (xx: tf.Tensor) => {
        const r = bijector.forward(xx as tf.Tensor4D, cond);
        return tf.sum(tf.slice(tf.reshape(r.y, [batch, d]), [0, i], [batch, 1]));
      };
      return tf.grad(f)(x);
    });
    const rows = await read(g);
    g.dispose();
    for (let s = 0; s < batch; s++) jac[s].set(rows.subarray(s * d, (s + 1) * d), i * d);
  }
  for (let s = 0; s < batch; s++) out[s] = slogdet(matrix(d, d, jac[s])).logAbsDet;
  return out;
};

interface Stat {
  runs: number;
  maxError: number;
  maxRatio: number;
  partialSkips: number;
  partialNote: string;
  failure?: string;
}

const merge = (...ts: (Partial<Tolerances> | undefined)[]): Tolerances =>
  Object.assign({}, DEFAULT_TOLERANCES, ...ts.filter((t) => t !== undefined));

/**
 * Check the bijector laws on a case, with fast-check drawing `numRuns` parameter sets
 * from a fixed seed. Each run builds the case and checks, in order:
 *
 * 1. `finiteAndShapes`: outputs and log-dets finite; `y` has `forwardShape(x)`, the
 *    inverse output `inverseShape(y)`, log-dets shape `[batch]`; entries per sample kept;
 *    outputs are new tensors (not the inputs).
 * 2. `noLeak`: `forward`/`inverse` allocate nothing beyond their outputs, and `dispose()`
 *    frees everything `build` made.
 * 3. `roundTrip`: `inverse(forward(x)) ≈ x` and `forward(inverse(y)) ≈ y`.
 * 4. `inverseLogDet`: the inverse log-det at `forward(x)` is minus the forward log-det
 *    at `x`, and the same from the `y` side.
 * 5. `volume`: with `volumePreserving`, log-dets are ≈ 0; otherwise some run has
 *    `|log-det| > minAbsLogDet` (checked after all runs).
 * 6. `batchIndependence`: each sample's outputs do not depend on the other samples.
 * 7. `jacobianLogDet`: the forward log-det at `x` and the inverse log-det at `y` equal
 *    `log|det J|` of the autodiff Jacobian ({@linkcode autodiffLogDet}).
 * 8. `algebra`: `invert(invert(f)) === f`; `chain(f, invert(f))` and `chain(invert(f), f)`
 *    are the identity with log-det 0; for shape-preserving cases,
 *    `chain(chain(f, g), h) ≈ chain(f, chain(g, h)) ≈ h∘g∘f` with summed log-dets, `g`
 *    and `h` built from two more draws (skipped in runs where their shapes differ).
 *
 * Returns the report; throws a {@linkcode LawError} naming the case, law, run, error and
 * tolerance when a law fails (unless `throwOnFailure: false`). Never leaks tensors, also
 * when a law fails. Reads tensors asynchronously (works on WebGPU).
 */
export const checkBijectorLaws = async <P>(
  c: BijectorCase<P>,
  options: LawOptions = {},
): Promise<LawReport> => {
  const t0 = performance.now();
  const seed = options.seed ?? DEFAULT_SEED;
  const numRuns = options.numRuns ?? c.numRuns ?? DEFAULT_NUM_RUNS;
  const tol = merge(c.tolerances, options.tolerances);
  const skip = new Set<LawName>([...(c.skip ?? []), ...(options.skip ?? [])]);
  const maxJacobianSize = options.maxJacobianSize ?? DEFAULT_MAX_JACOBIAN_SIZE;
  const on = (law: LawName) => !skip.has(law);
  const fresh = (): Stat => ({
    runs: 0,
    maxError: 0,
    maxRatio: 0,
    partialSkips: 0,
    partialNote: "",
  });
  const stats = new Map<LawName, Stat>(LAW_NAMES.map((l) => [l, fresh()]));
  const st = (l: LawName): Stat => stats.get(l)!;
  let runIndex = 0;
  let maxAbsLogDet = 0;

  /** Compare and record; throws a Violation when out of tolerance. */
  const expectClose = (
    law: LawName,
    what: string,
    got: ArrayLike<number>,
    want: ArrayLike<number>,
    atol: number,
    rtol: number,
    scaleLabel: string,
    scale: number,
  ): void => {
    const err = maxAbsErr(got, want);
    const allowed = atol + rtol * scale;
    const s = st(law);
    s.maxError = Math.max(s.maxError, err);
    s.maxRatio = Math.max(s.maxRatio, err / allowed);
    if (!(err <= allowed)) {
      throw new Violation(
        law,
        `${what}: max |error| ${fmt(err)} > tolerance ${fmt(allowed)} ` +
          `(atol ${atol} + rtol ${rtol} · ${scaleLabel} ${fmt(scale)})`,
      );
    }
  };
  const rt = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, law: LawName) =>
    expectClose(
      law,
      what,
      got,
      want,
      tol.roundTripAtol,
      tol.roundTripRtol,
      "max|input|",
      maxAbs(want),
    );
  const ld = (
    what: string,
    got: ArrayLike<number>,
    want: ArrayLike<number>,
    scale: number,
    law: LawName,
  ) => expectClose(law, what, got, want, tol.logDetAtol, tol.logDetRtol, "|log-det|", scale);
  const same = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, law: LawName) =>
    expectClose(
      law,
      what,
      got,
      want,
      tol.consistencyAtol,
      tol.consistencyRtol,
      "max|reference|",
      maxAbs(want),
    );

  const finite = (law: LawName, what: string, a: Float64Array): void => {
    const i = a.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) {
      throw new Violation(law, `${what} has a non-finite value (${a[i]} at flat index ${i})`);
    }
  };

  const run = async (p: P, pg: P, ph: P, kitSeed: number): Promise<void> => {
    runIndex++;
    let law: LawName = "finiteAndShapes";
    const owned: tf.Tensor[] = [];
    const own = <T extends tf.Tensor>(t: T): T => {
      owned.push(t);
      return t;
    };
    const ownR = (r: FlowResult): FlowResult => {
      owned.push(r.y, r.logDet);
      return r;
    };
    const startCount = tf.memory().numTensors;
    let built: Built | undefined;
    try {
      built = await c.build(p);
      const { bijector: b, x, cond } = built;
      const B = x.shape[0];
      const xShape = x.shape as unknown as Shape4;

      // 1. finite values and shapes
      const yShape = b.forwardShape(xShape);
      const y = built.y ??
        own(tf.randomNormal([...yShape], 0, 1, "float32", tfSeed(kitSeed)) as tf.Tensor4D);
      const fx = ownR(b.forward(x, cond));
      const iy = ownR(b.inverse(y, cond));
      if (on("finiteAndShapes")) {
        const v = (msg: string) => new Violation("finiteAndShapes", msg);
        if (fx.y === x || iy.y === y || fx.y === cond || iy.y === cond) {
          throw v(`${b.name} returned its input tensor as output; outputs must be new tensors`);
        }
        if (prod(yShape.slice(1)) !== prod(xShape.slice(1))) {
          throw v(
            `forwardShape maps ${showShape(xShape)} to ${showShape(yShape)}: the number ` +
              `of entries per sample changes, so it is not a bijection`,
          );
        }
        if (!sameShape(fx.y.shape, yShape)) {
          throw v(
            `forward output has shape ${showShape(fx.y.shape)}, ` +
              `forwardShape says ${showShape(yShape)}`,
          );
        }
        const invShape = b.inverseShape(y.shape as unknown as Shape4);
        if (!sameShape(invShape, xShape) || !sameShape(iy.y.shape, xShape)) {
          throw v(
            `inverse of ${showShape(y.shape)} has shape ${showShape(iy.y.shape)} (inverseShape ` +
              `says ${showShape(invShape)}), expected the input shape ${showShape(xShape)}`,
          );
        }
        for (const [dir, r] of [["forward", fx], ["inverse", iy]] as const) {
          if (!sameShape(r.logDet.shape, [B])) {
            throw v(`${dir} log-det has shape ${showShape(r.logDet.shape)}, expected [${B}]`);
          }
        }
      }
      const [fxy, fxld, iyy, iyld] = await Promise.all(
        [fx.y, fx.logDet, iy.y, iy.logDet].map(read),
      );
      if (on("finiteAndShapes")) {
        finite("finiteAndShapes", "forward output", fxy);
        finite("finiteAndShapes", "forward log-det", fxld);
        finite("finiteAndShapes", "inverse output", iyy);
        finite("finiteAndShapes", "inverse log-det", iyld);
        st("finiteAndShapes").runs++;
      }
      const xa = await read(x);
      const ya = await read(y);

      // 2. no leaks in forward/inverse
      law = "noLeak";
      if (on("noLeak")) {
        for (const [dir, input] of [["forward", x], ["inverse", y]] as const) {
          const before = tf.memory().numTensors;
          const r = b[dir](input, cond);
          disposeResult(r, input);
          const leaked = tf.memory().numTensors - before;
          st("noLeak").maxError = Math.max(st("noLeak").maxError, leaked);
          if (leaked !== 0) {
            throw new Violation(
              "noLeak",
              `${dir} left ${leaked} tensor(s) allocated after its outputs were disposed ` +
                `(tolerance 0)`,
            );
          }
        }
      }

      // 3. round trips; 4. inverse log-det
      law = "roundTrip";
      const rx = ownR(b.inverse(fx.y, cond));
      const fy = ownR(b.forward(iy.y, cond));
      const [rxy, rxld, fyy, fyld] = await Promise.all(
        [rx.y, rx.logDet, fy.y, fy.logDet].map(read),
      );
      if (on("roundTrip")) {
        if (!sameShape(rx.y.shape, xShape) || !sameShape(fy.y.shape, y.shape)) {
          throw new Violation(
            "roundTrip",
            `round trip changed shapes: ${showShape(rx.y.shape)}, ${showShape(fy.y.shape)}`,
          );
        }
        rt("inverse(forward(x)) vs x", rxy, xa, "roundTrip");
        rt("forward(inverse(y)) vs y", fyy, ya, "roundTrip");
        st("roundTrip").runs++;
      }
      law = "inverseLogDet";
      if (on("inverseLogDet")) {
        const neg = (a: Float64Array) => a.map((v) => -v);
        ld(
          "inverse log-det at forward(x) vs −forward log-det at x",
          rxld,
          neg(fxld),
          maxAbs(fxld),
          "inverseLogDet",
        );
        ld(
          "forward log-det at inverse(y) vs −inverse log-det at y",
          fyld,
          neg(iyld),
          maxAbs(iyld),
          "inverseLogDet",
        );
        st("inverseLogDet").runs++;
      }

      // 5. volume (per-run part)
      law = "volume";
      maxAbsLogDet = Math.max(maxAbsLogDet, maxAbs(fxld), maxAbs(iyld));
      if (on("volume")) {
        st("volume").maxError = maxAbsLogDet;
        if (c.volumePreserving) {
          const zeros = new Float64Array(B);
          ld("forward log-det of a volume-preserving case vs 0", fxld, zeros, 0, "volume");
          ld("inverse log-det of a volume-preserving case vs 0", iyld, zeros, 0, "volume");
        }
        st("volume").runs++;
      }

      // 6. batch independence
      law = "batchIndependence";
      if (on("batchIndependence")) {
        if (c.fixedBatch) {
          if (B < 2) {
            const s = st("batchIndependence");
            s.partialSkips++;
            s.partialNote = "fixed batch of 1: nothing to compare";
          } else {
            for (
              const [dir, input, ref, refLd] of [["forward", x, fxy, fxld], [
                "inverse",
                y,
                iyy,
                iyld,
              ]] as const
            ) {
              const other = own(await shuffledFrom(input, 1, foldIn(kitSeed, 1)));
              const r = ownR(b[dir](other, cond));
              const [oy, old] = await Promise.all([r.y, r.logDet].map(read));
              const n = oy.length / B;
              same(
                `${dir} of sample 0 after changing the other samples`,
                oy.subarray(0, n),
                ref.subarray(0, n),
                "batchIndependence",
              );
              same(
                `${dir} log-det of sample 0 after changing the other samples`,
                old.subarray(0, 1),
                refLd.subarray(0, 1),
                "batchIndependence",
              );
            }
            st("batchIndependence").runs++;
          }
        } else {
          for (const [dir, input] of [["forward", x], ["inverse", y]] as const) {
            const xb = B >= 2 ? input : own(await augment(input, foldIn(kitSeed, 2)));
            const cb = cond && B < 2 ? own(tf.concat([cond, cond], 0) as tf.Tensor4D) : cond;
            const batched = ownR(b[dir](xb, cb));
            const [by, bld] = await Promise.all([batched.y, batched.logDet].map(read));
            const n = by.length / xb.shape[0];
            for (let s = 0; s < xb.shape[0]; s++) {
              const xs = own(sample(xb, s));
              const cs = cb ? own(sample(cb, s)) : undefined;
              const alone = ownR(b[dir](xs, cs));
              const [ay, ald] = await Promise.all([alone.y, alone.logDet].map(read));
              same(
                `${dir} of sample ${s} alone vs in a batch of ${xb.shape[0]}`,
                ay,
                by.subarray(s * n, (s + 1) * n),
                "batchIndependence",
              );
              same(
                `${dir} log-det of sample ${s} alone vs in a batch of ${xb.shape[0]}`,
                ald,
                bld.subarray(s, s + 1),
                "batchIndependence",
              );
            }
          }
          st("batchIndependence").runs++;
        }
      }

      // 7. log-dets against the autodiff Jacobian
      law = "jacobianLogDet";
      if (on("jacobianLogDet")) {
        const mode = c.fixedBatch ? "rows" : "tile";
        for (
          const [dir, f, input, got] of [["forward", b, x, fxld], [
            "inverse",
            invert(b),
            y,
            iyld,
          ]] as const
        ) {
          let ref: Float64Array;
          try {
            ref = await autodiffLogDet(f, input, cond, { mode, maxSize: maxJacobianSize });
          } catch (e) {
            throw new Violation(
              "jacobianLogDet",
              `cannot take the Jacobian: ${(e as Error).message}`,
            );
          }
          for (let s = 0; s < B; s++) {
            ld(
              `${dir} log-det of sample ${s} (${fmt(got[s])}) vs log|det J| of the autodiff ` +
                `Jacobian (${fmt(ref[s])}, float64 slogdet)`,
              got.subarray(s, s + 1),
              ref.subarray(s, s + 1),
              Math.abs(ref[s]),
              "jacobianLogDet",
            );
          }
        }
        st("jacobianLogDet").runs++;
      }

      // 8. algebraic laws of the combinators
      law = "algebra";
      if (on("algebra")) {
        if (invert(invert(b)) !== b) {
          throw new Violation("algebra", `invert(invert(${b.name})) is not ${b.name} itself`);
        }
        const zeros = new Float64Array(B);
        const scale = Math.max(maxAbs(fxld), maxAbs(iyld));
        for (
          const [what, comp, input, ref] of [
            [`chain(f, invert(f)) on x`, chain(b, invert(b)), x, xa],
            [`chain(invert(f), f) on y`, chain(invert(b), b), y, ya],
          ] as const
        ) {
          const r = ownR(comp.forward(input, cond));
          const [ry, rld] = await Promise.all([r.y, r.logDet].map(read));
          rt(`${what} vs identity`, ry, ref, "algebra");
          ld(`log-det of ${what} vs 0`, rld, zeros, scale, "algebra");
        }
        const assocNote = await checkAssociativity(b, x, y, cond, pg, ph);
        if (assocNote) {
          const s = st("algebra");
          s.partialSkips++;
          s.partialNote = `associativity not checked: ${assocNote}`;
        }
        st("algebra").runs++;
      }
    } catch (e) {
      if (e instanceof Violation) throw e;
      const err = e as Error;
      throw new Violation(
        built ? law : "finiteAndShapes",
        `${built ? "" : "build "}threw ${err?.name ?? "error"}: ${err?.message ?? String(e)}` +
          (law === "batchIndependence" && !c.fixedBatch
            ? " (if the bijector accepts only the batch size of x, set fixedBatch: true)"
            : ""),
      );
    } finally {
      tf.dispose(owned);
      built?.dispose();
    }
    if (on("noLeak")) {
      const left = tf.memory().numTensors - startCount;
      st("noLeak").maxError = Math.max(st("noLeak").maxError, left);
      if (left !== 0) {
        throw new Violation(
          "noLeak",
          `${left} tensor(s) remain after the run: build() made tensors that dispose() does not ` +
            `free, or the bijector keeps tensors between calls (tolerance 0)`,
        );
      }
      st("noLeak").runs++;
    }
  };

  /** Returns a reason when the check does not apply, else undefined (throws on failure). */
  const checkAssociativity = async (
    f: Bijector,
    x: tf.Tensor4D,
    y: tf.Tensor4D,
    cond: tf.Tensor4D | undefined,
    pg: P,
    ph: P,
  ): Promise<string | undefined> => {
    const xShape = x.shape as unknown as Shape4;
    if (!sameShape(f.forwardShape(xShape), xShape)) return "the case changes shapes";
    const extra: Built[] = [];
    const owned: tf.Tensor[] = [];
    try {
      extra.push(await c.build(pg));
      extra.push(await c.build(ph));
      for (const e of extra) {
        if (!sameShape(e.x.shape, xShape)) return "other draws have other input shapes";
        if ((e.cond === undefined) !== (cond === undefined)) return "conditions differ";
        if (e.cond && cond && !sameShape(e.cond.shape, cond.shape)) return "conditions differ";
        let fs: Shape4;
        try {
          fs = e.bijector.forwardShape(xShape);
        } catch {
          return "other draws reject the input shape";
        }
        if (!sameShape(fs, xShape)) return "other draws change shapes";
      }
      const [g, h] = extra.map((e) => e.bijector);
      const manual = (dir: "forward" | "inverse", input: tf.Tensor4D): FlowResult => {
        const steps = dir === "forward" ? [f, g, h] : [h, g, f];
        let cur = input;
        let acc: tf.Tensor1D | undefined;
        for (const s of steps) {
          const r = s[dir](cur, cond);
          owned.push(r.y, r.logDet);
          cur = r.y;
          acc = acc ? tf.add(acc, r.logDet) : r.logDet;
          owned.push(acc);
        }
        return { y: cur, logDet: acc! };
      };
      const left = chain(chain(f, g), h);
      const right = chain(f, chain(g, h));
      for (const [dir, input] of [["forward", x], ["inverse", y]] as const) {
        const m = manual(dir, input);
        const [my, mld] = await Promise.all([m.y, m.logDet].map(read));
        for (
          const [label, comp] of [["chain(chain(f, g), h)", left], [
            "chain(f, chain(g, h))",
            right,
          ]] as const
        ) {
          const r = comp[dir](input, cond);
          owned.push(r.y, r.logDet);
          const [ry, rld] = await Promise.all([r.y, r.logDet].map(read));
          same(`${label}.${dir} vs the steps applied one by one`, ry, my, "algebra");
          same(`${label}.${dir} log-det vs the summed log-dets of the steps`, rld, mld, "algebra");
        }
      }
      return undefined;
    } finally {
      tf.dispose(owned);
      for (const e of extra) e.dispose();
    }
  };

  const kitSeedArb = fc.integer({ min: 0, max: 0x7fffffff });
  const arb = c.related
    ? c.params.chain((p) => {
      const rel = c.related!(p);
      return fc.record({ p: fc.constant(p), pg: rel, ph: rel, kitSeed: kitSeedArb });
    })
    : fc.record({ p: c.params, pg: c.params, ph: c.params, kitSeed: kitSeedArb });
  const details = await fc.check(
    fc.asyncProperty(arb, ({ p, pg, ph, kitSeed }) => run(p, pg, ph, kitSeed)),
    { seed, numRuns, endOnFailure: !(options.shrink ?? false) },
  );

  let failedLaw: LawName | undefined;
  let message = "";
  if (details.failed) {
    const e = details.errorInstance;
    failedLaw = e instanceof Violation ? e.law : "finiteAndShapes";
    const detail = e instanceof Error ? e.message : String(e);
    st(failedLaw).failure = detail;
    const params = details.counterexample
      ? fc.stringify(details.counterexample[0].p).replaceAll("__proto__:null,", "")
      : "?";
    message = `checkBijectorLaws: case "${c.name}" fails law "${failedLaw}" in run ` +
      `${runIndex} of ${numRuns} (seed ${seed}):\n  ${detail}\n  params: ${params}`;
  } else if (on("volume") && !c.volumePreserving && !(maxAbsLogDet > tol.minAbsLogDet)) {
    failedLaw = "volume";
    const detail = `the log-det was ~0 in every run (max |log-det| ${fmt(maxAbsLogDet)} ≤ ` +
      `minAbsLogDet ${tol.minAbsLogDet}): a sign or scale bug could hide behind it; draw ` +
      `parameters that change volume, or declare volumePreserving: true`;
    st("volume").failure = detail;
    st("volume").maxRatio = Math.max(st("volume").maxRatio, tol.minAbsLogDet / maxAbsLogDet);
    message = `checkBijectorLaws: case "${c.name}" fails law "volume" over ${numRuns} runs ` +
      `(seed ${seed}):\n  ${detail}`;
  } else if (on("volume") && !c.volumePreserving) {
    st("volume").maxRatio = tol.minAbsLogDet / maxAbsLogDet;
  }

  const laws: LawResult[] = LAW_NAMES.map((law) => {
    const s = st(law);
    const status: LawStatus = !on(law)
      ? "skipped"
      : law === failedLaw
      ? "failed"
      : s.runs > 0
      ? "passed"
      : "skipped";
    const note = s.failure ??
      (!on(law)
        ? "skipped by request"
        : s.partialSkips > 0
        ? `${s.partialNote} (${s.partialSkips} run(s))`
        : undefined);
    const base = {
      law,
      status,
      passed: status === "passed",
      runs: s.runs,
      maxError: s.maxError,
      maxRatio: s.maxRatio,
    };
    return note === undefined ? base : { ...base, note };
  });
  const report: LawReport = {
    name: c.name,
    passed: failedLaw === undefined,
    seed,
    numRuns,
    tolerances: tol,
    laws,
    millis: performance.now() - t0,
  };
  if (failedLaw !== undefined && (options.throwOnFailure ?? true)) {
    throw new LawError(message, report, failedLaw);
  }
  return report;
};

/**
 * Run {@linkcode checkBijectorLaws} on every case of a registry (one after the other) and
 * return all reports. With `throwOnFailure` (default true) it throws one
 * {@linkcode LawError} listing every failing case after all cases ran.
 */
export const checkAllBijectorLaws = async (
  cases: readonly BijectorCase<unknown>[],
  options: LawOptions = {},
): Promise<LawReport[]> => {
  const reports: LawReport[] = [];
  const failures: LawError[] = [];
  for (const c of cases) {
    try {
      reports.push(await checkBijectorLaws(c, { ...options, throwOnFailure: true }));
    } catch (e) {
      if (!(e instanceof LawError)) throw e;
      failures.push(e);
      reports.push(e.report);
    }
  }
  if (failures.length > 0 && (options.throwOnFailure ?? true)) {
    throw new LawError(
      `checkAllBijectorLaws: ${failures.length} of ${cases.length} case(s) failed:\n` +
        failures.map((f) => f.message).join("\n"),
      failures[0].report,
      failures[0].law,
    );
  }
  return reports;
};

/**
 * A short text table of one or more reports: one line per case and law with status,
 * runs, largest error and largest error/tolerance ratio.
 */
export const formatLawReport = (reports: LawReport | readonly LawReport[]): string => {
  const list = Array.isArray(reports) ? reports as readonly LawReport[] : [reports as LawReport];
  const rows: string[][] = [["case", "law", "status", "runs", "max error", "err/tol", "note"]];
  for (const r of list) {
    for (const l of r.laws) {
      rows.push([
        r.name,
        l.law,
        l.status,
        String(l.runs),
        fmt(l.maxError),
        l.status === "skipped" ? "-" : l.maxRatio.toFixed(3),
        l.note ?? "",
      ]);
    }
  }
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => row[j].length)));
  return rows
    .map((row) =>
      row.map((cell, j) => (j === row.length - 1 ? cell : cell.padEnd(widths[j]))).join("  ")
        .trimEnd()
    )
    .join("\n");
};

/** Print {@linkcode formatLawReport} to stdout. */
export const printLawReport = (reports: LawReport | readonly LawReport[]): void => {
  console.log(formatLawReport(reports));
};
