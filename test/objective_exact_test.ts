/**
 * Exact end-to-end tests of DeFlow's unpaired objective (the paper's §3): with an affine flow
 * and Gaussian data the minimiser is known in closed form, so full-batch training must
 * land on it.
 *
 * - 1-D: flow = ActNorm with one channel, `f(v) = (v + b)·exp(logs)`, plus a latent shift
 *   `(μ, M)` with C = 1. The learned `(−b, exp(−2·logs), μ·σx, M²·σx²)` must equal the
 *   closed-form MLE `(μx, σx², μu, σu²)` in both regimes (`s_y² ≥ s_x²`, and `s_y² < s_x²`
 *   where `σu² = 0`).
 * - 3 channels: flow = ActNorm + LU 1x1 convolution, `f(v) = W·D·(v + b)`, latent shift
 *   C = 3. The model's pixel-space noise covariance `(WD)⁻¹·MMᵀ·(WD)⁻ᵀ` must equal the
 *   empirical MLE `S_y − S_x` and, within sampling error, the true (correlated) noise
 *   covariance.
 * - Negative controls: the same 1-D check must FAIL when `M` starts at 0 (a stationary
 *   point) or when degraded samples are scored under N(0, I).
 *
 * The loss mirrors src/model/objective.ts in nats: `−mean_x[log N(f(x)) + logdet] −
 * mean_y[log N(f(y); μ, I + MMᵀ) + logdet]`, both domains weighted equally. Runs on the
 * wasm backend (the law tests cover WebGPU); tensors are tiny.
 */
import assert from "node:assert/strict";
import { tf } from "../src/tf.ts";
import { type Bijector, chain } from "../src/core/bijector.ts";
import {
  flattenParams,
  isTrainablePath,
  type ParamTree,
  unflattenLike,
} from "../src/core/params.ts";
import { normals, rng } from "../src/core/random.ts";
import { actNorm, type ActNormParams } from "../src/layers/actNorm.ts";
import { invConv1x1, type InvConv1x1Params } from "../src/layers/invConv1x1.ts";
import { latentShift, type LatentShiftParams } from "../src/layers/latentShift.ts";
import { inverse, matmul, type Matrix, matrix, transpose } from "../src/linalg/dense.ts";
import {
  closedFormMle,
  closedFormMleCov,
  type GaussianShiftMle,
  gaussianShiftNll,
} from "../src/model/closedForm.ts";
import { adamInit, adamStep, disposeAdamState, trainableParams } from "../src/train/adam.ts";
import { gpuTest, noLeak, useBackend } from "./_helpers.ts";

// ---------- data ----------

/** `n` draws of N(mean, std²), float64 Box–Muller rounded to float32. */
const gaussian1d = (seed: number, n: number, mean: number, std: number): Float32Array =>
  Float32Array.from(normals(rng(seed), n)[0], (v) => mean + std * v);

/** `n` draws of N(mean, L·Lᵀ) in C = mean.length channels, channel fastest (float32). */
const gaussianNd = (
  seed: number,
  n: number,
  mean: readonly number[],
  chol: readonly (readonly number[])[],
): Float32Array => {
  const c = mean.length;
  const [e] = normals(rng(seed), n * c);
  const out = new Float32Array(n * c);
  for (let s = 0; s < n; s++) {
    for (let a = 0; a < c; a++) {
      let v = mean[a];
      for (let k = 0; k <= a; k++) v += chol[a][k] * e[s * c + k];
      out[s * c + a] = v;
    }
  }
  return out;
};

// ---------- training: full-batch Adam on DeFlow's objective ----------

type Model<F extends ParamTree> = { readonly flow: F; readonly shift: LatentShiftParams };

interface FitOptions {
  readonly steps: number;
  readonly lr: number;
  /** Negative control: score degraded latents under N(0, I) instead of N(μ, I + MMᵀ). */
  readonly degradedAsClean?: boolean;
}

/**
 * Minimise the unpaired loss over every trainable leaf with Adam (cosine-decayed rate).
 * Takes ownership of `model` (disposes the replaced leaves); returns the trained model and
 * the final loss.
 */
