/**
 * The downstream proof's results and their markdown report.
 *
 * @module
 */
import { type Method, methodLabels, methods } from "./pairs.ts";

/** Mean scores of one restorer (or of the unrestored input) on the test pairs. */
export interface MethodScore {
  /** Mean PSNR (dB) over the test crops. */
  readonly psnr: number;
  /** Mean SSIM over the test crops. */
  readonly ssim: number;
  /** RMS of `input − clean` over the method's training pairs (0 for identity). */
  readonly trainResidualRms?: number;
  /** Seconds to make the method's training pairs. */
  readonly pairSeconds?: number;
  /** Seconds to train its restorer. */
  readonly trainSeconds?: number;
  /** Mean MSE of the last tenth of training steps. */
  readonly finalLoss?: number;
}

/** Where the family's DeFlow model came from. */
export interface ModelSource {
  /** The checkpoint sampled from. */
  readonly path: string;
  /** True when it was trained by this run (no checkpoint in the models folder). */
  readonly trainedHere: boolean;
  /** Its training steps. */
  readonly iterations: number;
  /**
   * Whether its stored data fingerprints match this run's clean and degraded domains
   * (`undefined` when the checkpoint has none).
   */
  readonly sameDomains?: boolean;
  /** Where the sampler decoded the shift's noise (absent: `"input"`, the translation). */
  readonly noiseAt?: "input" | "prior";
  /** Noise fields spun over the block grid (`--grid-offsets`; absent: 1). */
  readonly gridOffsets?: number;
}

/** What a family's worker writes to `<out>/<family>/result.json`. */
export interface FamilyProof {
  /** Family name. */
  readonly family: string;
  /** One-line description. */
  readonly summary: string;
  /** Held out of all tuning. */
  readonly heldOut: boolean;
  /** True where white noise is the true model. */
  readonly whiteIsTrue: boolean;
  /** The DeFlow model used. */
  readonly model: ModelSource;
  /** Fitted white-noise σ per channel. */
  readonly whiteSigmas: readonly number[];
  /** Run settings. */
  readonly settings: {
    readonly steps: number;
    readonly batch: number;
    readonly crop: number;
    readonly pool: number;
    readonly variants: number;
    readonly testCrops: number;
    readonly testSize: number;
    readonly restorerParams: number;
    readonly seed: number;
    readonly quick: boolean;
  };
  /** PSNR / SSIM of the degraded test input itself (no restoration). */
  readonly input: MethodScore;
  /** Each method's restorer. */
  readonly methods: Record<Method, MethodScore>;
  /** Per-crop PSNR of DeFlow's restorer minus white noise's: mean and standard error. */
  readonly deflowMinusWhite: { readonly mean: number; readonly se: number };
  /** Seconds per restorer training step (mean over the four methods). */
  readonly secondsPerStep: number;
  /** Milliseconds per DeFlow crop sample when making its pairs. */
  readonly deflowMsPerSample: number;
  /** Live tensors when the worker started and when it ended. */
  readonly tensors: { readonly start: number; readonly end: number };
}

const f2 = (v: number) => v.toFixed(2);
const f4 = (v: number) => v.toFixed(4);

