/**
 * The law runner: draws parameters with fast-check, builds each draw, checks every law
 * of `./laws.ts` in order on it, and gathers a {@linkcode LawReport}.
 *
 * @module
 */
import fc from "fast-check";
import { tf } from "../tf.ts";
import type { FlowResult, Shape4 } from "../core/bijector.ts";
import { showShape } from "../core/errors.ts";
import { tfSeed } from "../core/random.ts";
import {
  type BijectorCase,
  type Built,
  DEFAULT_MAX_JACOBIAN_SIZE,
  DEFAULT_NUM_RUNS,
  DEFAULT_SEED,
  DEFAULT_TOLERANCES,
  explainError,
  LAW_NAMES,
  type LawCheck,
  LawError,
  type LawName,
  type LawOptions,
  type LawReport,
  type LawResult,
  type LawRun,
  LAWS,
  type LawStatus,
  LawViolation,
  type RoundTrips,
  type Tolerances,
} from "./laws.ts";

/** What the runner gathers about one law over the runs. */
interface LawTally {
  runs: number;
  maxError: number;
  maxRatio: number;
  partialSkips: number;
  partialNote: string;
  failure?: string;
}

const formatNumber = (v: number): string =>
  Number.isFinite(v) ? (v === 0 ? "0" : v.toExponential(2)) : String(v);

const readValues = async (t: tf.Tensor): Promise<Float64Array> =>
  Float64Array.from(await t.data() as Float32Array);

/** Largest |a − b|; NaN anywhere counts as Infinity. */
const largestDifference = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
};

const largestMagnitude = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/** A {@linkcode LawCheck} for `law` that records into `tally`. */
const checkFor = (law: LawName, tally: LawTally, tolerances: Tolerances): LawCheck => {
  const close = (
    what: string,
    got: ArrayLike<number>,
    want: ArrayLike<number>,
    atol: number,
    rtol: number,
    scaleLabel: string,
    scale: number,
  ): void => {
    const error = largestDifference(got, want);
    const allowed = atol + rtol * scale;
    tally.maxError = Math.max(tally.maxError, error);
    tally.maxRatio = Math.max(tally.maxRatio, error / allowed);
    if (!(error <= allowed)) {
      throw new LawViolation(
        law,
        `${what}: max |error| ${formatNumber(error)} > tolerance ${formatNumber(allowed)} ` +
          `(atol ${atol} + rtol ${rtol} · ${scaleLabel} ${formatNumber(scale)})`,
      );
    }
  };
  const t = tolerances;
  return {
    law,
    tolerances,
    roundTrip: (what, got, want) =>
      close(
        what,
        got,
        want,
        t.roundTripAtol,
        t.roundTripRtol,
        "max|input|",
        largestMagnitude(want),
      ),
    logDet: (what, got, want, scale) =>
      close(what, got, want, t.logDetAtol, t.logDetRtol, "|log-det|", scale),
    consistent: (what, got, want) =>
      close(
        what,
        got,
        want,
        t.consistencyAtol,
        t.consistencyRtol,
        "max|reference|",
        largestMagnitude(want),
      ),
    finite: (what, values) => {
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i])) {
          throw new LawViolation(
            law,
            `${what} has a non-finite value (${values[i]} at flat index ${i})`,
          );
        }
      }
    },
    observe: (error) => {
      tally.maxError = Math.max(tally.maxError, error);
    },
    partlySkipped: (note) => {
      tally.partialSkips++;
      tally.partialNote = note;
    },
    fail: (message) => {
      throw new LawViolation(law, message);
    },
  };
};

/** What a run keeps until it ends (then disposed), and its Jacobian size limit. */
interface RunKeeper {
  /** Keep a tensor. */
  readonly own: <T extends tf.Tensor>(t: T) => T;
  /** Keep both tensors of a result. */
  readonly ownResult: (r: FlowResult) => FlowResult;
  /** Related draws built for the associativity law. */
  readonly related: Built[];
  /** Largest sample size for the Jacobian law. */
  readonly maxJacobianSize: number;
}

