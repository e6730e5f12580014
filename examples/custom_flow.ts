/**
 * Compose a custom flow from deflow's bijectors, add a layer of your own, and check both
 * with the law kit. Run: `deno run -A examples/custom_flow.ts`.
 *
 * @module
 */
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import { initBackend } from "../src/core/backend.ts";
import { type Bijector, bijector, chain, checkInput } from "../src/core/bijector.ts";
import { disposeParams, leaves } from "../src/core/params.ts";
import { actNorm } from "../src/layers/actNorm.ts";
import { invConv1x1 } from "../src/layers/invConv1x1.ts";
import { affineCoupling } from "../src/layers/affineCoupling.ts";
import { squeeze } from "../src/layers/squeeze.ts";
import {
  type BijectorCase,
  checkBijectorLaws,
  layerCase,
  printLawReport,
} from "../src/testing/mod.ts";

await initBackend();

/** A new layer, leaky-linear: y = x for x ≥ 0, a·x otherwise (log-det: log a per negative entry). */
const leaky = (a: number): Bijector =>
  bijector({
    name: `leaky(${a})`,
    forward: (x) =>
      tf.tidy(() => {
        checkInput("leaky", x);
        const neg = tf.cast(tf.less(x, 0), "float32");
        const y = tf.sub(tf.relu(x), tf.mul(tf.relu(tf.neg(x)), a)) as tf.Tensor4D;
        return { y, logDet: tf.mul(tf.sum(neg, [1, 2, 3]), Math.log(a)) as tf.Tensor1D };
      }),
    inverse: (y) =>
      tf.tidy(() => {
        const neg = tf.cast(tf.less(y, 0), "float32");
        const x = tf.sub(tf.relu(y), tf.div(tf.relu(tf.neg(y)), a)) as tf.Tensor4D;
        return { y: x, logDet: tf.mul(tf.sum(neg, [1, 2, 3]), -Math.log(a)) as tf.Tensor1D };
      }),
  });

// A new layer is tested in a few lines: layerCase draws seeds and shapes and disposes for you.
const leakyReport = await checkBijectorLaws(layerCase({
  name: "leaky(0.5)",
  init: () => ({}), // no parameters
  bijector: () => leaky(0.5),
}));
printLawReport(leakyReport);

// A whole flow, with its own parameter draws and input, as a hand-written BijectorCase.
const flowCase: BijectorCase<{ seed: number }> = {
  name: "squeeze → actNorm → 1x1 conv → coupling → leaky",
  params: fc.record({ seed: fc.integer({ min: 1, max: 1_000_000 }) }),
  related: () => fc.integer({ min: 1, max: 1_000_000 }).map((seed) => ({ seed })),
  build: async ({ seed }) => {
    const an = {
      bias: tf.randomNormal([4], 0, 0.3, "float32", seed) as tf.Tensor1D,
      logs: tf.randomNormal([4], 0, 0.3, "float32", seed + 1) as tf.Tensor1D,
    };
    const conv = await invConv1x1.withInverse(invConv1x1.init({ channels: 4, seed }));
    const coupling = affineCoupling.init({ channels: 4, condChannels: 0, hidden: 8, seed });
    const flow = chain(
      squeeze.bijector(),
      actNorm.bijector(an),
      invConv1x1.bijector(conv),
      affineCoupling.bijector(coupling),
      leaky(0.5),
    );
    const x = tf.randomNormal([2, 2, 2, 1], 0, 1, "float32", seed + 2) as tf.Tensor4D;
    return {
      bijector: flow,
      x,
      dispose: () => {
        tf.dispose([x, ...leaves(an)]);
        disposeParams(conv);
        disposeParams(coupling);
      },
    };
  },
};

const report = await checkBijectorLaws(flowCase, { numRuns: 3 });
printLawReport(report);
console.log(
  leakyReport.passed && report.passed ? "custom flow: all laws hold" : "custom flow: laws FAILED",
);
