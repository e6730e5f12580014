import assert from "node:assert/strict";
import fc from "fast-check";
import { either as E } from "fp-ts";
import { tf } from "../src/tf.ts";
import { countParams, disposeParams, flattenParams, type ParamTree } from "../src/core/params.ts";
import { adamInit, adamStep, disposeAdamState, trainableParams } from "../src/train/adam.ts";
import {
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsData,
  type SafetensorsDtype,
  type SafetensorsTensor,
} from "../src/io/safetensors.ts";
import {
  CHECKPOINT_FORMAT,
  loadCheckpoint,
  readCheckpointInfo,
  saveCheckpoint,
  type TrainingState,
} from "../src/io/checkpoint.ts";
import { builtinUrl, loadModelBytes } from "../src/io/builtin.ts";
import { loadModelCheckpoint } from "../src/io/model.ts";
import { gpuTest, noLeak, useBackend } from "./_helpers.ts";

// ---------------------------------------------------------------------------------------
// safetensors

const right = <A>(e: E.Either<Error, A>): A => {
  if (E.isLeft(e)) throw new Error(`expected Right, got Left: ${e.left.message}`);
  return e.right;
};

const leftMessage = <A>(e: E.Either<Error, A>): string => {
  if (E.isRight(e)) throw new Error("expected Left, got Right");
  return e.left.message;
};

/** Build a file by hand from a header object and data bytes (independent of the encoder). */
const handMade = (header: unknown, data: Uint8Array, pad = 0): Uint8Array => {
  const json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, json.length, true); // low word of the u64 (little-endian)
  dv.setUint32(4, 0, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
};

const le = (kind: "f32" | "f64" | "i32", values: number[]): Uint8Array => {
  const size = kind === "f64" ? 8 : 4;
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (kind === "f32") dv.setFloat32(i * size, v, true);
    else if (kind === "f64") dv.setFloat64(i * size, v, true);
    else dv.setInt32(i * size, v, true);
  });
  return out;
};

Deno.test("safetensors: decodes a hand-built file (unpadded header, unaligned offsets)", () => {
  const data = new Uint8Array([
    ...le("f32", [1.5, -2]),
    1,
    ...le("f64", [Math.PI]),
    ...le("i32", [-7, 9, 0]),
  ]);
  const bytes = handMade(
    {
      __metadata__: { who: "test", "ключ": "значение" },
      b: { dtype: "U8", shape: [1], data_offsets: [8, 9] },
      a: { dtype: "F32", shape: [2, 1], data_offsets: [0, 8] },
      c: { dtype: "F64", shape: [], data_offsets: [9, 17] },
      d: { dtype: "I32", shape: [3], data_offsets: [17, 29] },
    },
    data,
    3,
  );
  const { tensors, metadata } = right(decodeSafetensors(bytes));
  assert.deepEqual(metadata, { who: "test", "ключ": "значение" });
  assert.deepEqual([...tensors.keys()], ["a", "b", "c", "d"]);
  assert.deepEqual(tensors.get("a"), {
    dtype: "F32",
    shape: [2, 1],
    data: new Float32Array([1.5, -2]),
  });
  assert.deepEqual(tensors.get("b"), { dtype: "U8", shape: [1], data: new Uint8Array([1]) });
  assert.deepEqual(tensors.get("c"), {
    dtype: "F64",
    shape: [],
    data: new Float64Array([Math.PI]),
  });
  assert.deepEqual(tensors.get("d"), {
    dtype: "I32",
    shape: [3],
    data: new Int32Array([-7, 9, 0]),
  });
});

const dtypes: SafetensorsDtype[] = ["F32", "F64", "I32", "U8", "BOOL"];

const makeData = (dtype: SafetensorsDtype, n: number, seed: number): SafetensorsData => {
  const x = (i: number) => Math.sin(seed * 12.9898 + i * 78.233) * 43758.5453;
  switch (dtype) {
    case "F32":
      return Float32Array.from({ length: n }, (_, i) => x(i));
    case "F64":
      return Float64Array.from({ length: n }, (_, i) => x(i));
    case "I32":
      return Int32Array.from({ length: n }, (_, i) => Math.trunc(x(i)));
    case "U8":
      return Uint8Array.from({ length: n }, (_, i) => Math.abs(Math.trunc(x(i))) % 256);
    case "BOOL":
      return Uint8Array.from({ length: n }, (_, i) => (x(i) > 0 ? 1 : 0));
  }
};

