/**
 * How much of a degradation the unpaired collections show, against how much their content
 * differs. For each family of the suite it degrades the degraded domain's source photos and
 * the test photos with the suite's seeds and prints, per channel, the white-noise-equivalent
 * noise level (`noiseStd`: the high-pass residual, the suite's "noise level") as changes:
 *
 * - **content**: the degraded domain's clean sources against the clean domain (no
 *   degradation at all: what the scenes differ by);
 * - **paired, degraded scenes** / **paired, test scenes**: what the degradation does to
 *   the same photos (the truth the model should learn, and what the suite scores);
 * - **unpaired**: the degraded collection against the clean collection, which is all an
 *   unpaired method sees.
 *
 * Where the content gap is as large as the paired change, or of the other sign, the
 * marginals do not tell the model how much the degradation changes the noise level.
 *
 * ```sh
 * deno run -A examples/fidelity/content_gap.ts [--seed S] [--family jpeg,camera]
 * deno run -A examples/fidelity/content_gap.ts --clean DIR --degraded DIR   # your collections
 * ```
 *
 * With `--clean DIR --degraded DIR` it reads a user's own collections instead (PNG / JPEG,
 * each photo taken as its own scene) and prints how much their noise levels differ against
 * how much content alone would make two collections of these sizes differ
 * ({@linkcode collectionGap}): is the degradation's change of the noise level larger than
 * what the photos' content varies by?
 *
 * @module
 */
import { parseArgs } from "node:util";
import { initBackend } from "../../src/core/backend.ts";
import { foldIn } from "../../src/core/random.ts";
import { type Degradation, degradeImages } from "../../src/degrade/types.ts";
import {
  type ChannelStats,
  channelStats,
  HIGH_PASS_WHITE_GAIN,
  highPassResidual,
  noiseStd,
} from "../../src/eval/stats.ts";
import { listImages, readImageOrThrow, type RgbImage } from "../../src/image/io.ts";
import { diagnosticFamilies, families, familyByName } from "./families.ts";
import { type Collections, cropsOf, defaultSplit, loadCollections, sceneOf } from "./scenes.ts";

/** One value per channel (R, G, B). */
export type Rgb3 = readonly [number, number, number];

/** Noise levels (white-noise-equivalent high-pass std, per channel) of one degradation. */
export interface ContentGap {
  /** The clean domain's photos. */
  readonly clean: Rgb3;
  /** The degraded domain's photos before the degradation (its clean sources). */
  readonly source: Rgb3;
  /** The degraded domain's photos: the sources degraded (seed `foldIn(seed, 1)`, as the suite). */
  readonly degraded: Rgb3;
  /** The suite's test crops (128×128), clean. */
  readonly test: Rgb3;
  /** The test crops' true degradation (seed `foldIn(seed, 2)`, as the suite). */
  readonly testDegraded: Rgb3;
}

/**
 * The noise levels that compare a degradation's paired effect with the collections' content
 * difference: `degraded / source` and `testDegraded / test` are what the degradation does,
 * `source / clean` what the scenes differ by, and `degraded / clean` all that an unpaired
 * method sees.
 */
export const contentGap = async (
  op: Degradation,
  col: Pick<Collections, "clean" | "degradedSource" | "test">,
  seed: number,
): Promise<ContentGap> => {
  const testCrops = col.test.flatMap((img) => cropsOf(img, 128));
  return {
    clean: noiseStd(col.clean),
    source: noiseStd(col.degradedSource),
    degraded: noiseStd(await degradeImages(op, col.degradedSource, foldIn(seed, 1))),
    test: noiseStd(testCrops),
    testDegraded: noiseStd(await degradeImages(op, testCrops, foldIn(seed, 2))),
  };
};

/**
 * How much the noise level varies from scene to scene: per channel, the standard deviation
 * over scenes of the log noise level (a scene's photos pooled). Two collections of `n` scenes
 * drawn alike differ by about `spread·√(2/n)` from their content alone.
 */
