/**
 * The DeFlow model configuration: an io-ts codec with a documented default for every field.
 *
 * A config file may give any subset of fields; `decodeConfig` fills in the defaults and
 * returns `Left` with io-ts's path-level messages for anything malformed
 * (e.g. `Invalid value -1 supplied to : ModelConfig/steps: PositiveInt`). Unknown fields are
 * errors, not ignored (`ModelConfig: unknown field "stpes" (did you mean "steps"?)`), and
 * values outside their sensible range are refused (`eps` and `conditionNoise` at most 1,
 * `shiftInit` at most 10, `imageChannels` exactly 3).
 *
 * @module
 */
import { t } from "../iots.ts";
import { either as E, function as F } from "fp-ts";
import { PathReporter } from "io-ts/lib/PathReporter.js";

interface PositiveIntBrand {
  readonly PositiveInt: unique symbol;
}
interface NonNegIntBrand {
  readonly NonNegInt: unique symbol;
}

/** An integer ≥ 1. */
const PositiveInt: t.BrandC<t.NumberC, PositiveIntBrand> = t.brand(
  t.number,
  (n): n is t.Branded<number, PositiveIntBrand> => Number.isInteger(n) && n >= 1,
  "PositiveInt",
);
/** An integer ≥ 0. */
const NonNegInt: t.BrandC<t.NumberC, NonNegIntBrand> = t.brand(
  t.number,
  (n): n is t.Branded<number, NonNegIntBrand> => Number.isInteger(n) && n >= 0,
  "NonNegInt",
);

/** The fields a config file may give (all optional; defaults fill the rest). */
export interface ModelConfigInput {
  /** See {@linkcode ModelConfig.levels}. */
  readonly levels?: number;
  /** See {@linkcode ModelConfig.steps}. */
  readonly steps?: number;
  /** See {@linkcode ModelConfig.transitionSteps}. */
  readonly transitionSteps?: number;
  /** See {@linkcode ModelConfig.splitLevels}. */
  readonly splitLevels?: number[];
  /** See {@linkcode ModelConfig.hidden}. */
  readonly hidden?: number;
  /** See {@linkcode ModelConfig.injectorHidden}. */
  readonly injectorHidden?: number;
  /** See {@linkcode ModelConfig.conditionFactor}. */
  readonly conditionFactor?: 2 | 4 | 8;
  /** See {@linkcode ModelConfig.conditionNoise}. */
  readonly conditionNoise?: number;
  /** See {@linkcode ModelConfig.encoder}. */
  readonly encoder?: { readonly nf?: number; readonly nb?: number; readonly gc?: number };
  /** See {@linkcode ModelConfig.bins}. */
  readonly bins?: number;
  /** See {@linkcode ModelConfig.eps}. */
  readonly eps?: number;
  /** See {@linkcode ModelConfig.shiftInit}. */
  readonly shiftInit?: number;
  /** See {@linkcode ModelConfig.imageChannels}. */
  readonly imageChannels?: number;
  /** See {@linkcode ModelConfig.shiftDataInit}. */
  readonly shiftDataInit?: boolean;
  /** See {@linkcode ModelConfig.conditionResidual}. */
  readonly conditionResidual?: boolean;
  /** See {@linkcode ModelConfig.adaptiveShift}. */
  readonly adaptiveShift?: boolean;
  /** See {@linkcode ModelConfig.additiveCoupling}. */
  readonly additiveCoupling?: boolean;
  /** See {@linkcode ModelConfig.contractShift}. */
  readonly contractShift?: boolean;
  /** See {@linkcode ModelConfig.jointShift}. */
  readonly jointShift?: boolean;
  /** See {@linkcode ModelConfig.linearCoupling}. */
  readonly linearCoupling?: boolean;
  /** See {@linkcode ModelConfig.stationaryScale}. */
  readonly stationaryScale?: boolean;
  /** See {@linkcode ModelConfig.constantPriorScale}. */
  readonly constantPriorScale?: boolean;
}

/** A finite number in `[min, max]` (`(min, max]` when `open`). */
const NumberIn = (min: number, max: number, open: boolean): t.Type<number, number, unknown> => {
  const ok = (u: unknown): u is number =>
    typeof u === "number" && Number.isFinite(u) && (open ? u > min : u >= min) && u <= max;
  return new t.Type<number, number, unknown>(
    `a number in ${open ? "(" : "["}${min}, ${max}]`,
    ok,
    (u, c) => (ok(u) ? t.success(u) : t.failure(u, c)),
    t.identity,
  );
};

