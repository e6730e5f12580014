/**
 * The degradation contract: a named, parameterised, seeded operator on NHWC image tensors.
 *
 * An operator never disposes its input; it returns a new tensor the caller disposes. It is
 * async because some operators (JPEG) must read the pixels back (WebGPU cannot read
 * synchronously). The same `(x, seed)` always gives the same output.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { foldIn } from "../core/random.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import { imageToTensor, type RgbImage, tensorToImage } from "../image/io.ts";

/** A JSON value used as an operator parameter. */
export type ParamValue =
  | number
  | string
  | boolean
  | readonly ParamValue[]
  | { readonly [k: string]: ParamValue };

/** A seeded degradation operator on `[N, H, W, 3]` tensors in [0, 1]. */
export interface Degradation {
  /** Short operator name, e.g. `"gaussianNoise"`. */
  readonly name: string;
  /** Its parameters (JSON-serialisable), for reports. */
  readonly params: { readonly [k: string]: ParamValue };
  /** Degrade `x` (not disposed) with randomness from `seed`; the caller disposes the result. */
  readonly apply: (x: tf.Tensor4D, seed: number) => Promise<tf.Tensor4D>;
}

/** Check an operator's input is `[N, H, W, 3]`. */
export const checkImageTensor = (name: string, x: tf.Tensor): void => {
  if (x.rank !== 4 || x.shape[3] !== 3) {
    throw new ShapeError(`${name}: expected an [N, H, W, 3] tensor, got ${showShape(x.shape)}`);
  }
};

const showValue = (v: ParamValue): string => {
  if (typeof v === "number") return String(Number(v.toPrecision(6)));
  if (typeof v === "string" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) {
    // Large numeric arrays (kernels) are shown by their shape only.
    const flat = (v as unknown[]).flat(4);
    if (flat.length > 9 && flat.every((e) => typeof e === "number")) {
      const dims: number[] = [];
      for (let a: unknown = v; Array.isArray(a); a = a[0]) dims.push(a.length);
      return `<${dims.join("×")} array>`;
    }
    return `[${v.map(showValue).join(", ")}]`;
  }
  return JSON.stringify(v);
};

/** A one-line description, e.g. `gaussianBlur(sigma=1) → jpeg(quality=30, chroma=420)`. */
export const describe = (op: Degradation): string => {
  if (op.name === "compose") {
    const parts = (op.params.ops as readonly { name: string; params: Degradation["params"] }[])
      .map((p) => describe({ ...p, apply: op.apply } as Degradation));
    return parts.length === 0 ? "identity" : parts.join(" → ");
  }
  const ps = Object.entries(op.params).map(([k, v]) => `${k}=${showValue(v)}`).join(", ");
  return `${op.name}(${ps})`;
};

/**
 * Apply operators in order; operator `i` gets seed `foldIn(seed, i)`. Intermediate
 * tensors are disposed. `compose()` is the identity (returns a clone).
 */
export const compose = (...ops: readonly Degradation[]): Degradation => ({
  name: "compose",
  params: { ops: ops.map((o) => ({ name: o.name, params: o.params })) },
  apply: async (x: tf.Tensor4D, seed: number): Promise<tf.Tensor4D> => {
    let cur: tf.Tensor4D = tf.clone(x);
    for (let i = 0; i < ops.length; i++) {
      const next = await ops[i].apply(cur, foldIn(seed, i));
      cur.dispose();
      cur = next;
    }
    return cur;
  },
});

/** Degrade one {@linkcode RgbImage} (tensors are created and disposed inside). */
export const degradeImage = async (
  op: Degradation,
  img: RgbImage,
  seed: number,
): Promise<RgbImage> => {
  const x = imageToTensor(img);
  try {
    const y = await op.apply(x, seed);
    try {
      return await tensorToImage(y);
    } finally {
      y.dispose();
    }
  } finally {
    x.dispose();
  }
};

/** Degrade several images (any sizes); image `i` gets seed `foldIn(seed, i)`. */
export const degradeImages = async (
  op: Degradation,
  imgs: readonly RgbImage[],
  seed: number,
): Promise<RgbImage[]> => {
  const out: RgbImage[] = [];
  for (let i = 0; i < imgs.length; i++) out.push(await degradeImage(op, imgs[i], foldIn(seed, i)));
  return out;
};
