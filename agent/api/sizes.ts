/** sizes.ts - byte counts as people write and read them ("64MiB", "1.5 GiB"): the agent's flags, mayastorctl. */

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
