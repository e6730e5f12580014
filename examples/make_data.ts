/**
 * Build the bundled photos in `examples/data/` from two Debian packages.
 *
 *   deno run -A examples/make_data.ts            # needs apt-get (Debian) and dpkg
 *
 * 1. `apt-get download python3-skimage libjxl-testdata` into a temporary folder and
 *    unpack them with `dpkg -x` (nothing is installed; run `apt-get update` first on a fresh
 *    machine — the script does it itself when the download fails).
 * 2. For every selected photo, check its licence: the package's machine-readable
 *    `usr/share/doc/NAME/copyright` (the last `Files:` stanza matching the path wins, as in
 *    DEP-5) must give the expected licence, and the upstream statement (scikit-image's
 *    docstring, the wesaturate README/LICENSE) must contain the expected text.
 * 3. Downscale to at most 512 px on the long side with an exact area (box) filter in
 *    float64 (antialiased), and write 8-bit PNGs to `examples/data/photos/`.
 * 4. Write `examples/data/ATTRIBUTION.md`.
 *
 * Also writes `examples/data/jpeg_pair/`: a 384×384 crop of the libjxl flower photo at
 * native resolution and the same crop of the package's real JPEG of it (ImageMagick,
 * quality 85, 4:2:0), aligned to the 16-pixel MCU grid — a real paired JPEG degradation.
 *
 * @module
 */
import { readImageOrThrow, type RgbImage, rgbImage, writePng } from "../src/image/io.ts";

const OUT = new URL("./data/", import.meta.url).pathname;
const MAX_SIDE = 512;

/** One selected photo and the licence facts it must satisfy. */
interface Photo {
  readonly out: string;
  readonly pkg: "python3-skimage" | "libjxl-testdata";
  readonly path: string; // inside the unpacked package
  readonly copyrightPath: string; // path as the copyright file's Files: globs see it
  readonly licence: string; // expected DEP-5 licence short name
  readonly upstream?: { readonly file: string; readonly text: string };
  readonly author: string;
  readonly licenceNote: string;
  readonly crop?: {
    readonly fit: number;
    readonly x: number;
    readonly y: number;
    readonly w: number;
    readonly h: number;
  };
}

const SK = "usr/lib/python3/dist-packages/skimage";
const JXL = "usr/share/libjxl-testdata";
const skDoc = (text: string) => ({ file: `${SK}/data/_fetchers.py`, text });

const sk = (
  name: string,
  author: string,
  note: string,
  upstreamText?: string,
): Photo => ({
  out: name.replace(/\.(png|jpg)$/, ".png"),
  pkg: "python3-skimage",
  path: `${SK}/data/${name}`,
  copyrightPath: `skimage/data/${name}`,
  licence: "BSD-3-Clause",
  upstream: upstreamText === undefined ? undefined : skDoc(upstreamText),
  author,
  licenceNote: note,
});

const wesat = (name: string, author: string): Photo => ({
  out: `wesaturate_${name.replace(/_srgb8\.png$/, "")}.png`,
  pkg: "libjxl-testdata",
  path: `${JXL}/external/wesaturate/500px/${name}`,
  copyrightPath: `external/wesaturate/500px/${name}`,
  licence: "CC0",
  upstream: {
    file: `${JXL}/external/wesaturate/README.md`,
    text: "released under a Creative Commons Zero license",
  },
  author,
  licenceNote: "CC0 1.0 (wesaturate.com; package copyright `external/wesaturate/*`: CC0)",
});

const flower = (out: string, crop?: Photo["crop"]): Photo => ({
  out,
  pkg: "libjxl-testdata",
  path: `${JXL}/jxl/flower/flower.png`,
  copyrightPath: "jxl/flower/flower.png",
  licence: "BSD-3-clause-Google",
  author: "the JPEG XL Project Authors",
  licenceNote: "BSD-3-Clause (package copyright `Files: *`, Copyright the JPEG XL Project Authors)",
  crop,
});