const arbTensors = fc.uniqueArray(
  fc.record({
    name: fc.string({ minLength: 0, maxLength: 8 }).filter((s) => s !== "__metadata__"),
    dtype: fc.constantFrom(...dtypes),
    shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
    seed: fc.integer({ min: 0, max: 1000 }),
  }),
  { selector: (t) => t.name, maxLength: 6 },
).map((ts) =>
  ts.map((t): SafetensorsTensor => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    data: makeData(t.dtype, t.shape.reduce((a, b) => a * b, 1), t.seed),
  }))
);

const arbMetadata = fc.option(
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })),
  {
    nil: undefined,
  },
);

Deno.test("safetensors: encode→decode round trip; header padded, tensors aligned (fast-check)", () => {
  fc.assert(
    fc.property(arbTensors, arbMetadata, (tensors, metadata) => {
      const bytes = encodeSafetensors(tensors, metadata);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      assert.equal((8 + n) % 8, 0, "data section starts at a multiple of 8");
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
      const decoded: DecodedSafetensors = right(decodeSafetensors(bytes));
      assert.deepEqual(decoded.metadata, Object.fromEntries(Object.entries(metadata ?? {})));
      assert.equal(decoded.tensors.size, tensors.length);
      for (const t of tensors) {
        const size = t.data.BYTES_PER_ELEMENT;
        assert.equal(header[t.name].data_offsets[0] % size, 0, `${t.name} aligned`);
        assert.deepEqual(decoded.tensors.get(t.name), {
          dtype: t.dtype,
          shape: t.shape,
          data: t.data,
        });
      }
    }),
    { seed: 42, numRuns: 150 },
  );
});

Deno.test("safetensors: every truncation and random corruption gives Left or a valid file, never a throw", () => {
  const bytes = encodeSafetensors([
    { name: "w", dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { name: "i", dtype: "I32", shape: [2], data: new Int32Array([7, 8]) },
  ], { k: "v" });
  for (let cut = 0; cut < bytes.length; cut++) {
    const msg = leftMessage(decodeSafetensors(bytes.subarray(0, cut)));
    assert.match(msg, /truncated|too short|run past|cover|JSON/, `cut ${cut}: ${msg}`);
  }
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      (edits) => {
        const b = bytes.slice();
        for (const [i, v] of edits) b[i] = v;
        const r = decodeSafetensors(b); // must not throw
        if (E.isRight(r)) {
          for (const [, t] of r.right.tensors) {
            assert.equal(t.data.length, t.shape.reduce((a, c) => a * c, 1));
          }
        }
      },
    ),
    { seed: 42, numRuns: 300 },
  );
});

Deno.test("safetensors: clear errors for corrupt headers", () => {
  const f32 = le("f32", [1, 2]);
  const cases: [unknown, Uint8Array, RegExp][] = [
    [
      { a: { dtype: "F16", shape: [2], data_offsets: [0, 8] } },
      f32,
      /tensor "a": unsupported dtype "F16"/,
    ],
    [
      { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
      f32,
      /"a": F32 \[3\] needs 12 bytes, data_offsets \[0, 8\] give 8/,
    ],
    [{ a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, f32, /"a": shape \[-2\]/],
    [{ a: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, f32, /"a": data_offsets \[8,0\]/],
    [
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
      },
      f32,
      /overlap/,
    ],
    [
      { a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } },
      f32,
      /gap in the data section before byte 4/,
    ],
    [
      { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
      f32,
      /cover 4 bytes but the data section has 8/,
    ],
    [
      { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } },
      f32,
      /run past the 8-byte data section/,
    ],
    [
      { __metadata__: { x: 1 }, a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } },
      f32,
      /__metadata__ "x" is not a string/,
    ],
    [[1, 2], f32, /header does not start with "\{"/],
  ];
  for (const [header, data, re] of cases) {
    assert.match(leftMessage(decodeSafetensors(handMade(header, data))), re);
  }
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
  assert.match(
    leftMessage(decodeSafetensors(huge)),
    /header length 1152921504606846976 exceeds the 8 bytes/,
  );
  const notJson = handMade({}, new Uint8Array(0));
  notJson[9] = 0x7b; // "{{"
  assert.match(leftMessage(decodeSafetensors(notJson)), /not valid JSON/);
  assert.match(leftMessage(decodeSafetensors(new Uint8Array(5))), /5 bytes long, too short/);
});

