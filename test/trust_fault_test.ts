/**
 * Fault tests (issue 9): `kill -9` at random moments then resume gives the uninterrupted
 * run's checkpoint byte for byte; SIGTERM saves; a full disk fails the save cleanly; 50
 * corrupted checkpoints and images each give one clear line and exit 1.
 */
import assert from "node:assert/strict";
import { encodePng } from "../src/image/io.ts";
import { nextUniform, rng, type RngState } from "../src/core/random.ts";
import { readCheckpointInfo } from "../src/io/checkpoint.ts";
import {
  assertOneLineError,
  cli,
  CONFIG,
  errorLines,
  ls,
  MAIN,
  makeData,
  picture,
  trainArgs,
} from "./_trust_helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const spawn = (args: readonly string[], env: Record<string, string> = {}) =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();

const exists = async (p: string) => {
  try {
    await Deno.lstat(p);
    return true;
  } catch {
    return false;
  }
};

Deno.test(
  "fault: kill -9 at random moments, resume, same checkpoint byte for byte",
  opts,
  async () => {
    const dir = await makeData("deflow-fault-kill-");
    try {
      const run = (out: string, ...more: string[]) =>
        trainArgs(dir, out, "--iterations", "30", "--checkpoint-every", "3", ...more);
      const ref = await cli(...run(`${dir}/ref`));
      assert.equal(ref.code, 0, ref.stderr);
      const out = `${dir}/killed`;
      let r: RngState = rng(9);
      const kills: string[] = [];
      for (let k = 0; k < 3; k++) {
        const resume = await exists(`${out}/checkpoint.safetensors`);
        const child = spawn(resume ? run(out, "--resume") : run(out));
        // Kill at a random moment after this process wrote its first checkpoint.
        const reader = child.stdout.getReader();
        let text = "";
        while (!/checkpoint at step/.test(text)) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
        let u: number;
        [u, r] = nextUniform(r);
        const delay = Math.round(u * 1000);
        const done = await Promise.race([
          child.status.then(() => true),
          sleep(delay).then(() => false),
        ]);
        if (!done) child.kill("SIGKILL");
        const st = await child.status;
        await reader.cancel();
        await child.stderr.cancel();
        const saved = await readCheckpointInfo(`${out}/checkpoint.safetensors`);
        kills.push(
          `${resume ? "resumed" : "fresh"}, +${delay} ms: ${
            done ? `finished (${st.code})` : `killed (${st.signal})`
          }, checkpoint at step ${saved._tag === "Right" ? saved.right.training.step : "-"}`,
        );
      }
      const resume = await exists(`${out}/checkpoint.safetensors`);
      const last = await cli(...(resume ? run(out, "--resume") : run(out)));
      assert.equal(last.code, 0, `${kills.join(", ")}: ${last.stderr}`);
      assert.ok(kills.some((k) => k.includes("killed")), kills.join(", "));
      console.error(`kill schedule: ${kills.join("; ")}`);
      for (const f of ["checkpoint.safetensors", "loss.json"]) {
        assert.deepEqual(
          await Deno.readFile(`${out}/${f}`),
          await Deno.readFile(`${dir}/ref/${f}`),
          `${f} differs after ${kills.join(", ")}`,
        );
      }
      assert.deepEqual(ls(out), ["checkpoint.safetensors", "loss.json", "loss.png"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("fault: SIGTERM saves a checkpoint and exits 143", opts, async () => {
  const dir = await makeData("deflow-fault-term-");
  try {
    const out = `${dir}/run`;
    const child = spawn(trainArgs(dir, out, "--iterations", "5000", "--checkpoint-every", "5000"));
    const watchdog = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const reader = child.stdout.getReader();
    const dec = new TextDecoder();
    let text = "";
    while (!/step 1\/5000/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value);
    }
    child.kill("SIGTERM");
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value);
    }
    const st = await child.status;
    clearTimeout(watchdog);
    const err = dec.decode(await new Response(child.stderr).arrayBuffer());
    assert.equal(st.code, 143, `${text}\n${err}`);
    const m = /interrupted by SIGTERM at step (\d+); checkpoint .*checkpoint\.safetensors/.exec(
      text,
    );
    assert.ok(m, text);
    const info = await cli("info", "--model", `${out}/checkpoint.safetensors`, "--json");
    assert.equal(JSON.parse(info.stdout).step, Number(m[1]));
    assert.ok(Number(m[1]) >= 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const canMountTmpfs = async (): Promise<boolean> => {
  try {
    const o = await new Deno.Command("unshare", {
      args: ["-rm", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d"],
      stdout: "null",
      stderr: "null",
    }).output();
    return o.success;
  } catch {
    return false;
  }
};

Deno.test(
  "fault: a full disk fails the save in one line and keeps the last checkpoint",
  opts,
  async () => {
    const dir = await makeData("deflow-fault-full-");
    try {
      // The size of one checkpoint of this model decides the size of the "disk".
      const probe = await cli(...trainArgs(dir, `${dir}/probe`, "--iterations", "1"));
      assert.equal(probe.code, 0, probe.stderr);
      const ckptBytes = (await Deno.stat(`${dir}/probe/checkpoint.safetensors`)).size;
      const limit = Math.ceil((ckptBytes * 1.5) / 4096) * 4096;
      const out = `${dir}/full`;
      await Deno.mkdir(out);
      const args = trainArgs(dir, out, "--iterations", "6", "--checkpoint-every", "2");
      const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
      const deno = [Deno.execPath(), "run", "-A", "--config", CONFIG, MAIN].map(q).join(" ");
      let code: number, stderr: string, listing: string[], step: number;
      if (await canMountTmpfs()) {
        // A private mount namespace: the small tmpfs vanishes with the shell.
        const script = [
          `mount -t tmpfs -o size=${limit} tmpfs ${q(out)} || exit 99`,
          `${deno} ${args.map(q).join(" ")} >/dev/null 2>${q(`${dir}/err.txt`)}`,
          `echo "rc=$?"`,
          `ls -a ${q(out)} | tr '\\n' ' '; echo`,
          `${deno} info --model ${q(`${out}/checkpoint.safetensors`)} --json`,
        ].join("\n");
        const o = await new Deno.Command("unshare", {
          args: ["-rm", "sh", "-c", script],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(o.stdout);
        code = Number(/rc=(\d+)/.exec(text)![1]);
        listing = text.split("\n")[1].trim().split(/\s+/).filter((n) => n !== "." && n !== "..");
        step = JSON.parse(text.slice(text.indexOf("{"))).step;
        stderr = await Deno.readTextFile(`${dir}/err.txt`);
      } else {
        // No tmpfs here: the writer's fault injection fails writes past the same limit.
        const child = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
          stdout: "null",
          stderr: "piped",
          env: { NO_COLOR: "1", DEFLOW_FAULT_WRITE_LIMIT: String(limit) },
        }).output();
        code = child.code;
        stderr = new TextDecoder().decode(child.stderr);
        listing = ls(out);
        step = JSON.parse(
          (await cli("info", "--model", `${out}/checkpoint.safetensors`, "--json")).stdout,
        )
          .step;
      }
      assertOneLineError(
        { code, stdout: "", stderr },
        1,
        /train: saving the checkpoint at step 4 failed: .*No space left on device/,
      );
      assert.equal(step, 2, "the step-2 checkpoint is intact");
      assert.deepEqual(listing.filter((n) => n.includes(".tmp-")), [], listing.join(" "));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "fault: 50 corrupted checkpoints and images each give one line and exit 1",
  opts,
  async () => {
    const dir = await makeData("deflow-fault-fuzz-");
    try {
      const tr = await cli(...trainArgs(dir, `${dir}/run`, "--iterations", "1"));
      assert.equal(tr.code, 0, tr.stderr);
      const ckpt = await Deno.readFile(`${dir}/run/checkpoint.safetensors`);
      const png = encodePng(picture(32, 32, 4, 0.1));
      let r: RngState = rng(2024);
      const rand = (n: number): number => {
        let u: number;
        [u, r] = nextUniform(r);
        return Math.floor(u * n);
      };
      const corrupt = (bytes: Uint8Array, kind: number): Uint8Array => {
        if (kind === 0) return bytes.slice(0, rand(bytes.length)); // truncate
        if (kind === 1) {
          const b = bytes.slice();
          b[rand(b.length)] ^= 1 << rand(8); // flip one bit
          return b;
        }
        const extra = Uint8Array.from({ length: 1 + rand(64) }, () => rand(256));
        return new Uint8Array([...bytes, ...extra]); // extend
      };
      const failures: string[] = [];
      for (let i = 0; i < 50; i++) {
        const kind = i % 3;
        const isCkpt = i < 25;
        const model = `${dir}/c${i}.safetensors`;
        const input = `${dir}/in${i}`;
        await Deno.mkdir(input);
        await Deno.writeFile(model, isCkpt ? corrupt(ckpt, kind) : ckpt);
        await Deno.writeFile(`${input}/x.png`, isCkpt ? png : corrupt(png, kind));
        const gen = `${dir}/gen${i}`;
        const res = await Promise.race([
          cli("degrade", "--model", model, "--in", input, "--out", gen, "--backend", "wasm"),
          sleep(20_000).then(() => null),
        ]);
        const what = `${isCkpt ? "checkpoint" : "image"} ${
          ["truncated", "flipped", "extended"][kind]
        } #${i}`;
        if (res === null) {
          failures.push(`${what}: hang`);
          continue;
        }
        try {
          assertOneLineError(res, 1, isCkpt ? /c\d+\.safetensors|checkpoint/ : /in\d+\/x\.png/);
          assert.deepEqual(ls(gen), [], "no output");
        } catch (e) {
          failures.push(`${what}: ${(e as Error).message.split("\n").slice(0, 3).join(" ")}`);
        }
        if (i === 0 || i === 25) assert.ok(errorLines(res).length === 1);
      }
      assert.deepEqual(failures, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