/**
 * Open a run on a built draw: check `forwardShape(x)`, the forward output's shape and the
 * shape of a given `y` before `inverse` is called (a `finiteAndShapes` violation names
 * the mismatch), run both directions, read the results back, and return the
 * {@linkcode LawRun} every law sees.
 */
const openRun = async <P>(
  bijectorCase: BijectorCase<P>,
  built: Built,
  relatedParams: readonly [P, P],
  runSeed: number,
  keep: RunKeeper,
): Promise<LawRun> => {
  const { own, ownResult, related, maxJacobianSize } = keep;
  const { bijector, x, cond } = built;
  const xShape = x.shape;
  const structural = (message: string) => new LawViolation("finiteAndShapes", message);
  let yShape: Shape4;
  try {
    yShape = bijector.forwardShape(xShape);
  } catch (e) {
    throw structural(`forwardShape(${showShape(xShape)}) threw: ${explainError(e)}`);
  }
  const forwardAtX = ownResult(bijector.forward(x, cond));
  if (!sameShape(forwardAtX.y.shape, yShape)) {
    throw structural(
      `forward output has shape ${showShape(forwardAtX.y.shape)}, forwardShape says ` +
        `${showShape(yShape)} (inverse not called)`,
    );
  }
  if (built.y && !sameShape(built.y.shape, yShape)) {
    throw structural(
      `the case's y has shape ${showShape(built.y.shape)}, but forwardShape(x) is ` +
        `${showShape(yShape)} (inverse not called)`,
    );
  }
  const y = built.y ??
    own(tf.randomNormal([...yShape], 0, 1, "float32", tfSeed(runSeed)) as tf.Tensor4D);
  const inverseAtY = ownResult(bijector.inverse(y, cond));
  const [xValues, yValues, forwardY, forwardLogDet, inverseX, inverseLogDet] = await Promise
    .all([x, y, forwardAtX.y, forwardAtX.logDet, inverseAtY.y, inverseAtY.logDet].map(
      readValues,
    ));
  let trips: Promise<RoundTrips> | undefined;
  let draws: Promise<readonly [Built, Built]> | undefined;
  return {
    caseName: bijectorCase.name,
    bijector,
    x,
    y,
    cond,
    batch: x.shape[0],
    forwardAtX,
    inverseAtY,
    values: { x: xValues, y: yValues, forwardY, forwardLogDet, inverseX, inverseLogDet },
    runSeed,
    volumePreserving: bijectorCase.volumePreserving ?? false,
    fixedBatch: bijectorCase.fixedBatch ?? false,
    maxJacobianSize,
    roundTrips: () =>
      trips ??= (async () => {
        const inverseOfForward = ownResult(bijector.inverse(forwardAtX.y, cond));
        const forwardOfInverse = ownResult(bijector.forward(inverseAtY.y, cond));
        const [a, b, c, d] = await Promise.all(
          [
            inverseOfForward.y,
            inverseOfForward.logDet,
            forwardOfInverse.y,
            forwardOfInverse
              .logDet,
          ].map(readValues),
        );
        return {
          inverseOfForward,
          forwardOfInverse,
          inverseOfForwardX: a,
          inverseOfForwardLogDet: b,
          forwardOfInverseY: c,
          forwardOfInverseLogDet: d,
        };
      })(),
    relatedDraws: () =>
      draws ??= (async () => {
        related.push(await bijectorCase.build(relatedParams[0]));
        related.push(await bijectorCase.build(relatedParams[1]));
        return [related[0], related[1]] as const;
      })(),
    own,
    ownResult,
  };
};

