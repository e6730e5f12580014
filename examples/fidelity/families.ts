/**
 * The degradation families of the fidelity suite and the downstream proof. Each is a
 * documented, seeded operator ending in 8-bit values (real degraded photos are 8-bit).
 * Two families are **held out**: they were never used to choose a model change, a default
 * or a hyper-parameter, and are reported separately.
 *
 * @module
 */
import {
  clip01,
  compose,
  correlatedNoise,
  type Degradation,
  gaussianBlur,
  gaussianKernel2d,
  gaussianNoise,
  isotropicCov,
  jpegCompress,
  linearToSrgb,
  poissonGaussianNoise,
  quantize8,
  srgbToLinear,
} from "../../src/degrade/mod.ts";

/** One family of the suite. */
export interface Family {
  /** Short name (`--family NAME`). */
  readonly name: string;
  /** One line for reports. */
  readonly summary: string;
  /** Held out of all tuning (reported separately). */
  readonly heldOut: boolean;
  /** True where fitted white noise is the true model (the done-criteria exempt it). */
  readonly whiteIsTrue: boolean;
  /** The degradation operator. */
  readonly make: () => Degradation;
}

/** A 3×3 covariance with per-channel std `s` and correlation `rho` between channels. */
const channelCorrelated = (s: number, rho: number): number[][] =>
  [0, 1, 2].map((i) => [0, 1, 2].map((j) => (i === j ? 1 : rho) * s * s));

/** `δ − G_σ` on a (2r+1)² support: a high-pass kernel (fine grain). */
const highPassKernel = (sigma: number): number[][] => {
  const g = gaussianKernel2d(sigma);
  const r = (g.length - 1) / 2;
  return g.map((row, i) => row.map((v, j) => (i === r && j === r ? 1 : 0) - v));
};

/** Every family; the suite runs them all unless `--family` picks some. */
export const families: readonly Family[] = [
  {
    name: "grain",
    summary: "strong fine-grained high-pass noise (δ − G₁ filtered, σ 0.06, channel ρ 0.5), " +
      "no compression",
    heldOut: false,
    whiteIsTrue: false,
    make: () =>
      compose(
        correlatedNoise({ kernel: highPassKernel(1), cov: channelCorrelated(0.06, 0.5) }),
        quantize8(),
      ),
  },
  {
    name: "smooth-jpeg",
    summary: "spatially smoothed (G₀.₇) channel-correlated noise (σ 0.04, ρ 0.6), then JPEG q70 " +
      "4:2:0",
    heldOut: false,
    whiteIsTrue: false,
    make: () =>
      compose(
        correlatedNoise({ kernel: gaussianKernel2d(0.7), cov: channelCorrelated(0.04, 0.6) }),
        jpegCompress({ quality: 70, chroma: "420" }),
      ),
  },
  {
    name: "poisson",
    summary: "signal-dependent Poisson–Gaussian noise, variance 0.01·x + 0.01²",
    heldOut: false,
    whiteIsTrue: false,
    make: () => compose(poissonGaussianNoise({ a: 0.01, b: 0.01 }), quantize8()),
  },
  {
    name: "jpeg",
    summary: "JPEG q30 4:2:0 alone",
    heldOut: false,
    whiteIsTrue: false,
    make: () => jpegCompress({ quality: 30, chroma: "420" }),
  },
  {
    name: "blur-noise",
    summary: "Gaussian blur σ 1 px, then white Gaussian noise σ 0.03",
    heldOut: true,
    whiteIsTrue: false,
    make: () =>
      compose(
        gaussianBlur({ sigma: 1 }),
        gaussianNoise({ cov: isotropicCov(0.03) }),
        clip01(),
        quantize8(),
      ),
  },
  {
    name: "camera",
    summary: "camera-like: shot + read noise in linear light (0.004·x + 0.004²), sRGB gamma, " +
      "JPEG q80 4:2:0",
    heldOut: true,
    whiteIsTrue: false,
    make: () =>
      compose(
        srgbToLinear(),
        poissonGaussianNoise({ a: 0.004, b: 0.004 }),
        linearToSrgb(),
        jpegCompress({ quality: 80, chroma: "420" }),
      ),
  },
];

/**
 * Diagnostic families, run only when named (`--family none`): `none` leaves the degraded
 * domain's photos as they are, so whatever DeFlow adds to a clean image is the content
 * difference between the two photo collections that its shift absorbed, not a degradation.
 */
export const diagnosticFamilies: readonly Family[] = [
  {
    name: "none",
    summary: "no degradation: the degraded domain is the other scenes' photos as they are " +
      "(DeFlow's noise here is the collections' content difference absorbed by the shift)",
    heldOut: false,
    whiteIsTrue: false,
    make: () => quantize8(),
  },
];

/** The family named `name` (suite or diagnostic), or an error listing the names. */
export const familyByName = (name: string): Family => {
  const all = [...families, ...diagnosticFamilies];
  const f = all.find((x) => x.name === name);
  if (!f) {
    throw new Error(`unknown family "${name}" (one of ${all.map((x) => x.name).join(", ")})`);
  }
  return f;
};
