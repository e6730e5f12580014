/**
 * `constantPriorScale`: the split priors' log-scale is a constant per channel. With additive
 * couplings the whole network's log-det then depends on the condition only, not on the
 * image, while the network stays nonlinear in the image (unlike `linearCoupling`). Each
 * option alone leaves the log-det content-dependent; the checks below fail for both, so they
 * can tell the combination from either half. The split's own laws with a constant scale run
 * in the registry (`test/registry_test.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { configOrThrow, decodeConfig, decodeStoredConfig } from "../src/model/config.ts";
import { settings } from "../src/train/setting.ts";
import { gpuTest, noLeak, tinyConfig, useBackend } from "./_helpers.ts";
import { affinity } from "./_content_probe.ts";

Deno.test(
  "constantPriorScale: with additive couplings the log-det ignores the image, the flow stays nonlinear",
  gpuTest,
  async () => {
    await useBackend();
    const both = await noLeak(
      "additive couplings, constant prior scales",
      () => affinity(tinyConfig({ additiveCoupling: true, constantPriorScale: true })),
    );
    assert.ok(both.logDet < 1e-3, `log-det depends on the image: ${both.logDet}`);
    assert.ok(both.affine > 1e-2, `the flow came out affine in the image: ${both.affine}`);
    assert.ok(both.roundTrip < 1e-3, `round trip error ${both.roundTrip}`);
    assert.ok(
      both.inverseLogDet < 1e-2,
      `decode's log-det is not −encode's: ${both.inverseLogDet}`,
    );
    // Either half alone leaves a content-dependent scale: the split priors' or the couplings'.
    const additive = await affinity(tinyConfig({ additiveCoupling: true }));
    assert.ok(additive.logDet > 1e-3, `split priors' log-det: ${additive.logDet}`);
    const constant = await affinity(tinyConfig({ constantPriorScale: true }));
    assert.ok(constant.logDet > 1e-3, `affine couplings' log-det: ${constant.logDet}`);
  },
);

Deno.test("constantPriorScale: config, old checkpoints and the paper setting", () => {
  assert.ok(decodeConfig({ constantPriorScale: "yes" })._tag === "Left");
  assert.equal(configOrThrow({}).constantPriorScale, false);
  assert.equal(configOrThrow({ constantPriorScale: true }).constantPriorScale, true);
  const stored = decodeStoredConfig({ levels: 3, additiveCoupling: true });
  assert.ok(stored._tag === "Right" && stored.right.constantPriorScale === false);
  assert.ok(settings.paper.config.additiveCoupling && settings.paper.config.constantPriorScale);
  assert.ok(!settings.paper.config.linearCoupling, "the paper setting's flow must stay nonlinear");
});
