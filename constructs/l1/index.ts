export * from './common';
export * from './provider';
export * from './pool';
export * from './replica';
export * from './nexus';
export * from './data-mayastor-node';
export * from './data-mayastor-pools';
