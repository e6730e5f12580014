/**
 * Arrange images in a grid (for comparison pictures).
 *
 * @module
 */
import { filledImage, type RgbImage } from "./io.ts";

/** Options of {@linkcode makeGrid}. */
export interface GridOptions {
  /** Gap between cells and around the border, pixels (default 2). */
  readonly pad?: number;
  /** Background colour (default white). */
  readonly background?: readonly [number, number, number];
}

/**
 * One image from rows of images: each column is as wide as its widest image, each row as
 * tall as its tallest; images are centred in their cells. Rows may have different lengths.
 */
export const makeGrid = (
  rows: readonly (readonly RgbImage[])[],
  opts: GridOptions = {},
): RgbImage => {
  const pad = opts.pad ?? 2;
  const bg = opts.background ?? [1, 1, 1];
  if (rows.length === 0 || rows.every((r) => r.length === 0)) {
    throw new RangeError("makeGrid: no images");
  }
  const ncol = Math.max(...rows.map((r) => r.length));
  const colW = Array.from(
    { length: ncol },
    (_, j) => Math.max(0, ...rows.map((r) => r[j]?.width ?? 0)),
  );
  const rowH = rows.map((r) => Math.max(0, ...r.map((im) => im.height)));
  const W = colW.reduce((a, b) => a + b, 0) + pad * (ncol + 1);
  const H = rowH.reduce((a, b) => a + b, 0) + pad * (rows.length + 1);
  const out = filledImage(W, H, [bg[0], bg[1], bg[2]]);
  let y0 = pad;
  rows.forEach((r, i) => {
    let x0 = pad;
    for (let j = 0; j < ncol; j++) {
      const im = r[j];
      if (im) {
        const ox = x0 + Math.floor((colW[j] - im.width) / 2);
        const oy = y0 + Math.floor((rowH[i] - im.height) / 2);
        for (let y = 0; y < im.height; y++) {
          out.data.set(
            im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3),
            ((oy + y) * W + ox) * 3,
          );
        }
      }
      x0 += colW[j] + pad;
    }
    y0 += rowH[i] + pad;
  });
  return out;
};
