/**
 * The degrade page (`index.html`): pick or drop a photo, choose the shipped model or an
 * uploaded checkpoint, set temperature, seed and the number of samples, and degrade. All
 * tfjs work runs in `worker.ts`; this script only drives the DOM. The samples are shown
 * beside the input with a zoomed crop (click the input to move it), with a progress bar
 * over tiles and a PNG download per sample. The state is mirrored on `globalThis.__deflow`
 * for the browser test. `?backend=wasm|webgpu` forces a backend (default: WebGPU when the
 * browser has an adapter, else wasm); `?tile=N` sets the tile side (default 512, as
 * `deflow degrade --tile`).
 *
 * @module
 */
import type { Reply, Request } from "./protocol.ts";
import { doc, type El, imageData, type ImageDataLike } from "./dom.ts";

/** What the page exposes for tests and for the curious. */
export interface PageState {
  /** The worker's backend is up. */
  ready: boolean;
  /** tfjs backend in use. */
  backend: string;
  /** Adapter of the WebGPU device (empty on wasm). */
  adapter: Record<string, string>;
  /** Loaded model name, if any. */
  model?: string;
  /** Loaded image name and size, if any. */
  image?: { name: string; width: number; height: number };
  /** A run is in progress. */
  busy: boolean;
  /** Runs finished so far. */
  runs: number;
  /** Wall time of the last run (ms), whole and per sample. */
  millis: number;
  /** Per-sample wall times of the last run (ms). */
  sampleMillis: number[];
  /** PNG files of the last run's samples. */
  pngs: Uint8Array[];
  /** Progress updates seen in the last run. */
  progressEvents: number;
  /** Last error message. */
  error?: string;
}

const ZOOM = 3;
const CROP = 96;
const state: PageState = {
  ready: false,
  backend: "",
  adapter: {},
  busy: false,
  runs: 0,
  millis: 0,
  sampleMillis: [],
  pngs: [],
  progressEvents: 0,
};
(globalThis as unknown as { __deflow: PageState }).__deflow = state;

const document = doc();
const $ = (id: string): El => document.getElementById(id);
const params = new URLSearchParams(location.search);
const worker = new Worker(new URL("./dist/worker.js", location.href), { type: "module" });
const send = (r: Request, transfer: Transferable[] = []) => worker.postMessage(r, transfer);

let inputImage: ImageDataLike | undefined;
let zoomAt = { x: 0.5, y: 0.5 };
const sampleImages: ImageDataLike[] = [];

const setStatus = (s: string) => {
  $("status").textContent = s;
};
const fail = (msg: string) => {
  state.error = msg;
  state.busy = false;
  setStatus(`error: ${msg}`);
  updateButton();
};
const updateButton = () => {
  $("go").disabled = !(state.ready && state.model && state.image) ||
    state.busy;
};

/** A figure with a canvas of `img`, its zoomed crop and an optional download link. */
const figure = (title: string, img: ImageDataLike, png?: Uint8Array, file?: string): El => {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  const c = document.createElement("canvas");
  c.width = img.width;
  c.height = img.height;
  c.getContext("2d")!.putImageData(img, 0, 0);
  c.className = "full";
  const z = document.createElement("canvas");
  z.width = CROP * ZOOM;
  z.height = CROP * ZOOM;
  z.className = "zoom";
  drawZoom(z, c);
  fig.append(cap, c, z);
  if (png && file) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([png as BlobPart], { type: "image/png" }));
    a.download = file;
    a.textContent = `download ${file}`;
    a.className = "download";
    fig.append(a);
  }
  return fig;
};

const drawZoom = (z: El, src: El) => {
  const ctx = z.getContext("2d")!;
  ctx.imageSmoothingEnabled = false;
  const w = Math.min(CROP, src.width), h = Math.min(CROP, src.height);
  const x = Math.round(Math.min(Math.max(zoomAt.x * src.width - w / 2, 0), src.width - w));
  const y = Math.round(Math.min(Math.max(zoomAt.y * src.height - h / 2, 0), src.height - h));
  ctx.clearRect(0, 0, z.width, z.height);
  ctx.drawImage(src, x, y, w, h, 0, 0, w * ZOOM, h * ZOOM);
};

const render = () => {
  const out = $("outputs");
  out.replaceChildren();
  if (!inputImage || !state.image) return;
  const inFig = figure(`input: ${state.image.name}`, inputImage);
  const inCanvas = inFig.querySelector("canvas.full") as El;
  inCanvas.title = "click to move the zoomed crop";
  inCanvas.addEventListener("click", (ev) => {
    const r = inCanvas.getBoundingClientRect();
    zoomAt = { x: (ev.clientX - r.left) / r.width, y: (ev.clientY - r.top) / r.height };
    render();
  });
  out.append(inFig);
  const stem = state.image.name.replace(/\.[^.]+$/, "");
  sampleImages.forEach((img, k) => {
    const t = Number($("temperature").value);
    out.append(
      figure(
        `sample ${k} (τ ${t}, seed ${$("seed").value})`,
        img,
        state.pngs[k],
        `${stem}_s${k}.png`,
      ),
    );
  });
};

