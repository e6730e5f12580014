/**
 * fast-check's `Arbitrary` type under a name the docs may mention (it is fast-check's own).
 *
 * @module
 */
import type * as fcm from "fast-check";

/** @ignore */
export declare namespace fcTypes {
  /** A fast-check arbitrary (generator) of values of type `T`. @ignore */
  export type Arbitrary<T> = fcm.Arbitrary<T>;
}
