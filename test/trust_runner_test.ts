/**
 * Issue 9, row 12: an abort in the native WebGPU teardown after every test passed must not
 * fail CI, and must not hide a real failure (test/_runner.ts, behind `deno task test`).
 */
import assert from "node:assert/strict";
import { abortAfterGreenSummary, runTests } from "./_runner.ts";

const green = `registry: WebGPU and wasm agree on every layer ... ok (1s)

ok | 10 passed | 0 failed (34s)

double free or corruption (out)
`;

Deno.test("runner: an abort after a green summary is recognised, nothing else is", () => {
  assert.equal(abortAfterGreenSummary(green), true);
  assert.equal(
    abortAfterGreenSummary(green.replace("ok |", "\x1b[32mok\x1b[0m |")),
    true,
    "colours",
  );
  assert.equal(abortAfterGreenSummary(green.replace("0 failed", "1 failed")), false);
  assert.equal(abortAfterGreenSummary(green.replace("ok |", "FAILED |")), false);
  assert.equal(abortAfterGreenSummary("running 3 tests\ndouble free or corruption (out)\n"), false);
  assert.equal(abortAfterGreenSummary(green + "error: something else\n"), false);
  assert.equal(abortAfterGreenSummary(green.replace("double free or corruption (out)", "")), false);
});

/** A process that prints a summary and the allocator's message, then dies of SIGABRT. */
const aborting = (summary: string): string[] => [
  "sh",
  "-c",
  `printf '%s\\n\\n' '${summary}'; printf 'double free or corruption (out)\\n' >&2; kill -ABRT $$`,
];

Deno.test("runner: exit 0 after a teardown abort when all passed, the failure code otherwise", async () => {
  const write = Deno.stdout.write, ewrite = Deno.stderr.write, error = console.error;
  const seen: string[] = [];
  Deno.stdout.write = Deno.stderr.write = (b: Uint8Array) => {
    seen.push(new TextDecoder().decode(b));
    return Promise.resolve(b.length);
  };
  console.error = (s: string) => void seen.push(s);
  try {
    assert.equal(await runTests(aborting("ok | 3 passed | 0 failed (1s)")), 0);
    assert.match(seen.join(""), /every test passed; the process then aborted/);
    seen.length = 0;
    assert.equal(await runTests(aborting("FAILED | 2 passed | 1 failed (1s)")), 134);
    assert.doesNotMatch(seen.join(""), /not a test failure/);
    assert.equal(await runTests(["sh", "-c", "exit 3"]), 3);
  } finally {
    Deno.stdout.write = write;
    Deno.stderr.write = ewrite;
    console.error = error;
  }
});
