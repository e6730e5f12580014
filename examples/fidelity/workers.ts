/**
 * Run one subprocess per family, `jobs` at a time (one per core): the fidelity suite and
 * the downstream proof re-run their own script with `--worker --family=NAME`.
 *
 * @module
 */

/**
 * Run `script` once per name with `args`, `--worker` and `--family=NAME`, at most `jobs`
 * at a time, output inherited. Returns the names whose process failed (after saying so).
 */
export const runFamilyWorkers = async (
  script: URL,
  names: readonly string[],
  args: readonly string[],
  jobs: number,
  label: string,
): Promise<string[]> => {
  const queue = [...names];
  const failed: string[] = [];
  const worker = async () => {
    for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
      const cmd = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script.pathname, ...args, "--worker", `--family=${n}`],
        stdout: "inherit",
        stderr: "inherit",
      });
      const { code } = await cmd.output();
      if (code !== 0) {
        console.error(`${label}: family ${n} failed (exit ${code})`);
        failed.push(n);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, names.length)) }, worker));
  return failed;
};

/**
 * The `<outRoot>/<name>/result.json` of every family that has one, in `names` order; a
 * missing or unreadable one is reported and left out.
 */
export const readFamilyResults = async <T>(
  outRoot: string,
  names: readonly string[],
  label: string,
): Promise<T[]> => {
  const results: T[] = [];
  for (const n of names) {
    try {
      results.push(JSON.parse(await Deno.readTextFile(`${outRoot}/${n}/result.json`)));
    } catch (e) {
      console.error(`${label}: no result for ${n}: ${(e as Error).message}`);
    }
  }
  return results;
};
