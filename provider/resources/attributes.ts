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

/** `share`: how the object is exported (agent/api's shares); `none` unless set; changes in place. */
export const shareAttribute = (description: string): AttributeSchema => ({
  type: 'string',
  optional: true,
  computed: true,
  default: 'none',
  description,
  example: '"nbd"',
});