/** Conditional encoder sizes (RRDB family). */
const EncoderFields = t.partial({
  /** Feature channels (paper: 64). */
  nf: PositiveInt,
  /** Number of RRDB blocks (paper: 23). */
  nb: PositiveInt,
  /** Growth channels of the dense blocks (paper: 32). */
  gc: PositiveInt,
});

/** The io-ts codec of a (partial) model configuration as found in a config file. */
export const ModelConfigCodec: t.Decoder<unknown, ModelConfigInput> = t.exact(
  t.partial({
    levels: PositiveInt,
    steps: PositiveInt,
    transitionSteps: NonNegInt,
    splitLevels: t.array(PositiveInt),
    hidden: PositiveInt,
    injectorHidden: PositiveInt,
    conditionFactor: t.union([t.literal(2), t.literal(4), t.literal(8)]),
    conditionNoise: NumberIn(0, 1, false),
    encoder: t.exact(EncoderFields),
    bins: PositiveInt,
    eps: NumberIn(0, 1, true),
    shiftInit: NumberIn(0, 10, true),
    imageChannels: t.literal(3),
    shiftDataInit: t.boolean,
    conditionResidual: t.boolean,
    adaptiveShift: t.boolean,
    additiveCoupling: t.boolean,
    contractShift: t.boolean,
    jointShift: t.boolean,
    linearCoupling: t.boolean,
    stationaryScale: t.boolean,
    constantPriorScale: t.boolean,
  }),
  "ModelConfig",
);

