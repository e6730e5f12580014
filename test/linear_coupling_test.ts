/**
 * `linearCoupling`: with conditionally linear couplings the whole network is affine in the
 * image for fixed conditioning features, so a latent displacement decodes to the same image
 * displacement on any content, and the log-det does not depend on the image. The same
 * checks fail for the paper's affine couplings (they are how the content dependence was
 * measured). The layer's own laws run in the registry (`test/registry_test.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { configOrThrow, decodeConfig, decodeStoredConfig } from "../src/model/config.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import {
  disposeInverses,
  encodeWithFeatures,
  initParams,
  levelFeatures,
  withInverses,
} from "../src/model/network.ts";
import { disposeShiftStats, logLikelihood, prepareShifts } from "../src/model/objective.ts";
import { degrade, prepareSampler } from "../src/model/sample.ts";
import { disposeParams } from "../src/core/params.ts";
import { linearCoupling, type LinearCouplingParams } from "../src/layers/linearCoupling.ts";
import { split } from "../src/layers/split.ts";
import { affinity, decodedDisplacement } from "./_content_probe.ts";
import {
  gpuTest,
  maxAbsDiff,
  noLeak,
  perturbedModel,
  read,
  tinyConfig,
  useBackend,
} from "./_helpers.ts";

Deno.test(
  "linearCoupling: the network is affine in the image for fixed features (the paper's is not)",
  gpuTest,
  async () => {
    await useBackend();
    const linear = await noLeak(
      "linear network",
      () => affinity(tinyConfig({ linearCoupling: true })),
    );
    assert.ok(linear.affine < 1e-3, `encoding not affine: ${linear.affine}`);
    assert.ok(linear.rScale > 0.05, `the displacement decoded to nothing (${linear.rScale})`);
    assert.ok(
      linear.displacement < 1e-3 * Math.max(1, linear.rScale),
      `a latent displacement decoded differently on two images: ${linear.displacement}`,
    );
    assert.ok(linear.logDet < 1e-3, `log-det depends on the image: ${linear.logDet}`);
    const paper = await affinity(tinyConfig());
    assert.ok(paper.affine > 1e-2, `the paper's couplings came out affine: ${paper.affine}`);
    assert.ok(paper.displacement > 1e-2, `paper's displacement ${paper.displacement}`);
    assert.ok(paper.logDet > 1e-3, `paper's log-det ${paper.logDet}`);
  },
);

Deno.test(
  "linearCoupling: config, parameters, old checkpoints, training objective and sampling",
  gpuTest,
  async () => {
    await useBackend();
    assert.ok(decodeConfig({ linearCoupling: 1 })._tag === "Left");
    assert.equal(configOrThrow({}).linearCoupling, false);
    const stored = decodeStoredConfig({ levels: 3 });
    assert.ok(stored._tag === "Right" && stored.right.linearCoupling === false);
    const config = tinyConfig({ linearCoupling: true });
    const params = initParams(config, 5);
    const step = params.levels[0].steps[0];
    assert.ok("linear" in step.coupling, "the step has no linear coupling");
    // The condition network sees only the condition: its input is the feature channels.
    assert.equal(step.coupling.net.conv1.w.shape[2], step.injector.net.conv1.w.shape[2]);
    assert.throws(() => linearCoupling.init({ channels: 4, condChannels: 0, hidden: 4, seed: 1 }));
    await noLeak("linear model training objective and sampling", async () => {
      const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 8) as tf.Tensor4D;
      const cond = conditionInput(x, { factor: config.conditionFactor, seed: 2 });
      const stats = await prepareShifts(params);
      const w = step.coupling as LinearCouplingParams;
      const g = tf.grads((lw: tf.Tensor) => {
        const levels = params.levels.map((l, li) =>
          li === 0
            ? {
              ...l,
              steps: l.steps.map((s, si) =>
                si === 0
                  ? {
                    ...s,
                    coupling: { ...w, linear: { w: lw as tf.Tensor4D } },
                  }
                  : s
              ),
            }
            : l
        );
        const ll = logLikelihood({ ...params, levels }, config, stats, x, cond);
        return tf.add(tf.sum(ll.clean), tf.sum(ll.degraded)) as tf.Scalar;
      })([w.linear.w]);
      assert.ok((await read(g[0])).some((v) => Math.abs(v) > 1e-6), "W gradient is zero");
      const sampler = await prepareSampler(params, config);
      const [same] = degrade(sampler, x, { seed: 3, temperature: 0 });
      assert.ok(maxAbsDiff(await read(same), await read(x)) < 1e-4, "τ = 0 moved the image");
      const [y] = degrade(sampler, x, { seed: 3 });
      assert.ok((await read(y)).every((v) => v >= 0 && v <= 1));
      sampler.dispose();
      disposeShiftStats(stats);
      tf.dispose([x, cond, ...g, same, y]);
    });
    disposeParams(params);
  },
);

Deno.test(
  "split (constant scale): the log-scale is the bias alone, so the log-det ignores the input",
  gpuTest,
  async () => {
    await useBackend();
    await noLeak("constant-scale split", async () => {
      const p = {
        prior: {
          w: tf.randomNormal([3, 3, 2, 6], 0, 0.3, "float32", 4) as tf.Tensor4D,
          b: tf.randomNormal([6], 0, 0.3, "float32", 5) as tf.Tensor1D,
        },
      };
      const b = split.bijector(p, { constantScale: true });
      const x1 = tf.randomNormal([1, 3, 4, 5], 0, 1, "float32", 6) as tf.Tensor4D;
      const x2 = tf.randomNormal([1, 3, 4, 5], 0, 1, "float32", 7) as tf.Tensor4D;
      const r1 = b.forward(x1);
      const r2 = b.forward(x2);
      const bias = await read(p.prior.b);
      const expected = -3 * 4 * (bias[1] + bias[3] + bias[5]);
      const [l1] = await read(r1.logDet);
      const [l2] = await read(r2.logDet);
      assert.ok(Math.abs(l1 - expected) < 1e-4 && Math.abs(l2 - expected) < 1e-4, `${l1} ${l2}`);
      // The input-dependent split's log-det differs between the two inputs.
      const q1 = split.bijector(p).forward(x1);
      const q2 = split.bijector(p).forward(x2);
      const [m1] = await read(q1.logDet);
      const [m2] = await read(q2.logDet);
      assert.ok(Math.abs(m1 - m2) > 1e-2, `${m1} ${m2}`);
      tf.dispose([p.prior.w, p.prior.b, x1, x2, r1.y, r1.logDet, r2.y, r2.logDet]);
      tf.dispose([q1.y, q1.logDet, q2.y, q2.logDet]);
    });
  },
);

/**
 * Two images, each with its own conditioning features: the largest deviation between the
 * image displacements that one latent displacement decodes to, and between the log-dets.
 */
