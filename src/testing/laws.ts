/**
 * The bijector laws, one exported function each ({@linkcode lawRoundTrip}, …), with the
 * types a case, a run and a report are made of. `./runner.ts` drives them
 * ({@linkcode checkBijectorLaws}); `./report.ts` prints reports; `./layerCase.ts` makes a
 * case from a layer's `init` and `bijector`.
 *
 * @module
 */
import type { fcTypes } from "./arbitrary.ts";
import { tf } from "../tf.ts";
import { type Bijector, chain, type FlowResult, invert, type Shape4 } from "../core/bijector.ts";
import { showShape } from "../core/errors.ts";
import { foldIn, rng, uniforms } from "../core/random.ts";
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
// Helpers

/** A law does not hold in one run (thrown by the law functions; the runner reports it). */
export class LawViolation extends Error {
  /** The law that does not hold. */
  readonly law: LawName;
  /**
   * Make the violation (thrown by a law, caught by the runner).
   *
   * @param law the law that does not hold
   * @param message what was compared, the error and the tolerance
   */
  constructor(law: LawName, message: string) {
    super(message);
    this.name = "LawViolation";
    this.law = law;
  }
}

const fmt = (v: number): string =>
  Number.isFinite(v) ? (v === 0 ? "0" : v.toExponential(2)) : String(v);

const read = async (t: tf.Tensor): Promise<Float64Array> =>
  Float64Array.from(await t.data() as Float32Array);

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
  const outShape = bijector.forwardShape(x.shape);
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

// ---------------------------------------------------------------------------------------
// What one run gives the laws

/** The inputs and first results of one run, read back as float64 arrays. */
export interface RunValues {
  /** `x`, the input of `forward`. */
  readonly x: Float64Array;
  /** `y`, the input of `inverse`. */
  readonly y: Float64Array;
  /** `forward(x).y`. */
  readonly forwardY: Float64Array;
  /** `forward(x).logDet`. */
  readonly forwardLogDet: Float64Array;
  /** `inverse(y).y`. */
  readonly inverseX: Float64Array;
  /** `inverse(y).logDet`. */
  readonly inverseLogDet: Float64Array;
}

/** The round trips of one run (computed once, shared by the laws that need them). */
export interface RoundTrips {
  /** `inverse(forward(x))`. */
  readonly inverseOfForward: FlowResult;
  /** `forward(inverse(y))`. */
  readonly forwardOfInverse: FlowResult;
  /** `inverse(forward(x)).y`, read back. */
  readonly inverseOfForwardX: Float64Array;
  /** `inverse(forward(x)).logDet`, read back. */
  readonly inverseOfForwardLogDet: Float64Array;
  /** `forward(inverse(y)).y`, read back. */
  readonly forwardOfInverseY: Float64Array;
  /** `forward(inverse(y)).logDet`, read back. */
  readonly forwardOfInverseLogDet: Float64Array;
}

/**
 * What one run of a case gives every law: the bijector, its inputs, both directions'
 * results (tensors and values), the case's flags, and tensor ownership (everything
 * passed to `own` is disposed at the end of the run).
 */
export interface LawRun {
  /** Name of the case. */
  readonly caseName: string;
  /** The bijector under test. */
  readonly bijector: Bijector;
  /** Input of `forward`. */
  readonly x: tf.Tensor4D;
  /** Input of `inverse` (shape `forwardShape(x.shape)`, checked before `inverse` ran). */
  readonly y: tf.Tensor4D;
  /** Condition of both directions, if any. */
  readonly cond?: tf.Tensor4D;
  /** Batch size of `x`. */
  readonly batch: number;
  /** `forward(x, cond)`. */
  readonly forwardAtX: FlowResult;
  /** `inverse(y, cond)`. */
  readonly inverseAtY: FlowResult;
  /** Inputs and results read back. */
  readonly values: RunValues;
  /** Seed of this run, for random draws the laws make. */
  readonly runSeed: number;
  /** The case declares a log-det identically 0. */
  readonly volumePreserving: boolean;
  /** The bijector accepts only the batch size of `x`. */
  readonly fixedBatch: boolean;
  /** Largest sample size for the Jacobian law. */
  readonly maxJacobianSize: number;
  /** The round trips (computed on the first call). */
  roundTrips(): Promise<RoundTrips>;
  /**
   * Two more draws of the case (`g`, `h` of the associativity law), built on the first
   * call and disposed with the run.
   */
  relatedDraws(): Promise<readonly [Built, Built]>;
  /** Keep `t` until the end of the run, then dispose it. */
  own<T extends tf.Tensor>(t: T): T;
  /** Keep both tensors of `r` until the end of the run. */
  ownResult(r: FlowResult): FlowResult;
}