/** A complete, validated DeFlow model configuration. */
export interface ModelConfig {
  /** Number of levels L (each starts with a 2×2 squeeze). Default 3 (paper: 3). */
  readonly levels: number;
  /** Conditional flow steps K per level. Default 4 (paper: 16). */
  readonly steps: number;
  /** Transition steps (ActNorm → 1x1 conv) after each squeeze. Default 2 (paper: 2). */
  readonly transitionSteps: number;
  /**
   * Levels (1-based) that end with a split emitting half the channels as a latent.
   * Default: every level but the last (`[1, 2]` for 3 levels). The authors' public code
   * ends up with one split after level 1 (`[1]`, used by `paperConfig`); splitting at
   * level 2 too puts fewer dimensions into the coarsest latent, whose noise passes
   * through every level's couplings when sampling, and measured better on the demo
   * (noise level, blockiness, residual spectrum) at short training.
   */
  readonly splitLevels: readonly number[];
  /** Hidden channels of the coupling networks. Default 32 (paper: 64). */
  readonly hidden: number;
  /**
   * Hidden channels of the affine injector networks. Default: `hidden` (32; paper:
   * 64/128).
   */
  readonly injectorHidden: number;
  /** Bicubic downsampling factor of the conditioning φ. Default 4 (paper: 4 or 8). */
  readonly conditionFactor: 2 | 4 | 8;
  /** Std of the Gaussian noise added to the downsampled conditioning. Default 0.03. */
  readonly conditionNoise: number;
  /** RRDB encoder sizes. Default nf 16, nb 2, gc 8 (paper: 64, 23, 32). */
  readonly encoder: { readonly nf: number; readonly nb: number; readonly gc: number };
  /** Dequantisation bins per channel (uniform noise of width 1/bins). Default 32 (5 bits). */
  readonly bins: number;
  /** Lower bound added to every affine scale, s = sigmoid(raw + 2) + eps. Default 1e-3. */
  readonly eps: number;
  /**
   * Initial scale of each latent shift's M (M = 0 never learns). Default 0.1. With
   * `shiftDataInit`, the floor of the data-dependent scale is `shiftInit / 10`.
   */
  readonly shiftInit: number;
  /**
   * Initialise each latent shift's scale from the first batch (the isotropic MLE for the
   * initial flow, see `initShiftsFromData`). Default true.
   */
  readonly shiftDataInit: boolean;
  /** Image channels. Default 3. */
  readonly imageChannels: number;
  /**
   * The flow models the residual `x − up(h₀)` of the image to its upsampled (bicubic)
   * conditioning input instead of `x` itself. Default true. The condition fixes the
   * content at its scale, so this takes brightness, colour and large structures out of
   * the latents: with disjoint clean and degraded photo collections, the degraded
   * domain's latent shift then learns the degradation, not the collections' content
   * difference. Checkpoints written before this field existed load with `false`.
   */
  readonly conditionResidual: boolean;
  /**
   * The degraded domain's latent shift has a per-position scale `a(h)` computed from the
   * conditioning features: `u_p ~ N(μ, a_p²·M·Mᵀ)` (see `src/layers/scaledShift.ts`).
   * Default true. The flow decodes latents through a content-dependent gain, so a
   * position-invariant latent noise comes out too weak in flat regions and too strong
   * in texture; `a(h)` (initialised to 1, the paper's shift) can undo that gain.
   * Checkpoints written before this field existed load with `false`.
   */
  readonly adaptiveShift: boolean;
  /**
   * The flow steps' couplings are additive (`z₂' = z₂ − t(z₁, h)`, unit scale) instead of
   * affine. Default false (the paper's affine coupling). An affine coupling's scale
   * depends on the content, so in flat regions it learns to expand the clean image's
   * tiny variation and decodes any latent noise there with a small gain; with additive
   * couplings the position-dependent scales left are the injectors' (a function of the
   * condition `h`) and the split priors' (a function of the kept half; constants with
   * {@linkcode ModelConfig.constantPriorScale}, which the `"paper"` setting adds). The
   * scale channels of the coupling networks are kept (and ignored), so the parameters
   * have the same layout either way.
   */
  readonly additiveCoupling: boolean;
  /**
   * The degraded latent may also be **narrower** than the clean one: `z_y = μ + G·(z_x + ũ)`
   * with a learned symmetric contraction `G = (I + K·Kᵀ)⁻¹` per latent (see
   * `src/layers/latentContraction.ts`). Default true. The paper's `z_y = z_x + u` can only
   * add variance, so a degradation that removes detail (JPEG, blur) is learned as added
   * noise; `G` shrinks the clean latent in the directions the degraded photos lack.
   * `K` starts at `shiftInit / 10` (`G ≈ I`, the paper's shift) and is learned. Measured on
   * the fidelity suite's four tuning families at 600 iterations: better on 34 of their 44
   * statistics (examples/fidelity/README.md). Checkpoints written before this field existed load
   * with `false`.
   */
  readonly contractShift: boolean;
  /**
   * One latent shift over **all** latents of each `2^L × 2^L` image block, instead of one
   * per latent. Each latent is folded to the coarsest grid (space-to-depth, a permutation:
   * no log-det) and the folded latents are stacked into one vector of `3·4^L` values per
   * block (192 for `L = 3`), which gets the shift `N(μ, a(h)²·MMᵀ)` (and the contraction,
   * with `contractShift`). A degradation moves every level's latent together: through the
   * split priors, noise in a coarse latent shifts the finer latents' means, and the real
   * displacement of a finer latent compensates. Per-latent shifts sample the levels
   * independently and decode that missing compensation as low-frequency blotches
   * (measured in examples/fidelity/README.md). The scale head `a(h)` runs on the coarsest
   * level's features. Default false; checkpoints written before this field existed load
   * with `false`.
   */
  readonly jointShift: boolean;
  /**
   * The flow steps use conditionally linear couplings (`src/layers/linearCoupling.ts`):
   * `z₂' = z₂/s(h) − t(h) − W∗z₁`, scale and shift networks on the condition only, a linear
   * convolution of `z₁`. The whole flow is then affine in the image for a given condition,
   * `f(x; h) = A(h)·x + b(h)`, so a latent shift decodes to the same image displacement
   * `A(h)⁻¹·u` whatever the photo's content: the content-independent degradation that the
   * latent shift assumes. With the paper's couplings the flow's response to a latent
   * displacement depends on the content it is added to (measured in
   * examples/fidelity/README.md), which biases and coarsens the sampled noise. The price: the clean
   * domain's model given `h` is Gaussian, and a degradation that depends on the content
   * beyond `h` (JPEG) can only be learned on average. Use it with `jointShift`, and sample
   * with `SampleOptions.gridOffsets` for degradations that do not follow the image's 8×8
   * grid; measured against the default in examples/fidelity/README.md. Default false;
   * checkpoints written before this field existed load with `false`.
   */
  readonly linearCoupling: boolean;
  /**
   * With `linearCoupling`: the couplings' and the injectors' scales are learned constants
   * per channel instead of functions of the condition (`t(h)` stays), so the flow's Jacobian
   * `A` is the same at every position and for every condition: `f(x; h) = A·x + b(h)`. A
   * latent shift of one shape then decodes to image noise of one shape everywhere. With
   * condition-dependent scales, `A(h)`'s gain varies from place to place, differently per
   * latent direction, and a shift whose covariance is shared by all positions (only scaled
   * by `a(h)`) decodes to noise that is too strong where the gain is high (measured in
   * examples/fidelity/README.md). The price: the clean model given `h` has one covariance
   * everywhere. Default false; requires `linearCoupling`; checkpoints written before this
   * field existed load with `false`.
   */
  readonly stationaryScale: boolean;
  /**
   * The split priors' log-scale is a learned constant per emitted channel instead of a
   * function of the kept half `z₁` (the mean stays a function of `z₁`); `linearCoupling`
   * implies it. With `additiveCoupling` the flow's log-det then depends on the condition
   * only (the injectors', ActNorms' and 1x1 convolutions'), not on the image: no layer's
   * gain depends on the photo's content beyond what the condition shows. With
   * content-dependent scales the flow expands the clean photos' flat regions most, and the
   * translation `f⁻¹(f(x) + u)` decodes the shift's noise at the clean photo's own latent
   * through that small gain: too little noise in flat regions (about half the real one
   * under JPEG). Either change alone leaves it there; together they
   * bring it most of the way and the real displacement of one crop, decoded on another,
   * keeps its strength (examples/fidelity/README.md). The `"paper"` training setting uses both.
   * Default false; checkpoints written before this field existed load with `false`.
   */
  readonly constantPriorScale: boolean;
}

