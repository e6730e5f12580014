/**
 * Backend selection: WebGPU on a real GPU, the wasm backend otherwise.
 *
 * On a software WebGPU adapter (Mesa llvmpipe) the wasm backend is about 5× faster,
 * so `auto` prefers wasm there. An explicit choice comes from the `backend` option or
 * the `DEFLOW_BACKEND` environment variable (`webgpu`, `wasm`, `cpu` or `auto`).
 *
 * **Teardown.** Once the WebGPU backend has been activated, an `unload` listener releases
 * it when the program (or `deno test`) exits: tfjs's engine is reset (every backend's
 * buffers are destroyed) and the GPU device is destroyed while the runtime is still
 * intact. Left to the process exit, wgpu/Mesa freed the same resources from two places
 * and glibc sometimes aborted with `double free or corruption` (exit 134) after all tests
 * had passed. {@linkcode disposeBackends} does the same on demand.
 *
 * @module
 */
import { tf } from "../tf.ts";

/** A backend deflow can run on. */
export type BackendName = "webgpu" | "wasm" | "cpu";

/** What {@linkcode initBackend} chose, and why. */
export interface BackendInfo {
  /** The tfjs backend now active. */
  readonly backend: BackendName;
  /** Description of the WebGPU adapter, or `"none"`. */
  readonly adapter: string;
  /** True when the WebGPU adapter is a software (fallback) rasteriser. */
  readonly softwareAdapter: boolean;
  /** Why this backend was picked. */
  readonly reason: string;
}

/** Options for {@linkcode initBackend}. */
export interface BackendOptions {
  /** Backend to use; `auto` (default) or `DEFLOW_BACKEND` when omitted. */
  readonly backend?: BackendName | "auto";
  /** Print the one-line choice (default true). */
  readonly log?: boolean;
}

const isBackendName = (s: string): s is BackendName | "auto" =>
  s === "webgpu" || s === "wasm" || s === "cpu" || s === "auto";

interface AdapterLike {
  readonly info?: { readonly description?: string; readonly isFallbackAdapter?: boolean };
  readonly isFallbackAdapter?: boolean;
}

const probeAdapter = async (): Promise<AdapterLike | null> => {
  const gpu = (globalThis.navigator as unknown as {
    gpu?: { requestAdapter(): Promise<AdapterLike | null> };
  }).gpu;
  if (!gpu) return null;
  try {
    return await gpu.requestAdapter();
  } catch {
    return null;
  }
};

const describe = (a: AdapterLike | null): { name: string; software: boolean } => {
  if (!a) return { name: "none", software: true };
  const desc = a.info?.description ?? "unknown adapter";
  const software = a.info?.isFallbackAdapter === true || a.isFallbackAdapter === true ||
    /llvmpipe|swiftshader|lavapipe|softpipe|software/i.test(desc);
  return { name: desc, software };
};

const envBackend = (): string | undefined => {
  try {
    return Deno.env.get("DEFLOW_BACKEND") ?? undefined;
  } catch {
    return undefined;
  }
};

let webgpuLoaded = false;
let wasmLoaded = false;
let teardownInstalled = false;

interface DeviceHolder {
  readonly device?: { destroy?: () => void };
}

/**
 * Release every tfjs backend (buffers, textures, kernels) and destroy the WebGPU device.
 * tfjs is left with no backend: call {@linkcode initBackend} again to continue. Runs
 * automatically at program exit once WebGPU was used.
 */
export const disposeBackends = (): void => {
  let device: DeviceHolder["device"];
  try {
    device = (tf.findBackend("webgpu") as DeviceHolder | null)?.device;
  } catch {
    device = undefined;
  }
  try {
    tf.engine().reset();
  } catch {
    // already torn down
  }
  try {
    device?.destroy?.();
  } catch {
    // already destroyed
  }
};

const installTeardown = (): void => {
  if (teardownInstalled) return;
  teardownInstalled = true;
  globalThis.addEventListener("unload", () => disposeBackends());
};

const activate = async (name: BackendName): Promise<void> => {
  if (name === "webgpu" && !webgpuLoaded) {
    await import("@tensorflow/tfjs-backend-webgpu");
    webgpuLoaded = true;
  }
  if (name === "webgpu") installTeardown();
  if (name === "wasm" && !wasmLoaded) {
    await import("@tensorflow/tfjs-backend-wasm");
    wasmLoaded = true;
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`backend: could not initialise the ${name} backend`);
  await tf.ready();
};

/**
 * Initialise tfjs: pick WebGPU on a real GPU adapter, wasm on a software adapter or none,
 * or the backend named by the option / `DEFLOW_BACKEND`. Prints one line saying which
 * backend and adapter were chosen (unless `log: false`).
 */
export const initBackend = async (options: BackendOptions = {}): Promise<BackendInfo> => {
  const requested = options.backend ?? envBackend() ?? "auto";
  if (!isBackendName(requested)) {
    throw new Error(
      `backend: unknown backend "${requested}" (expected webgpu, wasm, cpu or auto)`,
    );
  }
  const adapter = await probeAdapter();
  const { name, software } = describe(adapter);
  let backend: BackendName;
  let reason: string;
  if (requested === "auto") {
    if (adapter && !software) {
      backend = "webgpu";
      reason = "real GPU adapter";
    } else {
      backend = "wasm";
      reason = adapter ? "software WebGPU adapter is slower than wasm" : "no WebGPU adapter";
    }
  } else {
    if (requested === "webgpu" && !adapter) {
      throw new Error("backend: webgpu requested but navigator.gpu gives no adapter");
    }
    backend = requested;
    reason = options.backend ? "requested by option" : "requested by DEFLOW_BACKEND";
  }
  if (tf.getBackend() !== backend) await activate(backend);
  const info: BackendInfo = { backend, adapter: name, softwareAdapter: software, reason };
  if (options.log ?? true) {
    console.error(
      `deflow: backend ${backend} (WebGPU adapter: ${name}${
        adapter && software ? ", software" : ""
      }; ${reason})`,
    );
  }
  return info;
};
