/**
 * Fidelity evaluation of degradations: statistics, PSNR/SSIM, set comparison reports.
 *
 * @module
 */
export * from "./fft.ts";
export * from "./stats.ts";
export * from "./metrics.ts";
export * from "./report.ts";
export * from "./structure.ts";
export * from "./blockGrid.ts";