export const sceneSpread = (
  photos: readonly { readonly scene: string; readonly image: RgbImage }[],
): Rgb3 => {
  const scenes = [...new Set(photos.map((p) => p.scene))];
  if (scenes.length < 2) throw new RangeError("sceneSpread: needs photos of two scenes or more");
  const logs = scenes.map((s) =>
    noiseStd(photos.filter((p) => p.scene === s).map((p) => p.image)).map(Math.log)
  );
  return [0, 1, 2].map((c) => {
    const m = logs.reduce((a, l) => a + l[c], 0) / logs.length;
    return Math.sqrt(logs.reduce((a, l) => a + (l[c] - m) ** 2, 0) / (logs.length - 1));
  }) as [number, number, number];
};

/** Two collections' noise levels and how far content alone moves their difference. */
export interface CollectionGap {
  /** Pooled noise level of the clean collection. */
  readonly clean: Rgb3;
  /** Pooled noise level of the degraded collection. */
  readonly degraded: Rgb3;
  /** `log(degraded / clean)` per channel. */
  readonly logChange: Rgb3;
  /**
   * Standard deviation of `logChange` that the photos' content alone gives two collections
   * of these sizes: the photo-to-photo spread of the log noise level (pooled over both
   * collections, each photo its own scene) times `√(1/n_clean + 1/n_degraded)`.
   */
  readonly contentSd: Rgb3;
}

/** One photo's high-pass statistics (what {@linkcode collectionGap} needs of it). */
export const photoStats = (img: RgbImage): ChannelStats => channelStats([highPassResidual(img)]);

/** The noise level (as `noiseStd`) of photos pooled, from their {@linkcode photoStats}. */
const pooledLevel = (stats: readonly ChannelStats[]): Rgb3 => {
  const n = stats.reduce((a, s) => a + s.count, 0);
  return [0, 1, 2].map((c) => {
    const m = stats.reduce((a, s) => a + s.count * s.mean[c], 0) / n;
    const v = stats.reduce((a, s) => a + s.count * (s.cov[c][c] + (s.mean[c] - m) ** 2), 0) / n;
    return Math.sqrt(v / HIGH_PASS_WHITE_GAIN);
  }) as [number, number, number];
};

/** Sample standard deviation over photos of the log noise level, per channel. */
const logSpread = (stats: readonly ChannelStats[]): Rgb3 => {
  const logs = stats.map((s) => pooledLevel([s]).map(Math.log));
  return [0, 1, 2].map((c) => {
    const m = logs.reduce((a, l) => a + l[c], 0) / logs.length;
    return Math.sqrt(logs.reduce((a, l) => a + (l[c] - m) ** 2, 0) / (logs.length - 1));
  }) as [number, number, number];
};

/**
 * A user's two collections (each photo taken as its own scene), given as the photos'
 * {@linkcode photoStats} so that a large folder is read one photo at a time: how much their
 * noise levels differ, against how much content alone would make them differ. A degradation
 * that changes the noise level by less than `contentSd` is not determined by the
 * collections. Several crops or views of one scene count as several photos and make
 * `contentSd` look smaller than it is: give one photo per scene.
 */
export const collectionGap = (
  clean: readonly ChannelStats[],
  degraded: readonly ChannelStats[],
): CollectionGap => {
  if (clean.length < 2 || degraded.length < 2) {
    throw new RangeError(
      `collectionGap: needs two photos or more per collection, got ${clean.length} clean and ` +
        `${degraded.length} degraded`,
    );
  }
  const [sc, sd] = [logSpread(clean), logSpread(degraded)];
  const [nc, nd] = [clean.length, degraded.length];
  const c = pooledLevel(clean), d = pooledLevel(degraded);
  return {
    clean: c,
    degraded: d,
    logChange: [0, 1, 2].map((k) => Math.log(d[k] / c[k])) as [number, number, number],
    contentSd: [0, 1, 2].map((k) =>
      Math.sqrt(((nc - 1) * sc[k] ** 2 + (nd - 1) * sd[k] ** 2) / (nc + nd - 2)) *
      Math.sqrt(1 / nc + 1 / nd)
    ) as [number, number, number],
  };
};

/** Relative change `a / b − 1` per channel, in per cent. */
const change = (a: Rgb3, b: Rgb3): string =>
  a.map((v, c) => `${v / b[c] >= 1 ? "+" : "−"}${Math.abs(100 * (v / b[c] - 1)).toFixed(1)}`)
    .join(" / ") + " %";

