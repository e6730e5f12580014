/**
 * {@linkcode layerCase}: a law-kit case for a layer from its `init` and `bijector`, so a
 * new layer is tested in a few lines. The kit draws a seed and an input shape (batch 1–3,
 * height and width 1–3, channels 2–5 by default), builds the layer's parameters, moves
 * them away from their (often identity) initialisation with seeded noise, and disposes
 * everything after each run.
 *
 * @example Test a layer of your own
 * ```ts
 * import { actNorm } from "@x/deflow";
 * import { checkBijectorLaws, layerCase } from "@x/deflow/testing";
 *
 * Deno.test("actNorm obeys the bijector laws", async () => {
 *   await checkBijectorLaws(layerCase({
 *     name: "actNorm",
 *     init: ({ channels, seed }) => actNorm.init({ channels, seed }),
 *     bijector: (params) => actNorm.bijector(params),
 *   }));
 * });
 * ```
 *
 * @module
 */
import fc from "fast-check";
import { tf } from "../tf.ts";
import { type Bijector, type Shape4, withCondition } from "../core/bijector.ts";
import { disposeParams, mapParams, type ParamTree } from "../core/params.ts";
import type { BijectorCase, Built, LawName, Tolerances } from "./laws.ts";

/** One draw of a {@linkcode layerCase}: a seed and the input shape. */
export interface LayerDraw {
  /** Seed for the parameters (the input uses `seed + 1`, the condition `seed + 2`). */
  readonly seed: number;
  /** Batch size. */
  readonly batch: number;
  /** Input height. */
  readonly height: number;
  /** Input width. */
  readonly width: number;
  /** Input channels. */
  readonly channels: number;
}

/** An inclusive range of integers. */
export interface IntRange {
  /** Smallest value. */
  readonly min: number;
  /** Largest value. */
  readonly max: number;
}

/**
 * What {@linkcode LayerCaseSpec.bijector} may return: a bijector, or a bijector with the
 * tensors it made (`extra`) and/or a `dispose` for them, both run after each run.
 */
export type LayerBuild = Bijector | {
  /** The bijector. */
  readonly bijector: Bijector;
  /** Tensors made for it (e.g. a precomputed inverse), disposed after the run. */
  readonly extra?: readonly tf.Tensor[];
  /** Frees what it made, after the run. */
  readonly dispose?: () => void;
};

/** How to make a layer's case: see {@linkcode layerCase}. */
export interface LayerCaseSpec<T extends ParamTree> {
  /** Name in reports. */
  readonly name: string;
  /** The layer's parameters for a draw (use `draw.seed` and `draw.channels`). */
  readonly init: (draw: LayerDraw) => T;
  /**
   * The bijector of the (perturbed) parameters. It may be async, and may return what it
   * made (e.g. a precomputed inverse) as `{ bijector, extra }` or `{ bijector, dispose }`:
   * freed with the run.
   */
  readonly bijector: (params: T, draw: LayerDraw) => LayerBuild | Promise<LayerBuild>;
  /** Input shape of a draw (default `[batch, height, width, channels]`). */
  readonly shape?: (draw: LayerDraw) => Shape4;
  /** Channels of a condition `[batch, H, W, condChannels]` at the input's size (none if omitted). */
  readonly condChannels?: number;
  /**
   * Bind the drawn condition into the bijector with `withCondition`: the case then has no
   * `cond` and accepts one batch size only (`fixedBatch` defaults to true).
   */
  readonly bindCondition?: boolean;
  /**
   * Standard deviation of the seeded noise added to every trainable leaf (paths without a
   * `const` segment) so that zero-initialised layers are not the identity (default 0.2;
   * 0 keeps `init`'s values).
   */
  readonly perturb?: number;
  /** Range of channels drawn (default 2–5). */
  readonly channels?: IntRange;
  /** Range of batch sizes drawn (default 1–3). */
  readonly batch?: IntRange;
  /** Range of heights and widths drawn (default 1–3). */
  readonly size?: IntRange;
  /** The log-det is identically 0 (see {@linkcode BijectorCase.volumePreserving}). */
  readonly volumePreserving?: boolean;
  /** The bijector accepts one batch size only (see {@linkcode BijectorCase.fixedBatch}). */
  readonly fixedBatch?: boolean;
  /** Tolerance overrides. */
  readonly tolerances?: Partial<Tolerances>;
  /** Runs per check. */
  readonly numRuns?: number;
  /** Laws not to check. */
  readonly skip?: readonly LawName[];
}

/** FNV-1a hash of a string: unrelated noise seeds for distinct parameter paths. */
const hash = (s: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
};

/** A copy of `tree` with N(0, std²) noise on every trainable leaf (new tensors). */
const perturbed = <T extends ParamTree>(tree: T, seed: number, std: number): T =>
  mapParams(
    tree,
    (t, path) =>
      std === 0 || path.split(".").includes("const")
        ? tf.clone(t)
        : tf.tidy(() =>
          tf.add(t, tf.randomNormal(t.shape, 0, std, "float32", (seed * 7919 + hash(path)) >>> 0))
        ),
  );

const range = (r: IntRange | undefined, min: number, max: number) =>
  fc.integer({ min: r?.min ?? min, max: r?.max ?? max });

/**
 * A {@linkcode BijectorCase} for a layer: draws a seed and an input shape, builds
 * `spec.bijector(perturbed(spec.init(draw)), draw)` with a standard normal input (and
 * condition), and disposes parameters, inputs and extra tensors after each run. The two
 * extra draws of the associativity law share the shapes and differ in the seed.
 */
export const layerCase = <T extends ParamTree>(spec: LayerCaseSpec<T>): BijectorCase<LayerDraw> => {
  const params: fc.Arbitrary<LayerDraw> = fc.record({
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    batch: range(spec.batch, 1, 3),
    height: range(spec.size, 1, 3),
    width: range(spec.size, 1, 3),
    channels: range(spec.channels, 2, 5),
  });
  return {
    name: spec.name,
    params,
    related: (draw) => fc.integer({ min: 1, max: 1_000_000 }).map((seed) => ({ ...draw, seed })),
    volumePreserving: spec.volumePreserving,
    fixedBatch: spec.fixedBatch ?? spec.bindCondition,
    tolerances: spec.tolerances,
    numRuns: spec.numRuns,
    skip: spec.skip,
    build: async (draw): Promise<Built> => {
      const shape: Shape4 = spec.shape
        ? spec.shape(draw)
        : [draw.batch, draw.height, draw.width, draw.channels];
      const initial = spec.init(draw);
      const p = perturbed(initial, draw.seed, spec.perturb ?? 0.2);
      disposeParams(initial);
      let made: LayerBuild;
      try {
        made = await spec.bijector(p, draw);
      } catch (e) {
        disposeParams(p);
        throw e;
      }
      const { bijector, extra = [], dispose: disposeMade } = "forward" in made
        ? { bijector: made }
        : made;
      const x = tf.randomNormal([...shape], 0, 1, "float32", draw.seed + 1) as tf.Tensor4D;
      const cond = spec.condChannels
        ? tf.randomNormal(
          [shape[0], shape[1], shape[2], spec.condChannels],
          0,
          1,
          "float32",
          draw.seed + 2,
        ) as tf.Tensor4D
        : undefined;
      const bind = spec.bindCondition === true && cond !== undefined;
      return {
        bijector: bind ? withCondition(bijector, cond) : bijector,
        x,
        cond: bind ? undefined : cond,
        dispose: () => {
          disposeMade?.();
          disposeParams(p);
          tf.dispose([x, ...(cond ? [cond] : []), ...extra]);
        },
      };
    },
  };
};
