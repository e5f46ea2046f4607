/** cdktf app: `cdktf deploy` in this directory (npm run quickstart does it for you). */
import { App } from 'cdktf';
import { loadCluster } from '../cluster';
import { QuickstartStack } from './stack';

const app = new App();
new QuickstartStack(app, 'quickstart', loadCluster());
app.synth();