Deno.test("safetensors: the encoder rejects inconsistent tensors", () => {
  const f = new Float32Array(4);
  assert.throws(
    () => encodeSafetensors([{ name: "a", dtype: "F32", shape: [3], data: f }]),
    /"a": shape \[3\] needs 3 elements, the data has 4/,
  );
  assert.throws(
    () => encodeSafetensors([{ name: "a", dtype: "I32", shape: [4], data: f }]),
    /dtype I32 does not match a Float32Array/,
  );
  assert.throws(
    () =>
      encodeSafetensors([{ name: "a", dtype: "F32", shape: [4], data: f }, {
        name: "a",
        dtype: "F32",
        shape: [4],
        data: f,
      }]),
    /duplicate/,
  );
  assert.throws(
    () => encodeSafetensors([{ name: "__metadata__", dtype: "F32", shape: [4], data: f }]),
    /reserved/,
  );
  assert.throws(
    () => encodeSafetensors([{ name: "b", dtype: "BOOL", shape: [1], data: new Uint8Array([2]) }]),
    /BOOL data must be 0 or 1/,
  );
});

const hasPython = (code: string): boolean => {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", code],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
};

const runPython = async (code: string, file: string): Promise<string> => {
  const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", code, file] }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `python failed: ${err}`);
  return new TextDecoder().decode(out.stdout);
};

const interopTensors: SafetensorsTensor[] = [
  {
    name: "x.w",
    dtype: "F32",
    shape: [2, 3],
    data: new Float32Array([1, -2.5, 3, 0.125, 5e-8, -6e7]),
  },
  { name: "i", dtype: "I32", shape: [3], data: new Int32Array([-1, 0, 2147483647]) },
  { name: "d", dtype: "F64", shape: [], data: new Float64Array([Math.E]) },
  { name: "u", dtype: "U8", shape: [2], data: new Uint8Array([0, 255]) },
];

Deno.test({
  name: "safetensors: a file written here is read by Python's safetensors library" +
    " (ignored without python3 + safetensors + numpy)",
  ignore: !hasPython("import safetensors, numpy"),
}, async () => {
  const file = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await Deno.writeFile(file, encodeSafetensors(interopTensors, { a: "b" }));
    const code = `
import sys, json
from safetensors import safe_open
with safe_open(sys.argv[1], framework="numpy") as f:
    print(json.dumps({"meta": f.metadata(), "t": {k: [str(f.get_tensor(k).dtype), list(f.get_tensor(k).shape), f.get_tensor(k).reshape(-1).tolist()] for k in f.keys()}}))
`;
    const got = JSON.parse(await runPython(code, file));
    assert.deepEqual(got.meta, { a: "b" });
    const np = { F32: "float32", F64: "float64", I32: "int32", U8: "uint8", BOOL: "bool" };
    for (const t of interopTensors) {
      assert.deepEqual(got.t[t.name], [np[t.dtype], [...t.shape], Array.from(t.data)]);
    }
  } finally {
    await Deno.remove(file);
  }
});

Deno.test({
  name: "safetensors: a file written here parses with a Python stdlib reader of the spec" +
    " (ignored without python3)",
  ignore: !hasPython("import json, struct, array"),
}, async () => {
  const file = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await Deno.writeFile(file, encodeSafetensors(interopTensors, { a: "b" }));
    const code = `
import sys, json, struct, array
b = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", b[:8])
h = json.loads(b[8:8 + n].decode("utf-8"))
meta = h.pop("__metadata__", {})
codes = {"F32": "f", "F64": "d", "I32": "i", "U8": "B"}
out = {}
for k, e in h.items():
    s, t = e["data_offsets"]
    a = array.array(codes[e["dtype"]])
    a.frombytes(b[8 + n + s:8 + n + t])
    if sys.byteorder != "little": a.byteswap()
    out[k] = [e["dtype"], e["shape"], a.tolist()]
print(json.dumps({"meta": meta, "t": out, "n": n}))
`;
    const got = JSON.parse(await runPython(code, file));
    assert.deepEqual(got.meta, { a: "b" });
    assert.equal((8 + got.n) % 8, 0);
    for (const t of interopTensors) {
      assert.deepEqual(got.t[t.name], [t.dtype, [...t.shape], Array.from(t.data)]);
    }
  } finally {
    await Deno.remove(file);
  }
});

