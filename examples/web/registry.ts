/**
 * The law registry for the browser kit page: every exported layer and combinator of the
 * library as a case of `@x/deflow/testing`, the same cases `test/registry_test.ts` runs
 * (they live in `src/testing/registry.ts`).
 *
 * @module
 */
import type { BijectorCase, LayerDraw } from "../../src/testing/mod.ts";
import { registryCases } from "../../src/testing/registry.ts";

export { combinatorCases, layerCases } from "../../src/testing/registry.ts";

/** The whole registry: layers, then combinators. */
export const registry: readonly BijectorCase<LayerDraw>[] = registryCases;
