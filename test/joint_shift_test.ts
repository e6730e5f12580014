/**
 * `jointShift`: one latent shift over all latents of each `2^L × 2^L` block
 * (`src/model/shiftLatents.ts`). Folding is an exact permutation; a joint shift whose
 * matrices are block-diagonal (one `M`/`K` copy per folded position of each latent) is the
 * per-latent model, so both must give the same densities; the joint model trains,
 * samples (τ = 0 is the identity) and restores without leaking tensors.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { tf } from "../src/tf.ts";
import {
  foldBlocks,
  packShiftLatents,
  shiftLatentChannels,
  shiftLatentLevels,
  shiftLatentShapes,
  unfoldBlocks,
  unpackShiftLatents,
} from "../src/model/shiftLatents.ts";
import { configOrThrow, decodeConfig, decodeStoredConfig } from "../src/model/config.ts";
import { latentChannels, latentLevels } from "../src/model/layout.ts";
import { conditionInput } from "../src/model/conditioning.ts";
import { type DeflowParams, encode, initParams } from "../src/model/network.ts";
import {
  disposeShiftStats,
  logLikelihood,
  pairedLogLikelihood,
  preparePairedShifts,
  prepareShifts,
} from "../src/model/objective.ts";
import { degrade, prepareSampler, restore } from "../src/model/sample.ts";
import { disposeParams } from "../src/core/params.ts";
import type { Shape4 } from "../src/core/bijector.ts";
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
  "foldBlocks: each b×b patch becomes one vector; unfold and unpack invert exactly",
  gpuTest,
  async () => {
    await useBackend();
    // Placement, by hand: z[n, i·b + p, j·b + q, c] = fold[n, i, j, (p·b + q)·C + c].
    const [n, h, w, c, b] = [2, 4, 6, 3, 2];
    const z = tf.tensor4d(Array.from({ length: n * h * w * c }, (_, k) => k), [n, h, w, c]);
    const f = foldBlocks(z, b);
    assert.deepEqual(f.shape, [n, h / b, w / b, b * b * c]);
    const zv = await read(z), fv = await read(f);
    for (let s = 0; s < n; s++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let k = 0; k < c; k++) {
            const [i, p, j, q] = [Math.floor(y / b), y % b, Math.floor(x / b), x % b];
            const folded = fv[((s * (h / b) + i) * (w / b) + j) * b * b * c + (p * b + q) * c + k];
            assert.equal(folded, zv[((s * h + y) * w + x) * c + k]);
          }
        }
      }
    }
    tf.dispose([z, f]);
    assert.throws(() => foldBlocks(tf.zeros([1, 3, 4, 1]) as tf.Tensor4D, 2), /2×2 blocks/);
    // Round trips on random shapes and block sizes.
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 2, 4),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 5 }),
        async (bb, hb, wb, cc) => {
          await noLeak("fold round trip", async () => {
            const t = tf.randomNormal([2, hb * bb, wb * bb, cc], 0, 1, "float32", 5) as tf.Tensor4D;
            const folded = foldBlocks(t, bb);
            const back = unfoldBlocks(folded, bb);
            assert.deepEqual(back.shape, t.shape);
            assert.equal(maxAbsDiff(await read(back), await read(t)), 0);
            tf.dispose([...new Set([t, folded, back])]);
          });
        },
      ),
      { seed: 17, numRuns: 12 },
    );
    // pack / unpack on the network's latent shapes.
    const config = tinyConfig({ jointShift: true });
    const shapes: Shape4[] = [[2, 8, 8, 6], [2, 4, 4, 24]];
    assert.deepEqual(latentLevels(config), [1, 2]);
    assert.deepEqual(shiftLatentChannels(config), [6 * 4 + 24]);
    assert.deepEqual(shiftLatentLevels(config), [2]);
    await noLeak("pack round trip", async () => {
      const lat = shapes.map((s, i) =>
        tf.randomNormal([...s], 0, 1, "float32", 30 + i) as tf.Tensor4D
      );
      const packed = packShiftLatents(config, lat);
      assert.equal(packed.length, 1);
      assert.deepEqual(packed[0].shape, [2, 4, 4, 48]);
      assert.deepEqual(shiftLatentShapes(config, shapes), [[2, 4, 4, 48]]);
      assert.deepEqual(shiftLatentShapes(tinyConfig(), shapes), shapes);
      const back = unpackShiftLatents(config, packed, shapes);
      for (let i = 0; i < lat.length; i++) {
        assert.equal(maxAbsDiff(await read(back[i]), await read(lat[i])), 0);
      }
      assert.throws(() => unpackShiftLatents(config, [lat[1]], shapes), /48 channels/);
      // Without jointShift, the same tensors.
      const plain = tinyConfig();
      assert.equal(packShiftLatents(plain, lat), lat);
      assert.deepEqual(shiftLatentChannels(plain), latentChannels(plain));
      tf.dispose([...lat, ...packed, ...back]);
    });
  },
);

/** `blockdiag(kron(I_{b²}, A_l))` over the latents, `A_l` row-major `C_l × C_l`. */
const kronBlocks = async (
  mats: readonly tf.Tensor2D[],
  factors: readonly number[],
): Promise<tf.Tensor2D> => {
  const sizes = mats.map((m, i) => m.shape[0] * factors[i] ** 2);
  const d = sizes.reduce((a, b) => a + b, 0);
  const out = new Float32Array(d * d);
  let off = 0;
  for (let l = 0; l < mats.length; l++) {
    const c = mats[l].shape[0];
    const v = await mats[l].data();
    for (let p = 0; p < factors[l] ** 2; p++) {
      for (let i = 0; i < c; i++) {
        for (let j = 0; j < c; j++) out[(off + p * c + i) * d + off + p * c + j] = v[i * c + j];
      }
    }
    off += sizes[l];
  }
  return tf.tensor2d(out, [d, d]);
};

