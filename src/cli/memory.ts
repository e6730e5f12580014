/**
 * A rough estimate of the memory one training step needs, checked before training so that
 * a batch × crop that cannot fit gives a clear message instead of "Array buffer allocation
 * failed" deep inside tfjs.
 *
 * The estimate counts, per sample, the floats of every activation the flow and the
 * conditioning encoder keep for the backward pass (each level's input, the coupling and
 * injector hidden layers, the encoder's dense blocks), times 4 bytes, times 12 (the
 * activations, their gradients, tfjs's temporaries and its pooled buffers: a factor
 * calibrated on the wasm backend), for at least 16 samples (the initialisation batches),
 * plus 0.5 GB for the runtime, the library and the images. Measured peak resident memory
 * of the default config at crop 64 (wasm, 14 photos): 1.08 GB at batch 8 (estimate 2.2 GB),
 * 3.0 GB at batch 32 (estimate 3.8 GB); it errs on the high side.
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";

const BASE_BYTES = 0.5e9;

/** Estimated bytes of one training step for `batch` crops of `crop × crop` pixels. */
export const trainingMemoryBytes = (config: ModelConfig, batch: number, crop: number): number => {
  let perSample = crop * crop * 3 * 2; // the crop and its dequantised copy
  let c = config.imageChannels;
  for (let l = 1; l <= config.levels; l++) {
    const pixels = (crop / 2 ** l) ** 2;
    c *= 4;
    const perStep = 6 * c + 4 * config.hidden + 4 * config.injectorHidden;
    perSample += pixels * (config.transitionSteps * 4 * c + config.steps * perStep);
    if (config.splitLevels.includes(l)) c /= 2;
  }
  const condPixels = (crop / config.conditionFactor) ** 2;
  const e = config.encoder;
  perSample += condPixels * (e.nf * 2 + e.nb * 3 * (4 * e.gc + 2 * e.nf));
  return BASE_BYTES + Math.max(batch, 16) * perSample * 4 * 12;
};

/** `bytes` as a short human-readable size (`1.5 GB`). */
export const formatBytes = (bytes: number): string =>
  bytes >= 1e9
    ? `${(bytes / 1e9).toFixed(1)} GB`
    : bytes >= 1e6
    ? `${(bytes / 1e6).toFixed(0)} MB`
    : `${Math.ceil(bytes / 1e3)} kB`;

/** Memory the estimate may use: 80% of the machine's total, or `undefined` if unknown. */
export const availableMemoryBytes = (): number | undefined => {
  try {
    return Deno.systemMemoryInfo().total * 0.8;
  } catch {
    return undefined;
  }
};

/** The wasm backend's heap limit (32-bit WebAssembly memory). */
export const WASM_MEMORY_BYTES = 4 * 2 ** 30;

/**
 * Why `batch × crop` cannot fit in `limit` bytes (one line naming the options), or
 * `undefined` when it fits.
 */
export const memoryProblem = (
  config: ModelConfig,
  batch: number,
  crop: number,
  limit: number,
  where: string,
): string | undefined => {
  const need = trainingMemoryBytes(config, batch, crop);
  if (need <= limit) return undefined;
  const perSample = (trainingMemoryBytes(config, 16, crop) - BASE_BYTES) / 16;
  const maxBatch = Math.floor((limit - BASE_BYTES) / perSample);
  return `--batch ${batch} × --crop ${crop}: a training step needs about ${
    formatBytes(need)
  }, more than the ${formatBytes(limit)} ${where}; ${
    maxBatch >= 16 ? `use --batch ${maxBatch} or less` : "use a smaller --crop"
  }`;
};
