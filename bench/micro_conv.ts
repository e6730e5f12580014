/**
 * Micro-benchmark of the convolution-gradient kernels on the current backend, to pick
 * the fastest formulation of `dX` and `dW` for src/nn/conv.ts:
 * `deno run -A bench/micro_conv.ts [--backend wasm]`. Prints median ms per variant and
 * the max abs difference to the current implementation.
 *
 * @module
 */
import { tf } from "../src/tf.ts";
import { type BackendName, initBackend } from "../src/core/backend.ts";
import { im2col } from "../src/nn/conv.ts";
import { median } from "./run.ts";

const time = async (f: () => tf.Tensor, reps = 5): Promise<{ ms: number; out: Float32Array }> => {
  const warm = f();
  const out = (await warm.data()) as Float32Array;
  warm.dispose();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = f();
    await r.data();
    ts.push(performance.now() - t0);
    r.dispose();
  }
  return { ms: median(ts), out };
};

const maxDiff = (a: Float32Array, b: Float32Array): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const main = async () => {
  const i = Deno.args.indexOf("--backend");
  await initBackend({ backend: (i >= 0 ? Deno.args[i + 1] : "wasm") as BackendName });
  const cases: [number, number, number, number, number, number][] = [
    // n, h, w, ci, co, k
    [8, 32, 32, 38, 64, 3],
    [8, 32, 32, 64, 12, 3],
    [8, 32, 32, 64, 64, 1],
  ];
  for (const [n, h, w, ci, co, k] of cases) {
    const x = tf.randomNormal([n, h, w, ci], 0, 1, "float32", 1) as tf.Tensor4D;
    const wt = tf.randomNormal([k, k, ci, co], 0, 0.1, "float32", 2) as tf.Tensor4D;
    const dy = tf.randomNormal([n, h, w, co], 0, 1, "float32", 3) as tf.Tensor4D;
    const p = (k - 1) / 2;
    console.log(`case x [${n},${h},${w},${ci}] w [${k},${k},${ci},${co}]`);
    const report = (name: string, r: { ms: number; out: Float32Array }, ref?: Float32Array) =>
      console.log(
        `  ${name.padEnd(44)} ${r.ms.toFixed(1).padStart(7)} ms` +
          (ref ? `  maxdiff ${maxDiff(r.out, ref).toExponential(1)}` : ""),
      );
    const fwd = await time(() => tf.conv2d(x, wt, 1, "same"));
    report("forward conv2d", fwd);
    // dX
    const dxRef = await time(() =>
      k === 1
        ? tf.reshape(
          tf.matMul(tf.reshape(dy, [-1, co]), tf.reshape(wt, [ci, co]), false, true),
          x.shape,
        )
        : tf.conv2dTranspose(dy, wt, x.shape, 1, "same")
    );
    report(k === 1 ? "dX now: matMul(dy, Wᵀ) (transposeB)" : "dX now: conv2dTranspose", dxRef);
    const dxConv = await time(() =>
      tf.tidy(() => {
        // dX = conv2d(dy, rot180(W) with in/out swapped), stride 1, 'same', odd k
        const wf = tf.transpose(tf.reverse(wt, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
        return tf.conv2d(dy, wf, 1, "same");
      })
    );
    report("dX alt: conv2d(dy, flip(W)ᵀ)", dxConv, dxRef.out);
    // dW
    const dwRef = await time(() =>
      tf.tidy(() => tf.matMul(im2col(x, k), tf.reshape(dy, [-1, co]), true, false))
    );
    report("dW now: matMul(im2colᵀ, dy) (transposeA)", dwRef);
    const dwT = await time(() =>
      tf.tidy(() => tf.matMul(tf.transpose(im2col(x, k)), tf.reshape(dy, [-1, co])))
    );
    report("dW alt: matMul(transpose(im2col), dy)", dwT, dwRef.out);
    const dwT2 = await time(() =>
      tf.tidy(() => tf.transpose(tf.matMul(tf.transpose(tf.reshape(dy, [-1, co])), im2col(x, k))))
    );
    report("dW alt: transpose(matMul(dyᵀ, im2col))", dwT2, dwRef.out);
    const dwConv = await time(() =>
      tf.tidy(() => {
        // dW[i,j,c,o] = Σ_{n,y,x} xpad[n,y+i,x+j,c]·dy[n,y,x,o]: a 'valid' conv of
        // xpad with batch↔channel swapped by the filter dy (h×w×n×co).
        const xp = k === 1 ? x : tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
        const xt = tf.transpose(xp, [3, 1, 2, 0]); // [ci, h+2p, w+2p, n]
        const f = tf.transpose(dy, [1, 2, 0, 3]); // [h, w, n, co]
        const r = tf.conv2d(xt as tf.Tensor4D, f as tf.Tensor4D, 1, "valid"); // [ci, k, k, co]
        return tf.reshape(tf.transpose(r, [1, 2, 0, 3]), [k * k * ci, co]);
      })
    );
    report("dW alt: conv2d(xpadᵀ, dyᵀ) valid", dwConv, dwRef.out);
    tf.dispose([x, wt, dy]);
  }
};

if (import.meta.main) await main();
