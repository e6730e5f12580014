/**
 * The test runner behind `deno task test`: runs `deno test -A --parallel=false` on the given
 * paths (default `test/`), passing its output through unchanged, and returns its exit code —
 * with one exception. On WebGPU (Mesa llvmpipe through wgpu's GL backend) the process
 * sometimes aborts while exiting, after every test has passed and the summary has been
 * printed (`double free or corruption (out)`, exit 134): a teardown race in the native
 * graphics stack, not a test failure (see issue 9; `src/core/backend.ts` already releases
 * the device at unload, which makes it rarer but not impossible). When the last summary
 * says `ok | N passed | 0 failed` and nothing but the abort message follows it, the runner
 * prints one warning line and exits 0. Any other failure keeps its exit code.
 *
 * Usage: `deno run -A test/_runner.ts [deno test options] [paths]` (paths default to `test/`
 * without `test/browser_test.ts`: the browser tests need a bundle, a Chromium and
 * `puppeteer-core`, and run as `deno task test:browser`; leaving them out also keeps a fresh
 * clone's `node_modules` at the library's own dependencies).
 *
 * @module
 */

/** ANSI colour codes removed. */
const plain = (s: string): string => s.replace(new RegExp("\u001b\\[[0-9;]*m", "g"), "");

/**
 * Whether `output` of a run that died with SIGABRT shows an abort after a fully passing
 * summary: the last summary has 0 failures and only the allocator's abort message follows.
 */
export const abortAfterGreenSummary = (output: string): boolean => {
  const text = plain(output);
  const re = /^(ok|FAILED) \| (\d+) passed[^|\n]*\| (\d+) failed.*$/gm;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) last = m;
  if (last === null || last[1] !== "ok" || last[3] !== "0") return false;
  const after = text.slice(last.index + last[0].length).split("\n").map((l) => l.trim())
    .filter((l) => l !== "");
  return after.length > 0 &&
    after.every((l) =>
      /double free|corrupted size|free\(\): |malloc\(\): |munmap_chunk|corrupted double-linked|Aborted/
        .test(l)
    );
};

/**
 * Run `cmd` (a test command), passing its output through, and return its exit code — or 0
 * when it died of SIGABRT right after a fully passing summary (one warning line printed).
 */
export const runTests = async (cmd: readonly string[]): Promise<number> => {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const dec = new TextDecoder();
  const pump = async (from: ReadableStream<Uint8Array>, to: typeof Deno.stdout) => {
    for await (const chunk of from) {
      tail = (tail + dec.decode(chunk, { stream: true })).slice(-20000);
      await to.write(chunk);
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const status = await child.status;
  if ((status.signal === "SIGABRT" || status.code === 134) && abortAfterGreenSummary(tail)) {
    console.error(
      "test runner: every test passed; the process then aborted in the WebGPU/Mesa teardown " +
        "(exit 134) — not a test failure, exit 0 (issue 9)",
    );
    return 0;
  }
  return status.code;
};

if (import.meta.main) {
  const exists = (p: string) => {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      return false;
    }
  };
  // Options pass through; without a file or folder among them, the suite is test/ minus
  // the browser tests (deno task test:browser).
  const args = Deno.args.some((a) => !a.startsWith("-") && exists(a))
    ? [...Deno.args]
    : [...Deno.args, "--ignore=test/browser_test.ts", "test/"];
  Deno.exit(await runTests([Deno.execPath(), "test", "-A", "--parallel=false", ...args]));
}
