import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DatastoreError,
  datastoreFromConfig,
  EtcdDatastore,
  loadDatastoreConfig,
  MemoryDatastore,
} from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'calico-ts-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function configFile(text: string): string {
  const path = join(dir, `calicoctl-${++n}.cfg`);
  writeFileSync(path, text);
  return path;
}

const v3File = (spec: string) =>
  `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n${spec}`;

function invalid(fn: () => unknown): DatastoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DatastoreError);
    expect((err as DatastoreError).code).toBe('Invalid');
    return err as DatastoreError;
  }
  throw new Error('expected an Invalid DatastoreError');
}

describe('loadDatastoreConfig', () => {
  it('defaults to etcdv3 on the local etcd when nothing is configured', () => {
    const cfg = loadDatastoreConfig({ env: {}, file: join(dir, 'absent.cfg') });
    expect(cfg).toMatchObject({ datastoreType: 'etcdv3', etcd: { endpoints: ['http://127.0.0.1:2379'] } });
    expect(cfg.sources).toMatchObject({ datastoreType: 'default', etcdEndpoints: 'default' });
  });

  it('reads a calicoctl config file (YAML and JSON)', () => {
    const yaml = configFile(
      v3File(
        '  datastoreType: etcdv3\n  etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379\n  etcdUsername: calico\n  etcdPassword: s3cret\n',
      ),
    );
    const cfg = loadDatastoreConfig({ env: {}, file: yaml });
    expect(cfg).toMatchObject({
      datastoreType: 'etcdv3',
      etcd: {
        endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
        username: 'calico',
        password: 's3cret',
      },
    });
    expect(cfg.sources.etcdEndpoints).toBe(`file ${yaml}`);
    const json = configFile(
      JSON.stringify({
        apiVersion: 'projectcalico.org/v3',
        kind: 'CalicoAPIConfig',
        spec: {
          etcdEndpoints: 'https://etcd:2379',
          etcdCACertFile: '/ca.pem',
          etcdCertFile: '/c.pem',
          etcdKeyFile: '/k.pem',
        },
      }),
    );
    expect(loadDatastoreConfig({ env: {}, file: json })).toMatchObject({
      etcd: {
        endpoints: ['https://etcd:2379'],
        tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' },
      },
    });
  });

  it('takes flags over environment over file, field by field; CALICO_ over plain names', () => {
    const file = configFile(
      v3File('  etcdEndpoints: http://file:2379\n  etcdUsername: from-file\n  etcdPassword: pw-file\n'),
    );
    const env = {
      ETCD_ENDPOINTS: 'http://env:2379',
      CALICO_ETCD_USERNAME: 'calico-env',
      ETCD_USERNAME: 'plain-env',
    };
    const cfg = loadDatastoreConfig({ env, file });
    expect(cfg).toMatchObject({
      etcd: { endpoints: ['http://env:2379'], username: 'calico-env', password: 'pw-file' },
    });
    expect(cfg.sources).toMatchObject({
      etcdEndpoints: 'env ETCD_ENDPOINTS',
      etcdUsername: 'env CALICO_ETCD_USERNAME',
      etcdPassword: `file ${file}`,
    });
    const flagged = loadDatastoreConfig({ env, file, flags: { etcdEndpoints: 'http://flag:2379' } });
    expect(flagged).toMatchObject({ etcd: { endpoints: ['http://flag:2379'] } });
    expect(flagged.sources.etcdEndpoints).toBe('flag --etcd-endpoints');
  });

  it('reads the file named by --config, which must exist', () => {
    const file = configFile(v3File('  datastoreType: memory\n'));
    expect(loadDatastoreConfig({ env: {}, flags: { config: file } }).datastoreType).toBe('memory');
    expect(
      invalid(() => loadDatastoreConfig({ env: {}, flags: { config: join(dir, 'nope.cfg') } })).message,
    ).toMatch(/nope\.cfg does not exist/);
  });

  it('maps every calicoctl environment variable', () => {
    const cfg = loadDatastoreConfig({
      file: false,
      env: {
        DATASTORE_TYPE: 'etcdv3',
        ETCD_ENDPOINTS: 'etcd-a:2379, etcd-b:2379',
        ETCD_USERNAME: 'u',
        ETCD_PASSWORD: 'p',
        ETCD_KEY_FILE: '/k',
        ETCD_CERT_FILE: '/c',
        ETCD_CA_CERT_FILE: '/ca',
      },
    });
    expect(cfg).toEqual({
      datastoreType: 'etcdv3',
      etcd: {
        endpoints: ['https://etcd-a:2379', 'https://etcd-b:2379'],
        username: 'u',
        password: 'p',
        tls: { caFile: '/ca', certFile: '/c', keyFile: '/k' },
      },
      sources: expect.objectContaining({
        etcdKeyFile: 'env ETCD_KEY_FILE',
        etcdCACertFile: 'env ETCD_CA_CERT_FILE',
      }),
    });
  });

  it('refuses kubernetes, unknown types and malformed files with a clear message', () => {
    expect(
      invalid(() => loadDatastoreConfig({ file: false, env: { DATASTORE_TYPE: 'kubernetes' } })).message,
    ).toMatch(/"kubernetes" \(from env DATASTORE_TYPE\) is not supported yet/);
    expect(
      invalid(() => loadDatastoreConfig({ file: false, env: { CALICO_DATASTORE_TYPE: 'etcdv2' } })).message,
    ).toMatch(/"etcdv2" .* is not one of etcdv3, memory/);
    const wrongKind = configFile('apiVersion: projectcalico.org/v3\nkind: IPPool\nspec: {}\n');
    expect(invalid(() => loadDatastoreConfig({ env: {}, file: wrongKind })).message).toMatch(/kind/);
    const unknownField = configFile(v3File('  etcdEndpoint: http://typo:2379\n'));
    expect(invalid(() => loadDatastoreConfig({ env: {}, file: unknownField })).message).toMatch(
      /spec: unknown field\(s\) etcdEndpoint/,
    );
    const notYaml = configFile('spec: [unclosed');
    expect(invalid(() => loadDatastoreConfig({ env: {}, file: notYaml })).message).toMatch(
      /not valid YAML or JSON/,
    );
    expect(
      invalid(() => loadDatastoreConfig({ file: false, env: { ETCD_ENDPOINTS: 'ftp://x:1' } })).message,
    ).toMatch(/not http\(s\):\/\/host:port \(etcdEndpoints from env ETCD_ENDPOINTS\)/);
    expect(
      invalid(() => loadDatastoreConfig({ file: false, env: { ETCD_CERT_FILE: '/c' } })).message,
    ).toMatch(/both a certificate and its key/);
    // A Kubernetes-only file still parses; only the type is refused.
    const k8s = configFile(v3File('  datastoreType: kubernetes\n  kubeconfig: /root/.kube/config\n'));
    expect(invalid(() => loadDatastoreConfig({ env: {}, file: k8s })).message).toMatch(/not supported yet/);
  });
});

describe('datastoreFromConfig', () => {
  it('builds the backend the config names', async () => {
    const mem = datastoreFromConfig(loadDatastoreConfig({ file: false, env: { DATASTORE_TYPE: 'memory' } }));
    expect(mem).toBeInstanceOf(MemoryDatastore);
    const etcd = datastoreFromConfig(
      loadDatastoreConfig({ file: false, env: { ETCD_ENDPOINTS: 'http://127.0.0.1:1' } }),
    );
    expect(etcd).toBeInstanceOf(EtcdDatastore);
    expect((etcd as EtcdDatastore).endpoints).toEqual(['http://127.0.0.1:1']);
    await etcd.close();
    await mem.close();
  });
});
