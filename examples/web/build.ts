/**
 * Bundle the web pages' scripts from the library's own modules (`deno task web:build`):
 * `app.ts`, `worker.ts` and `kit.ts` → `out/web/dist/*.js` with `deno bundle` (esbuild),
 * for the browser. `serve.ts` serves them with the pages.
 *
 * @module
 */

/** The entry points, bundled one file each. */
export const ENTRIES: readonly string[] = ["app", "worker", "kit"];

/** Where the bundles go, relative to the repository root. */
export const DIST = "out/web/dist";

/** Bundle every entry into `dist` (default {@linkcode DIST} of the repository). */
export const build = async (
  dist = new URL(`../../${DIST}/`, import.meta.url).pathname,
): Promise<void> => {
  await Deno.mkdir(dist, { recursive: true });
  const root = new URL("../../", import.meta.url).pathname;
  for (const name of ENTRIES) {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "--format",
        "esm",
        "--minify",
        "-o",
        `${dist}${name}.js`,
        new URL(`./${name}.ts`, import.meta.url).pathname,
      ],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`web:build: bundling ${name}.ts failed`);
    const size = (await Deno.stat(`${dist}${name}.js`)).size;
    console.log(
      `web:build: ${name}.js ${(size / 1e6).toFixed(2)} MB (${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s)`,
    );
  }
};

if (import.meta.main) await build();
