/**
 * The struct layouts koffi uses (agent/src/native/declarations.ts) against the sizes and offsets that
 * agent/native/include/datapath.h pins with _Static_assert (checked by the C compiler): one set of numbers.
 */
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { STRUCTS, declareTypes } from '../../agent/src/native/declarations';

const header = fs.readFileSync(path.resolve(__dirname, '../../agent/native/include/datapath.h'), 'utf8');
const sizes = new Map([...header.matchAll(/_Static_assert\(sizeof\((\w+)\) == (\d+)/g)].map((m) => [m[1], Number(m[2])]));
const offsets = new Map([...header.matchAll(/_Static_assert\(offsetof\((\w+), (\w+)\) == (\d+)/g)].map((m) => [`${m[1]}.${m[2]}`, Number(m[3])]));

beforeAll(() => declareTypes(koffi));

test('datapath.h pins every struct koffi declares, and every field', () => {
  for (const [name, fields] of Object.entries(STRUCTS)) {
    expect(sizes.has(name)).toBe(true);
    for (const f of Object.keys(fields)) expect(offsets.has(`${name}.${f}`)).toBe(true);
  }
  expect(sizes.size).toBe(Object.keys(STRUCTS).length);
});

test.each(Object.entries(STRUCTS))('koffi lays out %s as the C compiler does', (name, fields) => {
  expect(koffi.sizeof(name)).toBe(sizes.get(name));
  for (const f of Object.keys(fields)) expect([f, koffi.offsetof(name, f)]).toEqual([f, offsets.get(`${name}.${f}`)]);
});
