/**
 * Radix-2 complex FFT in float64 (1-D in place, and 2-D power spectra).
 *
 * @module
 */

/** In-place forward DFT `X[k] = Σ x[n]·exp(−2πi·kn/N)` of `re`/`im` (length a power of 2). */
export const fft = (re: Float64Array, im: Float64Array): void => {
  const n = re.length;
  if (im.length !== n || n === 0 || (n & (n - 1)) !== 0) {
    throw new RangeError(`fft: length must be a power of 2 (re ${n}, im ${im.length})`);
  }
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang), wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1, ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k, b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const nr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = nr;
      }
    }
  }
};

/**
 * Power spectrum `|F(u, v)|² / (n·n)` of a real n×n field (row-major, n a power of 2):
 * for white noise of variance v its expectation is v at every frequency.
 */
export const powerSpectrum2d = (field: Float64Array, n: number): Float64Array => {
  if (field.length !== n * n) throw new RangeError(`powerSpectrum2d: ${field.length} ≠ ${n}²`);
  const re = Float64Array.from(field), im = new Float64Array(n * n);
  const rr = new Float64Array(n), ri = new Float64Array(n);
  for (let y = 0; y < n; y++) {
    rr.set(re.subarray(y * n, y * n + n));
    ri.set(im.subarray(y * n, y * n + n));
    fft(rr, ri);
    re.set(rr, y * n);
    im.set(ri, y * n);
  }
  for (let x = 0; x < n; x++) {
    for (let y = 0; y < n; y++) {
      rr[y] = re[y * n + x];
      ri[y] = im[y * n + x];
    }
    fft(rr, ri);
    for (let y = 0; y < n; y++) {
      re[y * n + x] = rr[y];
      im[y * n + x] = ri[y];
    }
  }
  const p = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) p[i] = (re[i] * re[i] + im[i] * im[i]) / (n * n);
  return p;
};
