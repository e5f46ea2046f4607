/**
 * Schema building blocks the resources share: the attributes that mean the same on every resource (where the
 * object lives, its import id, how it is exported), each with its plan behaviour next to it.
 */
import { AttributeSchema } from '../protocol/schema';

/** `id`: the import id, NODE/KEY, known at plan once node and key are. */
export const idAttribute = (key: 'NAME' | 'UUID'): AttributeSchema => ({ type: 'string', computed: true, description: `The import id, \`NODE/${key}\`.` });

/** `node`: the node whose agent holds the object; moving it to another node replaces it. */
export const nodeAttribute = (description: string): AttributeSchema => ({
  type: 'string',
  required: true,
  requiresReplace: true,
  description,
  example: '"node-a"',
});

/** A key of the object chosen in the configuration (pool name, uuid): a new key is a new object. */
export const keyAttribute = (description: string, example: string): AttributeSchema => ({
  type: 'string',
  required: true,
  requiresReplace: true,
  description,
  example,
});

/**
 * `uuid` of a replica or nexus: chosen in the configuration or, when left out, a random v4 uuid generated at create
 * (known only after apply). The state's value is kept in every later plan (UseStateForUnknown); a configured value
 * different from the state's replaces the object (RequiresReplace compares the configuration with the state, so
 * leaving the attribute out never replaces anything).
 */
export const generatedUuidAttribute = (what: string, example: string): AttributeSchema => ({
  type: 'string',
  optional: true,
  computed: true,
  requiresReplace: true,
  useStateForUnknown: true,
  description:
    `UUID of the ${what}. Optional: when left out, the provider generates a random (v4) UUID at create and keeps it. ` +
    'Setting a value different from the one in state replaces the ' +
    what +
    '; removing the argument keeps the current UUID.',
  example,
});

/** `share`: how the object is exported (agent/api's shares); `none` unless set; changes in place. */
export const shareAttribute = (description: string): AttributeSchema => ({
  type: 'string',
  optional: true,
  computed: true,
  default: 'none',
  description,
  example: '"nbd"',
});

/** `allowed_hosts`: who may connect to the object's export (empty: anyone); changes in place. */
export const allowedHostsAttribute = (description: string, example?: string): AttributeSchema => ({
  type: ['list', 'string'],
  optional: true,
  computed: true,
  default: [],
  description,
  ...(example ? { example } : {}),
});

/**
 * The attributes of a data source that reads one object of a resource: every attribute of `resource` (but `exclude`),
 * computed, with `lookup` (the keys the user gives, e.g. node and uuid) required. Types and descriptions stay the
 * resource's, so the two cannot drift apart.
 */
export function dataSourceAttributes(
  resource: Record<string, AttributeSchema>,
  lookup: Record<string, string>,
  exclude: string[] = [],
): Record<string, AttributeSchema> {
  const out: Record<string, AttributeSchema> = {};
  for (const [name, a] of Object.entries(resource)) {
    if (exclude.includes(name)) continue;
    out[name] =
      name in lookup
        ? { type: a.type, required: true, description: lookup[name], ...(a.example ? { example: a.example } : {}) }
        : { type: a.type, computed: true, ...(a.sensitive ? { sensitive: true } : {}), description: a.description };
  }
  return out;
}
