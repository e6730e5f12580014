/**
 * The layer module type (`src/core/layer.ts`): every exported layer is a `Layer`, built by
 * `init({ ...options, seed })` and `bijector(params)` with its sizes read from the
 * parameters. The `@ts-expect-error` lines are checked by `deno check` (`deno task check`
 * type-checks test/): if a wrong call shape ever type-checks again, the check fails.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import type { Layer } from "../src/core/layer.ts";
import { disposeParams } from "../src/core/params.ts";
import { actNorm } from "../src/layers/actNorm.ts";
import { affineCoupling } from "../src/layers/affineCoupling.ts";
import { affineInjector } from "../src/layers/affineInjector.ts";
import { flowStep, transitionStep } from "../src/layers/flowStep.ts";
import { invConv1x1 } from "../src/layers/invConv1x1.ts";
import { split } from "../src/layers/split.ts";
import { squeeze } from "../src/layers/squeeze.ts";
import { noLeak, useBackend } from "./_helpers.ts";

// Compile-time checks: each must be a type error.
const typeErrors = () => {
  // @ts-expect-error positional (channels, seed) is not a layer's init
  invConv1x1.init(4, 1);
  // @ts-expect-error the seed is required
  affineCoupling.init({ channels: 4, condChannels: 2, hidden: 8 });
  const p = affineCoupling.init({ channels: 4, condChannels: 2, hidden: 8, seed: 1 });
  // @ts-expect-error sizes come from the parameters, not from the bijector's options
  affineCoupling.bijector(p, { channels: 4 });
  const notALayer: Layer<{ readonly w: tf.Tensor }> = {
    // @ts-expect-error a record whose init takes a number is not a Layer
    init: (seed: number) => ({ w: tf.scalar(seed) }),
    bijector: () => squeeze.bijector({}),
  };
  return notALayer;
};
void typeErrors;

Deno.test("layers: init({ ...options, seed }) and bijector(params) for every layer, sizes from the parameters", async () => {
  await useBackend("wasm");
  const layers: readonly [string, { init: (o: never) => unknown; bijector: unknown }, number][] = [
    ["actNorm", actNorm, 4],
    ["invConv1x1", invConv1x1, 4],
    ["affineCoupling", affineCoupling, 4],
    ["affineInjector", affineInjector, 4],
    ["flowStep", flowStep, 4],
    ["transitionStep", transitionStep, 4],
    ["split", split, 4],
    ["squeeze", squeeze, 4],
  ];
  for (const [name, layer] of layers) {
    assert.equal(typeof layer.init, "function", `${name}.init`);
    assert.equal(typeof layer.bijector, "function", `${name}.bijector`);
  }
  await noLeak("layer type", () => {
    const x = tf.randomNormal([2, 4, 4, 4], 0, 1, "float32", 3) as tf.Tensor4D;
    const x3 = tf.slice(x, [0, 0, 0, 0], [2, 4, 4, 3]) as tf.Tensor4D;
    const h = tf.randomNormal([2, 4, 4, 2], 0, 1, "float32", 4) as tf.Tensor4D;
    const conditional = { channels: 4, condChannels: 2, hidden: 8 };
    const an = actNorm.init({ channels: 4, seed: 1 });
    const ac = affineCoupling.init({ ...conditional, seed: 2 });
    const ai = affineInjector.init({ ...conditional, seed: 3 });
    const fs = flowStep.init({ ...conditional, seed: 4 });
    const sized = [
      ["actNorm", actNorm.bijector(an)],
      ["affineCoupling", affineCoupling.bijector(ac)],
      ["affineInjector", affineInjector.bijector(ai)],
      ["flowStep", flowStep.bijector(fs)],
    ] as const;
    for (const [name, b] of sized) {
      const { y, logDet } = b.forward(x, h);
      assert.deepEqual(y.shape, [2, 4, 4, 4], `${name}: forward keeps the shape`);
      assert.deepEqual(logDet.shape, [2], `${name}: one log-det per sample`);
      // Sizes came from the parameters: a 3-channel input does not fit 4-channel weights.
      assert.throws(() => b.forward(x3, h), /channel/, `${name}: a wrong channel count is refused`);
      tf.dispose([y, logDet]);
    }
    [an, ac, ai, fs].forEach((p) => disposeParams(p));
    tf.dispose([x, x3, h]);
  });
});
