/**
 * Serve the web pages on localhost (`deno task web`, after `deno task web:build`):
 * `/` the degrade page, `/kit.html` the law kit, `/dist/` the bundles, `/wasm/` tfjs's
 * wasm binaries, `/models/<name>.safetensors` the shipped models. `--port N` (default
 * 8000; 0 picks a free one).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { builtinModels, builtinUrl } from "../../src/io/builtin.ts";
import { DIST } from "./build.ts";

const root = new URL("../../", import.meta.url);

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  wasm: "application/wasm",
  safetensors: "application/octet-stream",
  png: "image/png",
};

/** The folder of tfjs's wasm binaries (in `node_modules/`, installed by the bundling). */
const wasmDir = async (): Promise<URL> => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const spec: string = config.imports["@tensorflow/tfjs-backend-wasm"];
  const version = spec.replace(/^npm:@tensorflow\/tfjs-backend-wasm@/, "");
  return new URL(
    `node_modules/.deno/@tensorflow+tfjs-backend-wasm@${version}/node_modules/@tensorflow/` +
      "tfjs-backend-wasm/dist/",
    root,
  );
};

/** Map a request path to a file, or `undefined` (404). Only known folders and names. */
const resolve = async (path: string): Promise<URL | undefined> => {
  if (path === "/" || path === "/index.html") return new URL("index.html", import.meta.url);
  if (path === "/kit.html") return new URL("kit.html", import.meta.url);
  const m = path.match(/^\/(dist|wasm|models)\/([A-Za-z0-9_.-]+)$/);
  if (!m || m[2].startsWith(".")) return undefined;
  const [, dir, file] = m;
  if (dir === "dist") return new URL(`${DIST}/${file}`, root);
  if (dir === "wasm") return file.endsWith(".wasm") ? new URL(file, await wasmDir()) : undefined;
  const name = file.replace(/\.safetensors$/, "");
  return builtinModels.includes(name) && file.endsWith(".safetensors")
    ? builtinUrl(name)
    : undefined;
};

/** The request handler of the page server. */
export const handler = async (req: Request): Promise<Response> => {
  const path = new URL(req.url).pathname;
  const file = await resolve(path);
  if (!file) return new Response("not found", { status: 404 });
  try {
    const body = await Deno.readFile(file);
    const ext = path === "/" ? "html" : path.split(".").pop()!;
    return new Response(body, {
      headers: {
        "content-type": TYPES[ext] ?? "application/octet-stream",
        "cache-control": "no-cache",
      },
    });
  } catch {
    const hint = path.startsWith("/dist/") ? " (run deno task web:build)" : "";
    return new Response(`not found${hint}`, { status: 404 });
  }
};

/** Start the server on 127.0.0.1:`port`; returns it (its `addr.port` is the real port). */
export const serve = (
  port: number,
  onListen?: (url: string) => void,
): Deno.HttpServer<Deno.NetAddr> =>
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: ({ port }) => onListen?.(`http://127.0.0.1:${port}/`),
  }, handler);

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { port: { type: "string" } } });
  serve(Number(values.port ?? 8000), (url) => {
    console.log(`deflow web: ${url} (degrade page), ${url}kit.html (law kit); Ctrl-C stops`);
  });
}
