/**
 * Tests in a real browser (`deno task test:browser`, which bundles the pages first):
 * headless Chromium (Debian's `chromium-headless-shell`, or `$CHROME_PATH`) with WebGPU on
 * Dawn's SwiftShader adapter, driven by `puppeteer-core`.
 *
 * - the law kit page passes every case of the registry, on the `webgpu` backend, with the
 *   device's adapter reported by the browser as SwiftShader;
 * - the degrade page, driven like a user (upload a bundled photo, set seed and
 *   temperature, click), produces the PNG `deflow degrade` writes for the same file, seed
 *   and temperature, within the measured cross-backend tolerance; its screenshot goes to
 *   `out/web/degrade.png` (and the kit's to `out/web/kit.png`).
 *
 * No browser found is a failure, not a skip. `DEFLOW_KIT_RUNS` sets the fast-check runs per
 * kit case (default 1, for CI time; the page's own default is 3).
 */
import assert from "node:assert/strict";
import { either as E } from "fp-ts";
// Pinned here, not in deno.json's import map: every import-map package is installed on any
// run, and the browser driver is only needed by `deno task test:browser`.
// deno-lint-ignore no-import-prefix
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.16.0";
import { decodeImage, type RgbImage } from "../src/image/io.ts";
import { serve } from "../examples/web/serve.ts";
import { registry } from "../examples/web/registry.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const OUT = `${ROOT}out/web`;
/**
 * A 128×96 crop of a held-out scene (`examples/data/photos/coffee.png` at (200, 120)):
 * Dawn's SwiftShader needs about a minute for it on two busy cores (a 512×341 photo takes
 * over ten), so CI uses the crop. Tiling is checked against `degrade` in
 * `test/web_tiles_test.ts`.
 */
const PHOTO = `${ROOT}examples/web/coffee_crop.png`;
const SEED = 7;
const TEMPERATURE = 0.8;
const TILE = 512;
/**
 * Largest allowed differences between the page (Chromium WebGPU, SwiftShader) and
 * `deflow degrade` (Deno, wasm), in 8-bit codes. Measured with the provisional
 * `builtin:camera` (300 iterations) in two runs: identical PNGs, and a max of 1 code with
 * mean |Δ| below 5e-5; the bounds leave room for other GPUs' float rounding and for
 * longer-trained models.
 */
const TOL = { mean: 0.02, max: 4, over2: 0.001 };

const findBrowser = (): string => {
  const env = Deno.env.get("CHROME_PATH");
  const candidates = [
    ...(env ? [env] : []),
    "/usr/bin/chromium-headless-shell",
    "/usr/bin/chromium",
    "/usr/bin/google-chrome",
  ];
  for (const c of candidates) {
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch {
      // next
    }
  }
  throw new Error(
    `no Chromium found (tried ${candidates.join(", ")}); ` +
      "apt-get install chromium-headless-shell, or set CHROME_PATH",
  );
};

const launch = (): Promise<Browser> =>
  puppeteer.launch({
    executablePath: findBrowser(),
    args: ["--no-sandbox", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"],
    defaultViewport: { width: 1400, height: 900 },
    protocolTimeout: 1_200_000,
  });

const withPage = async (f: (page: Page, base: string) => Promise<void>): Promise<void> => {
  await Deno.mkdir(OUT, { recursive: true });
  const server = serve(0);
  const browser = await launch();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await f(page, `http://127.0.0.1:${server.addr.port}/`);
    assert.deepEqual(errors, [], "uncaught errors in the page");
  } finally {
    await browser.close();
    await server.shutdown();
  }
};

