/**
 * provider::mayastor::replica_size(volume_bytes): the size of a replica that can back a child of a nexus of
 * `volume_bytes`, i.e. the volume plus the nexus label header every child carries. The rule is agent/api's
 * replicaSizeFor (one rule, every layer calls it); this file only checks the argument and converts it.
 */
import { MAX_SIZE_BYTES, NEXUS_LABEL_BYTES, replicaSizeFor } from '../../agent/api/limits';
import { CtyDecimal, Value } from '../protocol/cty';
import { FunctionDef, FunctionError } from '../protocol/functions';
import { sizeProblem } from '../resources/validators';

/**
 * A cty number as a JS number for the size check: integers beyond 2^53 lose digits (they fail as too large anyway);
 * a decimal that is not whole is NaN (a double would round 1048576.000000000000000001 to a whole number).
 */
function asNumber(v: Value): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof CtyDecimal) return /^-?\d+(\.0*)?$/.test(v.text) ? Number(v.text) : NaN;
  return NaN;
}

export const replicaSizeFunction: FunctionDef = {
  name: 'replica_size',
  summary: 'The replica size a nexus of a given size needs: the volume plus the nexus label header.',
  description:
    `Returns \`volume_bytes\` plus the ${NEXUS_LABEL_BYTES / 1048576} MiB label header that every nexus child holds before the volume's data, ` +
    'so a `mayastor_replica` of that `size_bytes` can back a child of a `mayastor_nexus` whose `size_bytes` is `volume_bytes`. ' +
    '`volume_bytes` must be a positive whole number of bytes and a multiple of 512. Needs Terraform 1.8 or later.',
  parameters: [
    {
      name: 'volume_bytes',
      type: 'number',
      description: 'Size of the volume (the nexus `size_bytes`) in bytes: a positive multiple of 512.',
    },
  ],
  returns: 'number',
  example: [
    'locals {',
    '  volume_bytes = 1073741824 # 1 GiB',
    '}',
    '',
    'resource "mayastor_replica" "a" {',
    '  node       = "node-a"',
    '  pool       = mayastor_pool.a.name',
    '  size_bytes = provider::mayastor::replica_size(local.volume_bytes) # 1 GiB plus the 1 MiB label header',
    '}',
    '',
    'resource "mayastor_nexus" "volume" {',
    '  node       = "node-a"',
    '  size_bytes = local.volume_bytes',
    '  children   = [mayastor_replica.a.uri]',
    '}',
    '',
    'output "replica_bytes" {',
    '  value = provider::mayastor::replica_size(33554432) # 34603008: 32 MiB plus 1 MiB',
    '}',
  ].join('\n'),
  call([arg]) {
    const n = asNumber(arg);
    const problem = sizeProblem(n, arg instanceof CtyDecimal ? arg.text : String(arg));
    // Terraform prints it as 'Invalid value for "volume_bytes" parameter: <text>.'
    if (problem) throw new FunctionError(problem, 0);
    const size = replicaSizeFor(n);
    if (size > MAX_SIZE_BYTES) throw new FunctionError(`${n} is too large: its replica would be ${size} bytes, beyond ${MAX_SIZE_BYTES}`, 0);
    return size;
  },
};
