/**
 * A small raster line plot (e.g. training loss curves), with axes, ticks at round
 * numbers and tick labels drawn with a built-in 3×5 pixel digit font.
 *
 * @module
 */
import { filledImage, type RgbImage } from "./io.ts";

/** One line of a plot. */
export interface Series {
  /** Name (for the caller's legend; not drawn). */
  readonly name: string;
  /** Line colour, RGB in [0, 1]. */
  readonly color: readonly [number, number, number];
  /** Points `[x, y]`, drawn in the given order; non-finite points break the line. */
  readonly points: readonly (readonly [number, number])[];
}

/** Options of {@linkcode plotLines}. */
export interface PlotOptions {
  /** Image width (default 640). */
  readonly width?: number;
  /** Image height (default 400). */
  readonly height?: number;
  /** Plot log10(y) (non-positive y are skipped); default false. */
  readonly logY?: boolean;
}

// 3×5 glyphs, rows top to bottom, 3 bits each (4 = left pixel).
const FONT: Record<string, number[]> = {
  "0": [7, 5, 5, 5, 7],
  "1": [2, 6, 2, 2, 7],
  "2": [7, 1, 7, 4, 7],
  "3": [7, 1, 7, 1, 7],
  "4": [5, 5, 7, 1, 1],
  "5": [7, 4, 7, 1, 7],
  "6": [7, 4, 7, 5, 7],
  "7": [7, 1, 1, 1, 1],
  "8": [7, 5, 7, 5, 7],
  "9": [7, 5, 7, 1, 7],
  ".": [0, 0, 0, 0, 2],
  "-": [0, 0, 7, 0, 0],
  "e": [0, 7, 7, 4, 7],
  "+": [0, 2, 7, 2, 0],
};

/** Round tick positions covering [lo, hi] (about `n` of them). */
const niceTicks = (lo: number, hi: number, n = 5): number[] => {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
};

const label = (v: number): string => {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace("e+", "e");
  return String(Number(v.toPrecision(3)));
};

/** Draw series into a new image (white background, black axes). */
export const plotLines = (series: readonly Series[], opts: PlotOptions = {}): RgbImage => {
  const W = opts.width ?? 640, H = opts.height ?? 400;
  const img = filledImage(W, H, [1, 1, 1]);
  const d = img.data;
  const set = (x: number, y: number, c: readonly number[]) => {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    d.set([c[0], c[1], c[2]], (y * W + x) * 3);
  };
  const ty = (y: number) => (opts.logY ? (y > 0 ? Math.log10(y) : NaN) : y);
  const pts = series.flatMap((s) => s.points.map(([x, y]) => [x, ty(y)] as const))
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  let [x0, x1] = pts.length
    ? [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))]
    : [0, 1];
  let [y0, y1] = pts.length
    ? [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))]
    : [0, 1];
  if (x1 === x0) (x0 -= 0.5, x1 += 0.5);
  if (y1 === y0) (y0 -= 0.5, y1 += 0.5);
  const my = 0.05 * (y1 - y0);
  y0 -= my;
  y1 += my;
  const L = 64, R = W - 12, T = 12, B = H - 28; // plot area
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (R - L);
  const py = (y: number) => B - ((y - y0) / (y1 - y0)) * (B - T);
  const text = (s: string, x: number, y: number, scale = 1) => {
    let cx = x;
    for (const ch of s) {
      const g = FONT[ch];
      if (g) {
        for (let r = 0; r < 5; r++) {
          for (let b = 0; b < 3; b++) {
            if (g[r] & (4 >> b)) {
              for (let i = 0; i < scale; i++) {
                for (let j = 0; j < scale; j++) {
                  set(cx + b * scale + j, y + r * scale + i, [0, 0, 0]);
                }
              }
            }
          }
        }
      }
      cx += 4 * scale;
    }
  };
  const grey = [0.88, 0.88, 0.88];
  for (const t of niceTicks(x0, x1)) {
    const X = px(t);
    for (let y = T; y <= B; y++) set(X, y, grey);
    for (let k = 0; k < 4; k++) set(X, B + k, [0, 0, 0]);
    const s = label(t);
    text(s, X - (s.length * 8 - 2) / 2, B + 8, 2);
  }
  for (const t of niceTicks(y0, y1)) {
    const Y = py(t);
    for (let x = L; x <= R; x++) set(x, Y, grey);
    for (let k = 0; k < 4; k++) set(L - k, Y, [0, 0, 0]);
    const s = opts.logY ? label(10 ** t) : label(t);
    text(s, L - 8 - s.length * 8, Y - 5, 2);
  }
  for (let x = L; x <= R; x++) set(x, B, [0, 0, 0]);
  for (let y = T; y <= B; y++) set(L, y, [0, 0, 0]);
  for (const s of series) {
    let prev: [number, number] | undefined;
    for (const [x, yRaw] of s.points) {
      const y = ty(yRaw);
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        prev = undefined;
        continue;
      }
      const cur: [number, number] = [px(x), py(y)];
      if (prev) {
        const n = Math.max(
          1,
          Math.ceil(Math.max(Math.abs(cur[0] - prev[0]), Math.abs(cur[1] - prev[1]))),
        );
        for (let i = 0; i <= n; i++) {
          const X = prev[0] + ((cur[0] - prev[0]) * i) / n,
            Y = prev[1] + ((cur[1] - prev[1]) * i) / n;
          set(X, Y, s.color);
          set(X, Y + 1, s.color); // 2-px line
        }
      } else set(cur[0], cur[1], s.color);
      prev = cur;
    }
  }
  return img;
};
