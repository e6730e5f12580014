/**
 * Parameter trees: plain immutable nested records/arrays of tensors.
 *
 * Every tensor has a path (`"levels.0.steps.3.coupling.net.conv1.w"`) that names it in
 * checkpoints. Functions here never mutate a tree; they build new ones.
 *
 * @module
 */
import { tf } from "../tf.ts";

/** A tree of tensors: a tensor, an array of trees, or a record of trees. */
export type ParamTree =
  | tf.Tensor
  | readonly ParamTree[]
  | { readonly [key: string]: ParamTree };

/** One leaf of a tree with its dotted path. */
export interface NamedTensor {
  /** Dotted path of the leaf, e.g. `"steps.0.actNorm.logs"`. */
  readonly path: string;
  /** The leaf tensor. */
  readonly tensor: tf.Tensor;
}

const isTensor = (t: unknown): t is tf.Tensor => t instanceof tf.Tensor;

/** Leaves of a tree in a fixed order (arrays by index, records by sorted key). */
export const flattenParams = (tree: ParamTree, prefix = ""): NamedTensor[] => {
  if (isTensor(tree)) return [{ path: prefix, tensor: tree }];
  const join = (k: string) => (prefix === "" ? k : `${prefix}.${k}`);
  if (Array.isArray(tree)) {
    return (tree as readonly ParamTree[]).flatMap((t, i) => flattenParams(t, join(String(i))));
  }
  const rec = tree as { readonly [key: string]: ParamTree };
  return Object.keys(rec).sort().flatMap((k) => flattenParams(rec[k], join(k)));
};

/** The leaf tensors of a tree, in {@linkcode flattenParams} order. */
export const leaves = (tree: ParamTree): tf.Tensor[] => flattenParams(tree).map((n) => n.tensor);

/**
 * Rebuild a tree with the structure of `template` from leaves given in
 * {@linkcode flattenParams} order. Throws if the count or any shape differs.
 */
export const unflattenLike = <T extends ParamTree>(
  template: T,
  values: readonly tf.Tensor[],
): T => {
  let i = 0;
  const go = (t: ParamTree, path: string): ParamTree => {
    if (isTensor(t)) {
      const v = values[i++];
      if (v === undefined) throw new Error(`params: too few values (missing ${path})`);
      if (v.shape.join(",") !== t.shape.join(",")) {
        throw new Error(
          `params: ${path} has shape [${v.shape}], expected [${t.shape}]`,
        );
      }
      return v;
    }
    const join = (k: string) => (path === "" ? k : `${path}.${k}`);
    if (Array.isArray(t)) {
      return (t as readonly ParamTree[]).map((c, k) => go(c, join(String(k))));
    }
    const rec = t as { readonly [key: string]: ParamTree };
    const out: Record<string, ParamTree> = {};
    for (const k of Object.keys(rec).sort()) out[k] = go(rec[k], join(k));
    return out;
  };
  const result = go(template, "");
  if (i !== values.length) {
    throw new Error(`params: ${values.length} values for a tree of ${i} leaves`);
  }
  return result as T;
};

/** Apply `f` to every leaf (with its path), giving a new tree of the same structure. */
export const mapParams = <T extends ParamTree>(
  tree: T,
  f: (t: tf.Tensor, path: string) => tf.Tensor,
): T => unflattenLike(tree, flattenParams(tree).map((n) => f(n.tensor, n.path)));

/** Dispose every leaf of a tree. */
export const disposeParams = (tree: ParamTree): void => {
  for (const t of leaves(tree)) t.dispose();
};

/** Total number of scalar parameters in a tree. */
export const countParams = (tree: ParamTree): number =>
  leaves(tree).reduce((n, t) => n + t.size, 0);

/** Deep copy (new tensors) of a tree; the copy must be disposed separately. */
export const cloneParams = <T extends ParamTree>(tree: T): T => mapParams(tree, (t) => tf.clone(t));

/** Keep every leaf of a tree out of any enclosing `tf.tidy` (returns the same tree). */
export const keepParams = <T extends ParamTree>(tree: T): T => {
  for (const t of leaves(tree)) tf.keep(t);
  return tree;
};

/**
 * Key under which a layer keeps fixed (non-trained) tensors, e.g. the permutation of
 * the LU 1x1 convolution. Optimisers skip every leaf whose path has a `const` segment.
 */
export const CONST_KEY = "const";

/** True when a leaf path is trained (has no `const` segment). */
export const isTrainablePath = (path: string): boolean => !path.split(".").includes(CONST_KEY);