/** `--clean DIR --degraded DIR`: the gap of a user's own collections. */
const ownCollections = async (cleanDir: string, degradedDir: string): Promise<void> => {
  // One photo at a time: only its statistics are kept.
  const statsOf = async (dir: string): Promise<ChannelStats[]> => {
    const out: ChannelStats[] = [];
    for (const file of await listImages(dir)) out.push(photoStats(await readImageOrThrow(file)));
    return out;
  };
  let clean: ChannelStats[], degraded: ChannelStats[], g: CollectionGap;
  try {
    clean = await statsOf(cleanDir);
    degraded = await statsOf(degradedDir);
    g = collectionGap(clean, degraded);
  } catch (e) {
    console.error(`content_gap: ${(e as Error).message}`);
    Deno.exit(1);
  }
  const f4 = (v: Rgb3) => v.map((x) => x.toFixed(4)).join(" / ");
  const pct = (v: Rgb3, sign: boolean) =>
    v.map((x) => `${sign ? (x >= 0 ? "+" : "−") : "±"}${(100 * Math.abs(x)).toFixed(1)}`)
      .join(" / ") + " %";
  console.log(
    `noise level R/G/B: clean (${clean.length} photos) ${f4(g.clean)}; degraded ` +
      `(${degraded.length} photos) ${f4(g.degraded)}`,
  );
  console.log(`degraded vs clean (log ratio): ${pct(g.logChange, true)}`);
  console.log(`content alone, two collections of these sizes (one sd): ${pct(g.contentSd, false)}`);
  console.log(
    "a degradation that changes the noise level by less than the second line is not " +
      "determined by these collections; more photos per collection shrink it as 1/√n",
  );
};

const main = async (): Promise<void> => {
  let values: { seed?: string; family?: string; clean?: string; degraded?: string };
  try {
    values = parseArgs({
      args: Deno.args,
      options: {
        seed: { type: "string", default: "1" },
        family: { type: "string" },
        clean: { type: "string" },
        degraded: { type: "string" },
      },
    }).values;
  } catch (e) {
    console.error(`content_gap: ${(e as Error).message}`);
    Deno.exit(2);
  }
  if ((values.clean === undefined) !== (values.degraded === undefined)) {
    console.error("content_gap: --clean DIR and --degraded DIR go together");
    Deno.exit(2);
  }
  if (values.clean !== undefined && values.degraded !== undefined) {
    await ownCollections(values.clean, values.degraded);
    return;
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 1) {
    console.error(`content_gap: --seed must be a positive integer, got ${values.seed}`);
    Deno.exit(2);
  }
  const chosen = values.family
    ? values.family.split(",").map((n) => n.trim()).filter((n) => n.length > 0)
    : [...families, ...diagnosticFamilies].map((f) => f.name);
  let picked;
  try {
    picked = chosen.map(familyByName);
  } catch (e) {
    console.error(`content_gap: ${(e as Error).message}`);
    Deno.exit(2);
  }
  await initBackend();
  const col = await loadCollections(defaultSplit);
  const f4 = (v: Rgb3) => v.map((x) => x.toFixed(4)).join(" / ");
  console.log(
    "\n| family | content: sources vs clean domain | paired, degraded scenes | paired, test scenes " +
      "| unpaired: degraded vs clean domain |\n|---|---|---|---|---|",
  );
  let first: ContentGap | undefined;
  for (const family of picked) {
    const g = await contentGap(family.make(), col, seed);
    first ??= g;
    console.log(
      `| ${family.name}${family.heldOut ? " (held out)" : ""} | ${change(g.source, g.clean)} | ${
        change(g.degraded, g.source)
      } | ${change(g.testDegraded, g.test)} | ${change(g.degraded, g.clean)} |`,
    );
  }
  if (first) {
    console.log(
      `\nnoise level R/G/B: clean domain ${f4(first.clean)}; degraded domain's sources ${
        f4(first.source)
      }; test crops ${f4(first.test)}`,
    );
  }
  const photos = (["clean", "degradedSource", "test"] as const).flatMap((k) =>
    col[k].map((image, i) => ({ scene: sceneOf(col.names[k][i]), image }))
  );
  const spread = sceneSpread(photos);
  const scenes = new Set(photos.map((p) => p.scene)).size;
  console.log(
    `scene-to-scene spread of the noise level (sd of its log over ${scenes} scenes) R/G/B: ${
      spread.map((x) => x.toFixed(2)).join(" / ")
    }`,
  );
};

if (import.meta.main) await main();