// ---------------------------------------------------------------------------------------
// checkpoints

type Tree = {
  enc: readonly [{ w: tf.Tensor; b: tf.Tensor; const: { perm: tf.Tensor } }];
  prior: { mu: tf.Tensor };
};

const makeTree = (): Tree => ({
  enc: [{
    w: tf.tensor2d([[0.1, -0.2, 0.3], [1e-7, 3.4e38, -0.5]]),
    b: tf.tensor1d([1, 2, 3]),
    const: { perm: tf.tensor1d([2, 0, 1], "int32") },
  }],
  prior: { mu: tf.scalar(-1.25) },
});

const training: TrainingState = {
  step: 123,
  rng: 0xdeadbeef,
  sampler: { epoch: 2, order: [3, 1, 2], nested: { ok: true, s: "x" } },
  lossHistory: [{ step: 100, clean: 3.25, degraded: 4.5 }, {
    step: 120,
    clean: 3.0,
    degraded: 4.0,
  }],
};
const config = { levels: 2, steps: [4, 4], name: "tiny", nothing: null };

const tmpDir = (): Promise<string> => Deno.makeTempDir({ prefix: "deflow-ckpt-" });

/** A tree, an optimizer state after one Adam step, and a disposer. */
const fixture = () => {
  const params0 = makeTree();
  const s0 = adamInit(params0);
  const grads = trainableParams(params0).map((n) => tf.onesLike(n.tensor));
  const { params, state } = adamStep(params0, grads, s0, { lr: 0.01 });
  tf.dispose(grads);
  disposeAdamState(s0);
  tf.dispose(trainableParams(params0).map((n) => n.tensor));
  return { params, state, dispose: () => (disposeParams(params), disposeAdamState(state)) };
};

const values = async (tree: ParamTree) =>
  await Promise.all(
    flattenParams(tree).map(async (
      n,
    ) => [n.path, n.tensor.dtype, n.tensor.shape, Array.from(await n.tensor.data())]),
  );

