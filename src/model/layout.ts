/**
 * The shapes of a multi-scale DeFlow network for a given image size.
 *
 * Level `l` (1-based) starts with a 2×2 squeeze (resolution H/2^l, channels ×4), then
 * `transitionSteps` transition steps and `steps` conditional flow steps; levels listed in
 * `splitLevels` end with a split that emits half the channels as a latent. The final
 * latent is what remains after the last level. Latents are ordered: split latents by
 * level, then the final one; each has its own latent shift.
 *
 * @module
 */
import { ShapeError } from "../core/errors.ts";
import type { ModelConfig } from "./config.ts";

/** Shapes of one level. */
export interface LevelLayout {
  /** Level number, 1-based. */
  readonly level: number;
  /** Height at this level (after its squeeze). */
  readonly height: number;
  /** Width at this level. */
  readonly width: number;
  /** Channels inside the level (after its squeeze). */
  readonly channels: number;
  /** Channels kept after the level's split (equals `channels` without a split). */
  readonly kept: number;
  /** Channels emitted as a latent by the level's split (0 without a split). */
  readonly emitted: number;
}

/** Shape of one latent (per image). */
export interface LatentLayout {
  /** Level that produced it. */
  readonly level: number;
  /** Height. */
  readonly height: number;
  /** Width. */
  readonly width: number;
  /** Channels. */
  readonly channels: number;
}

/** All shapes of the network for one image size. */
export interface NetworkLayout {
  /** Per-level shapes. */
  readonly levels: readonly LevelLayout[];
  /** Latents in order: split latents by level, then the final latent. */
  readonly latents: readonly LatentLayout[];
}

/** Channel counts per level; they do not depend on the image size. */
export const levelChannels = (
  config: ModelConfig,
): readonly { channels: number; kept: number; emitted: number }[] => {
  const out: { channels: number; kept: number; emitted: number }[] = [];
  let c = config.imageChannels;
  for (let l = 1; l <= config.levels; l++) {
    const channels = c * 4;
    const splits = config.splitLevels.includes(l);
    const kept = splits ? Math.floor(channels / 2) : channels;
    out.push({ channels, kept, emitted: channels - kept });
    c = kept;
  }
  return out;
};

/** Channel counts of the latents, in latent order (they size the latent shifts). */
export const latentChannels = (config: ModelConfig): number[] => {
  const lc = levelChannels(config);
  return [...lc.filter((l) => l.emitted > 0).map((l) => l.emitted), lc[lc.length - 1].kept];
};

/** The level (1-based) that emits each latent, in latent order. */
export const latentLevels = (config: ModelConfig): number[] => {
  const lc = levelChannels(config);
  const split = lc.flatMap((l, i) => (l.emitted > 0 ? [i + 1] : []));
  return [...split, config.levels];
};

/** The multiple of which image sides must be: `2^levels` (and the conditioning factor). */
export const sizeMultiple = (config: ModelConfig): number =>
  Math.max(2 ** config.levels, config.conditionFactor);

/** Shapes for an image of `height × width`; throws a ShapeError if not divisible. */
export const networkLayout = (
  config: ModelConfig,
  height: number,
  width: number,
): NetworkLayout => {
  const m = sizeMultiple(config);
  if (height % m !== 0 || width % m !== 0) {
    throw new ShapeError(
      `deflow: image size ${height}×${width} must be a multiple of ${m} ` +
        `(2^levels with levels = ${config.levels}); pad the image or use degrade(), which pads`,
    );
  }
  const lc = levelChannels(config);
  const levels = lc.map((c, i) => ({
    level: i + 1,
    height: height / 2 ** (i + 1),
    width: width / 2 ** (i + 1),
    ...c,
  }));
  const latents: LatentLayout[] = levels
    .filter((l) => l.emitted > 0)
    .map((l) => ({ level: l.level, height: l.height, width: l.width, channels: l.emitted }));
  const last = levels[levels.length - 1];
  latents.push({ level: last.level, height: last.height, width: last.width, channels: last.kept });
  return { levels, latents };
};