const PHOTOS: readonly Photo[] = [
  sk(
    "astronaut.png",
    "NASA (portrait of astronaut Eileen Collins)",
    "public domain (NASA); package copyright `Files: *`: BSD-3-Clause",
    "No known copyright restrictions, released into the public domain.",
  ),
  sk(
    "chelsea.png",
    "Stefan van der Walt",
    "CC0; package copyright `Files: *`: BSD-3-Clause",
    "CC0 by the photographer (Stefan van der Walt)",
  ),
  sk(
    "coffee.png",
    "Rachel Michetti (courtesy of Pikolo Espresso Bar)",
    "CC0; package copyright `Files: *`: BSD-3-Clause",
    "CC0 by the photographer (Rachel Michetti)",
  ),
  sk(
    "rocket.jpg",
    "SpaceX (DSCOVR launch on Falcon 9)",
    "public domain (SpaceX); package copyright `Files: *`: BSD-3-Clause",
    "captured by SpaceX and `released in the public domain",
  ),
  sk(
    "motorcycle_left.png",
    "Middlebury 2014 stereo dataset (N. Nesic, P. Westling, X. Wang, Y. Kitajima, " +
      "G. Krathwohl, D. Scharstein)",
    "BSD-3-Clause per the package copyright `Files: *`; upstream states no separate " +
      "licence. Left/right views of one scene: keep them in the same split.",
    "part of the Middlebury 2014 stereo benchmark",
  ),
  sk(
    "motorcycle_right.png",
    "Middlebury 2014 stereo dataset (as motorcycle_left)",
    "as motorcycle_left",
    "part of the Middlebury 2014 stereo benchmark",
  ),
  wesat("tmshre_riaphotographs_srgb8.png", "riaphotographs (wesaturate.com)"),
  wesat("cvo9xd_keong_macan_srgb8.png", "keong_macan (wesaturate.com)"),
  wesat("u76c0g_bliznaca_srgb8.png", "bliznaca (wesaturate.com)"),
  flower("flower.png"),
  // Quadrants of the flower photo scaled to 1024 px wide (more detail than the whole one).
  flower("flower_q00.png", { fit: 1024, x: 0, y: 0, w: 512, h: 341 }),
  flower("flower_q01.png", { fit: 1024, x: 512, y: 0, w: 512, h: 341 }),
  flower("flower_q10.png", { fit: 1024, x: 0, y: 341, w: 512, h: 341 }),
  flower("flower_q11.png", { fit: 1024, x: 512, y: 341, w: 512, h: 341 }),
];

/** DEP-5 glob: `*` any run of characters (slashes included), `?` one character. */
const globMatch = (glob: string, path: string): boolean => {
  const re = new RegExp(
    "^" + glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") +
      "$",
  );
  return re.test(path);
};

/** The `License:` short name of the last `Files:` stanza whose globs match `path`. */
const dep5Licence = (copyright: string, path: string): string | undefined => {
  let found: string | undefined;
  for (const stanza of copyright.split(/\n\s*\n/)) {
    const files = /^Files:\s*((?:.*\n?)(?:[ \t]+.*\n?)*)/m.exec(stanza);
    const lic = /^License:\s*(\S+)/m.exec(stanza);
    if (!files || !lic) continue;
    const globs = files[1].split(/\s+/).filter((g) => g !== "");
    if (globs.some((g) => globMatch(g, path))) found = lic[1];
  }
  return found;
};

/** Exact area (box) resampling of one axis: weights from interval overlaps. */
const areaWeights = (n: number, m: number): { idx: number[]; w: number[] }[] => {
  const s = n / m;
  return Array.from({ length: m }, (_, o) => {
    const a = o * s, b = (o + 1) * s;
    const idx: number[] = [], w: number[] = [];
    for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
      const ov = Math.min(b, i + 1) - Math.max(a, i);
      if (ov > 1e-12) {
        idx.push(i);
        w.push(ov / s);
      }
    }
    return { idx, w };
  });
};