const fit = async <F extends ParamTree>(
  model: Model<F>,
  flowOf: (f: F) => Bijector,
  x: tf.Tensor4D,
  y: tf.Tensor4D,
  options: FitOptions,
): Promise<{ model: Model<F>; loss: number }> => {
  let p = model;
  let adam = adamInit(p);
  let lossValue = NaN;
  for (let t = 0; t < options.steps; t++) {
    const stats = await latentShift.prepare(p.shift);
    const all = flattenParams(p);
    const trainable = trainableParams(p).map((n) => n.tensor);
    const loss = (...vars: tf.Tensor[]): tf.Scalar => {
      let j = 0;
      const q = unflattenLike(p, all.map((n) => (isTrainablePath(n.path) ? vars[j++] : n.tensor)));
      const flow = flowOf(q.flow);
      const fx = flow.forward(x);
      const fy = flow.forward(y);
      const clean = tf.mean(tf.add(latentShift.logProbClean(fx.y), fx.logDet));
      // (The control keeps μ and M on the tape with weight 0 so that they get a 0 gradient.)
      const degradedLogp = options.degradedAsClean
        ? tf.add(
          latentShift.logProbClean(fy.y),
          tf.mul(0, tf.add(tf.sum(q.shift.mu), tf.sum(q.shift.m))),
        )
        : latentShift.logProbDegraded(q.shift, stats, fy.y);
      const degraded = tf.mean(tf.add(degradedLogp, fy.logDet));
      return tf.neg(tf.add(clean, degraded));
    };
    const { value, grads } = tf.valueAndGrads(loss)(trainable);
    const lr = options.lr * (0.001 + 0.999 * 0.5 * (1 + Math.cos((Math.PI * t) / options.steps)));
    const next = adamStep(p, grads, adam, { lr });
    if (t === options.steps - 1) lossValue = (await value.data())[0];
    tf.dispose([value, ...grads, ...trainable]);
    disposeAdamState(adam);
    latentShift.disposeStats(stats);
    p = next.params;
    adam = next.state;
  }
  disposeAdamState(adam);
  return { model: p, loss: lossValue };
};

const disposeModel = (m: ParamTree): void => {
  tf.dispose(flattenParams(m).map((n) => n.tensor));
};

// ---------- 1-D ----------

type Fitted1d = { muX: number; varX: number; muU: number; varU: number; m: number };

const DOMAINS = { weighting: "domains" } as const;

/** Train the 1-D model from identity ActNorm and `M = m0`; map the result to pixel space. */
const fit1d = async (
  xs: Float32Array,
  ys: Float32Array,
  m0: number,
  options: Partial<FitOptions> = {},
): Promise<Fitted1d & { loss: number }> => {
  const x = tf.tensor4d(xs, [xs.length, 1, 1, 1]);
  const y = tf.tensor4d(ys, [ys.length, 1, 1, 1]);
  const model: Model<ActNormParams> = {
    flow: actNorm.init({ channels: 1 }),
    shift: { mu: tf.zeros([1]), m: tf.tensor2d([[m0]]) },
  };
  const { model: trained, loss } = await fit(model, actNorm.bijector, x, y, {
    steps: 800,
    lr: 0.05,
    ...options,
  });
  const [b, logs, mu, m] = await Promise.all([
    trained.flow.bias.data(),
    trained.flow.logs.data(),
    trained.shift.mu.data(),
    trained.shift.m.data(),
  ]);
  disposeModel(trained);
  tf.dispose([x, y]);
  // f(v) = (v + b)·exp(logs) = (v − μx)/σx  ⇒  σx = exp(−logs), μx = −b.
  const sx = Math.exp(-logs[0]);
  return {
    muX: -b[0],
    varX: sx * sx,
    muU: mu[0] * sx,
    varU: m[0] * m[0] * sx * sx,
    m: m[0],
    loss,
  };
};

