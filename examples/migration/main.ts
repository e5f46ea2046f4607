/** cdktf app: MIGRATION_PHASE=legacy|both|fresh cdktf deploy (see stack.ts and README.md). */
import { App } from 'cdktf';
import { loadCluster } from '../cluster';
import { MigrationStack, parsePhase } from './stack';

const app = new App();
new MigrationStack(app, 'migration', loadCluster(), parsePhase(process.env.MIGRATION_PHASE));
app.synth();
