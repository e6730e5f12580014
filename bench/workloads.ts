/**
 * Benchmark workloads: per-layer forward and forward+backward, the RRDB encoder, a full
 * training step of the default and the paper-like configuration, and sampling
 * throughput. The same workloads (shapes, layer math) are implemented in PyTorch in
 * `bench/reference/torch_bench.py`; keep both in step.
 *
 * A workload's `setup` builds its tensors and returns closures; each closure runs ONE
 * repetition and awaits a scalar read at the end, so asynchronous (WebGPU) work is
 * included in the measured time. Model modules are imported lazily: a workload whose
 * module is missing is skipped with a note.
 *
 * @module
 */
import { tf } from "../src/tf.ts";
import { leaves, type ParamTree, unflattenLike } from "../src/core/params.ts";
import { actNorm } from "../src/layers/actNorm.ts";
import { invConv1x1 } from "../src/layers/invConv1x1.ts";
import { affineCoupling } from "../src/layers/affineCoupling.ts";
import { affineInjector } from "../src/layers/affineInjector.ts";
import { latentShift } from "../src/layers/latentShift.ts";
import { type EncoderConfig, rrdbEncoder } from "../src/model/encoder.ts";

/** Shapes shared by the per-layer workloads (and by the PyTorch reference). */
export const LAYER_SHAPE = {
  /** Batch. */
  n: 8,
  /** Height. */
  h: 32,
  /** Width. */
  w: 32,
  /** Flow channels. */
  c: 12,
  /** Hidden channels of the coupling / injector networks. */
  hidden: 64,
  /** Channels of the condition `h`. */
  cond: 32,
} as const;

/** What one repetition measured; `ms` is filled in by the runner. */
export type Metric = "fwd" | "fwdBwd" | "step" | "sample";

/** A prepared workload: one closure per metric, each running one awaited repetition. */
export interface Prepared {
  /** Closures per metric; each runs one repetition and resolves after a scalar read. */
  readonly runs: Partial<Record<Metric, () => Promise<void>>>;
  /** Megapixels processed by one `sample` repetition (for MP/s). */
  readonly megapixels?: number;
  /** Extra information for the table/JSON. */
  readonly note?: string;
  /** Free every tensor the workload holds. */
  readonly dispose: () => void;
}

/** A benchmark workload. */
export interface Workload {
  /** Short name, identical in the PyTorch reference. */
  readonly name: string;
  /** Input shape(s) in words. */
  readonly shape: string;
  /** Heavy workloads get fewer repetitions and are skipped on software WebGPU in quick mode. */
  readonly heavy?: boolean;
  /** Build the tensors; returns the closures, or a string saying why it is skipped. */
  readonly setup: () => Promise<Prepared | string>;
}

/** Read a scalar (awaits all queued device work that produced it) and dispose it. */
export const readScalar = async (t: tf.Tensor): Promise<number> => {
  const v = (await t.data())[0];
  t.dispose();
  return v;
};

/**
 * A forward closure and a forward+backward closure for a scalar loss of `xs`.
 * Forward: `loss(xs)`; forward+backward: `tf.grads(loss)(xs)` (gradients w.r.t. every
 * tensor in `xs`: parameters and inputs), then the sum of the LAST gradient is read
 * (all kernels are queued by then; WebGPU queues complete in order).
 */
const lossRuns = (
  xs: readonly tf.Tensor[],
  loss: (...args: tf.Tensor[]) => tf.Scalar,
): Prepared["runs"] => ({
  fwd: async () => {
    await readScalar(tf.tidy(() => loss(...xs)));
  },
  fwdBwd: async () => {
    const s = tf.tidy(() => {
      const g = tf.grads((...a: tf.Tensor[]) => loss(...a))([...xs]);
      return tf.sum(g[g.length - 1]) as tf.Scalar;
    });
    await readScalar(s);
  },
});

/** `mean(y²) + mean(logDet)`: the scalar loss of every per-layer workload. */
const flowLoss = (y: tf.Tensor, logDet: tf.Tensor): tf.Scalar =>
  tf.add(tf.mean(tf.square(y)), tf.mean(logDet)) as tf.Scalar;

const randn = (shape: number[], seed: number): tf.Tensor =>
  tf.randomNormal(shape, 0, 1, "float32", seed);

const { n: N, h: H, w: W, c: C, hidden: HID, cond: CC } = LAYER_SHAPE;
const layerShape = `${N}×${H}×${W}×${C}`;