Deno.test(
  "jointShift: with block-diagonal M and K it is the per-latent model (densities equal)",
  gpuTest,
  async () => {
    await useBackend();
    const perLatent = tinyConfig({ adaptiveShift: false, contractShift: true });
    const joint = { ...perLatent, jointShift: true };
    const base = perturbedModel(perLatent, 4, 0.05);
    // Non-trivial per-latent shifts: random μ, M, K.
    const params: DeflowParams = {
      ...base,
      shifts: base.shifts.map((s, i) => ({
        mu: tf.randomNormal(s.mu.shape, 0, 0.3, "float32", 40 + i) as tf.Tensor1D,
        m: tf.randomNormal(s.m.shape, 0, 0.4, "float32", 50 + i) as tf.Tensor2D,
      })),
      shiftContractions: base.shiftContractions.map((k, i) => ({
        k: tf.randomNormal(k.k.shape, 0, 0.4, "float32", 60 + i) as tf.Tensor2D,
      })),
    };
    tf.dispose([
      ...base.shifts.flatMap((s) => [s.mu, s.m]),
      ...base.shiftContractions.map((k) => k.k),
    ]);
    const factors = latentLevels(perLatent).map((l) => 2 ** (perLatent.levels - l));
    const muJoint = tf.tidy(() =>
      tf.concat(
        params.shifts.map((s, i) => tf.tile(s.mu, [factors[i] ** 2])),
      ) as tf.Tensor1D
    );
    const jointParams: DeflowParams = {
      ...params,
      shifts: [{ mu: muJoint, m: await kronBlocks(params.shifts.map((s) => s.m), factors) }],
      shiftContractions: [{
        k: await kronBlocks(params.shiftContractions.map((k) => k.k), factors),
      }],
    };
    await noLeak("joint vs per-latent densities", async () => {
      const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 8) as tf.Tensor4D;
      const y = tf.tidy(() =>
        tf.clipByValue(tf.add(x, tf.randomNormal(x.shape, 0, 0.05, "float32", 9)), 0, 1)
      ) as tf.Tensor4D;
      const cond = conditionInput(x, { factor: perLatent.conditionFactor, seed: 2 });
      const sA = await prepareShifts(params);
      const sB = await prepareShifts(jointParams);
      const a = logLikelihood(params, perLatent, sA, x, cond);
      const b = logLikelihood(jointParams, joint, sB, x, cond);
      const [ac, bc, ad, bd] = await Promise.all(
        [a.clean, b.clean, a.degraded, b.degraded].map(read),
      );
      assert.ok(maxAbsDiff(ac, bc) < 1e-3, `clean ${ac} vs ${bc}`);
      // The degraded density differs from the clean one (the shift matters) and agrees.
      assert.ok(maxAbsDiff(ad, ac) > 1, "degraded density equals the clean one");
      const tol = (v: Float64Array) => 1e-2 + 1e-5 * Math.max(...Array.from(v, Math.abs));
      assert.ok(maxAbsDiff(ad, bd) < tol(ad), `degraded ${ad} vs ${bd}`);
      const pA = await preparePairedShifts(params, 1e-3);
      const pB = await preparePairedShifts(jointParams, 1e-3);
      const pa = pairedLogLikelihood(params, perLatent, pA, x, y, cond);
      const pb = pairedLogLikelihood(jointParams, joint, pB, x, y, cond);
      const [la, lb] = [await read(pa), await read(pb)];
      assert.ok(la.every(Number.isFinite) && maxAbsDiff(la, lb) < tol(la), `paired ${la} vs ${lb}`);
      disposeShiftStats(sA);
      disposeShiftStats(sB);
      disposeShiftStats(pA);
      disposeShiftStats(pB);
      tf.dispose([x, y, cond, a.clean, a.degraded, b.clean, b.degraded, pa, pb]);
    });
    tf.dispose([muJoint, jointParams.shifts[0].m, jointParams.shiftContractions[0].k]);
    disposeParams(params);
  },
);

