/**
 * What the browser says about the WebGPU adapter that tfjs's WebGPU backend is using.
 *
 * @module
 */
import { tf } from "../../src/tf.ts";

/**
 * The adapter information of the active WebGPU backend's device (vendor, architecture,
 * device, description), or `{}` when the active backend is not WebGPU.
 */
export const webgpuAdapterInfo = (): Record<string, string> => {
  if (tf.getBackend() !== "webgpu") return {};
  const b = tf.backend() as unknown as {
    device?: { adapterInfo?: Record<string, unknown> };
    adapterInfo?: Record<string, unknown>;
  };
  // GPUDevice.adapterInfo (the device's own adapter) where the browser has it.
  const src = b.device?.adapterInfo ?? {};
  const out: Record<string, string> = {};
  for (const k of ["vendor", "architecture", "device", "description"]) {
    const v = (src as Record<string, unknown>)[k];
    if (typeof v === "string") out[k] = v;
  }
  return out;
};

/** One line for an adapter: `vendor architecture (description)`. */
export const describeAdapter = (a: Record<string, string>): string => {
  const main = [a.vendor, a.architecture].filter(Boolean).join(" ");
  const extra = [a.device, a.description].filter(Boolean).join(", ");
  return (main || "unknown adapter") + (extra ? ` (${extra})` : "");
};
