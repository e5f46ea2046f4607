/**
 * Entry point of terraform-provider-mayastor. Terraform runs the launcher (provider/launcher), which either hands
 * the session to the provider daemon (`--daemon SOCKET`, provider/daemon.ts) or, when no daemon can serve it, runs
 * this file directly: then this process is the plugin, as go-plugin expects. Node normally runs it from the bundle
 * dist/provider.bundle.js, loaded with its code cache by bin/terraform-provider-mayastor (provider/launcher/bundle.js).
 */
import { ProviderService } from './protocol/framework';
import { logger } from './protocol/log';
import { serve } from './protocol/server';
import { makeProvider } from './provider';

const daemonAt = process.argv.indexOf('--daemon');
if (daemonAt >= 0) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./daemon') as typeof import('./daemon')).daemonMain(process.argv[daemonAt + 1]);
} else {
  // go-plugin servers ignore interrupts: Terraform sends StopProvider and then Shutdown.
  process.on('SIGINT', () => logger.debug('SIGINT ignored; waiting for StopProvider/Shutdown'));
  serve(new ProviderService(makeProvider()), { debug: process.argv.includes('--debug') });
}
