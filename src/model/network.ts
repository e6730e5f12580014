/**
 * The DeFlow network: parameters, conditioning features, encode (image → latents) and
 * decode (latents → image), exact inverses of each other for a fixed conditioning input.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type Bijector, chain, sumLogDets } from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { foldIn, splitSeed } from "../core/random.ts";
import { actNorm, type ActNormParams } from "../layers/actNorm.ts";
import {
  flowStep,
  type FlowStepParams,
  transitionStep,
  type TransitionStepParams,
} from "../layers/flowStep.ts";
import { latentShift, type LatentShiftParams } from "../layers/latentShift.ts";
import { initContraction, type LatentContractionParams } from "../layers/latentContraction.ts";
import { split, type SplitParams } from "../layers/split.ts";
import { squeeze } from "../layers/squeeze.ts";
import { type EncoderParams, resizeFeatures, rrdbEncoder } from "./encoder.ts";
import { bicubicResize } from "../image/resize.ts";
import { convNet } from "../nn/convNet.ts";
import {
  multiScaleDecode,
  multiScaleEncode,
  multiScaleScan,
  type ScaleLevel,
} from "./multiScale.ts";
import type { ModelConfig } from "./config.ts";
import { latentChannels, levelChannels, networkLayout } from "./layout.ts";
import { shiftLatentChannels, shiftLatentLevels } from "./shiftLatents.ts";
import { initShiftScale, shiftScale, shiftScale2, type ShiftScaleParams } from "./shiftScale.ts";

/** Parameters of one level. */
export type LevelParams = {
  /** Transition steps (ActNorm → 1x1 conv) after the squeeze. */
  readonly transitions: readonly TransitionStepParams[];
  /** Conditional flow steps. */
  readonly steps: readonly FlowStepParams[];
  /** The split's prior (an empty list when the level does not split, else one entry). */
  readonly split: readonly SplitParams[];
};

/** All parameters of a DeFlow model: a plain immutable tree of tensors. */
export type DeflowParams = {
  /** The conditional (RRDB) encoder. */
  readonly encoder: EncoderParams;
  /** Flow levels, first (finest) to last. */
  readonly levels: readonly LevelParams[];
  /** One latent shift per latent, in latent order (split latents, then final). */
  readonly shifts: readonly LatentShiftParams[];
  /**
   * With `config.adaptiveShift`, one per-position scale head per latent (in latent
   * order), else empty.
   */
  readonly shiftScales: readonly ShiftScaleParams[];
  /**
   * With `config.contractShift`, one contraction `G = (I + K·Kᵀ)⁻¹` of the degraded latent
   * per latent (in latent order), else empty.
   */
  readonly shiftContractions: readonly LatentContractionParams[];
};

/** Channels of the conditioning features every flow step sees. */
export const condChannels = (config: ModelConfig): number =>
  rrdbEncoder.outChannels(config.encoder);

/** Fresh parameters from a seed (ActNorms at identity; call `initActNorms` on data). */
export const initParams = (config: ModelConfig, seed: number): DeflowParams => {
  const [encSeed, flowSeed, shiftSeed] = splitSeed(seed, 3);
  const cc = condChannels(config);
  const levels = levelChannels(config).map((lc, li): LevelParams => {
    const ls = foldIn(flowSeed, li);
    return {
      transitions: Array.from(
        { length: config.transitionSteps },
        (_, i) => transitionStep.init({ channels: lc.channels, seed: foldIn(ls, 1000 + i) }),
      ),
      steps: Array.from({ length: config.steps }, (_, i) =>
        flowStep.init({
          channels: lc.channels,
          condChannels: cc,
          hidden: config.hidden,
          injectorHidden: config.injectorHidden,
          linearCoupling: config.linearCoupling,
          seed: foldIn(ls, i),
        })),
      split: lc.emitted > 0 ? [split.init({ channels: lc.channels })] : [],
    };
  });
  const shifts = shiftLatentChannels(config).map((c, i) =>
    latentShift.init({ channels: c, seed: foldIn(shiftSeed, i), scale: config.shiftInit })
  );
  return {
    encoder: rrdbEncoder.init(encSeed, config.encoder, config.imageChannels),
    levels,
    shifts,
    shiftScales: config.adaptiveShift ? shifts.map(() => initShiftScale(cc)) : [],
    shiftContractions: config.contractShift
      ? shiftLatentChannels(config).map((c, i) =>
        initContraction({
          channels: c,
          scale: config.shiftInit / 10,
          seed: foldIn(shiftSeed, 100 + i),
        })
      )
      : [],
  };
};

