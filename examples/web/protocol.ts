/**
 * Messages between the degrade page (`app.ts`) and its worker (`worker.ts`).
 *
 * @module
 */

/** Page → worker. */
export type Request =
  | {
    readonly type: "init";
    /** `auto`: WebGPU when the browser has an adapter, else wasm. */
    readonly backend: "auto" | "webgpu" | "wasm";
    /** URL prefix of the tfjs wasm binaries. */
    readonly wasmPath: string;
  }
  | { readonly type: "model"; readonly name: string; readonly bytes: ArrayBuffer }
  | { readonly type: "image"; readonly name: string; readonly bytes: ArrayBuffer }
  | {
    readonly type: "degrade";
    readonly seed: number;
    readonly temperature: number;
    readonly samples: number;
    readonly tile: number;
  };

/** Worker → page. */
export type Reply =
  | {
    readonly type: "ready";
    readonly backend: string;
    readonly adapter: Record<string, string>;
    readonly adapterLine: string;
  }
  | {
    readonly type: "model";
    readonly name: string;
    readonly steps: number;
    readonly summary: string;
  }
  | {
    readonly type: "image";
    readonly name: string;
    readonly width: number;
    readonly height: number;
    readonly rgba: Uint8ClampedArray;
  }
  | {
    readonly type: "progress";
    readonly sample: number;
    readonly samples: number;
    readonly tile: number;
    readonly tiles: number;
  }
  | {
    readonly type: "sample";
    readonly sample: number;
    readonly rgba: Uint8ClampedArray;
    /** The PNG `deflow degrade` would write for this sample. */
    readonly png: Uint8Array;
    /** Wall time of this sample in milliseconds. */
    readonly millis: number;
  }
  | { readonly type: "done"; readonly millis: number; readonly backend: string }
  | { readonly type: "error"; readonly message: string };