/** Paper encoder, shrunk only in input size (nf 64, nb 23, gc 32). */
const PAPER_ENCODER: EncoderConfig = { nf: 64, nb: 23, gc: 32 };
/** Default (CPU-friendly) encoder, as in `defaultConfig`. */
const DEFAULT_ENCODER: EncoderConfig = { nf: 16, nb: 2, gc: 8 };

const encoderWorkload = (
  name: string,
  cfg: EncoderConfig,
  shape: [number, number, number, number],
  heavy: boolean,
): Workload => ({
  name,
  shape: `${shape.join("×")} nf${cfg.nf} nb${cfg.nb} gc${cfg.gc}`,
  heavy,
  setup: () => {
    const p = rrdbEncoder.init(7, cfg, shape[3]);
    const x = tf.randomUniform(shape, 0, 1, "float32", 8);
    const ps = leaves(p as unknown as ParamTree);
    return Promise.resolve({
      runs: lossRuns([...ps, x], (...a) => {
        const pp = unflattenLike(p as unknown as ParamTree, a.slice(0, ps.length));
        const f = rrdbEncoder.apply(pp as unknown as typeof p, cfg, a[ps.length] as tf.Tensor4D);
        return tf.mean(tf.square(f)) as tf.Scalar;
      }),
      dispose: () => tf.dispose([...ps, x]),
    });
  },
});

/** A tree's leaves with a closure that rebuilds the tree from replacement leaves. */
const tree = <T>(p: T): { ps: tf.Tensor[]; rebuild: (a: tf.Tensor[]) => T } => {
  const t = p as unknown as ParamTree;
  const ps = leaves(t);
  return { ps, rebuild: (a) => unflattenLike(t, a) as unknown as T };
};

/** The per-layer workloads (shapes of {@linkcode LAYER_SHAPE}). */
export const layerWorkloads: readonly Workload[] = [
  {
    name: "actNorm",
    shape: layerShape,
    setup: () => {
      const x = randn([N, H, W, C], 1);
      const p = tf.tidy(() => ({
        bias: tf.mul(randn([C], 2), 0.1) as tf.Tensor1D,
        logs: tf.mul(randn([C], 3), 0.1) as tf.Tensor1D,
      }));
      return Promise.resolve({
        runs: lossRuns([p.bias, p.logs, x], (b, l, xx) => {
          const r = actNorm.bijector({ bias: b as tf.Tensor1D, logs: l as tf.Tensor1D }).forward(
            xx as tf.Tensor4D,
          );
          return flowLoss(r.y, r.logDet);
        }),
        dispose: () => tf.dispose([x, p.bias, p.logs]),
      });
    },
  },
  {
    name: "invConv1x1",
    shape: layerShape,
    setup: () => {
      const x = randn([N, H, W, C], 1);
      const p = invConv1x1.init({ channels: C, seed: 5 });
      return Promise.resolve({
        runs: lossRuns([p.lower, p.upper, p.logS, x], (lo, up, ls, xx) => {
          const q = {
            ...p,
            lower: lo as tf.Tensor2D,
            upper: up as tf.Tensor2D,
            logS: ls as tf.Tensor1D,
          };
          const r = invConv1x1.bijector(q).forward(xx as tf.Tensor4D);
          return flowLoss(r.y, r.logDet);
        }),
        dispose: () => tf.dispose([x, p.lower, p.upper, p.logS, p.const.perm, p.const.sign]),
      });
    },
  },
  {
    name: "affineCoupling",
    shape: `${layerShape} cond ${CC} hidden ${HID}`,
    setup: () => {
      const x = randn([N, H, W, C], 1);
      const h = randn([N, H, W, CC], 2);
      const { ps, rebuild } = tree(
        affineCoupling.init({ channels: C, condChannels: CC, hidden: HID, seed: 11 }),
      );
      return Promise.resolve({
        runs: lossRuns([...ps, x, h], (...a) => {
          const b = affineCoupling.bijector(rebuild(a.slice(0, ps.length)));
          const r = b.forward(a[ps.length] as tf.Tensor4D, a[ps.length + 1] as tf.Tensor4D);
          return flowLoss(r.y, r.logDet);
        }),
        note: "encoding direction z2/s - t (as in training)",
        dispose: () => tf.dispose([...ps, x, h]),
      });
    },
  },
  {
    name: "affineInjector",
    shape: `${layerShape} cond ${CC} hidden ${HID}`,
    setup: () => {
      const x = randn([N, H, W, C], 1);
      const h = randn([N, H, W, CC], 2);
      const { ps, rebuild } = tree(
        affineInjector.init({ channels: C, condChannels: CC, hidden: HID, seed: 12 }),
      );
      return Promise.resolve({
        runs: lossRuns([...ps, x, h], (...a) => {
          const b = affineInjector.bijector(rebuild(a.slice(0, ps.length)));
          const r = b.forward(a[ps.length] as tf.Tensor4D, a[ps.length + 1] as tf.Tensor4D);
          return flowLoss(r.y, r.logDet);
        }),
        note: "encoding direction z/s - t (as in training)",
        dispose: () => tf.dispose([...ps, x, h]),
      });
    },
  },
  {
    name: "latentShift.logProbDegraded",
    shape: layerShape,
    setup: async () => {
      const z = randn([N, H, W, C], 1);
      const p = latentShift.init({ channels: C, seed: 13, scale: 0.5 });
      const stats = await latentShift.prepare(p);
      return {
        runs: lossRuns(
          [p.mu, p.m, z],
          (mu, m, zz) =>
            tf.mean(
              latentShift.logProbDegraded(
                { mu: mu as tf.Tensor1D, m: m as tf.Tensor2D },
                stats,
                zz as tf.Tensor4D,
              ),
            ) as tf.Scalar,
        ),
        note: "float64 A⁻¹/logdet prepared once, outside the timing",
        dispose: () => {
          latentShift.disposeStats(stats);
          tf.dispose([z, p.mu, p.m]);
        },
      };
    },
  },
  encoderWorkload("rrdbEncoder.default", DEFAULT_ENCODER, [N, H, W, 3], false),
  encoderWorkload("rrdbEncoder.paper", PAPER_ENCODER, [1, 16, 16, 3], true),
];

