/** Human output of mayastorctl: aligned tables and binary size units. */

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '')} ${units[i]}`;
}

/** Parse "1073741824", "512M", "1GiB", "64 MiB" into bytes (binary units). NaN when malformed. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B?)\s*$/i.exec(s);
  if (!m) return NaN;
  const mult = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 }[m[2].toUpperCase() as '' | 'K'];
  if (m[2] === '' && m[3] !== '' && m[3].toUpperCase() !== 'B') return NaN;
  const v = Number(m[1]) * (mult ?? NaN);
  return Number.isInteger(v) ? v : NaN;
}

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