Deno.test(
  "jointShift: config, init, sampling (τ = 0 is the identity) and restoring",
  gpuTest,
  async () => {
    await useBackend();
    assert.ok(decodeConfig({ jointShift: "yes" })._tag === "Left");
    const stored = decodeStoredConfig({ levels: 3 });
    assert.ok(stored._tag === "Right" && stored.right.jointShift === false);
    assert.deepEqual(shiftLatentChannels(configOrThrow({ jointShift: true })), [192]);
    const config = tinyConfig({ jointShift: true });
    const params = initParams(config, 5);
    assert.equal(params.shifts.length, 1);
    assert.equal(params.shifts[0].m.shape[0], 48);
    assert.equal(params.shiftScales.length, 1);
    assert.equal(params.shiftContractions.length, 1);
    await noLeak("joint model sampling", async () => {
      const x = tf.randomUniform([1, 16, 16, 3], 0, 1, "float32", 8) as tf.Tensor4D;
      const cond = conditionInput(x, { factor: config.conditionFactor, seed: 2 });
      const stats = await prepareShifts(params);
      const ll = logLikelihood(params, config, stats, x, cond);
      assert.ok((await read(ll.degraded)).every(Number.isFinite));
      // Gradients reach the joint M.
      const g = tf.grads((m: tf.Tensor) =>
        tf.sum(
          logLikelihood(
            { ...params, shifts: [{ ...params.shifts[0], m: m as tf.Tensor2D }] },
            config,
            stats,
            x,
            cond,
          )
            .degraded,
        ) as tf.Scalar
      )([params.shifts[0].m]);
      assert.ok((await read(g[0])).some((v) => Math.abs(v) > 1e-6), "M gradient is zero");
      const sampler = await prepareSampler(params, config);
      const [same] = degrade(sampler, x, { seed: 3, temperature: 0 });
      assert.ok(maxAbsDiff(await read(same), await read(x)) < 1e-4, "τ = 0 moved the image");
      const [y] = degrade(sampler, x, { seed: 3 });
      const yv = await read(y);
      assert.ok(yv.every((v) => v >= 0 && v <= 1));
      assert.ok(maxAbsDiff(yv, await read(x)) > 1e-3, "τ = 1 left the image unchanged");
      const [r] = restore(sampler, y, { seed: 4 });
      assert.ok((await read(r)).every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
      // Encoding still yields the network's latents (the packing is only the shift's view).
      const { latents, logDet } = encode(params, config, x, cond);
      assert.deepEqual(latents.map((z) => z.shape[3]), latentChannels(config));
      sampler.dispose();
      disposeShiftStats(stats);
      tf.dispose([x, cond, ll.clean, ll.degraded, ...g, same, y, r, ...latents, logDet]);
    });
    disposeParams(params);
  },
);
