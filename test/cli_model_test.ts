/**
 * The CLI's model-loading pipelines (`src/cli/model.ts`, fp-ts `TaskEither`): a saved
 * model loads with its config and normalisation; every failure — a missing file, a file
 * that is not a checkpoint, an invalid config, an invalid normalisation record — is one
 * `CliError` line naming the file, and no tensor is left behind.
 */
import assert from "node:assert/strict";
import { either as E } from "fp-ts";
import { tf } from "../src/tf.ts";
import { disposeParams } from "../src/core/params.ts";
import { configToJson } from "../src/model/config.ts";
import { initParams } from "../src/model/network.ts";
import { saveCheckpoint, type TrainingState } from "../src/io/checkpoint.ts";
import { CliError } from "../src/cli/args.ts";
import { loadModel, loadModelTask, readModelInfo } from "../src/cli/model.ts";
import { tinyConfig, useBackend } from "./_helpers.ts";

const training = (normalization?: unknown): TrainingState =>
  ({
    step: 3,
    rng: 1,
    sampler: {},
    lossHistory: [],
    ...(normalization === undefined ? {} : { normalization }),
  }) as unknown as TrainingState;

Deno.test("cli model: load → validate → run as one TaskEither; one-line errors", async () => {
  await useBackend("cpu");
  const dir = await Deno.makeTempDir({ prefix: "deflow-cli-model-" });
  try {
    const config = tinyConfig();
    const params = initParams(config, 5);
    const good = `${dir}/good.safetensors`;
    await saveCheckpoint(good, { params, config: configToJson(config), training: training() });
    const before = tf.memory().numTensors;
    const loaded = await loadModel(good);
    assert.equal(loaded.config.levels, config.levels);
    assert.equal(loaded.normalization, undefined);
    assert.equal(loaded.info.training.step, 3);
    disposeParams(loaded.params);
    assert.equal(tf.memory().numTensors, before, "loadModel leaked its template");

    const badConfig = `${dir}/bad-config.safetensors`;
    await saveCheckpoint(badConfig, {
      params,
      config: { ...configToJson(config) as object, levels: -1 },
      training: training(),
    });
    const badNorm = `${dir}/bad-norm.safetensors`;
    await saveCheckpoint(badNorm, {
      params,
      config: configToJson(config),
      training: training({ nonsense: 1 }),
    });
    disposeParams(params);
    const notCheckpoint = `${dir}/not.safetensors`;
    await Deno.writeTextFile(notCheckpoint, "hello");
    const cases: [string, RegExp][] = [
      [`${dir}/missing.safetensors`, /missing\.safetensors/],
      [notCheckpoint, /not\.safetensors/],
      [badConfig, /bad-config\.safetensors: invalid model config in the checkpoint: /],
      [badNorm, /bad-norm\.safetensors: invalid normalization record in the checkpoint/],
    ];
    for (const [path, message] of cases) {
      const n = tf.memory().numTensors;
      const result = await loadModelTask(path)();
      assert.ok(E.isLeft(result), `${path} loaded`);
      assert.ok(result.left instanceof CliError);
      assert.match(result.left.message, message);
      assert.ok(!result.left.message.includes("\n"), `not one line: ${result.left.message}`);
      await assert.rejects(() => readModelInfo(path), CliError);
      assert.equal(tf.memory().numTensors, n, `${path}: tensors leaked`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