/** The default configuration: small enough to train on a 2-core CPU in minutes. */
export const defaultConfig: ModelConfig = {
  levels: 3,
  steps: 4,
  transitionSteps: 2,
  splitLevels: [1, 2],
  hidden: 32,
  injectorHidden: 32,
  conditionFactor: 4,
  conditionNoise: 0.03,
  encoder: { nf: 16, nb: 2, gc: 8 },
  bins: 32,
  eps: 1e-3,
  shiftInit: 0.1,
  shiftDataInit: true,
  imageChannels: 3,
  conditionResidual: true,
  adaptiveShift: true,
  additiveCoupling: false,
  contractShift: true,
  jointShift: false,
  linearCoupling: false,
  stationaryScale: false,
  constantPriorScale: false,
};

/** The sizes of the authors' configuration (NTIRE/AIM): L 3, K 16, hidden 64, RRDB 64/23/32. */
export const paperConfig: ModelConfig = {
  ...defaultConfig,
  splitLevels: [1],
  steps: 16,
  hidden: 64,
  injectorHidden: 64,
  encoder: { nf: 64, nb: 23, gc: 32 },
};

const semanticErrors = (c: ModelConfig): string[] => {
  const errs: string[] = [];
  for (const l of c.splitLevels) {
    if (l >= c.levels) {
      errs.push(
        `ModelConfig/splitLevels: level ${l} cannot split (only levels 1..${
          c.levels - 1
        } of ${c.levels} can)`,
      );
    }
  }
  if (c.stationaryScale && !c.linearCoupling) {
    errs.push("ModelConfig/stationaryScale: needs linearCoupling (the scales it fixes are theirs)");
  }
  if (new Set(c.splitLevels).size !== c.splitLevels.length) {
    errs.push("ModelConfig/splitLevels: levels must be distinct");
  }
  if (2 ** c.levels < c.conditionFactor) {
    errs.push(
      `ModelConfig/conditionFactor: ${c.conditionFactor} exceeds 2^levels = ${2 ** c.levels}`,
    );
  }
  return errs;
};

const FIELDS: readonly string[] = [
  "levels",
  "steps",
  "transitionSteps",
  "splitLevels",
  "hidden",
  "injectorHidden",
  "conditionFactor",
  "conditionNoise",
  "encoder",
  "bins",
  "eps",
  "shiftInit",
  "imageChannels",
  "shiftDataInit",
  "conditionResidual",
  "adaptiveShift",
  "additiveCoupling",
  "contractShift",
  "jointShift",
  "linearCoupling",
  "stationaryScale",
  "constantPriorScale",
];
const ENCODER_FIELDS: readonly string[] = ["nf", "nb", "gc"];

/** Edit distance (for "did you mean"). */
const distance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(
        d[i - 1][j] + 1,
        d[i][j - 1] + 1,
        d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
};

