import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identify } from '@calico-ts/lab';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClusterRecord,
  clearCurrentCluster,
  currentCluster,
  currentClusterEndpoint,
  setCurrentCluster,
  writeRecord,
} from './cluster-context.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A clusters directory holding one cluster `lab1` whose supervisor is this process. */
function clusters(phase: ClusterRecord['phase'] = 'ready', supervisorPid = process.pid) {
  const root = mkdtempSync(join(tmpdir(), 'cl-context-'));
  dirs.push(root);
  const env = { CALICO_CLUSTERS_DIR: root } as NodeJS.ProcessEnv;
  const dir = join(root, 'lab1');
  mkdirSync(dir);
  writeRecord(dir, {
    name: 'lab1',
    phase,
    supervisor: identify(supervisorPid),
    etcd: { localEndpoint: 'http://127.0.0.1:40001' },
  } as ClusterRecord);
  setCurrentCluster('lab1', env);
  return env;
}

describe('the current cluster', () => {
  it('is where a command goes when no flag, variable or -c names a datastore', () => {
    const env = clusters();
    expect(currentCluster(env)).toBe('lab1');
    expect(currentClusterEndpoint({}, env)).toBe('http://127.0.0.1:40001');
  });

  it('gives way to datastore flags, -c and the datastore variables (plain or CALICO_)', () => {
    const env = clusters();
    expect(currentClusterEndpoint({ etcdEndpoints: 'http://10.0.0.1:2379' }, env)).toBeUndefined();
    expect(currentClusterEndpoint({ config: '/etc/calico/calicoctl.cfg' }, env)).toBeUndefined();
    expect(currentClusterEndpoint({}, { ...env, ETCD_ENDPOINTS: 'http://10.0.0.1:2379' })).toBeUndefined();
    expect(currentClusterEndpoint({}, { ...env, CALICO_DATASTORE_TYPE: 'etcdv3' })).toBeUndefined();
  });

  it('is not used when it failed, when its supervisor is gone, or once it is cleared', () => {
    expect(currentClusterEndpoint({}, clusters('failed'))).toBeUndefined();
    // pid 1 is running, but it is not the process recorded: its start time differs.
    const stale = clusters('ready', process.pid);
    const record = join(stale['CALICO_CLUSTERS_DIR']!, 'lab1');
    writeRecord(record, {
      name: 'lab1',
      phase: 'ready',
      supervisor: { pid: 1, start: -1 },
      etcd: { localEndpoint: 'http://127.0.0.1:40001' },
    } as ClusterRecord);
    expect(currentClusterEndpoint({}, stale)).toBeUndefined();
    const env = clusters();
    clearCurrentCluster('lab1', env);
    expect(currentCluster(env)).toBeUndefined();
    expect(currentCluster({ ...env, CALICO_CLUSTER: 'other' })).toBe('other');
  });
});