const stationarity = async (config: ModelConfig) => {
  const params = await withInverses(perturbedModel(config, 7, 0.1));
  try {
    const xs = [11, 12].map((s) => tf.randomUniform([1, 16, 16, 3], 0, 1, "float32", s));
    const out = [];
    let d: tf.Tensor4D[] = [];
    for (const x of xs as tf.Tensor4D[]) {
      const cond = conditionInput(x, { factor: config.conditionFactor, seed: 3 });
      const feats = levelFeatures(params, config, cond, 16, 16);
      const e = encodeWithFeatures(params, config, x, feats);
      if (!d.length) {
        d = e.latents.map((z, i) => tf.randomNormal(z.shape, 0, 0.5, "float32", 20 + i));
      }
      const r = decodedDisplacement(params, config, x, e.latents, d, feats);
      out.push({ r: await read(r), logDet: await read(e.logDet) });
      tf.dispose([cond, ...feats, ...e.latents, e.logDet, r]);
    }
    tf.dispose([...xs, ...d]);
    return {
      displacement: maxAbsDiff(out[0].r, out[1].r),
      rScale: Math.max(...out[0].r.map(Math.abs)),
      logDet: maxAbsDiff(out[0].logDet, out[1].logDet),
    };
  } finally {
    disposeInverses(params);
    disposeParams(params);
  }
};

Deno.test(
  "stationaryScale: the flow's Jacobian is the same for every condition (linearCoupling's is not)",
  gpuTest,
  async () => {
    await useBackend();
    assert.ok(decodeConfig({ stationaryScale: true })._tag === "Left", "needs linearCoupling");
    assert.equal(configOrThrow({}).stationaryScale, false);
    const stored = decodeStoredConfig({ levels: 3, linearCoupling: true });
    assert.ok(stored._tag === "Right" && stored.right.stationaryScale === false);
    const fixed = await noLeak(
      "stationary network",
      () => stationarity(tinyConfig({ linearCoupling: true, stationaryScale: true })),
    );
    assert.ok(fixed.rScale > 0.05, `the displacement decoded to nothing (${fixed.rScale})`);
    assert.ok(
      fixed.displacement < 1e-3 * Math.max(1, fixed.rScale),
      `a latent displacement decoded differently under two conditions: ${fixed.displacement}`,
    );
    assert.ok(fixed.logDet < 1e-3, `log-det depends on the condition: ${fixed.logDet}`);
    const linear = await stationarity(tinyConfig({ linearCoupling: true }));
    assert.ok(linear.displacement > 1e-2, `linearCoupling's displacement ${linear.displacement}`);
    assert.ok(linear.logDet > 1e-3, `linearCoupling's log-det ${linear.logDet}`);
  },
);