/** The markdown table of one family. */
export const familySection = (r: FamilyProof): string[] => {
  const best = (k: "psnr" | "ssim") =>
    Math.max(...(["identity", "white", "deflow"] as const).map((m) => r.methods[m][k]));
  const mark = (m: Method, k: "psnr" | "ssim", v: string) =>
    m !== "true" && r.methods[m][k] === best(k) ? `**${v}**` : v;
  const s = r.settings;
  return [
    `### ${r.family}${r.heldOut ? " (held out)" : ""}`,
    "",
    `${r.summary}. DeFlow model: \`${r.model.path}\` (${r.model.iterations} iterations${
      r.model.trainedHere ? ", trained by this run" : ""
    }${r.model.noiseAt === "prior" ? ", noise decoded at the prior (`--noise-at prior`)" : ""}${
      (r.model.gridOffsets ?? 1) > 1
        ? `, noise spun over ${r.model.gridOffsets} grid offsets (\`--grid-offsets\`)`
        : ""
    }${
      r.model.sameDomains === false
        ? "; **warning: trained on other data than this run's domains**"
        : r.model.sameDomains === undefined
        ? "; no data fingerprint stored, domains not verified"
        : "; trained on this run's domains"
    }). White-noise σ = ${r.whiteSigmas.map(f4).join(" / ")}.`,
    "",
    "| restorer trained on | PSNR (dB) | SSIM | train pairs: RMS(y − x) | pairs (s) | training (s) |",
    "|---|---|---|---|---|---|",
    `| no restoration (degraded input) | ${f2(r.input.psnr)} | ${f4(r.input.ssim)} | | | |`,
    ...methods.map((m) => {
      const v = r.methods[m];
      return `| ${methodLabels[m]} | ${mark(m, "psnr", f2(v.psnr))} | ${
        mark(m, "ssim", f4(v.ssim))
      } | ${f4(v.trainResidualRms ?? 0)} | ${(v.pairSeconds ?? 0).toFixed(1)} | ${
        (v.trainSeconds ?? 0).toFixed(0)
      } |`;
    }),
    "",
    `DeFlow − white noise, per test crop: ${r.deflowMinusWhite.mean >= 0 ? "+" : ""}${
      f2(r.deflowMinusWhite.mean)
    } ± ${f2(r.deflowMinusWhite.se)} dB (mean ± s.e. over ${s.testCrops} crops of one ` +
    `training run each; crops of one photo are not independent). ${s.steps} steps of ${s.batch}×${s.crop}² ` +
    `crops (${r.secondsPerStep.toFixed(2)} s/step), pool ${s.pool} crops × ${s.variants} samples ` +
    `(DeFlow ${r.deflowMsPerSample.toFixed(0)} ms per crop sample).`,
    "",
    `![${r.family}: degraded input | restored by (a) (b) (c) (d) | clean](${r.family}/examples.png)`,
    "",
  ];
};

/** Whether DeFlow's restorer beats white noise's on a family, by PSNR and by SSIM. */
export const beats = (r: FamilyProof): { psnr: boolean; ssim: boolean } => ({
  psnr: r.methods.deflow.psnr > r.methods.white.psnr,
  ssim: r.methods.deflow.ssim > r.methods.white.ssim,
});

/** The summary lines: on how many families DeFlow beats white noise. */
export const summaryLines = (results: readonly FamilyProof[]): string[] => {
  const n = results.length;
  const k = results.filter((r) => beats(r).psnr).length;
  const ks = results.filter((r) => beats(r).ssim).length;
  const held = results.filter((r) => r.heldOut);
  const kh = held.filter((r) => beats(r).psnr).length;
  return [
    `**DeFlow beats white noise on ${k} of ${n} families** (PSNR; SSIM: ${ks} of ${n})` +
    (held.length ? `; held-out families: ${kh} of ${held.length} (PSNR).` : "."),
    "",
    "| family | input | (a) none | (b) white | (c) DeFlow | (d) true | DeFlow − white |",
    "|---|---|---|---|---|---|---|",
    ...results.map((r) =>
      `| ${r.family}${r.heldOut ? " (held out)" : ""} | ${f2(r.input.psnr)} | ${
        methods.map((m) => f2(r.methods[m].psnr)).join(" | ")
      } | ${r.deflowMinusWhite.mean >= 0 ? "+" : ""}${f2(r.deflowMinusWhite.mean)} dB |`
    ),
    "",
    "(PSNR in dB on true pairs of the held-out test scenes.)",
    "",
  ];
};

/** The whole report. */
export const reportMarkdown = (
  results: readonly FamilyProof[],
  header: { readonly split: string; readonly quick: boolean },
): string =>
  [
    "# DeFlow downstream proof",
    "",
    "The same residual CNN denoiser (same initialisation, same steps, same batches of " +
    "clean crops of the clean-domain photos) trained on pairs whose inputs are made by " +
    "(a) no degradation, (b) fitted white noise, (c) DeFlow samples, (d) the true " +
    "degradation; evaluated on true pairs of the held-out test scenes (paper Tables 1–2 " +
    "in miniature).",
    "",
    `Scenes: ${header.split}.${
      header.quick ? " **--quick run: checks the pipeline, not the claim.**" : ""
    }`,
    "",
    ...summaryLines(results),
    "## Tuning families",
    "",
    ...results.filter((r) => !r.heldOut).flatMap(familySection),
    "## Held-out families (never used for tuning)",
    "",
    ...results.filter((r) => r.heldOut).flatMap(familySection),
  ].join("\n");
