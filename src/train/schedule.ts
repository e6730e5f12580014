/**
 * Learning-rate schedules as pure functions of the step.
 *
 * @module
 */

/** Options of {@linkcode multiStepLr}. */
export interface MultiStepLrOptions {
  /** Learning rate before the first milestone. */
  readonly base: number;
  /** Total number of training steps; milestones are fractions of it. */
  readonly totalSteps: number;
  /**
   * Fractions of `totalSteps` in [0, 1] at which the rate is multiplied by `gamma`
   * (default `[0.5, 0.75, 0.9, 0.95]`, the DeFlow paper's schedule).
   */
  readonly milestones?: readonly number[];
  /** Factor applied at each milestone (default 0.5: halve). */
  readonly gamma?: number;
}

/**
 * Step decay: `lr(step) = base · gamma^k` where k counts the milestones already reached,
 * milestone fraction f being reached at step `⌊f · totalSteps⌋` (as PyTorch's MultiStepLR
 * with SRFlow/DeFlow's `int(f · niter)` milestones, steps counted from 0). Throws on
 * invalid options or a negative / non-finite step.
 */
export const multiStepLr = (options: MultiStepLrOptions): (step: number) => number => {
  const { base, totalSteps, milestones = [0.5, 0.75, 0.9, 0.95], gamma = 0.5 } = options;
  if (!Number.isFinite(base) || base < 0) {
    throw new Error(`multiStepLr: base = ${base}, expected a finite number ≥ 0`);
  }
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw new Error(`multiStepLr: totalSteps = ${totalSteps}, expected an integer ≥ 1`);
  }
  if (!Number.isFinite(gamma) || gamma <= 0) {
    throw new Error(`multiStepLr: gamma = ${gamma}, expected a finite number > 0`);
  }
  for (const f of milestones) {
    if (!(f >= 0 && f <= 1)) {
      throw new Error(`multiStepLr: milestone ${f} is not a fraction in [0, 1]`);
    }
  }
  const at = milestones.map((f) => Math.floor(f * totalSteps)).sort((a, b) => a - b);
  return (step: number): number => {
    if (!Number.isFinite(step) || step < 0) {
      throw new Error(`multiStepLr: step = ${step}, expected a finite number ≥ 0`);
    }
    let k = 0;
    for (const s of at) if (step >= s) k++;
    return base * Math.pow(gamma, k);
  };
};
