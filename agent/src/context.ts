/**
 * context.ts - what the services share: config, data path, state store, logger, and the one lock
 * that serialises every mutation (pools and replicas change together: a replica create reads the
 * pool, a pool destroy checks its replicas).
 */
import type { AgentConfig } from './config';
import type { Logger } from './log';
import type { Datapath } from './native';
import type { AgentState, StateStore } from './state';

export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

export interface Context {
  config: AgentConfig;
  dp: Datapath;
  store: StateStore;
  state: AgentState;
  log: Logger;
  lock: Mutex;
}
