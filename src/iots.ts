/**
 * io-ts, re-exported under one name with the codec types deflow's public API mentions
 * merged in (hidden from the docs: they are io-ts's own).
 *
 * @module
 */
import * as iots from "io-ts";

/**
 * The `io-ts` namespace.
 * @ignore
 */
export const t: typeof iots = iots;

/** @ignore */
export declare namespace t {
  /** @ignore */
  export type Type<A, O = A, I = unknown> = iots.Type<A, O, I>;
  /** @ignore */
  export type Decoder<I, A> = iots.Decoder<I, A>;
  /** @ignore */
  export type Errors = iots.Errors;
  /** @ignore */
  export type TypeOf<C extends iots.Any> = iots.TypeOf<C>;
  /** @ignore */
  export type Branded<A, B> = iots.Branded<A, B>;
  /** @ignore */
  export type BrandC<C extends iots.Any, B> = iots.BrandC<C, B>;
  /** @ignore */
  export type NumberC = iots.NumberC;
}