/** Import a module by a path relative to this file; `undefined` when it does not exist. */
const tryImport = async <T>(rel: string): Promise<T | undefined> => {
  const url = new URL(rel, import.meta.url);
  try {
    await Deno.stat(url);
  } catch {
    return undefined;
  }
  return await import(url.href) as T;
};

type ConfigMod = typeof import("../src/model/config.ts");
type NetworkMod = typeof import("../src/model/network.ts");
type ObjectiveMod = typeof import("../src/model/objective.ts");
type SampleMod = typeof import("../src/model/sample.ts");
type AdamMod = typeof import("../src/train/adam.ts");
type CondMod = typeof import("../src/model/conditioning.ts");
type StepMod = typeof import("../src/train/step.ts");

interface ModelMods {
  readonly config: ConfigMod;
  readonly network: NetworkMod;
  readonly objective: ObjectiveMod;
  readonly adam: AdamMod;
  readonly cond: CondMod;
}

const modelMods = async (): Promise<ModelMods | string> => {
  const config = await tryImport<ConfigMod>("../src/model/config.ts");
  const network = await tryImport<NetworkMod>("../src/model/network.ts");
  const objective = await tryImport<ObjectiveMod>("../src/model/objective.ts");
  const adam = await tryImport<AdamMod>("../src/train/adam.ts");
  const cond = await tryImport<CondMod>("../src/model/conditioning.ts");
  if (!config || !network || !objective || !adam || !cond) {
    return "skipped: src/model/{config,network,objective,conditioning}.ts or src/train/adam.ts missing";
  }
  return { config, network, objective, adam, cond };
};

/** Batch for the training-step workloads: half clean, half degraded, images in [0, 1]. */
export const TRAIN_SHAPE = { n: 2, h: 32, w: 32 } as const;

/**
 * One training step, built from `src/model/objective.ts` (`unpairedLoss`) and
 * `src/train/adam.ts`: prepare the float64 shift statistics (async), dequantise,
 * conditioning input, `tf.valueAndGrads` of the loss w.r.t. every trainable leaf, Adam
 * update, read the loss. When `src/train/step.ts` exports `trainStep`, that is timed
 * instead (same computation plus gradient-norm clipping), followed by a read of one
 * updated parameter so the update is included.
 */
