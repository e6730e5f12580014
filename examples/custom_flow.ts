/**
 * Compose a custom flow from deflow's bijectors, add a layer of your own, and check both
 * with the law kit. Run: `deno run -A examples/custom_flow.ts`.
 *
 * @module
 */
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import { initBackend } from "../src/core/backend.ts";
import { bijector, chain, checkInput } from "../src/core/bijector.ts";
import type { Layer } from "../src/core/layer.ts";
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

/** Parameters of the leaky layer: the log of its slope for negative inputs. */
type LeakyParams = { readonly logSlope: tf.Scalar };

/**
 * A new layer, leaky-linear: `y = x` for `x ≥ 0`, `a·x` otherwise, `a = exp(logSlope)`
 * (log-det: `log a` per negative entry). Declared as a `Layer`, so an `init` or `bijector`
 * of another shape fails `deno check`.
 */
const leaky: Layer<LeakyParams, { readonly slope: number }> = {
  init: ({ slope }) => ({ logSlope: tf.scalar(Math.log(slope)) }),
  bijector: ({ logSlope }) =>
    bijector({
      name: "leaky",
      forward: (x) =>
        tf.tidy(() => {
          checkInput("leaky", x);
          const neg = tf.cast(tf.less(x, 0), "float32");
          const y = tf.sub(tf.relu(x), tf.mul(tf.relu(tf.neg(x)), tf.exp(logSlope)));
          return {
            y: y as tf.Tensor4D,
            logDet: tf.mul(tf.sum(neg, [1, 2, 3]), logSlope) as tf.Tensor1D,
          };
        }),
      inverse: (y) =>
        tf.tidy(() => {
          checkInput("leaky", y);
          const neg = tf.cast(tf.less(y, 0), "float32");
          const x = tf.sub(tf.relu(y), tf.div(tf.relu(tf.neg(y)), tf.exp(logSlope)));
          return {
            y: x as tf.Tensor4D,
            logDet: tf.mul(tf.sum(neg, [1, 2, 3]), tf.neg(logSlope)) as tf.Tensor1D,
          };
        }),
    }),
};

// A new layer is tested in a few lines: layerCase draws seeds and shapes, moves the
// parameters away from their initial values, and disposes everything for you.
const leakyReport = await checkBijectorLaws(layerCase({
  name: "leaky",
  init: ({ seed }) => leaky.init({ slope: 0.5, seed }),
  bijector: (params) => leaky.bijector(params),
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
    const slope = leaky.init({ slope: 0.5, seed });
    const flow = chain(
      squeeze.bijector(),
      actNorm.bijector(an),
      invConv1x1.bijector(conv),
      affineCoupling.bijector(coupling),
      leaky.bijector(slope),
    );
    const x = tf.randomNormal([2, 2, 2, 1], 0, 1, "float32", seed + 2) as tf.Tensor4D;
    return {
      bijector: flow,
      x,
      dispose: () => {
        tf.dispose([x, ...leaves(an)]);
        disposeParams(conv);
        disposeParams(coupling);
        disposeParams(slope);
      },
    };
  },
};

const report = await checkBijectorLaws(flowCase, { numRuns: 3 });
printLawReport(report);
console.log(
  leakyReport.passed && report.passed ? "custom flow: all laws hold" : "custom flow: laws FAILED",
);
