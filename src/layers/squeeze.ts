/**
 * Squeeze: 2×2 space-to-channels reshuffle (log-det 0).
 *
 * Forward maps `[N, H, W, C]` to `[N, H/2, W/2, 4C]`: input pixel `(2a + i, 2b + j)`,
 * channel `c` goes to output pixel `(a, b)`, channel `c·4 + i·2 + j` (`i` = row offset,
 * `j` = column offset inside the 2×2 block). Inverse undoes it. H and W must be even.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type Bijector, bijector, checkInput, type Shape4, zeroLogDet } from "../core/bijector.ts";
import { ShapeError, showShape } from "../core/errors.ts";
import type { Layer } from "../core/layer.ts";

/** The squeeze layer (no parameters; `init` and `bijector` exist for uniformity). */
export interface SqueezeLayer extends Layer<Record<string, never>> {
  /** The (empty) parameter record; the seed, if given, is ignored. */
  readonly init: (options?: { readonly seed?: number }) => Record<string, never>;
  /** The squeeze bijector (output channel order `c·4 + i·2 + j`); parameters optional. */
  readonly bijector: (params?: Record<string, never>) => Bijector;
}

const NAME = "squeeze";

const forwardShape = (s: Shape4): Shape4 => {
  const [n, h, w, c] = s;
  if (h % 2 !== 0 || w % 2 !== 0) {
    throw new ShapeError(
      `${NAME}: height ${h} and width ${w} must be even (input shape ${showShape(s)})`,
    );
  }
  return [n, h / 2, w / 2, c * 4];
};

const inverseShape = (s: Shape4): Shape4 => {
  const [n, h, w, c] = s;
  if (c % 4 !== 0) {
    throw new ShapeError(
      `${NAME}: inverse needs a channel count divisible by 4, got ${c} (shape ${showShape(s)})`,
    );
  }
  return [n, h * 2, w * 2, c / 4];
};

const squeezeBijector: Bijector = bijector({
  name: NAME,
  forward: (x) => {
    const s = checkInput(NAME, x);
    const [n, h2, w2, c4] = forwardShape(s);
    const c = c4 / 4;
    return tf.tidy(() => {
      // [n·h2, i, w2, j, c] → [n·h2, w2, c, i, j]
      const r = tf.reshape(x, [n * h2, 2, w2, 2, c]);
      const t = tf.transpose(r, [0, 2, 4, 1, 3]);
      return { y: tf.reshape(t, [n, h2, w2, c4]) as tf.Tensor4D, logDet: zeroLogDet(n) };
    });
  },
  inverse: (y) => {
    const s = checkInput(NAME, y);
    const [n, h, w, c] = inverseShape(s);
    const [h2, w2] = [h / 2, w / 2];
    return tf.tidy(() => {
      // [n·h2, w2, c, i, j] → [n·h2, i, w2, j, c]
      const r = tf.reshape(y, [n * h2, w2, c, 2, 2]);
      const t = tf.transpose(r, [0, 3, 1, 4, 2]);
      return { y: tf.reshape(t, [n, h, w, c]) as tf.Tensor4D, logDet: zeroLogDet(n) };
    });
  },
  forwardShape,
  inverseShape,
});

/** The squeeze layer, see the module documentation. */
export const squeeze: SqueezeLayer = {
  init: () => ({}),
  bijector: () => squeezeBijector,
};
