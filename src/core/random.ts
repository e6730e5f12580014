/**
 * Seeds: pure, splittable 32-bit seeds for reproducible randomness.
 *
 * A seed is an integer. `foldIn(seed, k)` derives an independent child seed; functions
 * that need several random draws derive one child per draw, so results depend only on
 * the seed they were given.
 *
 * @module
 */

/** Mix a 32-bit integer (the `lowbias32` finaliser). */
const mix32 = (x: number): number => {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x;
};

/** A child seed of `seed` for the `k`-th purpose; distinct `k` give independent seeds. */
export const foldIn = (seed: number, k: number): number =>
  mix32((mix32(seed >>> 0) ^ Math.imul((k >>> 0) + 1, 0x9e3779b9)) >>> 0);

/** `n` independent child seeds of `seed`. */
export const splitSeed = (seed: number, n: number): number[] =>
  Array.from({ length: n }, (_, k) => foldIn(seed, k));

/** A tiny deterministic PRNG state (mulberry32): immutable, advance with {@linkcode nextUniform}. */
export interface RngState {
  /** 32-bit state. */
  readonly state: number;
}

/** Start a PRNG from a seed. */
export const rng = (seed: number): RngState => ({ state: mix32(seed >>> 0) });

/** Draw a uniform number in [0, 1) and the next state. */
export const nextUniform = (r: RngState): readonly [number, RngState] => {
  const s = (r.state + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  return [u, { state: s }];
};

/** Draw `n` uniforms in [0, 1) and the next state. */
export const uniforms = (r: RngState, n: number): readonly [Float64Array, RngState] => {
  const out = new Float64Array(n);
  let cur = r;
  for (let i = 0; i < n; i++) {
    const [u, next] = nextUniform(cur);
    out[i] = u;
    cur = next;
  }
  return [out, cur];
};

/** Draw `n` standard normals (Box–Muller) and the next state. */
export const normals = (r: RngState, n: number): readonly [Float64Array, RngState] => {
  const [u, next] = uniforms(r, n + (n % 2));
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r1 = Math.sqrt(-2 * Math.log(1 - u[i]));
    const th = 2 * Math.PI * u[i + 1];
    out[i] = r1 * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r1 * Math.sin(th);
  }
  return [out, next];
};

/**
 * The seed to hand to a tfjs random op (`tf.randomNormal`, `tf.randomUniform`, …) for the
 * integer seed `seed`. tfjs treats a falsy seed as "no seed" and draws from `Math.random()`,
 * so seed 0 would not be reproducible; this maps 0 to 2³², outside the 32-bit seed range
 * (and outside `[-2³¹, 2³²)`), and leaves every other seed unchanged. `undefined` stays
 * `undefined` (an explicitly unseeded draw).
 */
export const tfSeed = <S extends number | undefined>(seed: S): S =>
  (seed === 0 ? 2 ** 32 : seed) as S;