/** Downscale (area filter, float64) to `w2 × h2` (each ≤ the input size). */
const areaResize = (img: RgbImage, w2: number, h2: number): RgbImage => {
  const { width: w, height: h, data } = img;
  const wx = areaWeights(w, w2), wy = areaWeights(h, h2);
  const tmp = new Float64Array(h * w2 * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w2; x++) {
      const { idx, w: ws } = wx[x];
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < idx.length; k++) s += ws[k] * data[(y * w + idx[k]) * 3 + c];
        tmp[(y * w2 + x) * 3 + c] = s;
      }
    }
  }
  const out = new Float32Array(h2 * w2 * 3);
  for (let y = 0; y < h2; y++) {
    const { idx, w: ws } = wy[y];
    for (let x = 0; x < w2; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < idx.length; k++) s += ws[k] * tmp[(idx[k] * w2 + x) * 3 + c];
        out[(y * w2 + x) * 3 + c] = s;
      }
    }
  }
  return rgbImage(w2, h2, out);
};

/** Scale so the long side is at most `side` (never upscales). */
const fitLong = (img: RgbImage, side: number): RgbImage => {
  const s = Math.max(img.width, img.height) / side;
  if (s <= 1) return img;
  return areaResize(img, Math.round(img.width / s), Math.round(img.height / s));
};

const cropImage = (img: RgbImage, x0: number, y0: number, w: number, h: number): RgbImage => {
  if (x0 + w > img.width || y0 + h > img.height) {
    throw new Error(`crop ${w}×${h}+${x0}+${y0} outside ${img.width}×${img.height}`);
  }
  const out = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    out.set(
      img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3),
      y * w * 3,
    );
  }
  return rgbImage(w, h, out);
};

const run = async (cmd: string, args: string[], cwd: string): Promise<boolean> => {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "inherit", stderr: "inherit" })
    .output();
  return r.success;
};

