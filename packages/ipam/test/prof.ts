import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { CALICO_API_VERSION, EtcdDatastore } from '@calico-ts/datastore';
import { startEtcd } from '@calico-ts/lab';
import { Ipam } from '../src/index.ts';

const etcd = await startEtcd();
const ds = new EtcdDatastore({ endpoints: etcd.endpoint });
await ds.create('IPPool', {
  apiVersion: CALICO_API_VERSION,
  kind: 'IPPool',
  metadata: { name: 'pods' },
  spec: { cidr: '10.200.0.0/20', blockSize: 26 },
} as never);
const ipam = new Ipam(ds);
await ipam.autoAssign({ num4: 1, handleId: 'warm', node: 'x' });
await Promise.all(
  Array.from({ length: 100 }, (_, i) => ipam.autoAssign({ num4: 1, handleId: `w${i}`, node: `n${i % 3}` })),
);
const s = new Session();
s.connect();
await s.post('Profiler.enable');
await s.post('Profiler.start');
const c0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(
  Array.from({ length: 300 }, (_, i) => ipam.autoAssign({ num4: 1, handleId: `h${i}`, node: `n${i % 3}` })),
);
const c = process.cpuUsage(c0);
const { profile } = await s.post('Profiler.stop');
writeFileSync('/tmp/ipam.cpuprofile', JSON.stringify(profile));
console.log('wall', performance.now() - t0, 'cpu ms', (c.user + c.system) / 1000, 'writes', ipam.writeCount);
await ds.close();
await etcd.stop();
