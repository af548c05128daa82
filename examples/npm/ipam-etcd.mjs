// biome-ignore-all lint/suspicious/noConsole: an example program prints what it did
// Calico block IPAM on etcd: one IP pool, one address for a pod on node-1, released again.
//
//   ETCD_ENDPOINTS=http://127.0.0.1:2379 node ipam-etcd.mjs
import { EtcdDatastore } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';

const datastore = new EtcdDatastore({ endpoints: process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379' });
try {
  await datastore.apply('IPPool', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'example-pool' },
    spec: { cidr: process.env.POOL_CIDR ?? '10.244.0.0/16', blockSize: 26, nodeSelector: 'all()' },
  });
  const ipam = new Ipam(datastore);
  const handleId = 'example.pod-web-0';
  const { ipv4 } = await ipam.autoAssign({
    num4: 1,
    handleId,
    node: process.env.NODE_NAME ?? 'node-1',
    attrs: { namespace: 'default', pod: 'web-0' },
  });
  console.log(JSON.stringify({ assigned: ipv4[0]?.address, block: ipv4[0]?.cidr }));
  console.log(JSON.stringify({ held: (await ipam.ipsByHandle(handleId)).length }));
  await ipam.releaseByHandle(handleId);
  console.log(JSON.stringify({ held: (await ipam.ipsByHandle(handleId)).length }));
} finally {
  await datastore.close();
}