Deno.test(
  "checkpoint: save → load round trip is exact (params, Adam state, config, training)",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const dir = await tmpDir();
    const { params, state, dispose } = fixture();
    const path = `${dir}/model.safetensors`;
    const template = makeTree(); // same shapes, other values: the template's values must not matter
    await noLeak("save/load", async () => {
      await saveCheckpoint(path, { params, optimizer: state, config, training });
      const loaded = right(await loadCheckpoint(path, { params: template, optimizer: state }));
      assert.deepEqual(await values(loaded.params), await values(params));
      assert.deepEqual(loaded.config, config);
      assert.deepEqual(loaded.training, training);
      const opt = loaded.optimizer!;
      assert.equal(opt.step, 1);
      assert.deepEqual(opt.paths, state.paths);
      for (let i = 0; i < opt.paths.length; i++) {
        assert.deepEqual(await opt.m[i].data(), await state.m[i].data());
        assert.deepEqual(await opt.v[i].data(), await state.v[i].data());
      }
      disposeParams(loaded.params);
      disposeAdamState(opt);
      // Without an optimizer in the template the moments are ignored.
      const bare = right(await loadCheckpoint(path, { params }));
      assert.equal(bare.optimizer, undefined);
      disposeParams(bare.params);
    });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);
    dispose();
    disposeParams(template);
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test(
  "checkpoint: the optimiser's iterate (adam.x.*) round-trips; without it in the file none is made",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const dir = await tmpDir();
    const { params, state, dispose } = fixture();
    // An "average" and an iterate that differ from it in every entry.
    const iterate = state.paths.map((_, i) => tf.tidy(() => tf.add(state.m[i], tf.scalar(1))));
    const withIterate = { ...state, iterate };
    const path = `${dir}/avg.safetensors`;
    const template = makeTree();
    await noLeak("iterate save/load", async () => {
      await saveCheckpoint(path, { params, optimizer: withIterate, config, training });
      const info = right(await readCheckpointInfo(path));
      const names = info.tensors.map((t) => t.name);
      for (const p of state.paths) assert.ok(names.includes(`adam.x.${p}`), `adam.x.${p} stored`);
      const loaded = right(await loadCheckpoint(path, { params: template, optimizer: state }));
      assert.deepEqual(await values(loaded.params), await values(params));
      const got = loaded.optimizer!.iterate!;
      assert.equal(got.length, state.paths.length);
      for (let i = 0; i < got.length; i++) {
        assert.deepEqual(await got[i].data(), await iterate[i].data());
      }
      disposeParams(loaded.params);
      disposeAdamState(loaded.optimizer!);
      // Sampling loads the parameters alone; the iterate is skipped like the moments.
      const bare = right(await loadCheckpoint(path, { params: template }));
      assert.deepEqual(await values(bare.params), await values(params));
      disposeParams(bare.params);
      // A file written without an iterate loads without one.
      const plain = `${dir}/plain.safetensors`;
      await saveCheckpoint(plain, { params, optimizer: state, config, training });
      const p2 = right(await loadCheckpoint(plain, { params: template, optimizer: state }));
      assert.equal(p2.optimizer!.iterate, undefined);
      disposeParams(p2.params);
      disposeAdamState(p2.optimizer!);
    });
    // An iterate that does not match the moments is refused before anything is written.
    await assert.rejects(
      () =>
        saveCheckpoint(`${dir}/bad.safetensors`, {
          params,
          optimizer: { ...state, iterate: iterate.slice(1) },
          config,
          training,
        }),
      /iterate/,
    );
    tf.dispose(iterate);
    dispose();
    disposeParams(template);
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test(
  "checkpoint: readCheckpointInfo summarises without building tensors",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const dir = await tmpDir();
    const { params, state, dispose } = fixture();
    const path = `${dir}/a.safetensors`;
    await saveCheckpoint(path, { params, optimizer: state, config, training });
    const before = tf.memory().numTensors;
    const info = right(await readCheckpointInfo(path));
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(info.config, config);
    assert.deepEqual(info.training, training);
    assert.equal(info.adamStep, 1);
    assert.equal(info.summary.fileBytes, (await Deno.stat(path)).size);
    assert.equal(info.summary.paramTensorCount, flattenParams(params).length);
    assert.equal(info.summary.parameterCount, countParams(params));
    assert.equal(info.summary.tensorCount, flattenParams(params).length + 2 * state.paths.length);
    assert.ok(info.tensors.some((t) => t.name === "params.enc.0.const.perm" && t.dtype === "I32"));
    assert.ok(info.tensors.some((t) => t.name === "adam.v.enc.0.w" && t.shape.join() === "2,3"));
    assert.ok(!info.tensors.some((t) => t.name.startsWith("adam.m.enc.0.const")));
    // Truncated: the header is intact but data is missing.
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 3));
    assert.match(leftMessage(await readCheckpointInfo(path)), /run past|cover/);
    await Deno.writeFile(path, bytes.subarray(0, 20));
    assert.match(leftMessage(await readCheckpointInfo(path)), /header length \d+ exceeds/);
    await Deno.writeFile(path, bytes.subarray(0, 4));
    assert.match(leftMessage(await readCheckpointInfo(path)), /4 bytes long, too short/);
    dispose();
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test(
  "checkpoint: saving over a file replaces it atomically; a failed save leaves no temp file",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const dir = await tmpDir();
    const { params, state, dispose } = fixture();
    const path = `${dir}/c.safetensors`;
    await saveCheckpoint(path, { params, config, training });
    const first = await Deno.readFile(path);
    await saveCheckpoint(path, {
      params,
      optimizer: state,
      config,
      training: { ...training, step: 124 },
    });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["c.safetensors"]);
    assert.equal(right(await readCheckpointInfo(path)).training.step, 124);
    // NaN is not JSON: the save must fail before touching the file.
    const bad = { ...training, lossHistory: [{ step: 1, clean: NaN, degraded: 1 }] };
    await assert.rejects(
      saveCheckpoint(path, { params, config, training: bad }),
      /\$\.lossHistory\[0\]\.clean is NaN/,
    );
    await assert.rejects(
      saveCheckpoint(path, { params, config: { f: () => 1 }, training }),
      /config \$\.f is a function/,
    );
    await assert.rejects(
      saveCheckpoint(path, { params, config, training: { ...training, step: -1 } }),
      /invalid training state: step: expected NonNegativeInteger, got -1/,
    );
    // A write into a missing directory fails cleanly.
    await assert.rejects(
      saveCheckpoint(`${dir}/nope/x.safetensors`, { params, config, training }),
      /writing .* failed/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["c.safetensors"]);
    assert.notDeepEqual(await Deno.readFile(path), first);
    assert.equal(right(await readCheckpointInfo(path)).training.step, 124);
    dispose();
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("checkpoint: truncated or corrupt files → Left, nothing allocated", gpuTest, async () => {
  await useBackend("webgpu");
  const dir = await tmpDir();
  const { params, state, dispose } = fixture();
  const path = `${dir}/t.safetensors`;
  await saveCheckpoint(path, { params, optimizer: state, config, training });
  const bytes = await Deno.readFile(path);
  await noLeak("load of broken files", async () => {
    for (const cut of [0, 7, 8, 100, bytes.length - 1]) {
      await Deno.writeFile(path, bytes.subarray(0, cut));
      const msg = leftMessage(await loadCheckpoint(path, { params, optimizer: state }));
      assert.match(msg, /^loadCheckpoint\(.*t\.safetensors\): safetensors: /);
      assert.match(msg, /truncated|too short|cover/, msg);
    }
    assert.match(
      leftMessage(await loadCheckpoint(`${dir}/missing`, { params })),
      /cannot read the file/,
    );
  });
  dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test(
  "checkpoint: template mismatches → Left naming the tensor, nothing allocated",
  gpuTest,
  async () => {
    await useBackend("webgpu");
    const dir = await tmpDir();
    const { params, state, dispose } = fixture();
    const path = `${dir}/s.safetensors`;
    await saveCheckpoint(path, { params, optimizer: state, config, training });
    const p = params as Tree;
    const wrongW = tf.zeros([3, 2]);
    const extra = tf.zeros([1]);
    const wrongDtype = tf.zeros([3]);
    await noLeak("mismatched loads", async () => {
      const shape = { ...p, enc: [{ ...p.enc[0], w: wrongW }] } as const;
      assert.match(
        leftMessage(await loadCheckpoint(path, { params: shape })),
        /tensor "params\.enc\.0\.w" has shape \[2, 3\] in the file, the template expects \[3, 2\]/,
      );
      const more = { ...p, prior: { mu: p.prior.mu, sigma: extra } };
      assert.match(
        leftMessage(await loadCheckpoint(path, { params: more })),
        /tensor "params\.prior\.sigma" is missing/,
      );
      const fewer = { enc: p.enc };
      assert.match(
        leftMessage(await loadCheckpoint(path, { params: fewer })),
        /1 unexpected tensor\(s\) not in the template: "params\.prior\.mu"/,
      );
      const dt = { ...p, enc: [{ ...p.enc[0], const: { perm: wrongDtype } }] } as const;
      assert.match(
        leftMessage(await loadCheckpoint(path, { params: dt })),
        /"params\.enc\.0\.const\.perm" is I32 in the file, the template expects F32/,
      );
      const iw = state.paths.indexOf("enc.0.w");
      const optWrong = { ...state, m: state.m.map((m, i) => (i === iw ? wrongW : m)) };
      assert.match(
        leftMessage(await loadCheckpoint(path, { params, optimizer: optWrong })),
        /"adam\.m\.enc\.0\.w" has shape \[2, 3\]/,
      );
    });
    // A file without optimizer state cannot fill a template that asks for one.
    await saveCheckpoint(path, { params, config, training });
    assert.match(
      leftMessage(await loadCheckpoint(path, { params, optimizer: state })),
      /no optimizer state/,
    );
    tf.dispose([wrongW, extra, wrongDtype]);
    dispose();
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("checkpoint: bad metadata → Left with the io-ts path", gpuTest, async () => {
  await useBackend("webgpu");
  const dir = await tmpDir();
  const path = `${dir}/m.safetensors`;
  const w = tf.tensor1d([1, 2]);
  const tensor: SafetensorsTensor = {
    name: "params.w",
    dtype: "F32",
    shape: [2],
    data: new Float32Array([1, 2]),
  };
  const good = {
    "deflow.format": CHECKPOINT_FORMAT,
    "deflow.config": "{}",
    "deflow.training": JSON.stringify({ step: 1, rng: 2, sampler: null }),
  };
  const load = async (meta: Record<string, string>) => {
    await Deno.writeFile(path, encodeSafetensors([tensor], meta));
    return await loadCheckpoint(path, { params: { w } });
  };
  await noLeak("bad metadata", async () => {
    const ok = right(await load(good));
    assert.deepEqual(await ok.params.w.data(), new Float32Array([1, 2]));
    assert.deepEqual(ok.training, { step: 1, rng: 2, sampler: null });
    ok.params.w.dispose();
    const badStep = {
      ...good,
      "deflow.training": JSON.stringify({ step: "x", rng: 2, sampler: 0 }),
    };
    assert.match(
      leftMessage(await load(badStep)),
      /invalid checkpoint metadata: deflow\.training\.step: expected NonNegativeInteger, got "x"$/,
    );
    const badLoss = {
      ...good,
      "deflow.training": JSON.stringify({
        step: 1,
        rng: 2 ** 32,
        sampler: 0,
        lossHistory: [{ step: 1, clean: "a", degraded: 2 }],
      }),
    };
    assert.match(
      leftMessage(await load(badLoss)),
      /deflow\.training\.rng: expected Uint32, got 4294967296; deflow\.training\.lossHistory\.0\.clean: expected FiniteNumber, got "a"$/,
    );
    assert.match(
      leftMessage(await load({ ...good, "deflow.format": "99" })),
      /deflow\.format: expected "1", got "99"/,
    );
    const { "deflow.config": _drop, ...noConfig } = good;
    assert.match(
      leftMessage(await load(noConfig)),
      /deflow\.config: expected a JSON string, got undefined/,
    );
    assert.match(
      leftMessage(await load({ ...good, "deflow.config": "{oops" })),
      /deflow\.config: invalid JSON: .*, got "\{oops"/,
    );
    assert.match(
      leftMessage(await load({ ...good, "deflow.adam": "{}" })),
      /deflow\.adam\.step: expected NonNegativeInteger, got undefined/,
    );
    assert.match(leftMessage(await readCheckpointInfo(path)), /deflow\.adam\.step/);
  });
  // Unknown extra fields in the training state survive (forward compatibility).
  const extended = {
    ...good,
    "deflow.training": JSON.stringify({ step: 1, rng: 2, sampler: 0, future: [1] }),
  };
  const r = right(await load(extended));
  assert.deepEqual(r.training, { step: 1, rng: 2, sampler: 0, future: [1] });
  r.params.w.dispose();
  w.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("model loader: the shipped builtin:camera checkpoint loads from its path and bytes", async () => {
  await useBackend("cpu");
  const path = decodeURIComponent(builtinUrl("camera").pathname);
  const before = tf.memory().numTensors;
  const fromPath = await loadModelCheckpoint(path);
  const fromBytes = await loadModelBytes(await Deno.readFile(path), "builtin:camera");
  try {
    assert.deepEqual(fromBytes.config, fromPath.config);
    assert.deepEqual(fromBytes.normalization, fromPath.normalization);
    assert.equal(fromBytes.steps, fromPath.training.step);
    assert.ok(fromPath.training.step > 0);
    const a = flattenParams(fromPath.params), b = flattenParams(fromBytes.params);
    assert.equal(a.length, fromPath.info.summary.paramTensorCount);
    assert.deepEqual(a.map((n) => n.path), b.map((n) => n.path));
    for (let i = 0; i < a.length; i++) {
      assert.deepEqual(await a[i].tensor.data(), await b[i].tensor.data(), a[i].path);
    }
    // The header alone, from the path and from the bytes, agrees too.
    const info = await readCheckpointInfo(await Deno.readFile(path));
    assert.ok(E.isRight(info));
    assert.deepEqual(info.right, fromPath.info);
  } finally {
    disposeParams(fromPath.params);
    disposeParams(fromBytes.params);
  }
  assert.equal(tf.memory().numTensors, before, "templates freed");
  // Errors name the model; nothing is allocated.
  await assert.rejects(
    () => loadModelBytes(new Uint8Array(4), "builtin:broken"),
    /^Error: builtin:broken: readCheckpointInfo\(4 bytes\): .*too short/,
  );
  assert.equal(tf.memory().numTensors, before);
});
