/** placeReplicas (constructs/l2/placement.ts) alone: a pure function of nodes, pools and the volume's needs. */
import { placeReplicas } from '../../constructs/l2/placement';

const MiB = 1024 * 1024;
const node = (name: string, pools: { name: string; capacityBytes?: number }[], zone?: string) => ({ name, zone, pools });
const three = [node('a', [{ name: 'p' }]), node('b', [{ name: 'p' }]), node('c', [{ name: 'p' }])];

test('distinct nodes in the given order; the nexus node first', () => {
  expect(placeReplicas({ nodes: three, count: 2, sizeBytes: 64 * MiB, thin: true })).toEqual({
    placed: [
      { node: 'a', zone: undefined, pool: 'p' },
      { node: 'b', zone: undefined, pool: 'p' },
    ],
  });
  const r = placeReplicas({ nodes: three, count: 2, sizeBytes: 64 * MiB, thin: true, nexusNode: 'c' });
  expect('placed' in r && r.placed.map((p) => p.node)).toEqual(['c', 'a']);
});

test('the same inputs always give the same answer', () => {
  const req = { nodes: three, count: 3, sizeBytes: MiB, thin: false };
  expect(placeReplicas(req)).toEqual(placeReplicas(req));
});

test('distinct zones: one replica per zone', () => {
  const nodes = [node('a', [{ name: 'p' }], 'z1'), node('b', [{ name: 'p' }], 'z1'), node('c', [{ name: 'p' }], 'z2')];
  const r = placeReplicas({ nodes, count: 2, sizeBytes: MiB, thin: true });
  expect('placed' in r && r.placed.map((p) => p.node)).toEqual(['a', 'c']);
  const e = placeReplicas({ nodes, count: 3, sizeBytes: MiB, thin: true });
  expect('error' in e && e.error).toMatch(/distinct zones, but only 2 zone\(s\)/);
});

test('thick replicas skip pools declared too small, and the error says which and why', () => {
  const nodes = [
    node('a', [
      { name: 'small', capacityBytes: 8 * MiB },
      { name: 'big', capacityBytes: 1024 * MiB },
    ]),
    node('b', [{ name: 'small', capacityBytes: 8 * MiB }]),
  ];
  const r = placeReplicas({ nodes, count: 1, sizeBytes: 64 * MiB, thin: false });
  expect(r).toEqual({ placed: [{ node: 'a', zone: undefined, pool: 'big' }] });
  const e = placeReplicas({ nodes, count: 2, sizeBytes: 64 * MiB, thin: false });
  expect('error' in e && e.error).toMatch(/b\/small is too small for a thick replica/);
  // thin replicas may overcommit
  expect('placed' in placeReplicas({ nodes, count: 2, sizeBytes: 64 * MiB, thin: true })).toBe(true);
});

test('a pool filter restricts the pools, by name or NODE/POOL', () => {
  const nodes = [node('a', [{ name: 'p' }, { name: 'q' }]), node('b', [{ name: 'p' }])];
  const r = placeReplicas({ nodes, count: 1, sizeBytes: MiB, thin: true, pools: [{ node: 'a', pool: 'q' }] });
  expect(r).toEqual({ placed: [{ node: 'a', zone: undefined, pool: 'q' }] });
  const e = placeReplicas({ nodes, count: 2, sizeBytes: MiB, thin: true, pools: [{ pool: 'q' }] });
  expect('error' in e && e.error).toMatch(/b has no pool allowed by pools/);
});
