/**
 * The bridge between 2-D tfjs tensors (float32, on any backend) and the float64
 * {@linkcode Matrix} of `dense.ts`.
 *
 * Reading is asynchronous (`await t.data()`), because the WebGPU backend cannot read
 * synchronously.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { Matrix } from "./dense.ts";

/**
 * Read a rank-2 tensor into a float64 {@linkcode Matrix} (asynchronous; works on WebGPU).
 * The tensor is not disposed. Throws a ShapeError for a tensor that is not rank 2.
 */
export const toMatrix = async (t: tf.Tensor2D): Promise<Matrix> => {
  if (t.rank !== 2) {
    throw new ShapeError(`toMatrix: expected a rank-2 tensor, got shape ${showShape(t.shape)}`);
  }
  const [rows, cols] = t.shape;
  const values = await t.data();
  return { rows, cols, data: Float64Array.from(values as ArrayLike<number>) };
};

/**
 * A float32 rank-2 tensor holding the entries of a float64 {@linkcode Matrix}
 * (rounded to float32). The caller owns (and disposes) the tensor.
 */
export const fromMatrix = (m: Matrix): tf.Tensor2D => {
  if (m.data.length !== m.rows * m.cols) {
    throw new ShapeError(
      `fromMatrix: ${m.data.length} entries for a ${m.rows}×${m.cols} matrix`,
    );
  }
  return tf.tensor2d(Float32Array.from(m.data), [m.rows, m.cols], "float32");
};