/** Violations of the closed-form check (empty when the fit matches). */
const check1d = (fitted: Fitted1d, cf: GaussianShiftMle): string[] => {
  const out: string[] = [];
  const sx = Math.sqrt(cf.varX);
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
  if (Math.abs(fitted.muX - cf.muX) > 1e-2 * sx) out.push(`μx ${fitted.muX} vs ${cf.muX}`);
  if (Math.abs(fitted.muU - cf.muU) > 1e-2 * sx) out.push(`μu ${fitted.muU} vs ${cf.muU}`);
  if (rel(fitted.varX, cf.varX) > 1e-2) out.push(`σx² ${fitted.varX} vs ${cf.varX}`);
  if (cf.regime === "noise") {
    if (rel(fitted.varU, cf.varU) > 1e-2) out.push(`σu² ${fitted.varU} vs ${cf.varU}`);
  } else if (!(fitted.varU < 1e-2 * fitted.varX)) {
    // M → 0 only asymptotically (its gradient vanishes with M): a bound, not equality.
    out.push(`σu² ${fitted.varU} not ≪ σx² ${fitted.varX}`);
  }
  return out;
};

/** The DeFlow loss (nats) at the closed-form parameters, from the pixel-space Gaussians. */
const closedFormLoss = (xs: Float32Array, ys: Float32Array, cf: GaussianShiftMle): number => {
  const nll = gaussianShiftNll(xs, ys, cf);
  return nll.clean + nll.degraded;
};

// Case (a): noisier degraded domain. Case (b): degraded domain narrower than the clean one,
// so the MLE has σu² = 0 (data drawn from a narrower Gaussian: the formula still holds).
// n ≠ m, so case (b) also tells the equal domain weighting of DeFlow's loss apart from the
// per-sample weighting of the paper's §3.1.
const N_CLEAN = 2000;
const M_DEGRADED = 1500;
const caseA = () => ({
  xs: gaussian1d(101, N_CLEAN, 1.5, 0.8),
  ys: gaussian1d(102, M_DEGRADED, 1.5 + 0.4, Math.hypot(0.8, 0.6)),
});
const caseB = () => ({
  xs: gaussian1d(201, N_CLEAN, 1.5, 0.8),
  ys: gaussian1d(202, M_DEGRADED, 1.5 - 0.3, 0.6),
});

Deno.test("closedFormMle: minimises the per-domain NLL; regimes and weightings", () => {
  for (const { xs, ys } of [caseA(), caseB()]) {
    for (const weighting of ["samples", "domains"] as const) {
      const cf = closedFormMle(xs, ys, { weighting });
      const objective = (p: { muX: number; varX: number; muU: number; varU: number }) => {
        const nll = gaussianShiftNll(xs, ys, p);
        return weighting === "domains"
          ? nll.clean + nll.degraded
          : (xs.length * nll.clean + ys.length * nll.degraded) / (xs.length + ys.length);
      };
      const best = objective(cf);
      // Every feasible perturbation (σu² ≥ 0) of every coordinate increases the objective.
      for (const key of ["muX", "varX", "muU", "varU"] as const) {
        for (const d of [-1e-3, 1e-3, -3e-2, 3e-2]) {
          const q = { ...cf, [key]: cf[key] + d };
          if (q.varU < 0) continue;
          assert.ok(objective(q) > best, `${weighting} ${cf.regime}: ${key} ${d} lowers the NLL`);
        }
      }
    }
  }
  const a = closedFormMle(caseA().xs, caseA().ys);
  assert.equal(a.regime, "noise");
  assert.ok(
    Math.abs(a.varX - a.empirical.varX) < 1e-15 &&
      Math.abs(a.varU - (a.empirical.varY - a.empirical.varX)) < 1e-15 && a.varU > 0.15,
    `case (a): ${JSON.stringify(a)}`,
  );
  const b = closedFormMle(caseB().xs, caseB().ys, DOMAINS);
  assert.equal(b.regime, "no-noise");
  assert.equal(b.varU, 0);
  const bs = closedFormMle(caseB().xs, caseB().ys);
  assert.ok(Math.abs(b.varX - bs.varX) > 1e-3, "weightings must differ when n ≠ m");
  assert.throws(() => closedFormMle([1], [1, 2]), /at least 2 samples/);
});

