/** Human output of mayastorctl: aligned tables and binary size units (agent/api/sizes.ts). */
export { humanBytes, parseSize } from '../api/sizes';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** A text progress bar of `width` cells for 0..100 percent: [#######.......] */
export function progressBar(percent: number, width = 30): string {
  const p = Math.max(0, Math.min(100, Number.isFinite(percent) ? percent : 0));
  const full = Math.round((p / 100) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}