const trainWorkload = (which: "default" | "paper"): Workload => ({
  name: `trainStep.${which}`,
  shape: `${TRAIN_SHAPE.n}×${TRAIN_SHAPE.h}×${TRAIN_SHAPE.w}×3`,
  heavy: which === "paper",
  setup: async () => {
    const mods = await modelMods();
    if (typeof mods === "string") return mods;
    const { config: cm, network, objective, adam, cond } = mods;
    const config = which === "paper" ? cm.paperConfig : cm.defaultConfig;
    const { n, h, w } = TRAIN_SHAPE;
    const x = tf.randomUniform([n, h, w, config.imageChannels], 0, 1, "float32", 21) as tf.Tensor4D;
    const mask = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 2));
    const c0 = cond.conditionInput(x, { factor: config.conditionFactor, seed: 1 });
    const p0 = network.initParams(config, 3);
    let params = network.initActNorms(p0, config, x, c0, true);
    c0.dispose();
    let state = adam.adamInit(params);
    let it = 0;
    const step = async () => {
      const stats = await objective.prepareShifts(params);
      const xq = objective.dequantize(x, config.bins, 100 + it);
      const ci = cond.conditionInput(xq, {
        factor: config.conditionFactor,
        noiseStd: config.conditionNoise,
        seed: 200 + it,
      });
      const named = adam.trainableParams(params);
      const tensors = named.map((nt) => nt.tensor);
      const allLeaves = leaves(params as unknown as ParamTree);
      const { value, grads } = tf.valueAndGrads((...a: tf.Tensor[]) => {
        let k = 0;
        const idx = new Map(tensors.map((t, i) => [t, i]));
        const full = allLeaves.map((t) => (idx.has(t) ? a[k++] : t));
        const pp = unflattenLike(params as unknown as ParamTree, full) as unknown as typeof params;
        const { loss, perSample } = objective.unpairedLoss(pp, config, stats, xq, ci, mask);
        perSample.dispose();
        return loss;
      })(tensors);
      const next = adam.adamStep(params, grads, state, { lr: 1e-4 });
      tf.dispose([...tensors, ...state.m, ...state.v, ...grads, xq, ci]);
      objective.disposeShiftStats(stats);
      params = next.params;
      state = next.state;
      it++;
      await readScalar(value);
    };
    const stepMod = await tryImport<StepMod>("../src/train/step.ts");
    let runStep = step;
    let note = "bench-local step (objective.unpairedLoss + adamStep): src/train/step.ts missing";
    if (stepMod && typeof stepMod.trainStep === "function") {
      note = "src/train/step.ts trainStep (Adam, grad clipping)";
      runStep = async () => {
        const r = await stepMod.trainStep({ params, adam: state }, config, {
          x,
          degradedMask: mask,
        }, { lr: 1e-4, seed: 100 + it++ });
        params = r.state.params;
        state = r.state.adam;
        // trainStep reads the loss before the update: wait for the update too.
        await readScalar(tf.sum(params.shifts[0].mu));
      };
    }
    return {
      runs: { step: runStep },
      note,
      dispose: () => {
        tf.dispose([x, mask, ...state.m, ...state.v]);
        tf.dispose(leaves(params as unknown as ParamTree));
      },
    };
  },
});

/** Image size of the sampling workload. */
export const SAMPLE_SHAPE = { n: 1, h: 64, w: 64 } as const;

/** Sampling throughput: `degrade` (src/model/sample.ts) of one image, default config. */
const sampleWorkload: Workload = {
  name: "degrade.default",
  shape: `${SAMPLE_SHAPE.n}×${SAMPLE_SHAPE.h}×${SAMPLE_SHAPE.w}×3`,
  setup: async () => {
    const mods = await modelMods();
    if (typeof mods === "string") return mods;
    const sm = await tryImport<SampleMod>("../src/model/sample.ts");
    if (!sm) return "skipped: src/model/sample.ts missing";
    const { config: cm, network, cond } = mods;
    const config = cm.defaultConfig;
    const { n, h, w } = SAMPLE_SHAPE;
    const x = tf.randomUniform([n, h, w, 3], 0, 1, "float32", 31) as tf.Tensor4D;
    const c0 = cond.conditionInput(x, { factor: config.conditionFactor, seed: 1 });
    const p0 = network.initParams(config, 3);
    const params = network.initActNorms(p0, config, x, c0, true);
    c0.dispose();
    const sampler = await sm.prepareSampler(params, config);
    let it = 0;
    return {
      runs: {
        sample: async () => {
          const [y] = sm.degrade(sampler, x, { seed: it++ });
          await readScalar(tf.tidy(() => tf.sum(y)));
          y.dispose();
        },
      },
      megapixels: (n * h * w) / 1e6,
      note: "degrade(prepareSampler(params)) on one tile; throughput in MP/s",
      dispose: () => {
        sampler.dispose();
        tf.dispose([x, ...leaves(params as unknown as ParamTree)]);
      },
    };
  },
};

/** Every workload, in table order. */
export const allWorkloads: readonly Workload[] = [
  ...layerWorkloads,
  trainWorkload("default"),
  trainWorkload("paper"),
  sampleWorkload,
];