/**
 * The per-position scale maps of the latent shifts (`config.adaptiveShift`), one per
 * shift latent (`shiftLatents.ts`), `[N, h, w, 1]` at its resolution, from the level
 * features; `null` without `adaptiveShift`. `squared` gives `a²` (for the densities), else
 * `a` (for sampling).
 */
export const latentShiftScales = (
  params: DeflowParams,
  config: ModelConfig,
  features: readonly tf.Tensor4D[],
  squared: boolean,
): tf.Tensor4D[] | null => shiftScalesAt(params, config, (level) => features[level - 1], squared);

/**
 * The shift scales with each head's features from `featuresAt(level)` (1-based), asked
 * only after the heads were checked against the config; `null` without `adaptiveShift`.
 */
const shiftScalesAt = (
  params: DeflowParams,
  config: ModelConfig,
  featuresAt: (level: number) => tf.Tensor4D,
  squared: boolean,
): tf.Tensor4D[] | null => {
  if (!config.adaptiveShift) return null;
  const levelOf = shiftLatentLevels(config);
  if (params.shiftScales.length !== levelOf.length) {
    throw new ShapeError(
      `deflow: the config asks for adaptiveShift but the parameters have ` +
        `${params.shiftScales.length} scale heads for ${levelOf.length} shift latents`,
    );
  }
  return params.shiftScales.map((s, i) =>
    (squared ? shiftScale2 : shiftScale)(s, featuresAt(levelOf[i]))
  );
};

/** The encoder's features of the conditioning input of an image of `height`×`width`. */
const encoderFeatures = (
  params: DeflowParams,
  config: ModelConfig,
  condInput: tf.Tensor4D,
  height: number,
  width: number,
): tf.Tensor4D => {
  const expected = [height / config.conditionFactor, width / config.conditionFactor];
  if (condInput.shape[1] !== expected[0] || condInput.shape[2] !== expected[1]) {
    throw new ShapeError(
      `deflow: conditioning input ${showShape(condInput.shape)} does not match an image of ` +
        `${height}×${width} downscaled by ${config.conditionFactor}`,
    );
  }
  return rrdbEncoder.apply(params.encoder, config.encoder, condInput);
};

/** The encoder's features resized to level `level` (1-based) of a `height`×`width` image. */
const featuresAtLevel = (
  config: ModelConfig,
  feats: tf.Tensor4D,
  level: number,
  height: number,
  width: number,
): tf.Tensor4D => {
  const l = networkLayout(config, height, width).levels[level - 1];
  return l.height === feats.shape[1] && l.width === feats.shape[2]
    ? tf.clone(feats)
    : resizeFeatures(feats, [l.height, l.width]);
};

/**
 * {@linkcode latentShiftScales} straight from a conditioning input (`conditionInput(x)`
 * of an image of `height`×`width`): the same values as
 * `latentShiftScales(params, config, levelFeatures(…), squared)`, with the encoder's
 * features resized only to the levels the scale heads read (with `jointShift`, the coarsest
 * alone), not to every level nor to the residual base. For sampling many noise fields,
 * where only the scales need each field's condition. `null` without `adaptiveShift`.
 */
export const conditionShiftScales = (
  params: DeflowParams,
  config: ModelConfig,
  condInput: tf.Tensor4D,
  height: number,
  width: number,
  squared: boolean,
): tf.Tensor4D[] | null =>
  config.adaptiveShift
    ? tf.tidy(() => {
      let feats: tf.Tensor4D | undefined; // the encoder runs once, after the heads' check
      return shiftScalesAt(params, config, (level) => {
        feats ??= encoderFeatures(params, config, condInput, height, width);
        return featuresAtLevel(config, feats, level, height, width);
      }, squared)!;
    })
    : null;

