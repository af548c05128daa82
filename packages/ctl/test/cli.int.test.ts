/**
 * The real `calico` program (node + type stripping, as users run it from source) against a real
 * etcd: one process per command, configured through the environment, flags and a config file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EtcdProcess, freePort, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { command, describeWith } from '../../../test-support/requirements.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

interface Result {
  code: number | null;
  out: string;
  err: string;
}

function calico(args: string[], env: Record<string, string>, stdin?: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@calico-ts/source', CLI, ...args], {
      // Only what the test chooses: no ETCD_*/DATASTORE_* leaking in from the caller.
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(stdin ?? '');
  });
}

const MANIFEST = `# A pool and a policy, as an operator would write them.
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: lab-pool
spec:
  cidr: 10.244.0.0/16
  vxlanMode: Always
  natOutgoing: true
  nodeSelector: all()
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-frontend
  namespace: shop
spec:
  selector: app == 'backend'
  order: 10
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source:
        selector: app == 'frontend'
      destination:
        ports: [8080]
`;

describeWith([command('etcd')], 'calico CLI process against etcd', () => {
  let etcd: EtcdProcess;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    etcd = await startEtcd();
    dir = mkdtempSync(join(tmpdir(), 'calico-ts-ctl-'));
    writeFileSync(join(dir, 'lab.yaml'), MANIFEST);
    env = { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: etcd.endpoint };
  });

  afterAll(async () => {
    await etcd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies a multi-document file, reads it back in every format, labels, patches and deletes', async () => {
    const file = join(dir, 'lab.yaml');
    expect(await calico(['apply', '-f', file], env)).toEqual({
      code: 0,
      out: 'Successfully applied 2 resource(s)\n',
      err: '',
    });

    expect(await calico(['get', 'ippools', '-o', 'wide'], env)).toEqual({
      code: 0,
      err: '',
      out:
        'NAME       CIDR            NAT    IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR\n' +
        'lab-pool   10.244.0.0/16   true   Never      Always      false      false              all()\n',
    });
    expect((await calico(['get', 'networkpolicies', '-A'], env)).out).toBe(
      'NAMESPACE   NAME             TIER\nshop        allow-frontend   default\n',
    );

    const pool = parseYaml((await calico(['get', 'ippool', 'lab-pool', '-o', 'yaml'], env)).out);
    expect(pool).toMatchObject({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'lab-pool' },
      spec: { cidr: '10.244.0.0/16', vxlanMode: 'Always', natOutgoing: true },
    });
    const policies = JSON.parse((await calico(['get', 'netpol', '-n', 'shop', '-o', 'json'], env)).out);
    expect(policies.kind).toBe('NetworkPolicyList');
    expect(policies.items).toHaveLength(1);
    expect(policies.items[0]).toMatchObject({
      metadata: { name: 'allow-frontend', namespace: 'shop' },
      spec: { selector: "app == 'backend'", order: 10 },
    });

    expect((await calico(['label', 'ippool', 'lab-pool', 'rack=r1'], env)).out).toBe(
      'Successfully set label rack on IPPool lab-pool\n',
    );
    expect(
      (await calico(['patch', 'policy', 'allow-frontend', '-n', 'shop', '-p', '{"spec":{"order":20}}'], env))
        .out,
    ).toBe("Successfully patched 1 'NetworkPolicy' resource\n");
    const ops = '[{"op":"replace","path":"/spec/natOutgoing","value":false}]';
    expect((await calico(['patch', 'ippool', 'lab-pool', '-t', 'json', '-p', ops], env)).code).toBe(0);

    const after = JSON.parse((await calico(['get', 'ippool', 'lab-pool', '-o', 'json'], env)).out);
    expect(after.metadata.labels).toEqual({ rack: 'r1' });
    expect(after.spec.natOutgoing).toBe(false);
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(Number(pool.metadata.resourceVersion));
    const policy = JSON.parse(
      (await calico(['get', 'netpol', 'allow-frontend', '-n', 'shop', '-o', 'json'], env)).out,
    );
    expect(policy.spec.order).toBe(20);

    expect(await calico(['delete', '-f', file], env)).toEqual({
      code: 0,
      out: 'Successfully deleted 2 resource(s)\n',
      err: '',
    });
    expect((await calico(['get', 'ippools', '-o', 'name'], env)).out).toBe('');
  });

  it('refuses a file with an invalid document and writes nothing from it', async () => {
    const bad = `${MANIFEST}---\napiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata:\n  name: default\nspec:\n  maxBlocksPerHost: -1\n`;
    writeFileSync(join(dir, 'bad.yaml'), bad);
    const r = await calico(['apply', '-f', join(dir, 'bad.yaml')], env);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      `${join(dir, 'bad.yaml')}: document 3 (IPAMConfiguration default): spec.maxBlocksPerHost: -1 — must be ≥ 0\n` +
        '1 error found; nothing was written\n',
    );
    expect((await calico(['get', 'ippools', '-o', 'json'], env)).out).toContain('"items": []');
    expect((await calico(['get', 'networkpolicies', '-A', '-o', 'name'], env)).out).toBe('');
  });

  it('reads the datastore from --etcd-endpoints and from a calicoctl config file', async () => {
    const viaFlag = await calico(['--etcd-endpoints', etcd.endpoint, 'apply', '-f', '-'], {}, MANIFEST);
    expect(viaFlag).toMatchObject({ code: 0, out: 'Successfully applied 2 resource(s)\n' });
    const cfg = join(dir, 'calicoctl.cfg');
    writeFileSync(
      cfg,
      `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: ${etcd.endpoint}\n`,
    );
    expect(await calico(['get', 'ippools', '-c', cfg], {})).toEqual({
      code: 0,
      out: 'NAME       CIDR            SELECTOR\nlab-pool   10.244.0.0/16   all()\n',
      err: '',
    });
    expect((await calico(['delete', 'ippool', 'lab-pool', '-c', cfg], {})).code).toBe(0);
    expect((await calico(['delete', 'policy', 'allow-frontend', '-n', 'shop'], env)).code).toBe(0);
  });

  it('reports an unreachable etcd in one line, naming the endpoint, and exits 1', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const r = await calico(['get', 'ippools'], { ETCD_ENDPOINTS: endpoint });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err.endsWith('\n')).toBe(true);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(new RegExp(`^cannot reach etcd at ${endpoint.replaceAll('.', '\\.')}\\b`));
  });

  it('validates offline: no datastore configured at all', async () => {
    const r = await calico(['validate', '-f', join(dir, 'lab.yaml')], {
      ETCD_ENDPOINTS: 'http://127.0.0.1:1',
    });
    expect(r).toEqual({ code: 0, out: 'Successfully validated 2 resource(s)\n', err: '' });
  });
});