Deno.test("browser: the law kit passes on Chromium's WebGPU (SwiftShader)", async () => {
  const runs = Number(Deno.env.get("DEFLOW_KIT_RUNS") ?? "1");
  await withPage(async (page, base) => {
    const t0 = performance.now();
    await page.goto(`${base}kit.html?runs=${runs}`);
    await page.waitForFunction(() => (globalThis as { __kit?: { done: boolean } }).__kit?.done, {
      timeout: 1_200_000,
      polling: 1000,
    });
    const kit = await page.evaluate(() => (globalThis as unknown as { __kit: unknown }).__kit) as {
      backend: string;
      adapter: Record<string, string>;
      error?: string;
      cases: {
        name: string;
        passed: boolean;
        laws: { law: string; status: string; runs: number }[];
      }[];
    };
    await page.screenshot({ path: `${OUT}/kit.png`, fullPage: true });
    assert.equal(kit.error, undefined);
    assert.equal(kit.backend, "webgpu");
    // The device's adapter, as the browser reports it: Dawn's SwiftShader (Vulkan on CPU).
    assert.equal(kit.adapter.architecture, "swiftshader", JSON.stringify(kit.adapter));
    assert.deepEqual(kit.cases.map((c) => c.name), registry.map((c) => c.name));
    for (const c of kit.cases) {
      const bad = c.laws.filter((l) => l.status === "failed");
      assert.ok(c.passed, `${c.name}: ${JSON.stringify(bad)}`);
      // Every case ran its round trips on the GPU at least once.
      assert.ok(c.laws.some((l) => l.law === "roundTrip" && l.runs >= 1), `${c.name}: no runs`);
    }
    console.log(
      `kit: ${kit.cases.length} cases passed on webgpu/${kit.adapter.vendor} ` +
        `${kit.adapter.architecture} in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
  });
});

/** `deflow degrade` on `photo` (Deno, default backend): the written PNG, decoded. */
const cliDegrade = async (photo: string): Promise<RgbImage> => {
  const dir = await Deno.makeTempDir({ prefix: "deflow-browser-" });
  try {
    await Deno.mkdir(`${dir}/in`);
    await Deno.copyFile(photo, `${dir}/in/${photo.split("/").pop()}`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}src/cli/main.ts`,
        "degrade",
        "--model",
        "builtin:camera",
        "--in",
        `${dir}/in`,
        "--out",
        `${dir}/out`,
        "--seed",
        String(SEED),
        "--temperature",
        String(TEMPERATURE),
        "--tile",
        String(TILE),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `deflow degrade failed: ${err}`);
    const stem = photo.split("/").pop()!.replace(/\.png$/, "");
    const img = decodeImage(await Deno.readFile(`${dir}/out/${stem}_s0.png`));
    if (E.isLeft(img)) throw img.left;
    console.log(`deno: ${err.trim().split("\n").join(" | ")}`);
    return img.right;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

Deno.test("browser: the degrade page matches deflow degrade", async () => {
  const want = await cliDegrade(PHOTO);
  await withPage(async (page, base) => {
    await page.goto(`${base}?tile=${TILE}`);
    type S = {
      ready: boolean;
      model?: string;
      image?: { width: number };
      busy: boolean;
      runs: number;
      error?: string;
    };
    await page.waitForFunction(
      () => {
        const s = (globalThis as unknown as { __deflow: S }).__deflow;
        return s.error !== undefined || (s.ready && s.model !== undefined);
      },
      { timeout: 300_000 },
    );
    // Like a user: pick the photo, set seed, temperature and one sample, click.
    const input = await page.$("#photo");
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(PHOTO);
    await page.waitForFunction(
      () => (globalThis as unknown as { __deflow: S }).__deflow.image !== undefined,
    );
    const setValue = (sel: string, v: string) =>
      page.$eval(sel, (el, v) => {
        const i = el as unknown as { value: string; dispatchEvent(e: Event): boolean };
        i.value = v;
        i.dispatchEvent(new Event("input", { bubbles: true }));
      }, v);
    await page.click("#seed", { count: 3 });
    await page.keyboard.type(String(SEED));
    await setValue("#temperature", String(TEMPERATURE));
    await setValue("#samples", "1");
    await page.click("#go");
    await page.waitForFunction(
      () => {
        const s = (globalThis as unknown as { __deflow: S }).__deflow;
        return s.error !== undefined || (s.runs > 0 && !s.busy);
      },
      { timeout: 1_200_000, polling: 500 },
    );
    const got = await page.evaluate(() => {
      const s = (globalThis as unknown as {
        __deflow: S & {
          backend: string;
          adapter: Record<string, string>;
          millis: number;
          pngs: Uint8Array[];
          progressEvents: number;
        };
      }).__deflow;
      return {
        error: s.error,
        backend: s.backend,
        adapter: s.adapter,
        millis: s.millis,
        progressEvents: s.progressEvents,
        png: s.pngs.length ? Array.from(s.pngs[0]) : [],
        line: (globalThis as unknown as {
          document: { getElementById(id: string): { textContent: string } | null };
        }).document.getElementById("backend")?.textContent,
      };
    });
    await page.setViewport({ width: 1000, height: 620 });
    await page.screenshot({ path: `${OUT}/degrade.png` });
    assert.equal(got.error, undefined);
    assert.equal(got.backend, "webgpu", got.line ?? "");
    assert.equal(got.adapter.architecture, "swiftshader");
    assert.match(got.line ?? "", /WebGPU.*swiftshader/);
    assert.equal(got.progressEvents, 1, "one progress update per tile");
    const dec = decodeImage(new Uint8Array(got.png), "page output");
    if (E.isLeft(dec)) throw dec.left;
    const img = dec.right;
    assert.equal(img.width, want.width);
    assert.equal(img.height, want.height);
    let sum = 0, max = 0, over2 = 0, differ = 0, changed = 0;
    const photo = decodeImage(await Deno.readFile(PHOTO));
    if (E.isLeft(photo)) throw photo.left;
    for (let i = 0; i < img.data.length; i++) {
      const d = Math.abs(Math.round(img.data[i] * 255) - Math.round(want.data[i] * 255));
      sum += d;
      max = Math.max(max, d);
      if (d > 2) over2++;
      if (d > 0) differ++;
      if (Math.round(img.data[i] * 255) !== Math.round(photo.right.data[i] * 255)) changed++;
    }
    const mean = sum / img.data.length;
    console.log(
      `page vs deflow degrade: ${differ} of ${img.data.length} values differ, mean |Δ| ` +
        `${mean.toExponential(2)}, max ${max} codes, ${over2} > 2; page ${
          (got.millis / 1000).toFixed(1)
        } s ` +
        `on ${got.line}`,
    );
    // The model did something (not an identity page), and it is the CLI's something.
    assert.ok(changed > img.data.length / 4, `only ${changed} values differ from the input`);
    assert.ok(mean <= TOL.mean, `mean |Δ| ${mean} > ${TOL.mean}`);
    assert.ok(max <= TOL.max, `max |Δ| ${max} > ${TOL.max}`);
    assert.ok(over2 <= TOL.over2 * img.data.length, `${over2} values differ by more than 2`);
  });
});