/**
 * Conditioning features for every level from the conditioning input
 * (`conditionInput(x)`, resolution H/k): the encoder's features resized to each level.
 * With `config.conditionResidual`, one more entry follows the levels' features: the
 * conditioning input upsampled (bicubic) to the image, the base the flow subtracts first
 * (see {@linkcode toResidual}).
 */
export const levelFeatures = (
  params: DeflowParams,
  config: ModelConfig,
  condInput: tf.Tensor4D,
  height: number,
  width: number,
): tf.Tensor4D[] =>
  tf.tidy(() => {
    const feats = encoderFeatures(params, config, condInput, height, width);
    const perLevel = networkLayout(config, height, width).levels.map((_, i) =>
      featuresAtLevel(config, feats, i + 1, height, width)
    );
    return config.conditionResidual
      ? [...perLevel, bicubicResize(condInput, [height, width])]
      : perLevel;
  });

/**
 * Image → the flow's input: `x − up(h₀)` with `config.conditionResidual` (the conditioning
 * input upsampled to the image, the last entry of `features`), else `x`. A shift by a
 * function of the condition only: volume preserving, so no log-det term. It takes the
 * image content that the condition already fixes (brightness, colour, large structures)
 * out of the latents, so the latent shift of the degraded domain cannot absorb content
 * differences between disjoint photo collections.
 */
export const toResidual = (
  config: ModelConfig,
  x: tf.Tensor4D,
  features: readonly tf.Tensor4D[],
): tf.Tensor4D => (config.conditionResidual ? tf.sub(x, features[config.levels]) : x);

/** The inverse of {@linkcode toResidual}: the flow's output → image. */
export const fromResidual = (
  config: ModelConfig,
  r: tf.Tensor4D,
  features: readonly tf.Tensor4D[],
): tf.Tensor4D => (config.conditionResidual ? tf.add(r, features[config.levels]) : r);

/**
 * One member of a level: its ActNorm parameters (transition and flow steps) and its
 * bijector, made with `an` in place of its own ActNorm when given (the data init).
 */
interface LevelMember {
  /** The member's own ActNorm parameters; absent for the squeeze and the split. */
  readonly actNorm?: ActNormParams;
  /** The member's bijector, with `an` as its ActNorm when given. */
  readonly bijector: (an?: ActNormParams) => Bijector;
}

/** A level's members in flow order: squeeze, transition steps, flow steps, optional split. */
const levelMembers = (
  p: LevelParams,
  config: ModelConfig,
  outputs?: ConditionerOutputs,
): LevelMember[] => [
  { bijector: () => squeeze.bijector() },
  ...p.transitions.map((t): LevelMember => ({
    actNorm: t.actNorm,
    bijector: (an = t.actNorm) => transitionStep.bijector({ ...t, actNorm: an }),
  })),
  ...p.steps.map((s, k): LevelMember => ({
    actNorm: s.actNorm,
    bijector: (an = s.actNorm) =>
      flowStep.bijector({ ...s, actNorm: an }, {
        eps: config.eps,
        injectorOutput: outputs?.injectors[k],
        couplingOutput: outputs?.couplings?.[k],
        additiveCoupling: config.additiveCoupling,
        constantScale: config.stationaryScale,
      }),
  })),
  ...p.split.map((s): LevelMember => ({
    bijector: () =>
      split.bijector(s, {
        constantScale: config.linearCoupling || config.constantPriorScale,
      }),
  })),
];

/**
 * Precomputed condition-network outputs of one level's flow steps, one per step (see
 * `FlowStepBijectorOptions.injectorOutput` and `couplingOutput`).
 */
export interface ConditionerOutputs {
  /** The affine injectors' network outputs. */
  readonly injectors: readonly tf.Tensor4D[];
  /** The linear couplings' network outputs (absent for affine couplings). */
  readonly couplings?: readonly tf.Tensor4D[];
}

