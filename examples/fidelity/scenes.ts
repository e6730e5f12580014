/**
 * Disjoint photo collections from the bundled photos (`examples/data/photos`): whole
 * scenes go to the clean domain, the degraded domain or the test set, never to two of
 * them — a user's clean and degraded photos are never the same scenes. Views and crops of
 * one scene (`motorcycle_left/right`, `flower_qRC`) share the scene's name.
 *
 * @module
 */
import { listImages, readImageOrThrow, type RgbImage } from "../../src/image/io.ts";

/** The scene a bundled photo belongs to (file stem without view / crop suffixes). */
export const sceneOf = (file: string): string =>
  file.split("/").pop()!.replace(/\.png$/, "").replace(/_(left|right|q\d\d)$/, "");

/** Which scenes form which collection. */
export interface SceneSplit {
  /** Scenes of the clean training domain. */
  readonly clean: readonly string[];
  /** Scenes of the degraded training domain (degraded by the family's operator). */
  readonly degraded: readonly string[];
  /** Held-out scenes: test pairs (clean, true degradation). */
  readonly test: readonly string[];
}

/**
 * The suite's split: two test scenes, the rest alternating between the domains so both
 * get a mix of content (portrait, animal, objects, landscape).
 */
export const defaultSplit: SceneSplit = {
  clean: ["astronaut", "flower", "rocket", "wesaturate_cvo9xd_keong_macan"],
  degraded: ["chelsea", "motorcycle", "wesaturate_tmshre_riaphotographs"],
  test: ["coffee", "wesaturate_u76c0g_bliznaca"],
};

/** The photos of each collection. */
export interface Collections {
  /** Clean-domain photos. */
  readonly clean: RgbImage[];
  /** Source photos of the degraded domain (still clean; the suite degrades them). */
  readonly degradedSource: RgbImage[];
  /** Test photos (clean). */
  readonly test: RgbImage[];
  /** File names, for messages. */
  readonly names: { clean: string[]; degradedSource: string[]; test: string[] };
}

/** Load the bundled photos into disjoint collections; every photo must be in one scene list. */
export const loadCollections = async (
  split: SceneSplit = defaultSplit,
  dir = new URL("../data/photos/", import.meta.url).pathname,
): Promise<Collections> => {
  const files = await listImages(dir);
  const where = (f: string): keyof SceneSplit | undefined => {
    const s = sceneOf(f);
    return (["clean", "degraded", "test"] as const).find((k) => split[k].includes(s));
  };
  const unplaced = files.filter((f) => where(f) === undefined);
  if (unplaced.length) throw new Error(`photos in no collection: ${unplaced.join(", ")}`);
  const pick = (k: keyof SceneSplit) => files.filter((f) => where(f) === k);
  const names = { clean: pick("clean"), degradedSource: pick("degraded"), test: pick("test") };
  const load = (fs: string[]) => Promise.all(fs.map(readImageOrThrow));
  return {
    clean: await load(names.clean),
    degradedSource: await load(names.degradedSource),
    test: await load(names.test),
    names,
  };
};

/** Non-overlapping `size`×`size` crops of `img`, row by row (at most `max`). */
export const cropsOf = (img: RgbImage, size: number, max = Infinity): RgbImage[] => {
  const out: RgbImage[] = [];
  for (let r = 0; r + size <= img.height; r += size) {
    for (let c = 0; c + size <= img.width; c += size) {
      if (out.length >= max) return out;
      const data = new Float32Array(size * size * 3);
      for (let y = 0; y < size; y++) {
        const src = ((r + y) * img.width + c) * 3;
        data.set(img.data.subarray(src, src + size * 3), y * size * 3);
      }
      out.push({ width: size, height: size, data });
    }
  }
  return out;
};
