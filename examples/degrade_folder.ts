/**
 * Degrade every image of a folder with a trained checkpoint (the library form of
 * `deno task deflow degrade`).
 *
 * Run: `deno run -A examples/degrade_folder.ts CHECKPOINT IN_DIR OUT_DIR [temperature]`
 *
 * @module
 */
import { initBackend } from "../src/core/backend.ts";
import { disposeParams } from "../src/core/params.ts";
import { loadModelCheckpoint } from "../src/io/model.ts";
import {
  imageToTensor,
  listImages,
  readImageOrThrow,
  tensorToImage,
  writePng,
} from "../src/image/io.ts";
import { degrade, prepareSampler } from "../src/model/sample.ts";

const [ckpt, inDir, outDir, temp] = Deno.args;
if (!ckpt || !inDir || !outDir) {
  console.error("usage: degrade_folder.ts CHECKPOINT IN_DIR OUT_DIR [temperature]");
  Deno.exit(2);
}
await initBackend();
const loaded = await loadModelCheckpoint(ckpt);
const sampler = await prepareSampler(loaded.params, loaded.config, loaded.normalization);
await Deno.mkdir(outDir, { recursive: true });
for (const file of await listImages(inDir)) {
  const x = imageToTensor(await readImageOrThrow(file));
  const [y] = degrade(sampler, x, { temperature: Number(temp ?? 1), seed: 0 });
  const name = file.split("/").pop()!.replace(/\.[^.]+$/, "");
  await writePng(`${outDir}/${name}_degraded.png`, await tensorToImage(y));
  x.dispose();
  y.dispose();
  console.log(`${file} → ${outDir}/${name}_degraded.png`);
}
sampler.dispose();
disposeParams(loaded.params);
