/** CDKTF constructs for mayastor: L1 bindings of the provider schema and L2 building blocks. */
export * from './l1';
export * from './l2/errors';
export * from './l2/storage-node';
export * from './l2/replicated-volume';
