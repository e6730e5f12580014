/**
 * Errors with messages that name the layer and the shapes involved.
 *
 * @module
 */

/** A tensor's shape did not fit a layer; the message names the layer and the shapes. */
export class ShapeError extends Error {
  /**
   * Create the error.
   * @param message full message, starting with the layer name
   */
  constructor(message: string) {
    super(message);
    this.name = "ShapeError";
  }
}

/** A tensor held NaN or ±Infinity where finite values were required. */
export class NonFiniteError extends Error {
  /**
   * Create the error.
   * @param message full message, starting with the layer name
   */
  constructor(message: string) {
    super(message);
    this.name = "NonFiniteError";
  }
}

/** Format a shape as `[a, b, c]`. */
export const showShape = (shape: readonly number[]): string => `[${shape.join(", ")}]`;
