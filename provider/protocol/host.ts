/**
 * Who a provider session answers to. Started directly by Terraform, that is this process: its environment, stdout
 * (the handshake line), stderr (logs) and exit status. Served by the provider daemon (provider/daemon.ts), it is one
 * launcher's session: the environment Terraform gave that launcher and the byte streams the launcher relays.
 * Code that runs inside an RPC finds its session through `currentHost()` (AsyncLocalStorage), so logs and
 * environment lookups never cross from one Terraform run into another.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface PluginHost {
  readonly env: Readonly<Record<string, string | undefined>>;
  stdout(text: string): void;
  stderr(text: string): void;
  /** The session is over: the process exits, or the daemon tells the launcher to exit with this status. */
  exit(code: number): void;
}

export const processHost: PluginHost = {
  env: process.env,
  stdout: (text) => {
    process.stdout.write(text);
  },
  stderr: (text) => {
    try {
      process.stderr.write(text);
    } catch {
      // stderr gone (host exited): nothing useful left to do with a log line
    }
  },
  exit: (code) => process.exit(code),
};

const store = new AsyncLocalStorage<PluginHost>();

export function currentHost(): PluginHost {
  return store.getStore() ?? processHost;
}

export function withHost<T>(host: PluginHost, fn: () => T): T {
  return host === processHost ? fn() : store.run(host, fn);
}
