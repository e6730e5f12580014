/**
 * Degrade every image of a folder with a trained checkpoint (the library form of
 * `deno task deflow degrade`).
 *
 * Run: `deno run -A examples/degrade_folder.ts CHECKPOINT IN_DIR OUT_DIR [temperature]`
 *
 * @module
 */
import { either as E } from "fp-ts";
import { initBackend } from "../src/core/backend.ts";
import { disposeParams } from "../src/core/params.ts";
import { loadCheckpoint, readCheckpointInfo } from "../src/io/checkpoint.ts";
import {
  imageToTensor,
  listImages,
  readImageOrThrow,
  tensorToImage,
  writePng,
} from "../src/image/io.ts";
import { decodeStoredConfig } from "../src/model/config.ts";
import { initParams } from "../src/model/network.ts";
import { degrade, type DomainNormalization, prepareSampler } from "../src/model/sample.ts";

const [ckpt, inDir, outDir, temp] = Deno.args;
if (!ckpt || !inDir || !outDir) {
  console.error("usage: degrade_folder.ts CHECKPOINT IN_DIR OUT_DIR [temperature]");
  Deno.exit(2);
}
await initBackend();
const info = await readCheckpointInfo(ckpt);
if (E.isLeft(info)) throw info.left;
const decoded = decodeStoredConfig(info.right.config);
if (E.isLeft(decoded)) {
  throw new Error(`invalid model config in ${ckpt}: ${decoded.left.join("; ")}`);
}
const config = decoded.right;
const template = initParams(config, 0);
const loaded = await loadCheckpoint(ckpt, { params: template });
disposeParams(template);
if (E.isLeft(loaded)) throw loaded.left;
const normalization = (loaded.right.training as { normalization?: DomainNormalization })
  .normalization;
const sampler = await prepareSampler(loaded.right.params, config, normalization);
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
disposeParams(loaded.right.params);