/**
 * The bijector of one level (squeeze, transitions, steps, split) for given parameters;
 * the sizes come from the parameters. With `outputs` (one per flow step), the steps use
 * those precomputed condition-network outputs instead of running the networks.
 */
export const levelBijector = (
  p: LevelParams,
  config: ModelConfig,
  outputs?: ConditionerOutputs,
): Bijector => chain(...levelMembers(p, config, outputs).map((m) => m.bijector()));

/**
 * The network's levels for {@linkcode multiScaleEncode} / {@linkcode multiScaleDecode}.
 * With `sharedFeatures` (the level features of one input), every affine injector's
 * network output, and every linear coupling's (`config.linearCoupling`), is computed once
 * from them, so that encoding and then decoding with those same features (sampling one
 * tile, or decoding many noise fields under one condition) runs those networks once instead
 * of on every pass.
 */
export const scaleLevels = (
  params: DeflowParams,
  config: ModelConfig,
  sharedFeatures?: readonly tf.Tensor4D[],
): ScaleLevel[] => {
  const lc = levelChannels(config);
  return params.levels.map((p, i) => ({
    bijector: levelBijector(
      p,
      config,
      sharedFeatures
        ? {
          injectors: p.steps.map((s) => convNet.apply(s.injector.net, sharedFeatures[i])),
          couplings: p.steps.every((s) => "linear" in s.coupling)
            ? p.steps.map((s) => convNet.apply(s.coupling.net, sharedFeatures[i]))
            : undefined,
        }
        : undefined,
    ),
    kept: lc[i].kept,
    emitted: lc[i].emitted,
  }));
};

/** The result of {@linkcode encode}. */
export type Encoded = {
  /** Latents in order (split latents, then final), NHWC. */
  readonly latents: tf.Tensor4D[];
  /** Per-sample log|det ∂z/∂x| of the whole flow, `[N]`. */
  readonly logDet: tf.Tensor1D;
};

const checkImage = (config: ModelConfig, x: tf.Tensor4D, what: string) => {
  if (x.rank !== 4 || x.shape[3] !== config.imageChannels) {
    throw new ShapeError(
      `deflow: ${what} must be NHWC with ${config.imageChannels} channels, got ${
        showShape(x.shape)
      }`,
    );
  }
  networkLayout(config, x.shape[1], x.shape[2]);
};

/**
 * Image → latents with the flow's log-det, given precomputed level features (and,
 * optionally, levels from {@linkcode scaleLevels}).
 */
export const encodeWithFeatures = (
  params: DeflowParams,
  config: ModelConfig,
  x: tf.Tensor4D,
  features: readonly tf.Tensor4D[],
  levels?: readonly ScaleLevel[],
): Encoded =>
  tf.tidy(() => {
    checkImage(config, x, "image");
    return multiScaleEncode(
      levels ?? scaleLevels(params, config),
      toResidual(config, x, features),
      features,
    );
  });

/**
 * Latents → image with the log-det of the generative map, given level features (and,
 * optionally, levels from {@linkcode scaleLevels}).
 */
export const decodeWithFeatures = (
  params: DeflowParams,
  config: ModelConfig,
  latents: readonly tf.Tensor4D[],
  features: readonly tf.Tensor4D[],
  levels?: readonly ScaleLevel[],
): { readonly x: tf.Tensor4D; readonly logDet: tf.Tensor1D } =>
  tf.tidy(() => {
    const expected = latentChannels(config);
    if (latents.length !== expected.length) {
      throw new ShapeError(`deflow: ${latents.length} latents given, expected ${expected.length}`);
    }
    latents.forEach((z, i) => {
      if (z.rank !== 4 || z.shape[3] !== expected[i]) {
        throw new ShapeError(
          `deflow: latent ${i} has shape ${showShape(z.shape)}, expected ${expected[i]} channels`,
        );
      }
    });
    const r = multiScaleDecode(levels ?? scaleLevels(params, config), latents, features);
    return { x: fromResidual(config, r.x, features), logDet: r.logDet };
  });

