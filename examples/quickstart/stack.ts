/**
 * The quickstart stack: three storage nodes (one pool each, on a file-backed disk) and one 3-way replicated
 * volume exported over NBD. Its output `device_uri` is where consumers connect (nbd://HOST:PORT/UUID).
 */
import { Construct } from 'constructs';
import { LocalBackend, TerraformStack } from 'cdktf';
import { MayastorProvider, ReplicatedVolume, StorageNode } from '../../constructs';
import type { Cluster } from '../cluster';

export const VOLUME_SIZE = 64 * 1024 * 1024;
/** Fixed so that the quickstart's device URI is predictable (and the same in the HCL version). */
export const VOLUME_UUID = '5a1e0c3d-7f0b-4c2e-9d7a-0b1c2d3e4f50';

export class QuickstartStack extends TerraformStack {
  public readonly nodes: StorageNode[];
  public readonly volume: ReplicatedVolume;

  constructor(scope: Construct, id: string, cluster: Cluster) {
    super(scope, id);
    new LocalBackend(this, { path: cluster.stateFile });

    this.nodes = cluster.nodes.map(
      (n) =>
        new StorageNode(this, n.name, {
          name: n.name,
          agentUrl: n.url,
          zone: n.zone,
          pools: [{ name: `pool-${n.name}`, disks: [n.disks.data] }],
        }),
    );
    // The token comes from $MAYASTOR_TOKEN, so it is not written into cdk.tf.json.
    new MayastorProvider(this, 'mayastor', { nodes: StorageNode.providerNodes(this.nodes) });

    this.volume = new ReplicatedVolume(this, 'volume', {
      nodes: this.nodes,
      uuid: VOLUME_UUID,
      sizeBytes: VOLUME_SIZE,
      replicas: 3,
      thin: true,
      protocol: 'nbd',
      outputName: 'device_uri',
    });
  }
}
