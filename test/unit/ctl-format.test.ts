import { humanBytes, parseSize, table } from '../../agent/ctl/format';

test('parseSize', () => {
  expect(parseSize('4096')).toBe(4096);
  expect(parseSize('64MiB')).toBe(64 * 2 ** 20);
  expect(parseSize('1G')).toBe(2 ** 30);
  expect(parseSize('2 gib')).toBe(2 * 2 ** 30);
  expect(parseSize('1.5K')).toBe(1536);
  expect(parseSize('abc')).toBeNaN();
  expect(parseSize('-5')).toBeNaN();
  expect(parseSize('5X')).toBeNaN();
});

test('humanBytes and table', () => {
  expect(humanBytes(0)).toBe('0 B');
  expect(humanBytes(64 * 2 ** 20)).toBe('64 MiB');
  expect(humanBytes(1.5 * 2 ** 30)).toBe('1.5 GiB');
  expect(table(['A', 'BB'], [['xxx', 'y']])).toBe('A    BB\nxxx  y\n');
});
