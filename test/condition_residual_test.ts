/**
 * The residual-to-condition option (`conditionResidual`): the flow's input is the image
 * minus its upsampled conditioning input, and checkpoints written before the option existed
 * keep their meaning.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { decodeConfig, decodeStoredConfig, defaultConfig } from "../src/model/config.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { bicubicResize } from "../src/image/resize.ts";
import { disposeParams } from "../src/core/params.ts";
import {
  decode,
  disposeInverses,
  encode,
  fromResidual,
  initParams,
  levelFeatures,
  toResidual,
  withInverses,
} from "../src/model/network.ts";
import { tinyConfig } from "./_helpers.ts";

const tiny = tinyConfig();

const read = async (t: tf.Tensor) => Array.from(await t.data());
const maxAbs = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

Deno.test("config: new configs model the residual; stored configs without the field do not", () => {
  assert.equal(defaultConfig.conditionResidual, true);
  const fresh = decodeConfig({});
  const stored = decodeStoredConfig({ levels: 3 });
  const explicit = decodeStoredConfig({ conditionResidual: true });
  assert.ok(fresh._tag === "Right" && fresh.right.conditionResidual === true);
  assert.ok(stored._tag === "Right" && stored.right.conditionResidual === false);
  assert.ok(explicit._tag === "Right" && explicit.right.conditionResidual === true);
  assert.ok(decodeConfig({ conditionResidual: 1 })._tag === "Left");
});

Deno.test("toResidual subtracts the bicubic-upsampled condition; fromResidual adds it back", async () => {
  const before = tf.memory().numTensors;
  const params = initParams(tiny, 5);
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 6) as tf.Tensor4D;
  const cond = conditionInput(x, { factor: tiny.conditionFactor, seed: 7 });
  const feats = levelFeatures(params, tiny, cond, 16, 16);
  assert.equal(feats.length, tiny.levels + 1);
  const r = toResidual(tiny, x, feats);
  const up = bicubicResize(cond, [16, 16]);
  const want = tf.sub(x, up);
  assert.ok(maxAbs(await read(r), await read(want)) < 1e-6);
  const back = fromResidual(tiny, r, feats);
  assert.ok(maxAbs(await read(back), await read(x)) < 1e-6);
  // Without the option, the flow sees the image itself and no extra feature is made.
  const off = { ...tiny, conditionResidual: false };
  const featsOff = levelFeatures(params, off, cond, 16, 16);
  assert.equal(featsOff.length, tiny.levels);
  const same = toResidual(off, x, featsOff);
  assert.ok(maxAbs(await read(same), await read(x)) === 0);
  tf.dispose([x, cond, ...feats, r, up, want, back, ...featsOff]);
  disposeParams(params);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("encode/decode with and without the residual: both invert, and they differ", async () => {
  const before = tf.memory().numTensors;
  const x = tf.randomUniform([1, 16, 16, 3], 0, 1, "float32", 8) as tf.Tensor4D;
  const cond = conditionInput(x, { factor: tiny.conditionFactor, seed: 9 });
  const latentsOf: number[][] = [];
  for (const cfg of [tiny, { ...tiny, conditionResidual: false }]) {
    const raw = initParams(cfg, 10);
    const params = await withInverses(raw);
    const enc = encode(params, cfg, x, cond);
    const dec = decode(params, cfg, enc.latents, cond);
    assert.ok(maxAbs(await read(dec.x), await read(x)) < 1e-4);
    latentsOf.push(await read(enc.latents[enc.latents.length - 1]));
    tf.dispose([...enc.latents, enc.logDet, dec.x, dec.logDet]);
    disposeInverses(params);
    disposeParams(raw);
  }
  assert.ok(maxAbs(latentsOf[0], latentsOf[1]) > 1e-3, "the residual must change the latents");
  tf.dispose([x, cond]);
  assert.equal(tf.memory().numTensors, before);
});
