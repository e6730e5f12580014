/**
 * Training pairs of the downstream proof. One pool of clean crops is cut from the
 * clean-domain photos; each method degrades the same crops its own way, several
 * independent samples per crop, once up front:
 *
 * - `identity`: no degradation (input = clean target);
 * - `white`: fitted white Gaussian noise (`whiteNoiseBaseline`, σ per channel fitted
 *   unpaired on the training domains), 8-bit;
 * - `deflow`: DeFlow samples at τ = 1 from the family's trained model, 8-bit (as
 *   `deflow degrade` writes them);
 * - `true`: the family's true degradation operator (the upper bound).
 *
 * @module
 */
import { tf } from "../../src/tf.ts";
import { foldIn, nextUniform, rng, type RngState } from "../../src/core/random.ts";
import { imagesToTensor, type RgbImage, tensorToImages } from "../../src/image/io.ts";
import { type Degradation, degradeImages } from "../../src/degrade/types.ts";
import { degrade, type SampleOptions, type Sampler } from "../../src/model/sample.ts";
import { type Rgb3, whiteNoiseBaseline } from "../fidelity/evaluate.ts";
import type { PairPool } from "./restorer.ts";

/** The four ways of making training inputs, in table order. */
export const methods = ["identity", "white", "deflow", "true"] as const;

/** One way of making training inputs. */
export type Method = typeof methods[number];

/** Table labels of the methods. */
export const methodLabels: Record<Method, string> = {
  identity: "(a) no degradation",
  white: "(b) fitted white noise",
  deflow: "(c) DeFlow τ = 1",
  true: "(d) true degradation (upper bound)",
};

/**
 * `count` random `size`×`size` crops of `images` (seeded): an image is picked with
 * probability proportional to its number of possible crop positions, then a uniform
 * position in it. Images smaller than `size` are skipped.
 */
export const randomCrops = (
  images: readonly RgbImage[],
  size: number,
  count: number,
  seed: number,
): RgbImage[] => {
  const usable = images.filter((im) => im.width >= size && im.height >= size);
  if (usable.length === 0) throw new RangeError(`randomCrops: no image is ${size}² or larger`);
  const weights = usable.map((im) => (im.width - size + 1) * (im.height - size + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let r: RngState = rng(seed);
  const u = (): number => {
    const [v, next] = nextUniform(r);
    r = next;
    return v;
  };
  return Array.from({ length: count }, () => {
    let pick = u() * total, k = 0;
    while (k < usable.length - 1 && pick >= weights[k]) pick -= weights[k++];
    const im = usable[k];
    const x0 = Math.floor(u() * (im.width - size + 1));
    const y0 = Math.floor(u() * (im.height - size + 1));
    const data = new Float32Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      const src = ((y0 + y) * im.width + x0) * 3;
      data.set(im.data.subarray(src, src + size * 3), y * size * 3);
    }
    return { width: size, height: size, data };
  });
};

/** Flatten same-size images into one NHWC array. */
export const flatten = (imgs: readonly RgbImage[]): Float32Array => {
  const n = imgs[0].width * imgs[0].height * 3;
  const out = new Float32Array(imgs.length * n);
  imgs.forEach((im, i) => out.set(im.data, i * n));
  return out;
};

/** A pool from clean crops and one list of degraded crops per variant. */
export const makePool = (
  clean: readonly RgbImage[],
  variants: readonly (readonly RgbImage[])[],
): PairPool => ({
  size: clean[0].width,
  count: clean.length,
  clean: flatten(clean),
  degraded: variants.map((v) => {
    if (v.length !== clean.length) throw new RangeError("makePool: variant size differs");
    return flatten(v);
  }),
});

/** Round to 8 bits (what a saved PNG holds). */
const to8bit = (y: tf.Tensor4D): tf.Tensor4D =>
  tf.tidy(() => tf.div(tf.round(tf.mul(tf.clipByValue(y, 0, 1), 255)), 255));

/** The sampling choices the proof passes to `degrade` (see `SampleOptions`). */
export type DeflowSampling = Pick<SampleOptions, "noiseAt" | "gridOffsets">;

/**
 * `samples` DeFlow degradations (τ = 1, 8-bit) of every crop, processed `chunk` crops at
 * a time; returns one list per sample. Chunk `k` uses seed `foldIn(seed, k)`.
 */
export const deflowSamples = async (
  sampler: Sampler,
  clean: readonly RgbImage[],
  samples: number,
  seed: number,
  chunk = 32,
  sampling: DeflowSampling = {},
): Promise<RgbImage[][]> => {
  const out: RgbImage[][] = Array.from({ length: samples }, () => []);
  for (let i = 0, k = 0; i < clean.length; i += chunk, k++) {
    const x = imagesToTensor(clean.slice(i, i + chunk));
    const ys = degrade(sampler, x, { temperature: 1, seed: foldIn(seed, k), samples, ...sampling });
    for (let s = 0; s < samples; s++) {
      const y8 = to8bit(ys[s]);
      out[s].push(...await tensorToImages(y8));
      y8.dispose();
    }
    tf.dispose([x, ...ys]);
  }
  return out;
};

/** What each method needs to make its inputs. */
export interface PairSources {
  /** The family's true operator. */
  readonly op: Degradation;
  /** Fitted white-noise σ per channel. */
  readonly sigmas: Rgb3;
  /** The trained DeFlow model, ready to sample. */
  readonly sampler: Sampler;
  /** How DeFlow samples are drawn (`noiseAt`, `gridOffsets`; default: the sampler's defaults). */
  readonly sampling?: DeflowSampling;
}

/** The degraded variants of `clean` for one method (`variants` samples; identity: one). */
export const degradedVariants = async (
  method: Method,
  clean: readonly RgbImage[],
  variants: number,
  src: PairSources,
  seed: number,
): Promise<RgbImage[][]> => {
  switch (method) {
    case "identity":
      return [[...clean]];
    case "white":
    case "true": {
      const out: RgbImage[][] = [];
      for (let v = 0; v < variants; v++) {
        out.push(
          method === "white"
            ? await whiteNoiseBaseline(clean, src.sigmas, foldIn(seed, v))
            : await degradeImages(src.op, clean, foldIn(seed, v)),
        );
      }
      return out;
    }
    case "deflow":
      return await deflowSamples(src.sampler, clean, variants, seed, 32, src.sampling);
  }
};
