/**
 * The pieces every resource and data source shares, one file per concern; this index re-exports them for
 * importers of the former single file:
 *   agent-clients.ts  the configured provider (node → agent client) and its per-node listings
 *   agent-errors.ts   agent failures as diagnostics naming the node and the attribute
 *   lifecycle.ts      create (with the ownership rule), import and delete of objects keyed by node
 *   validators.ts     plan-time checks over agent/api's grammar
 * The typed models and their codec live in ../protocol/model.ts and ../protocol/typed.ts.
 */
export * from './agent-clients';
export * from './agent-errors';
export * from './lifecycle';
export * from './validators';
