/**
 * The tile plan of large-image sampling: the image is cut into cores of whole
 * `2^levels` blocks, each processed with `overlap` pixels of context on every side, so
 * that every pixel comes from exactly one tile and memory stays bounded by the tile size.
 *
 * Every window starts on a multiple of `2^levels` of the whole image (the overlap is
 * rounded up to it and the core is whole blocks), so each tile meets the flow's block grid
 * at the image's own phase, as the training crops do: a model of a degradation with a
 * grid anchored at the image origin (JPEG's 8×8 blocks) puts that grid where it belongs
 * in every tile. Used by `degrade` and by the web page's tile-by-tile sampling.
 *
 * @module
 */

/** One tile: its core (output rectangle) and the window around it that is processed. */
export interface Tile {
  /** Tile index, row-major (the `t` of the tile's seed). */
  readonly index: number;
  /** Core rows `[y0, y1)`. */
  readonly y0: number;
  /** End row of the core (exclusive). */
  readonly y1: number;
  /** Core columns `[x0, x1)`. */
  readonly x0: number;
  /** End column of the core (exclusive). */
  readonly x1: number;
  /** Context on each side (0 when the image is a single tile). */
  readonly overlap: number;
  /** Window height (a multiple of `multiple`). */
  readonly height: number;
  /** Window width (a multiple of `multiple`). */
  readonly width: number;
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/**
 * The tiles for an `h`×`w` image and a model whose sizes are multiples of `multiple`
 * (`2^levels`): windows of at most about `tile` pixels a side with `overlap` pixels of
 * context (rounded up to `multiple`). One tile when the image fits in `tile`.
 */
export const planTiles = (
  h: number,
  w: number,
  multiple: number,
  tile = 512,
  overlap = 16,
): Tile[] => {
  const side = Math.max(tile, multiple);
  const single = h <= side && w <= side;
  const ov = single ? 0 : roundUp(overlap, multiple);
  const core = Math.max(multiple, Math.floor((side - 2 * ov) / multiple) * multiple);
  const coreH = single ? h : core;
  const coreW = single ? w : core;
  const tiles: Tile[] = [];
  for (let y0 = 0; y0 < h; y0 += coreH) {
    const y1 = Math.min(h, y0 + coreH);
    for (let x0 = 0; x0 < w; x0 += coreW) {
      const x1 = Math.min(w, x0 + coreW);
      tiles.push({
        index: tiles.length,
        y0,
        y1,
        x0,
        x1,
        overlap: ov,
        height: roundUp(y1 - y0 + 2 * ov, multiple),
        width: roundUp(x1 - x0 + 2 * ov, multiple),
      });
    }
  }
  return tiles;
};