/** One result per law, in checking order, from what the runs gathered. */
const lawResults = (
  tally: (law: LawName) => LawTally,
  enabled: (law: LawName) => boolean,
  failedLaw: LawName | undefined,
): LawResult[] =>
  LAW_NAMES.map((law) => {
    const t = tally(law);
    const status: LawStatus = !enabled(law)
      ? "skipped"
      : law === failedLaw
      ? "failed"
      : t.runs > 0
      ? "passed"
      : "skipped";
    const note = t.failure ??
      (!enabled(law)
        ? "skipped by request"
        : t.partialSkips > 0
        ? `${t.partialNote} (${t.partialSkips} run(s))`
        : undefined);
    const result = {
      law,
      status,
      passed: status === "passed",
      runs: t.runs,
      maxError: t.maxError,
      maxRatio: t.maxRatio,
    };
    return note === undefined ? result : { ...result, note };
  });

/**
 * Check the bijector laws on a case, with fast-check drawing `numRuns` parameter sets
 * from a fixed seed. Each run builds the case, checks `forwardShape(x)` and the shape of
 * the case's `y` (before `inverse` is ever called), runs both directions, then checks the
 * laws of {@linkcode LAWS} in order: {@linkcode lawFiniteAndShapes},
 * {@linkcode lawNoLeak}, {@linkcode lawRoundTrip}, {@linkcode lawInverseLogDet},
 * {@linkcode lawVolume}, {@linkcode lawBatchIndependence},
 * {@linkcode lawJacobianLogDet}, {@linkcode lawAlgebra}; after the run it checks that
 * `dispose()` freed every tensor (`noLeak`), and after all runs that some log-det was
 * non-zero unless the case is volume preserving (`volume`).
 *
 * Returns the report; throws a {@linkcode LawError} naming the case, law, run, error and
 * tolerance when a law fails (unless `throwOnFailure: false`). When tfjs fails because
 * the active backend lacks a kernel, the message says so and names the backends that
 * have it. Never leaks tensors, also when a law fails. Reads tensors asynchronously
 * (works on WebGPU).
 */