const unknownFields = (where: string, u: unknown, known: readonly string[]): string[] => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return [];
  return Object.keys(u).filter((k) => !known.includes(k)).map((k) => {
    const near = known.filter((f) =>
      distance(k, f) <= 2
    ).sort((a, b) => distance(k, a) - distance(k, b))[0];
    return `${where}: unknown field ${JSON.stringify(k)}${
      near ? ` (did you mean ${JSON.stringify(near)}?)` : ""
    }`;
  });
};

/** Fields the codec does not know (typos), and the one value with a dedicated message. */
const strictErrors = (input: unknown): string[] => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return [];
  const o = input as Record<string, unknown>;
  const errs = [
    ...unknownFields("ModelConfig", o, FIELDS),
    ...unknownFields("ModelConfig/encoder", o.encoder, ENCODER_FIELDS),
  ];
  if ("imageChannels" in o && o.imageChannels !== 3) {
    errs.push(
      `ModelConfig/imageChannels: must be 3 (only RGB images are supported), got ${
        JSON.stringify(o.imageChannels)
      }`,
    );
  }
  return errs;
};

/**
 * Validate a configuration (any subset of fields) and fill in defaults. `Left` holds
 * one message per problem, with the field path; unknown fields are problems too.
 */
export const decodeConfig = (input: unknown): E.Either<string[], ModelConfig> =>
  F.pipe(
    strictErrors(input).length > 0
      ? E.left<string[], unknown>(strictErrors(input))
      : E.right<string[], unknown>(input ?? {}),
    E.chain((u) =>
      F.pipe(
        ModelConfigCodec.decode(u),
        E.mapLeft((errors) => PathReporter.report(E.left(errors))),
      )
    ),
    E.map((partial): ModelConfig => ({
      ...defaultConfig,
      splitLevels: Array.from(
        { length: (partial.levels ?? defaultConfig.levels) - 1 },
        (_, i) => i + 1,
      ),
      ...partial,
      injectorHidden: partial.injectorHidden ?? partial.hidden ?? defaultConfig.injectorHidden,
      encoder: { ...defaultConfig.encoder, ...(partial.encoder ?? {}) },
    })),
    E.chain((c) => {
      const errs = semanticErrors(c);
      return errs.length ? E.left(errs) : E.right(c);
    }),
  );

/** Like {@linkcode decodeConfig} but throws an Error listing every problem. */
export const configOrThrow = (input: unknown): ModelConfig =>
  F.pipe(
    decodeConfig(input),
    E.getOrElseW((errs) => {
      throw new Error(`invalid model config:\n  ${errs.join("\n  ")}`);
    }),
  );

/** Plain JSON form of a config (for checkpoints and reports). */
export const configToJson = (c: ModelConfig): Record<string, unknown> =>
  JSON.parse(JSON.stringify(c));

/** A stored tensor's name and shape (as listed in a checkpoint's header). */
export interface StoredTensorShape {
  /** Tensor name in the file, e.g. `params.levels.0.steps.0.injector.net.conv1.w`. */
  readonly name: string;
  /** Its shape. */
  readonly shape: readonly number[];
}

/**
 * Decode a configuration stored in a checkpoint: as {@linkcode decodeConfig}, but fields
 * added after the checkpoint was written take the value that reproduces the old model
 * (`conditionResidual: false`, `adaptiveShift: false`, `contractShift: false`), not today's
 * default.
 *
 * `tensors` (the checkpoint's tensor list), when given, settle `injectorHidden`: before it
 * was used, the injector networks had `hidden` channels whatever the stored
 * `injectorHidden` said, so the width of a stored injector's first convolution wins.
 */
export const decodeStoredConfig = (
  stored: unknown,
  tensors?: readonly StoredTensorShape[],
): E.Either<string[], ModelConfig> => {
  const injector = tensors?.find((t) => /\.injector\.net\.conv1\.w$/.test(t.name));
  const width = injector?.shape.length === 4 ? injector.shape[3] : undefined;
  return decodeConfig(
    typeof stored === "object" && stored !== null && !Array.isArray(stored)
      ? {
        conditionResidual: false,
        adaptiveShift: false,
        contractShift: false,
        jointShift: false,
        linearCoupling: false,
        stationaryScale: false,
        constantPriorScale: false,
        ...stored,
        ...(width === undefined ? {} : { injectorHidden: width }),
      }
      : stored,
  );
};