worker.addEventListener("message", (ev: MessageEvent<Reply>) => {
  const m = ev.data;
  switch (m.type) {
    case "ready":
      state.ready = true;
      state.backend = m.backend;
      state.adapter = m.adapter;
      $("backend").textContent = `backend: ${m.backend === "webgpu" ? "WebGPU" : m.backend} · ` +
        `adapter: ${m.adapterLine}`;
      setStatus("ready");
      loadBuiltin();
      break;
    case "model":
      state.model = m.name;
      $("modelInfo").textContent = `${m.name}: ${m.summary}, ${m.steps} training steps`;
      setStatus(`model ${m.name} loaded`);
      break;
    case "image":
      state.image = { name: m.name, width: m.width, height: m.height };
      inputImage = imageData(new Uint8ClampedArray(m.rgba), m.width, m.height);
      sampleImages.length = 0;
      state.pngs = [];
      setStatus(`${m.name}: ${m.width}×${m.height}`);
      render();
      break;
    case "progress": {
      state.progressEvents++;
      const p = $("progress") as El;
      p.max = m.samples * m.tiles;
      p.value = String(m.sample * m.tiles + m.tile);
      setStatus(`sample ${m.sample + 1}/${m.samples}: tile ${m.tile}/${m.tiles}`);
      break;
    }
    case "sample":
      sampleImages[m.sample] = imageData(
        new Uint8ClampedArray(m.rgba),
        state.image!.width,
        state.image!.height,
      );
      state.pngs[m.sample] = m.png;
      state.sampleMillis[m.sample] = m.millis;
      render();
      break;
    case "done":
      state.busy = false;
      state.millis = m.millis;
      state.runs++;
      setStatus(`done in ${(m.millis / 1000).toFixed(1)} s on ${m.backend}`);
      break;
    case "error":
      fail(m.message);
      break;
  }
  updateButton();
});
worker.addEventListener("error", (e) => fail(e.message || "worker failed to start"));

const loadBuiltin = async () => {
  const name = $("model").value;
  if (name === "upload") return;
  setStatus(`loading ${name}…`);
  const res = await fetch(`./models/${name.replace(/^builtin:/, "")}.safetensors`);
  if (!res.ok) return fail(`cannot load ${name} (HTTP ${res.status})`);
  const bytes = await res.arrayBuffer();
  send({ type: "model", name, bytes }, [bytes]);
};

const loadFile = async (f: File, kind: "image" | "model") => {
  const bytes = await f.arrayBuffer();
  send({ type: kind, name: f.name, bytes }, [bytes]);
};

$("photo").addEventListener("change", () => {
  const f = $("photo").files?.[0];
  if (f) loadFile(f, "image");
});
$("ckpt").addEventListener("change", () => {
  const f = $("ckpt").files?.[0];
  if (f) {
    $("model").value = "upload";
    loadFile(f, "model");
  }
});
$("model").addEventListener("change", () => {
  if ($("model").value === "upload") $("ckpt").click();
  else loadBuiltin();
});
$("temperature").addEventListener("input", () => {
  $("tempValue").textContent = $("temperature").value;
});
for (const ev of ["dragover", "dragenter"]) {
  document.body.addEventListener(ev, (e) => {
    e.preventDefault();
    document.body.classList.add("dropping");
  });
}
document.body.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
document.body.addEventListener("drop", (e) => {
  e.preventDefault();
  document.body.classList.remove("dropping");
  const f = e.dataTransfer?.files?.[0];
  if (!f) return;
  loadFile(f, /\.safetensors$/i.test(f.name) ? "model" : "image");
});
$("go").addEventListener("click", () => {
  const seed = Number($("seed").value);
  const temperature = Number($("temperature").value);
  const samples = Number($("samples").value);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) return fail("seed: 0 … 4294967295");
  if (!(temperature >= 0)) return fail("temperature must be ≥ 0");
  state.busy = true;
  state.error = undefined;
  state.progressEvents = 0;
  state.pngs = [];
  state.sampleMillis = [];
  sampleImages.length = 0;
  render();
  $("progress").value = "0";
  setStatus("degrading…");
  updateButton();
  send({
    type: "degrade",
    seed,
    temperature,
    samples: Math.max(1, Math.min(4, samples)),
    tile: Number(params.get("tile") ?? 512),
  });
});

const backend = params.get("backend");
send({
  type: "init",
  backend: backend === "wasm" || backend === "webgpu" ? backend : "auto",
  wasmPath: new URL("./wasm/", location.href).href,
});
setStatus("starting the backend…");
