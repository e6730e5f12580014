/**
 * Law reports as text: one line per case and law.
 *
 * @module
 */
import type { LawReport } from "./laws.ts";

const formatNumber = (v: number): string =>
  Number.isFinite(v) ? (v === 0 ? "0" : v.toExponential(2)) : String(v);

/**
 * A short text table of one or more reports: one line per case and law with status,
 * runs, largest error and largest error/tolerance ratio.
 */
export const formatLawReport = (reports: LawReport | readonly LawReport[]): string => {
  const list = Array.isArray(reports) ? reports as readonly LawReport[] : [reports as LawReport];
  const rows: string[][] = [["case", "law", "status", "runs", "max error", "err/tol", "note"]];
  for (const r of list) {
    for (const l of r.laws) {
      rows.push([
        r.name,
        l.law,
        l.status,
        String(l.runs),
        formatNumber(l.maxError),
        l.status === "skipped" ? "-" : l.maxRatio.toFixed(3),
        l.note ?? "",
      ]);
    }
  }
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => row[j].length)));
  return rows
    .map((row) =>
      row.map((cell, j) => (j === row.length - 1 ? cell : cell.padEnd(widths[j]))).join("  ")
        .trimEnd()
    )
    .join("\n");
};

/** Print {@linkcode formatLawReport} to stdout. */
export const printLawReport = (reports: LawReport | readonly LawReport[]): void => {
  console.log(formatLawReport(reports));
};