/** How a law records its comparisons; bound to that law and the run's tolerances. */
export interface LawCheck {
  /** The law being checked. */
  readonly law: LawName;
  /** Tolerances in force. */
  readonly tolerances: Tolerances;
  /** `got ≈ want` within the round-trip tolerance (scale `max|want|`). */
  roundTrip(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void;
  /** `got ≈ want` within the log-det tolerance at the given scale. */
  logDet(what: string, got: ArrayLike<number>, want: ArrayLike<number>, scale: number): void;
  /** `got ≈ want` within the consistency tolerance (scale `max|want|`). */
  consistent(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void;
  /** Every value is finite. */
  finite(what: string, values: ArrayLike<number>): void;
  /** Record an observed error (e.g. tensors leaked): the report keeps the largest. */
  observe(error: number): void;
  /** Part of the law did not apply in this run (noted in the report). */
  partlySkipped(note: string): void;
  /** The law does not hold: throws a {@linkcode LawViolation}. */
  fail(message: string): never;
}

/** One law: checks a run and throws a {@linkcode LawViolation} when it does not hold. */
export type Law = (run: LawRun, check: LawCheck) => Promise<void>;

const both = (run: LawRun) =>
  [
    {
      direction: "forward",
      input: run.x,
      output: run.values.forwardY,
      logDet: run.values.forwardLogDet,
    },
    {
      direction: "inverse",
      input: run.y,
      output: run.values.inverseX,
      logDet: run.values.inverseLogDet,
    },
  ] as const;

// ---------------------------------------------------------------------------------------
// The laws

/**
 * Law 1, `finiteAndShapes`: outputs are new tensors (not the inputs); `forward` keeps the
 * number of entries per sample and returns `forwardShape(x)`; `inverse` returns
 * `inverseShape(y)` = the shape of `x`; log-dets have shape `[batch]`; every value is
 * finite. (The runner checks `forwardShape` and the shape of `y` before calling
 * `inverse`, so a wrong `forwardShape` is named as such.)
 */
export const lawFiniteAndShapes: Law = (run: LawRun, check: LawCheck): Promise<void> => {
  const { bijector, x, y, cond, forwardAtX, inverseAtY, batch } = run;
  if ([x, y, cond].some((t) => t !== undefined && (t === forwardAtX.y || t === inverseAtY.y))) {
    check.fail(`${bijector.name} returned its input tensor as output; outputs must be new tensors`);
  }
  const xShape = x.shape;
  const yShape = bijector.forwardShape(xShape);
  if (prod(yShape.slice(1)) !== prod(xShape.slice(1))) {
    check.fail(
      `forwardShape maps ${showShape(xShape)} to ${showShape(yShape)}: the number of entries ` +
        `per sample changes, so it is not a bijection`,
    );
  }
  const invShape = bijector.inverseShape(y.shape);
  if (!sameShape(invShape, xShape) || !sameShape(inverseAtY.y.shape, xShape)) {
    check.fail(
      `inverse of ${showShape(y.shape)} has shape ${showShape(inverseAtY.y.shape)} ` +
        `(inverseShape says ${showShape(invShape)}), expected the input shape ` +
        showShape(xShape),
    );
  }
  for (const [direction, r] of [["forward", forwardAtX], ["inverse", inverseAtY]] as const) {
    if (!sameShape(r.logDet.shape, [batch])) {
      check.fail(
        `${direction} log-det has shape ${showShape(r.logDet.shape)}, expected [${batch}]`,
      );
    }
  }
  const v = run.values;
  check.finite("forward output", v.forwardY);
  check.finite("forward log-det", v.forwardLogDet);
  check.finite("inverse output", v.inverseX);
  check.finite("inverse log-det", v.inverseLogDet);
  return Promise.resolve();
};

/**
 * Law 2, `noLeak`: `forward` and `inverse` allocate nothing beyond their outputs. (The
 * runner also checks, after the run, that `dispose()` freed everything `build` made.)
 */
export const lawNoLeak: Law = (run: LawRun, check: LawCheck): Promise<void> => {
  for (const { direction, input } of both(run)) {
    const before = tf.memory().numTensors;
    disposeResult(run.bijector[direction](input, run.cond), input);
    const leaked = tf.memory().numTensors - before;
    check.observe(leaked);
    if (leaked !== 0) {
      check.fail(
        `${direction} left ${leaked} tensor(s) allocated after its outputs were disposed ` +
          `(tolerance 0)`,
      );
    }
  }
  return Promise.resolve();
};

/** Law 3, `roundTrip`: `inverse(forward(x)) ≈ x` and `forward(inverse(y)) ≈ y`. */
export const lawRoundTrip: Law = async (run: LawRun, check: LawCheck): Promise<void> => {
  const trips = await run.roundTrips();
  if (
    !sameShape(trips.inverseOfForward.y.shape, run.x.shape) ||
    !sameShape(trips.forwardOfInverse.y.shape, run.y.shape)
  ) {
    check.fail(
      `round trip changed shapes: ${showShape(trips.inverseOfForward.y.shape)}, ` +
        showShape(trips.forwardOfInverse.y.shape),
    );
  }
  check.roundTrip("inverse(forward(x)) vs x", trips.inverseOfForwardX, run.values.x);
  check.roundTrip("forward(inverse(y)) vs y", trips.forwardOfInverseY, run.values.y);
};

/**
 * Law 4, `inverseLogDet`: the inverse log-det at `forward(x)` is minus the forward log-det
 * at `x`, and the forward log-det at `inverse(y)` minus the inverse log-det at `y`.
 */
export const lawInverseLogDet: Law = async (run: LawRun, check: LawCheck): Promise<void> => {
  const trips = await run.roundTrips();
  const negated = (a: Float64Array) => a.map((v) => -v);
  const { forwardLogDet, inverseLogDet } = run.values;
  check.logDet(
    "inverse log-det at forward(x) vs −forward log-det at x",
    trips.inverseOfForwardLogDet,
    negated(forwardLogDet),
    maxAbs(forwardLogDet),
  );
  check.logDet(
    "forward log-det at inverse(y) vs −inverse log-det at y",
    trips.forwardOfInverseLogDet,
    negated(inverseLogDet),
    maxAbs(inverseLogDet),
  );
};

/**
 * Law 5, `volume` (the per-run part): records the largest |log-det|; a volume-preserving
 * case must have log-dets ≈ 0. (Over all runs, the runner requires some |log-det| above
 * `minAbsLogDet` unless the case is volume preserving.)
 */
export const lawVolume: Law = (run: LawRun, check: LawCheck): Promise<void> => {
  const { forwardLogDet, inverseLogDet } = run.values;
  check.observe(Math.max(maxAbs(forwardLogDet), maxAbs(inverseLogDet)));
  if (run.volumePreserving) {
    const zeros = new Float64Array(run.batch);
    check.logDet("forward log-det of a volume-preserving case vs 0", forwardLogDet, zeros, 0);
    check.logDet("inverse log-det of a volume-preserving case vs 0", inverseLogDet, zeros, 0);
  }
  return Promise.resolve();
};

/**
 * Law 6, `batchIndependence`: each sample's outputs and log-det do not depend on the other
 * samples — a sample alone equals the same sample in the batch (a batch of 1 is extended
 * with a shuffled copy); for `fixedBatch` cases, sample 0 is unchanged when the others are.
 */
export const lawBatchIndependence: Law = async (run: LawRun, check: LawCheck): Promise<void> => {
  const { bijector, cond, batch } = run;
  if (run.fixedBatch) {
    if (batch < 2) return check.partlySkipped("fixed batch of 1: nothing to compare");
    for (const { direction, input, output, logDet } of both(run)) {
      const others = run.own(await shuffledFrom(input, 1, foldIn(run.runSeed, 1)));
      const r = run.ownResult(bijector[direction](others, cond));
      const [y, ld] = await Promise.all([r.y, r.logDet].map(read));
      const n = y.length / batch;
      const what = `${direction} of sample 0 after changing the other samples`;
      check.consistent(what, y.subarray(0, n), output.subarray(0, n));
      check.consistent(`${what} (log-det)`, ld.subarray(0, 1), logDet.subarray(0, 1));
    }
    return;
  }
  for (const { direction, input } of both(run)) {
    const batched = batch >= 2 ? input : run.own(await augment(input, foldIn(run.runSeed, 2)));
    const cb = cond && batch < 2 ? run.own(tf.concat([cond, cond], 0) as tf.Tensor4D) : cond;
    const all = run.ownResult(bijector[direction](batched, cb));
    const [allY, allLd] = await Promise.all([all.y, all.logDet].map(read));
    const size = batched.shape[0];
    const n = allY.length / size;
    for (let s = 0; s < size; s++) {
      const alone = run.ownResult(
        bijector[direction](run.own(sample(batched, s)), cb ? run.own(sample(cb, s)) : undefined),
      );
      const [y, ld] = await Promise.all([alone.y, alone.logDet].map(read));
      const what = `${direction} of sample ${s} alone vs in a batch of ${size}`;
      check.consistent(what, y, allY.subarray(s * n, (s + 1) * n));
      check.consistent(`${what} (log-det)`, ld, allLd.subarray(s, s + 1));
    }
  }
};

/**
 * Law 7, `jacobianLogDet`: the forward log-det at `x` and the inverse log-det at `y` equal
 * `log|det J|` of the autodiff Jacobian ({@linkcode autodiffLogDet}).
 */
export const lawJacobianLogDet: Law = async (run: LawRun, check: LawCheck): Promise<void> => {
  const mode = run.fixedBatch ? "rows" : "tile";
  const directions = [
    { direction: "forward", map: run.bijector, input: run.x, got: run.values.forwardLogDet },
    {
      direction: "inverse",
      map: invert(run.bijector),
      input: run.y,
      got: run.values.inverseLogDet,
    },
  ] as const;
  for (const { direction, map, input, got } of directions) {
    let reference: Float64Array;
    try {
      reference = await autodiffLogDet(map, input, run.cond, {
        mode,
        maxSize: run.maxJacobianSize,
      });
    } catch (e) {
      throw new LawViolation(check.law, `cannot take the Jacobian: ${explainError(e)}`);
    }
    for (let s = 0; s < run.batch; s++) {
      check.logDet(
        `${direction} log-det of sample ${s} (${fmt(got[s])}) vs log|det J| of the autodiff ` +
          `Jacobian (${fmt(reference[s])}, float64 slogdet)`,
        got.subarray(s, s + 1),
        reference.subarray(s, s + 1),
        Math.abs(reference[s]),
      );
    }
  }
};

/**
 * Law 8, `algebra`: `invert(invert(f)) === f`; `chain(f, invert(f))` and
 * `chain(invert(f), f)` are the identity with log-det 0; and, for shape-preserving cases,
 * `chain(chain(f, g), h) ≈ chain(f, chain(g, h)) ≈ h∘g∘f` with summed log-dets, `g` and
 * `h` built from two related draws (noted as skipped in runs where they do not fit).
 */
export const lawAlgebra: Law = async (run: LawRun, check: LawCheck): Promise<void> => {
  const f = run.bijector;
  if (invert(invert(f)) !== f) check.fail(`invert(invert(${f.name})) is not ${f.name} itself`);
  const zeros = new Float64Array(run.batch);
  const scale = Math.max(maxAbs(run.values.forwardLogDet), maxAbs(run.values.inverseLogDet));
  const identities = [
    {
      what: "chain(f, invert(f)) on x",
      map: chain(f, invert(f)),
      input: run.x,
      want: run.values.x,
    },
    {
      what: "chain(invert(f), f) on y",
      map: chain(invert(f), f),
      input: run.y,
      want: run.values.y,
    },
  ];
  for (const { what, map, input, want } of identities) {
    const r = run.ownResult(map.forward(input, run.cond));
    const [y, ld] = await Promise.all([r.y, r.logDet].map(read));
    check.roundTrip(`${what} vs identity`, y, want);
    check.logDet(`log-det of ${what} vs 0`, ld, zeros, scale);
  }
  const whyNot = await checkAssociativity(run, check);
  if (whyNot) check.partlySkipped(`associativity not checked: ${whyNot}`);
};

/** The associativity part of {@linkcode lawAlgebra}; returns why it does not apply, if so. */
const checkAssociativity = async (run: LawRun, check: LawCheck): Promise<string | undefined> => {
  const { bijector: f, x, cond } = run;
  const xShape = x.shape;
  if (!sameShape(f.forwardShape(xShape), xShape)) return "the case changes shapes";
  const draws = await run.relatedDraws();
  for (const d of draws) {
    if (!sameShape(d.x.shape, xShape)) return "other draws have other input shapes";
    if ((d.cond === undefined) !== (cond === undefined)) return "conditions differ";
    if (d.cond && cond && !sameShape(d.cond.shape, cond.shape)) return "conditions differ";
    let shape: Shape4;
    try {
      shape = d.bijector.forwardShape(xShape);
    } catch {
      return "other draws reject the input shape";
    }
    if (!sameShape(shape, xShape)) return "other draws change shapes";
  }
  const [g, h] = draws.map((d) => d.bijector);
  const stepByStep = (direction: "forward" | "inverse", input: tf.Tensor4D): FlowResult => {
    let current = input;
    let sum: tf.Tensor1D | undefined;
    for (const step of direction === "forward" ? [f, g, h] : [h, g, f]) {
      const r = run.ownResult(step[direction](current, cond));
      current = r.y;
      sum = sum ? run.own(tf.add(sum, r.logDet)) : r.logDet;
    }
    return { y: current, logDet: sum! };
  };
  const groupings = [
    { label: "chain(chain(f, g), h)", map: chain(chain(f, g), h) },
    { label: "chain(f, chain(g, h))", map: chain(f, chain(g, h)) },
  ];
  for (const { direction, input } of both(run)) {
    const manual = stepByStep(direction, input);
    const [wantY, wantLd] = await Promise.all([manual.y, manual.logDet].map(read));
    for (const { label, map } of groupings) {
      const r = run.ownResult(map[direction](input, cond));
      const [y, ld] = await Promise.all([r.y, r.logDet].map(read));
      check.consistent(`${label}.${direction} vs the steps applied one by one`, y, wantY);
      check.consistent(`${label}.${direction} log-det vs the summed log-dets`, ld, wantLd);
    }
  }
  return undefined;
};

/** Every law by name, in checking order. */
export const LAWS: Readonly<Record<LawName, Law>> = {
  finiteAndShapes: lawFiniteAndShapes,
  noLeak: lawNoLeak,
  roundTrip: lawRoundTrip,
  inverseLogDet: lawInverseLogDet,
  volume: lawVolume,
  batchIndependence: lawBatchIndependence,
  jacobianLogDet: lawJacobianLogDet,
  algebra: lawAlgebra,
};

// ---------------------------------------------------------------------------------------
// Errors from tfjs, explained

/** Backends registered with tfjs that implement `kernel`. */
const backendsWith = (kernel: string): string[] =>
  Object.keys(tf.engine().registryFactory).filter((b) => tf.getKernel(kernel, b) !== undefined);

/**
 * The message of `e`, with a line of advice when tfjs failed for a backend reason: a
 * kernel missing on the active backend (naming the backends that have it) or a kernel
 * without a registered gradient.
 */
export const explainError = (e: unknown): string => {
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const missing = /Kernel '([^']+)' not registered for backend '([^']+)'/.exec(message);
  if (missing) {
    const [, kernel, backend] = missing;
    const others = backendsWith(kernel).filter((b) => b !== backend);
    return `${message} — the ${backend} backend has no ${kernel} kernel; ` +
      (others.length > 0
        ? `run this case on ${others.join(" or ")} (initBackend({ backend: "${others[0]}" }) ` +
          `or DEFLOW_BACKEND=${others[0]}), or use ops this backend implements`
        : `no registered backend has it: use other ops or register the kernel`);
  }
  const noGradient = /gradient function not found for ([A-Za-z0-9_]+)/.exec(message);
  if (noGradient) {
    return `${message} — no gradient is registered for the ${noGradient[1]} kernel (deflow ` +
      `registers those in gradientKernels, src/gradients.ts): register one with ` +
      `tf.registerGradient, or skip the law that differentiates (skip: ["jacobianLogDet"])`;
  }
  return message;
};
