/**
 * The degrade page's worker: all tfjs work happens here, off the main thread. It loads a
 * checkpoint from bytes, decodes the photo with the library's own PNG/JPEG decoder (as
 * `deflow degrade` does), and degrades it tile by tile (`./tiles.ts`), posting progress
 * after every tile and each sample as RGBA (for display) and as the PNG `deflow degrade`
 * would write (for download). Same seed, same file name ⇒ the seed `deflow degrade
 * --seed S` uses for that file.
 *
 * @module
 */
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { either as E } from "fp-ts";
import { tf } from "../../src/tf.ts";
import { initBackend } from "../../src/core/backend.ts";
import { disposeParams } from "../../src/core/params.ts";
import {
  decodeImage,
  encodePng,
  imageToTensor,
  type RgbImage,
  toBytes,
} from "../../src/image/io.ts";
import { type LoadedModel, loadModelBytes } from "../../src/io/builtin.ts";
import { prepareSampler, type Sampler } from "../../src/model/sample.ts";
import { cliImageSeed, degradeByTiles } from "./tiles.ts";
import { describeAdapter, webgpuAdapterInfo } from "./gpu.ts";
import type { Reply, Request } from "./protocol.ts";

const post = (r: Reply, transfer: Transferable[] = []) =>
  (self as unknown as { postMessage(m: unknown, t: Transferable[]): void }).postMessage(
    r,
    transfer,
  );

let model: LoadedModel | undefined;
let sampler: Sampler | undefined;
let image: { name: string; img: RgbImage } | undefined;

const rgbaOf = (img: RgbImage): Uint8ClampedArray => {
  const out = new Uint8ClampedArray(img.width * img.height * 4);
  for (let i = 0, j = 0; i < img.data.length; i += 3, j += 4) {
    out[j] = toBytes(img.data[i]);
    out[j + 1] = toBytes(img.data[i + 1]);
    out[j + 2] = toBytes(img.data[i + 2]);
    out[j + 3] = 255;
  }
  return out;
};

/** The browser's WebGPU adapter information, or `undefined` when it has none. */
const probeAdapter = async (): Promise<Record<string, string> | undefined> => {
  const gpu = (navigator as unknown as {
    gpu?: { requestAdapter(): Promise<{ info?: Record<string, string> } | null> };
  }).gpu;
  if (!gpu) return undefined;
  try {
    const a = await gpu.requestAdapter();
    return a
      ? {
        ...(a.info
          ? Object.fromEntries(
            ["vendor", "architecture", "device", "description"].map((k) => [k, a.info![k] ?? ""]),
          )
          : {}),
      }
      : undefined;
  } catch {
    return undefined;
  }
};

const handle = async (m: Request): Promise<void> => {
  switch (m.type) {
    case "init": {
      setWasmPaths(m.wasmPath);
      const probed = await probeAdapter();
      const backend = m.backend === "auto" ? (probed ? "webgpu" : "wasm") : m.backend;
      await initBackend({ backend, log: false });
      const adapter = webgpuAdapterInfo();
      post({
        type: "ready",
        backend: tf.getBackend(),
        adapter,
        adapterLine: tf.getBackend() === "webgpu"
          ? describeAdapter(adapter)
          : `none used (WebGPU adapter: ${probed ? describeAdapter(probed) : "none"})`,
      });
      return;
    }
    case "model": {
      const loaded = await loadModelBytes(new Uint8Array(m.bytes), m.name);
      sampler?.dispose();
      if (model) disposeParams(model.params);
      model = loaded;
      sampler = await prepareSampler(loaded.params, loaded.config, loaded.normalization);
      const c = loaded.config;
      post({
        type: "model",
        name: m.name,
        steps: loaded.steps,
        summary: `${c.levels} levels × ${c.steps} steps, hidden ${c.hidden}`,
      });
      return;
    }
    case "image": {
      const dec = decodeImage(new Uint8Array(m.bytes), m.name);
      if (E.isLeft(dec)) throw dec.left;
      image = { name: m.name, img: dec.right };
      const rgba = rgbaOf(dec.right);
      post(
        { type: "image", name: m.name, width: dec.right.width, height: dec.right.height, rgba },
        [rgba.buffer as ArrayBuffer],
      );
      return;
    }
    case "degrade": {
      if (!sampler) throw new Error("no model loaded");
      if (!image) throw new Error("no image loaded");
      const t0 = performance.now();
      const x = imageToTensor(image.img);
      try {
        const seed = cliImageSeed(m.seed, image.name);
        for (let s = 0; s < m.samples; s++) {
          const ts = performance.now();
          const data = await degradeByTiles(sampler, x, {
            seed,
            temperature: m.temperature,
            sample: s,
            tile: m.tile,
            onTile: (done, total) =>
              post({ type: "progress", sample: s, samples: m.samples, tile: done, tiles: total }),
          });
          const out: RgbImage = { width: image.img.width, height: image.img.height, data };
          const rgba = rgbaOf(out);
          const png = encodePng(out);
          post(
            { type: "sample", sample: s, rgba, png, millis: performance.now() - ts },
            [rgba.buffer as ArrayBuffer, png.buffer as ArrayBuffer],
          );
        }
      } finally {
        x.dispose();
      }
      post({ type: "done", millis: performance.now() - t0, backend: tf.getBackend() });
      return;
    }
  }
};

// One request at a time, in order.
let queue: Promise<void> = Promise.resolve();
self.addEventListener("message", (ev) => {
  const m = (ev as MessageEvent<Request>).data;
  queue = queue.then(() => handle(m)).catch((e) =>
    post({ type: "error", message: e instanceof Error ? e.message : String(e) })
  );
});
