/** Markdown building blocks for docs/benchmarks.md. */
import type { Summary } from './stats.js';

/** A GitHub-flavoured table. Cells are used as given (escape `|` yourself). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A number with `digits` decimals, or `n/a` when it is not finite. */
export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `median (min–max)` of a summary. */
export function range(summary: Summary, digits = 0, unit = ''): string {
  if (summary.n === 0) return 'n/a';
  if (summary.n === 1) return `${num(summary.median, digits)}${unit}`;
  return `${num(summary.median, digits)}${unit} (${num(summary.min, digits)}–${num(summary.max, digits)})`;
}

/** `median (IQR q1–q3)` of a summary. */
export function iqr(summary: Summary, digits = 0, unit = ''): string {
  if (summary.n === 0) return 'n/a';
  return `${num(summary.median, digits)}${unit} (IQR ${num(summary.q1, digits)}–${num(summary.q3, digits)})`;
}

/** Bytes as KiB with one decimal. */
export function kib(bytes: number): string {
  return `${num(bytes / 1024, 1)} KiB`;
}

/** Says whether a target was met, and by how much it was missed otherwise. */
export function verdict(met: boolean, miss: string): string {
  return met ? 'met' : `**missed**: ${miss}`;
}

/** One target of the issue, with the figure measured against it. */
export interface TargetRow {
  target: string;
  figure: string;
  met: boolean;
  /** Where the details are. */
  section: string;
}

export function targetTable(rows: readonly TargetRow[]): string {
  return table(
    ['Target', 'Measured', 'Met', 'Details'],
    rows.map((row) => [row.target, row.figure, row.met ? 'yes' : '**no**', row.section]),
  );
}
