/** Entry point of terraform-provider-mayastor (bin/terraform-provider-mayastor runs this). */
import { ProviderService } from './protocol/framework';
import { serve } from './protocol/server';
import { makeProvider } from './provider';

const debug = process.argv.includes('--debug');
serve(new ProviderService(makeProvider()), { debug });