Deno.test(
  "objective exact, 1-D: learned affine flow + shift = closed-form MLE",
  gpuTest,
  async () => {
    await useBackend("wasm");
    await noLeak("1-D fits", async () => {
      for (
        const [name, data] of [["(a) s_y² ≥ s_x²", caseA()], ["(b) s_y² < s_x²", caseB()]] as const
      ) {
        const cf = closedFormMle(data.xs, data.ys, DOMAINS);
        assert.equal(cf.regime, name.startsWith("(a)") ? "noise" : "no-noise");
        const fitted = await fit1d(data.xs, data.ys, 0.3);
        assert.deepEqual(check1d(fitted, cf), [], `case ${name}`);
        // The minimum of the loss is the closed-form NLL (change of variables), never below.
        const target = closedFormLoss(data.xs, data.ys, cf);
        assert.ok(
          fitted.loss - target > -1e-4 && fitted.loss - target < 1e-4,
          `case ${name}: loss ${fitted.loss} vs closed form ${target}`,
        );
        if (cf.regime === "noise") {
          assert.ok(Math.abs(fitted.m * fitted.m - cf.shiftM2) < 1e-2 * cf.shiftM2);
        }
      }
    });
  },
);

Deno.test(
  "objective exact, 1-D negative controls: M = 0 init or N(0, I) scoring fail",
  gpuTest,
  async () => {
    await useBackend("wasm");
    const { xs, ys } = caseA();
    const cf = closedFormMle(xs, ys, DOMAINS);
    await noLeak("negative controls", async () => {
      // M = 0 is a stationary point: M stays exactly 0, σu² is never learned.
      const stuck = await fit1d(xs, ys, 0, { steps: 200 });
      assert.equal(stuck.m, 0);
      const v1 = check1d(stuck, cf);
      assert.ok(v1.some((v) => v.startsWith("σu²")), `M = 0 init should fail: ${v1}`);
      // Scoring degraded latents under N(0, I) pools both domains: no shift is learned.
      const wrong = await fit1d(xs, ys, 0.3, { steps: 200, degradedAsClean: true });
      const v2 = check1d(wrong, cf);
      assert.ok(v2.length >= 2, `N(0, I) scoring should fail: ${v2}`);
    });
  },
);

// ---------- 3 channels: ActNorm + 1x1 conv, correlated noise ----------

const C = 3;
const MEAN_X = [0.45, 0.4, 0.35];
const CHOL_X = [[0.2, 0, 0], [0.1, 0.15, 0], [0.05, -0.05, 0.12]];
/** Noise mostly shared between channels (luminance-like): strongly correlated. */
const CHOL_N = [[0.1, 0, 0], [0.08, 0.06, 0], [0.07, 0.03, 0.05]];

const llt = (l: readonly (readonly number[])[]): Matrix =>
  matmul(matrix(C, C, l.flat()), transpose(matrix(C, C, l.flat())));

const diagScale = (w: Matrix, d: ArrayLike<number>): Matrix =>
  matrix(C, C, Array.from(w.data, (v, i) => v * d[i % C]));