export const checkBijectorLaws = async <P>(
  bijectorCase: BijectorCase<P>,
  options: LawOptions = {},
): Promise<LawReport> => {
  const started = performance.now();
  const seed = options.seed ?? DEFAULT_SEED;
  const numRuns = options.numRuns ?? bijectorCase.numRuns ?? DEFAULT_NUM_RUNS;
  const tolerances: Tolerances = {
    ...DEFAULT_TOLERANCES,
    ...bijectorCase.tolerances,
    ...options.tolerances,
  };
  const skipped = new Set<LawName>([...(bijectorCase.skip ?? []), ...(options.skip ?? [])]);
  const enabled = (law: LawName) => !skipped.has(law);
  const maxJacobianSize = options.maxJacobianSize ?? DEFAULT_MAX_JACOBIAN_SIZE;
  const tallies = new Map<LawName, LawTally>(
    LAW_NAMES.map((
      l,
    ) => [l, { runs: 0, maxError: 0, maxRatio: 0, partialSkips: 0, partialNote: "" }]),
  );
  const tally = (law: LawName): LawTally => tallies.get(law)!;
  let runNumber = 0;
  let largestLogDet = 0;

  const runOnce = async (p: P, gParams: P, hParams: P, runSeed: number): Promise<void> => {
    runNumber++;
    const tensorsBefore = tf.memory().numTensors;
    const owned: tf.Tensor[] = [];
    const own = <T extends tf.Tensor>(t: T): T => {
      owned.push(t);
      return t;
    };
    const ownResult = (r: FlowResult): FlowResult => {
      owned.push(r.y, r.logDet);
      return r;
    };
    const related: Built[] = [];
    let built: Built | undefined;
    let current: LawName = "finiteAndShapes";
    try {
      built = await bijectorCase.build(p);
      const run = await openRun(bijectorCase, built, [gParams, hParams], runSeed, {
        own,
        ownResult,
        related,
        maxJacobianSize,
      });
      largestLogDet = Math.max(
        largestLogDet,
        largestMagnitude(run.values.forwardLogDet),
        largestMagnitude(run.values.inverseLogDet),
      );
      for (const law of LAW_NAMES) {
        if (!enabled(law)) continue;
        current = law;
        await LAWS[law](run, checkFor(law, tally(law), tolerances));
        if (law !== "noLeak") tally(law).runs++;
      }
    } catch (e) {
      if (e instanceof LawViolation) throw e;
      throw new LawViolation(
        built ? current : "finiteAndShapes",
        `${built ? "" : "build "}threw ${explainError(e)}` +
          (current === "batchIndependence" && !bijectorCase.fixedBatch
            ? " (if the bijector accepts only the batch size of x, set fixedBatch: true)"
            : ""),
      );
    } finally {
      tf.dispose(owned);
      built?.dispose();
      for (const r of related) r.dispose();
    }
    if (enabled("noLeak")) {
      const left = tf.memory().numTensors - tensorsBefore;
      tally("noLeak").maxError = Math.max(tally("noLeak").maxError, left);
      if (left !== 0) {
        throw new LawViolation(
          "noLeak",
          `${left} tensor(s) remain after the run: build() made tensors that dispose() does ` +
            `not free, or the bijector keeps tensors between calls (tolerance 0)`,
        );
      }
      tally("noLeak").runs++;
    }
  };

  const runSeedArb = fc.integer({ min: 0, max: 0x7fffffff });
  const draws = bijectorCase.related
    ? bijectorCase.params.chain((p) => {
      const rel = bijectorCase.related!(p);
      return fc.record({ p: fc.constant(p), g: rel, h: rel, runSeed: runSeedArb });
    })
    : fc.record({
      p: bijectorCase.params,
      g: bijectorCase.params,
      h: bijectorCase.params,
      runSeed: runSeedArb,
    });
  const details = await fc.check(
    fc.asyncProperty(draws, ({ p, g, h, runSeed }) => runOnce(p, g, h, runSeed)),
    { seed, numRuns, endOnFailure: !(options.shrink ?? false) },
  );

  let failedLaw: LawName | undefined;
  let message = "";
  const volume = tally("volume");
  if (details.failed) {
    const e = details.errorInstance;
    failedLaw = e instanceof LawViolation ? e.law : "finiteAndShapes";
    const detail = e instanceof Error ? e.message : String(e);
    tally(failedLaw).failure = detail;
    const params = details.counterexample
      ? fc.stringify(details.counterexample[0].p).replaceAll("__proto__:null,", "")
      : "?";
    message = `checkBijectorLaws: case "${bijectorCase.name}" fails law "${failedLaw}" in run ` +
      `${runNumber} of ${numRuns} (seed ${seed}):\n  ${detail}\n  params: ${params}`;
  } else if (enabled("volume") && !bijectorCase.volumePreserving) {
    volume.maxError = largestLogDet;
    volume.maxRatio = Math.max(volume.maxRatio, tolerances.minAbsLogDet / largestLogDet);
    if (!(largestLogDet > tolerances.minAbsLogDet)) {
      failedLaw = "volume";
      const detail = `the log-det was ~0 in every run (max |log-det| ` +
        `${formatNumber(largestLogDet)} ≤ minAbsLogDet ${tolerances.minAbsLogDet}): a sign or ` +
        `scale bug could hide behind it; draw parameters that change volume, or declare ` +
        `volumePreserving: true`;
      volume.failure = detail;
      message = `checkBijectorLaws: case "${bijectorCase.name}" fails law "volume" over ` +
        `${numRuns} runs (seed ${seed}):\n  ${detail}`;
    }
  }

  const laws = lawResults(tally, enabled, failedLaw);
  const report: LawReport = {
    name: bijectorCase.name,
    passed: failedLaw === undefined,
    seed,
    numRuns,
    tolerances,
    laws,
    millis: performance.now() - started,
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