const main = async (): Promise<void> => {
  const tmp = await Deno.makeTempDir({ prefix: "deflow-data-" });
  const pkgs = ["python3-skimage", "libjxl-testdata"];
  if (!(await run("apt-get", ["download", ...pkgs], tmp))) {
    console.log("apt-get download failed; running apt-get update and retrying");
    if (
      !(await run("apt-get", ["update"], tmp)) ||
      !(await run("apt-get", ["download", ...pkgs], tmp))
    ) {
      throw new Error("make_data: apt-get download failed");
    }
  }
  const root = `${tmp}/x`;
  const versions: Record<string, string> = {};
  for await (const e of Deno.readDir(tmp)) {
    if (!e.name.endsWith(".deb")) continue;
    if (!(await run("dpkg", ["-x", e.name, root], tmp))) {
      throw new Error(`dpkg -x ${e.name} failed`);
    }
    const m = /^([^_]+)_([^_]+)_/.exec(e.name);
    if (m) versions[m[1]] = decodeURIComponent(m[2]).replace("%3a", ":");
  }
  const copyright: Record<string, string> = {};
  for (const p of pkgs) {
    copyright[p] = await Deno.readTextFile(`${root}/usr/share/doc/${p}/copyright`);
  }

  await Deno.mkdir(`${OUT}photos`, { recursive: true });
  const rows: string[] = [];
  const loaded = new Map<string, RgbImage>();
  for (const ph of PHOTOS) {
    const lic = dep5Licence(copyright[ph.pkg], ph.copyrightPath);
    if (lic !== ph.licence) {
      throw new Error(`make_data: ${ph.path}: copyright says ${lic}, expected ${ph.licence}`);
    }
    if (ph.upstream) {
      const text = await Deno.readTextFile(`${root}/${ph.upstream.file}`);
      if (!text.includes(ph.upstream.text)) {
        throw new Error(`make_data: ${ph.upstream.file} lacks "${ph.upstream.text}"`);
      }
    }
    const src = loaded.get(ph.path) ?? await readImageOrThrow(`${root}/${ph.path}`);
    loaded.set(ph.path, src);
    let img: RgbImage;
    if (ph.crop) {
      const c = ph.crop;
      img = cropImage(fitLong(src, c.fit), c.x, c.y, c.w, c.h);
    } else {
      img = fitLong(src, MAX_SIDE);
    }
    await writePng(`${OUT}photos/${ph.out}`, img);
    const how = ph.crop
      ? `scaled to ${ph.crop.fit} px wide, crop ${ph.crop.w}×${ph.crop.h} at (${ph.crop.x}, ${ph.crop.y})`
      : `scaled ${src.width}×${src.height} → ${img.width}×${img.height}`;
    rows.push(
      `| photos/${ph.out} | ${ph.pkg} ${
        versions[ph.pkg] ?? ""
      } | /${ph.path} | ${ph.licenceNote} | ${ph.author} | ${how} |`,
    );
    console.log(`${ph.out}: ${img.width}×${img.height} (${lic})`);
  }

  // A real JPEG pair: the flower at native resolution and ImageMagick's q85 4:2:0 JPEG of it.
  await Deno.mkdir(`${OUT}jpeg_pair`, { recursive: true });
  const clean = loaded.get(`${JXL}/jxl/flower/flower.png`)!;
  const jpgPath = `${JXL}/jxl/flower/flower.png.im_q85_420.jpg`;
  const lic = dep5Licence(copyright["libjxl-testdata"], "jxl/flower/flower.png.im_q85_420.jpg");
  if (lic !== "BSD-3-clause-Google") throw new Error(`make_data: ${jpgPath}: licence ${lic}`);
  const jpg = await readImageOrThrow(`${root}/${jpgPath}`);
  if (jpg.width !== clean.width || jpg.height !== clean.height) {
    throw new Error("make_data: flower JPEG and PNG differ in size");
  }
  const [cx, cy, cs] = [1024, 576, 384]; // multiples of 16: JPEG block grid kept
  await writePng(`${OUT}jpeg_pair/flower_clean.png`, cropImage(clean, cx, cy, cs, cs));
  await writePng(`${OUT}jpeg_pair/flower_q85_420.png`, cropImage(jpg, cx, cy, cs, cs));
  for (
    const [f, p] of [["flower_clean.png", "flower.png"], [
      "flower_q85_420.png",
      "flower.png.im_q85_420.jpg",
    ]]
  ) {
    rows.push(
      `| jpeg_pair/${f} | libjxl-testdata ${
        versions["libjxl-testdata"] ?? ""
      } | /${JXL}/jxl/flower/${p} | BSD-3-Clause (package copyright \`Files: *\`, the JPEG XL Project Authors) | the JPEG XL Project Authors | native-resolution crop ${cs}×${cs} at (${cx}, ${cy}) |`,
    );
  }

  const md = [
    "# Bundled example data",
    "",
    "Made by `deno run -A examples/make_data.ts` from two Debian packages (fetched with",
    "`apt-get download`, unpacked with `dpkg -x`, nothing installed). Each licence was checked",
    "by the script against the package's `usr/share/doc/NAME/copyright` (DEP-5: last matching",
    "`Files:` stanza) and, where stated, the upstream notice (scikit-image's",
    "`skimage/data/_fetchers.py` docstrings; libjxl-testdata's `external/wesaturate/README.md`).",
    "",
    "Photos were downscaled to at most 512 px on the long side with an exact area (box)",
    "filter in float64 and stored as 8-bit sRGB PNG (no colour management). `jpeg_pair/`",
    "holds a native-resolution crop of the flower photo and the same crop of the package's",
    "real JPEG of it (ImageMagick, quality 85, 4:2:0 chroma subsampling; crop on the 16-px",
    "MCU grid), as a real clean/degraded pair.",
    "",
    "| file | source package | original path | licence | author | processing |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "Licence texts: BSD-3-Clause as in the packages' copyright files (scikit-image team;",
    "the JPEG XL Project Authors); CC0 1.0 Universal",
    "(https://creativecommons.org/publicdomain/zero/1.0/).",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${OUT}ATTRIBUTION.md`, md);
  await Deno.remove(tmp, { recursive: true });
  console.log(`wrote ${rows.length} files and ATTRIBUTION.md to ${OUT}`);
};

if (import.meta.main) await main();