Deno.test(
  "objective exact, 3 channels: learned noise covariance = S_y − S_x ≈ true S_n",
  gpuTest,
  async () => {
    await useBackend("wasm");
    const [nImg, mImg, h, w] = [64, 48, 16, 16];
    const n = nImg * h * w;
    const m = mImg * h * w;
    const xs = gaussianNd(301, n, MEAN_X, CHOL_X);
    const clean2 = gaussianNd(302, m, MEAN_X, CHOL_X);
    const noise = gaussianNd(303, m, [0, 0, 0], CHOL_N);
    const ys = clean2.map((v, i) => v + noise[i]);
    const cf = closedFormMleCov(xs, ys, C);
    assert.ok(cf.positiveDefinite, "S_y − S_x must be positive definite for this check");
    const trueSn = llt(CHOL_N);
    const trueSx = llt(CHOL_X);

    await noLeak("3-channel fit", async () => {
      const x = tf.tensor4d(xs, [nImg, h, w, C]);
      const y = tf.tensor4d(ys, [mImg, h, w, C]);
      type Flow = { actNorm: ActNormParams; conv: InvConv1x1Params };
      const m0 = latentShift.init({ channels: C, seed: 11, scale: 0.3 });
      const m0Values = await m0.m.data();
      const model: Model<Flow> = {
        flow: {
          actNorm: actNorm.init({ channels: C }),
          conv: invConv1x1.init({ channels: C, seed: 12 }),
        },
        shift: m0,
      };
      const flowOf = (f: Flow) => chain(actNorm.bijector(f.actNorm), invConv1x1.bijector(f.conv));
      const { model: trained } = await fit(model, flowOf, x, y, { steps: 800, lr: 0.05 });
      const wt = invConv1x1.weight(trained.flow.conv);
      const [wData, logs, bias, mu, mm] = await Promise.all([
        wt.data(),
        trained.flow.actNorm.logs.data(),
        trained.flow.actNorm.bias.data(),
        trained.shift.mu.data(),
        trained.shift.m.data(),
      ]);
      wt.dispose();
      disposeModel(trained);
      tf.dispose([x, y]);

      // f(v) = W·D·(v + b): clean pixels ~ N(−b, G·Gᵀ), noise ~ N(G·μ, G·MMᵀ·Gᵀ), G = (WD)⁻¹.
      const g = inverse(diagScale(matrix(C, C, wData), Array.from(logs, Math.exp)));
      const mMat = matrix(C, C, mm);
      const covX = matmul(g, transpose(g));
      const covU = matmul(matmul(g, matmul(mMat, transpose(mMat))), transpose(g));
      const meanU = matmul(g, matrix(C, 1, mu)).data;

      const scale = Math.max(...trueSn.data.map(Math.abs));
      for (let i = 0; i < C * C; i++) {
        const [a, b] = [Math.floor(i / C), i % C];
        // Optimisation: the fit equals the empirical MLE (same data) to float32-training
        // accuracy.
        assert.ok(
          Math.abs(covU.data[i] - cf.covU.data[i]) < 3e-3 * scale,
          `Σu[${a},${b}]: fitted ${covU.data[i]} vs MLE ${cf.covU.data[i]}`,
        );
        assert.ok(
          Math.abs(covX.data[i] - cf.covX.data[i]) < 3e-3 * scale,
          `Σx[${a},${b}]: fitted ${covX.data[i]} vs MLE ${cf.covX.data[i]}`,
        );
        // Statistics: an entry of a biased sample covariance of k Gaussian draws has
        // standard error √((S_aa·S_bb + S_ab²)/k); S_y − S_x has the two errors added in
        // quadrature. Allow 5 standard errors.
        const sy = cf.covY;
        const se = Math.sqrt(
          (sy.data[a * C + a] * sy.data[b * C + b] + sy.data[i] ** 2) / m +
            (trueSx.data[a * C + a] * trueSx.data[b * C + b] + trueSx.data[i] ** 2) / n,
        );
        assert.ok(
          Math.abs(covU.data[i] - trueSn.data[i]) < 5 * se,
          `Σu[${a},${b}]: fitted ${covU.data[i]} vs true ${trueSn.data[i]} (5 s.e. = ${5 * se})`,
        );
      }
      for (let a = 0; a < C; a++) {
        assert.ok(
          Math.abs(-bias[a] - cf.meanX[a]) < 1e-3,
          `μx[${a}]: ${-bias[a]} vs ${cf.meanX[a]}`,
        );
        assert.ok(
          Math.abs(meanU[a] - cf.meanU[a]) < 1e-3,
          `μu[${a}]: ${meanU[a]} vs ${cf.meanU[a]}`,
        );
        const se = Math.sqrt(cf.covY.data[a * C + a] / m + trueSx.data[a * C + a] / n);
        assert.ok(Math.abs(meanU[a]) < 5 * se, `noise mean[${a}] = ${meanU[a]} (5 s.e. ${5 * se})`);
      }
      // M moved away from its (small, non-zero) initial value.
      let moved = 0;
      for (let i = 0; i < C * C; i++) moved = Math.max(moved, Math.abs(mm[i] - m0Values[i]));
      assert.ok(moved > 0.1, `M moved by only ${moved}`);
    });
  },
);
