/**
 * JSON helpers.
 *
 * @module
 */

/** JSON with object keys sorted at every depth (an order-independent comparison key). */
export const canonicalJson = (v: unknown): string =>
  JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)))
        : x,
  );