/** Image → latents (computes the conditioning features from `condInput`). */
export const encode = (
  params: DeflowParams,
  config: ModelConfig,
  x: tf.Tensor4D,
  condInput: tf.Tensor4D,
): Encoded =>
  tf.tidy(() => {
    checkImage(config, x, "image");
    const feats = levelFeatures(params, config, condInput, x.shape[1], x.shape[2]);
    return encodeWithFeatures(params, config, x, feats);
  });

/**
 * Latents → image (computes the features from `condInput`). On WebGPU the parameters
 * must come from {@linkcode withInverses} (the 1x1 convolutions' float64 inverses).
 */
export const decode = (
  params: DeflowParams,
  config: ModelConfig,
  latents: readonly tf.Tensor4D[],
  condInput: tf.Tensor4D,
): { readonly x: tf.Tensor4D; readonly logDet: tf.Tensor1D } =>
  tf.tidy(() => {
    const last = latents[latents.length - 1];
    const f = 2 ** config.levels;
    const feats = levelFeatures(params, config, condInput, last.shape[1] * f, last.shape[2] * f);
    return decodeWithFeatures(params, config, latents, feats);
  });

/**
 * New parameters with every 1x1 convolution's inverse precomputed in float64 (needed to
 * decode on WebGPU, and faster everywhere). Only the new inverse tensors are allocated;
 * dispose them with {@linkcode disposeInverses}.
 */
export const withInverses = async (params: DeflowParams): Promise<DeflowParams> => ({
  ...params,
  levels: await Promise.all(params.levels.map(async (l) => ({
    ...l,
    transitions: await Promise.all(l.transitions.map(transitionStep.withInverse)),
    steps: await Promise.all(l.steps.map(flowStep.withInverse)),
  }))),
});

/** Dispose the inverse tensors that {@linkcode withInverses} added. */
export const disposeInverses = (params: DeflowParams): void => {
  for (const l of params.levels) {
    for (const s of [...l.transitions, ...l.steps]) s.invConv.const.inverse?.dispose();
  }
};

/**
 * ActNorm data-dependent initialisation: run the flow on a batch (both domains) through
 * the level walk ({@linkcode multiScaleScan}) and set every ActNorm, in flow order, so that
 * its output has zero mean and unit variance per channel. Returns new parameters; the replaced ActNorm tensors of `params` are disposed
 * only if `disposeOld` is true.
 */
export const initActNorms = (
  params: DeflowParams,
  config: ModelConfig,
  x: tf.Tensor4D,
  condInput: tf.Tensor4D,
  disposeOld = false,
): DeflowParams => {
  const result = tf.tidy(() => {
    const feats = levelFeatures(params, config, condInput, x.shape[1], x.shape[2]);
    // Each level: every member with an ActNorm gets one fitted to its input first.
    const initLevel = (i: number, h: tf.Tensor4D, feature: tf.Tensor4D) => {
      const p = params.levels[i];
      const fitted: ActNormParams[] = [];
      const lds: tf.Tensor1D[] = [];
      let y = h;
      for (const member of levelMembers(p, config)) {
        const an = member.actNorm && actNorm.initFromData(y);
        if (an) fitted.push(an);
        const r = member.bijector(an).forward(y, feature);
        lds.push(r.logDet);
        y = r.y;
      }
      const t = p.transitions.length;
      const value: LevelParams = {
        ...p,
        transitions: p.transitions.map((s, k) => ({ ...s, actNorm: fitted[k] })),
        steps: p.steps.map((s, k) => ({ ...s, actNorm: fitted[t + k] })),
      };
      return { y, logDet: sumLogDets(lds), value };
    };
    const walk = multiScaleScan(
      levelChannels(config),
      initLevel,
      toResidual(config, x, feats),
      feats,
    );
    return { ...params, levels: walk.values } as unknown as tf.TensorContainer;
  }) as unknown as DeflowParams;
  if (disposeOld) {
    for (const l of params.levels) {
      for (const s of [...l.transitions, ...l.steps]) tf.dispose([s.actNorm.bias, s.actNorm.logs]);
    }
  }
  return result;
};
