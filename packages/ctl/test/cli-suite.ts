import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnyResource, type Datastore, DatastoreError, type KindName } from '@calico-ts/datastore';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { run } from '../src/cli.ts';
import { captureIo } from '../src/cli-io.ts';

const POOLS = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.0.0.0/16
  natOutgoing: true
  nodeSelector: all()
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-b
  labels: {tier: gold}
spec:
  cidr: 10.1.0.0/16
  vxlanMode: Always
  nodeSelector: rack == 'r1'
`;

const POLICY = `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: shop
spec:
  tier: default
  order: 100
  selector: app == 'web'
`;

const MIXED = `${POOLS}---\n${POLICY}`;

/** A datastore for the suite: `reset()` empties it (or makes a new one) before every test. */
export interface CliBackend {
  reset(): Promise<Datastore>;
  close(): Promise<void>;
}

/**
 * Every verb, output format and error path of `calico`, driven in-process through run(). The
 * same scenarios run on the memory backend (src/cli.test.ts) and on a real etcd
 * (test/cli-etcd.int.test.ts).
 */
export function cliSuite(open: () => Promise<CliBackend>): void {
  let backend: CliBackend;
  let ds: Datastore;
  let connects: number;

  beforeAll(async () => {
    backend = await open();
  });

  afterAll(async () => {
    await backend.close();
  });

  beforeEach(async () => {
    ds = await backend.reset();
    connects = 0;
  });

  async function calico(args: string[], options: { stdin?: string; datastore?: Datastore } = {}) {
    const io = captureIo(options.stdin === undefined ? {} : { stdin: options.stdin });
    const code = await run(args, io, {
      connect: async () => {
        connects++;
        return borrowed(options.datastore ?? ds);
      },
    });
    return { code, out: io.out, err: io.err };
  }

  /** `inner` with its update() replaced (to stage races between writers). */
  function withUpdate(
    inner: Datastore,
    update: (kind: KindName, resource: AnyResource) => Promise<AnyResource>,
  ): Datastore {
    return { ...delegate(inner), update: update as Datastore['update'] };
  }

  async function names(kind: 'IPPool' | 'NetworkPolicy'): Promise<string[]> {
    return (await ds.list(kind)).items.map((r) => r.metadata.name);
  }

  describe('validate', () => {
    it('accepts a valid multi-document file without opening the datastore', async () => {
      const r = await calico(['validate', '-f', '-'], { stdin: MIXED });
      expect(r).toEqual({ code: 0, out: 'Successfully validated 3 resource(s)\n', err: '' });
      expect(connects).toBe(0);
    });

    it('lists every problem in every document with file, document, kind, name, path, value and expectation', async () => {
      const input = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: ok-pool
spec:
  cidr: 10.0.0.0/16
---
apiVersion: projectcalico.org/v3
kind: Widget
metadata:
  name: w1
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: gnp
  namespace: shop
---
apiVersion: projectcalico.org/v3
kind: IPAMConfiguration
metadata:
  name: default
spec:
  strictAffinity: "yes"
  maxBlocksPerHost: -3
---
apiVersion: projectcalico.org/v3
kind: IPPool
spec: {cidr: 10.2.0.0/16}
`;
      const r = await calico(['validate', '-f', '-'], { stdin: input });
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err.split('\n')).toEqual([
        expect.stringMatching(
          /^<stdin>: document 2: kind: "projectcalico.org\/v3 Widget" — unknown apiVersion\/kind; valid kinds are: projectcalico.org\/v3 IPPool, /,
        ),
        '<stdin>: document 3 (GlobalNetworkPolicy gnp): metadata.namespace: "shop" — GlobalNetworkPolicy is cluster-scoped: no namespace allowed',
        '<stdin>: document 4 (IPAMConfiguration default): spec.strictAffinity: "yes" — expected true or false, got a string',
        '<stdin>: document 4 (IPAMConfiguration default): spec.maxBlocksPerHost: -3 — must be ≥ 0',
        '<stdin>: document 5 (IPPool): metadata.name: (missing) — a name is required',
        '5 errors found',
        '',
      ]);
    });

    it('reports YAML syntax errors with their line', async () => {
      const r = await calico(['validate', '-f', '-'], {
        stdin: `${POLICY}---\nkind: IPPool\nmetadata: {name: [unclosed\n`,
      });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^<stdin>: syntax error at line 13, column \d+: .+\n1 error found\n$/);
    });

    it('expands List documents and names the item', async () => {
      const list = JSON.stringify({
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPoolList',
        items: [
          {
            apiVersion: 'projectcalico.org/v3',
            kind: 'IPPool',
            metadata: { name: 'p1' },
            spec: { cidr: '10.0.0.0/8' },
          },
          { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: {}, spec: { cidr: '10.2.0.0/16' } },
        ],
      });
      const r = await calico(['validate', '-f', '-'], { stdin: list });
      expect(r.code).toBe(1);
      expect(r.err).toBe(
        '<stdin>: document 1, item 2 (IPPool): metadata.name: (missing) — a name is required\n1 error found\n',
      );
    });

    it('fails when there is nothing to validate, unless --skip-empty', async () => {
      expect(await calico(['validate', '-f', '-'], { stdin: '# nothing\n' })).toEqual({
        code: 1,
        out: '',
        err: 'no resources found in stdin\n',
      });
      expect((await calico(['validate', '-f', '-', '--skip-empty'], { stdin: '' })).code).toBe(0);
    });

    it('names a missing file in one line', async () => {
      const r = await calico(['validate', '-f', '/nonexistent/pools.yaml']);
      expect(r).toEqual({ code: 1, out: '', err: '/nonexistent/pools.yaml: no such file or directory\n' });
    });
  });

  describe('apply, create, replace', () => {
    it('applies mixed kinds from one file', async () => {
      const r = await calico(['apply', '-f', '-'], { stdin: MIXED });
      expect(r).toEqual({ code: 0, out: 'Successfully applied 3 resource(s)\n', err: '' });
      expect(await names('IPPool')).toEqual(['pool-a', 'pool-b']);
      expect((await ds.get('NetworkPolicy', 'allow-web', 'shop')).spec).toMatchObject({
        selector: "app == 'web'",
      });
    });

    it('names the kind when every resource has the same one, and apply replaces what exists', async () => {
      expect((await calico(['apply', '-f', '-'], { stdin: POOLS })).out).toBe(
        "Successfully applied 2 'IPPool' resource(s)\n",
      );
      const changed = POOLS.replace('natOutgoing: true', 'natOutgoing: false');
      expect((await calico(['apply', '-f', '-'], { stdin: changed })).code).toBe(0);
      expect((await ds.get('IPPool', 'pool-a')).spec).toMatchObject({ natOutgoing: false });
    });

    it('puts namespaced resources without a namespace in -n, else "default"', async () => {
      const noNs = POLICY.replace('  namespace: shop\n', '');
      await calico(['apply', '-f', '-'], { stdin: noNs });
      await calico(['apply', '-f', '-', '-n', 'web'], { stdin: noNs });
      expect((await ds.list('NetworkPolicy')).items.map((p) => p.metadata.namespace)).toEqual([
        'default',
        'web',
      ]);
    });

    it('refuses a document whose namespace contradicts -n', async () => {
      const r = await calico(['apply', '-f', '-', '-n', 'other'], { stdin: POLICY });
      expect(r.code).toBe(1);
      expect(r.err).toContain(
        '<stdin>: document 1 (NetworkPolicy allow-web): metadata.namespace: "shop" — does not match the namespace given with -n (other)',
      );
    });

    it('writes nothing when any document is invalid', async () => {
      const bad = `${MIXED}---\napiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: default}\nspec: {maxBlocksPerHost: -1}\n`;
      const r = await calico(['apply', '-f', '-'], { stdin: bad });
      expect(r.code).toBe(1);
      expect(r.err).toBe(
        '<stdin>: document 4 (IPAMConfiguration default): spec.maxBlocksPerHost: -1 — must be ≥ 0\n1 error found; nothing was written\n',
      );
      expect(connects).toBe(0);
      expect(await names('IPPool')).toEqual([]);
    });

    it('create fails on an existing resource, and --skip-exists skips it', async () => {
      await calico(['apply', '-f', '-'], { stdin: POLICY });
      expect(await calico(['create', '-f', '-'], { stdin: POLICY })).toEqual({
        code: 1,
        out: '',
        err: "Failed to create 'NetworkPolicy' resource: NetworkPolicy shop/allow-web already exists\n",
      });
      expect(await calico(['create', '-f', '-', '--skip-exists'], { stdin: POLICY })).toEqual({
        code: 0,
        out: "Skipped 1 'NetworkPolicy' resource(s) that already exist: shop/allow-web\n",
        err: '',
      });
      // Skips are reported beside what was created, never counted as created.
      await calico(['apply', '-f', '-'], { stdin: POOLS.split('---')[0]! });
      expect(await calico(['create', '-f', '-', '--skip-exists'], { stdin: MIXED })).toEqual({
        code: 0,
        out: 'Successfully created 1 resource(s)\nSkipped 2 resource(s) that already exist: IPPool pool-a, NetworkPolicy shop/allow-web\n',
        err: '',
      });
      expect(await names('IPPool')).toEqual(['pool-a', 'pool-b']);
    });

    it('stops at the first failing write and says how far it got', async () => {
      await calico(['apply', '-f', '-'], { stdin: POLICY });
      const r = await calico(['create', '-f', '-'], { stdin: MIXED });
      expect(r).toEqual({
        code: 1,
        out: 'Partial success: created the first 2 out of 3 resources:\n',
        err: 'Hit error: NetworkPolicy shop/allow-web already exists\n',
      });
    });

    it('create with no existing resources fails for all when the first fails', async () => {
      await calico(['apply', '-f', '-'], { stdin: POOLS });
      const r = await calico(['create', '-f', '-'], { stdin: POOLS });
      expect(r.err).toBe("Failed to create any 'IPPool' resources: IPPool pool-a already exists\n");
    });

    it('replace needs the resource to exist', async () => {
      const r = await calico(['replace', '-f', '-'], { stdin: POLICY });
      expect(r).toEqual({
        code: 1,
        out: '',
        err: "Failed to replace 'NetworkPolicy' resource: NetworkPolicy shop/allow-web not found\n",
      });
    });

    it('replace with a resourceVersion from the file is compare-and-swap', async () => {
      await calico(['apply', '-f', '-'], { stdin: POOLS });
      const exported = (await calico(['get', 'ippool', 'pool-a', '-o', 'yaml'])).out;
      const edited = exported.replace('natOutgoing: true', 'natOutgoing: false');
      expect(await calico(['replace', '-f', '-'], { stdin: edited })).toEqual({
        code: 0,
        out: "Successfully replaced 1 'IPPool' resource(s)\n",
        err: '',
      });
      expect((await ds.get('IPPool', 'pool-a')).spec).toMatchObject({ natOutgoing: false });
      // The same file again carries a version that is now stale.
      const again = await calico(['replace', '-f', '-'], { stdin: edited });
      expect(again.code).toBe(1);
      expect(again.err).toMatch(
        /^Failed to replace 'IPPool' resource: IPPool pool-a was modified: expected resourceVersion \d+, found \d+\n$/,
      );
    });

    it('apply with a stale resourceVersion is refused too', async () => {
      await calico(['apply', '-f', '-'], { stdin: POOLS });
      const exported = (await calico(['get', 'ippool', 'pool-b', '-o', 'yaml'])).out;
      await calico(['label', 'ippool', 'pool-b', 'x=y']);
      const r = await calico(['apply', '-f', '-'], { stdin: exported });
      expect(r.code).toBe(1);
      expect(r.err).toContain('was modified: expected resourceVersion');
    });

    it('requires -f', async () => {
      const r = await calico(['apply']);
      expect(r.code).toBe(1);
      expect(r.err).toBe("error: required option '-f, --filename <FILE>' not specified\n");
    });
  });

  describe('delete', () => {
    beforeEach(async () => {
      await calico(['apply', '-f', '-'], { stdin: MIXED });
    });

    it('deletes what a file names', async () => {
      expect(await calico(['delete', '-f', '-'], { stdin: MIXED })).toEqual({
        code: 0,
        out: 'Successfully deleted 3 resource(s)\n',
        err: '',
      });
      expect(await names('IPPool')).toEqual([]);
    });

    it('deletes by KIND and NAMEs with any calicoctl spelling', async () => {
      expect(await calico(['delete', 'ipp', 'pool-a', 'pool-b'])).toEqual({
        code: 0,
        out: "Successfully deleted 2 'IPPool' resource(s)\n",
        err: '',
      });
      expect(await calico(['delete', 'policy', 'allow-web', '-n', 'shop'])).toMatchObject({ code: 0 });
      expect(await names('NetworkPolicy')).toEqual([]);
    });

    it('fails on a missing resource unless -s', async () => {
      expect(await calico(['delete', 'ippool', 'nope'])).toEqual({
        code: 1,
        out: '',
        err: "Failed to delete 'IPPool' resource: IPPool nope not found\n",
      });
      expect(await calico(['delete', 'ippool', 'nope', 'pool-a', '-s'])).toEqual({
        code: 0,
        out: "Successfully deleted 1 'IPPool' resource(s)\nSkipped 1 'IPPool' resource(s) that do not exist: nope\n",
        err: '',
      });
      expect(await calico(['delete', 'ippool', 'nope', '-s'])).toEqual({
        code: 0,
        out: "Skipped 1 'IPPool' resource(s) that do not exist: nope\n",
        err: '',
      });
      expect(await names('IPPool')).toEqual(['pool-b']);
    });

    it('looks for namespaced resources in "default" without -n', async () => {
      const r = await calico(['delete', 'networkpolicy', 'allow-web']);
      expect(r.err).toBe(
        "Failed to delete 'NetworkPolicy' resource: NetworkPolicy default/allow-web not found\n",
      );
    });

    it('rejects an unknown kind and a missing NAME', async () => {
      expect((await calico(['delete', 'widgets', 'x'])).err).toMatch(
        /^resource type 'widgets' is not supported; valid types: IPPool, /,
      );
      expect(await calico(['delete', 'ippool'])).toEqual({
        code: 1,
        out: '',
        err: 'delete KIND needs at least one NAME\n',
      });
    });
  });

  describe('get', () => {
    beforeEach(async () => {
      await calico(['apply', '-f', '-'], { stdin: MIXED });
      await calico(['apply', '-f', '-'], {
        stdin: POLICY.replace('namespace: shop', 'namespace: default').replace('allow-web', 'deny-all'),
      });
    });

    it('prints calicoctl columns for IPPool', async () => {
      expect(await calico(['get', 'ippools'])).toEqual({
        code: 0,
        err: '',
        out: [
          'NAME     CIDR          SELECTOR',
          'pool-a   10.0.0.0/16   all()',
          "pool-b   10.1.0.0/16   rack == 'r1'",
          '',
        ].join('\n'),
      });
    });

    it('prints the wide IPPool columns', async () => {
      expect((await calico(['get', 'ippool', '-o', 'wide'])).out).toBe(
        [
          'NAME     CIDR          NAT     IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR',
          'pool-a   10.0.0.0/16   true    Never      Never       false      false              all()',
          "pool-b   10.1.0.0/16   false   Never      Always      false      false              rack == 'r1'",
          '',
        ].join('\n'),
      );
    });

    it('reads namespaced kinds from "default", -n, or every namespace with -A', async () => {
      expect((await calico(['get', 'networkpolicy'])).out).toBe('NAME       TIER\ndeny-all   default\n');
      expect((await calico(['get', 'networkpolicy', '-n', 'shop'])).out).toBe(
        'NAME        TIER\nallow-web   default\n',
      );
      expect((await calico(['get', 'networkpolicies', '-A', '-o', 'wide'])).out).toBe(
        [
          'NAMESPACE   NAME        TIER      ORDER   SELECTOR',
          "default     deny-all    default   100     app == 'web'",
          "shop        allow-web   default   100     app == 'web'",
          '',
        ].join('\n'),
      );
    });

    it('prints only headings when there is nothing', async () => {
      expect((await calico(['get', 'bgppeers'])).out).toBe('NAME   PEERIP   NODE   ASN\n');
    });

    it('prints a YAML List, or the object itself for one NAME', async () => {
      const list = parseYaml((await calico(['get', 'ippools', '-o', 'yaml'])).out);
      expect(list).toMatchObject({ apiVersion: 'projectcalico.org/v3', kind: 'IPPoolList' });
      expect(list.metadata.resourceVersion).toMatch(/^\d+$/);
      expect(list.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual([
        'pool-a',
        'pool-b',
      ]);
      const one = parseYaml((await calico(['get', 'ippool', 'pool-b', '-o', 'yaml'])).out);
      expect(one).toMatchObject({
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: 'pool-b', labels: { tier: 'gold' } },
        spec: { cidr: '10.1.0.0/16', vxlanMode: 'Always' },
      });
      expect(one.metadata.resourceVersion).toMatch(/^\d+$/);
    });

    it('prints JSON the same way', async () => {
      const list = JSON.parse((await calico(['get', 'ippools', '-o', 'json'])).out);
      expect(list.kind).toBe('IPPoolList');
      expect(list.items).toHaveLength(2);
      const two = JSON.parse((await calico(['get', 'ippools', 'pool-a', 'pool-b', '-o', 'json'])).out);
      expect(two.kind).toBe('IPPoolList');
      const one = JSON.parse((await calico(['get', 'netpol', 'allow-web', '-n', 'shop', '-o', 'json'])).out);
      expect(one).toMatchObject({
        kind: 'NetworkPolicy',
        metadata: { name: 'allow-web', namespace: 'shop' },
      });
    });

    it('prints names with -o name', async () => {
      expect((await calico(['get', 'pools', '-o', 'name'])).out).toBe(
        'ippool.projectcalico.org/pool-a\nippool.projectcalico.org/pool-b\n',
      );
    });

    it('prints what it found and fails for what it did not', async () => {
      expect(await calico(['get', 'ippool', 'pool-a', 'nope'])).toEqual({
        code: 1,
        out: 'NAME     CIDR          SELECTOR\npool-a   10.0.0.0/16   all()\n',
        err: 'Failed to get IPPool: IPPool nope not found\n',
      });
    });

    it('prints custom columns: field paths, the kind’s own columns, or kubectl’s column file', async () => {
      const spec = "custom-columns=NAME,POOL:.spec.cidr,VXLAN:spec.vxlanMode,TIER:.metadata.labels['tier']";
      expect(await calico(['get', 'ippools', '-o', spec])).toEqual({
        code: 0,
        err: '',
        out: [
          'NAME     POOL          VXLAN    TIER',
          'pool-a   10.0.0.0/16   Never    <none>',
          'pool-b   10.1.0.0/16   Always   gold',
          '',
        ].join('\n'),
      });
      const dir = mkdtempSync(join(tmpdir(), 'calico-columns-'));
      try {
        const file = join(dir, 'columns.txt');
        writeFileSync(file, 'NAME        SELECTOR\n{.metadata.name}   {.spec.nodeSelector}\n');
        expect((await calico(['get', 'ippool', 'pool-b', '-o', `custom-columns-file=${file}`])).out).toBe(
          "NAME     SELECTOR\npool-b   rack == 'r1'\n",
        );
        writeFileSync(file, 'NAME\n');
        expect((await calico(['get', 'ippools', '-o', `custom-columns-file=${file}`])).err).toBe(
          `${file}: expected two lines (headings, then field paths), found 1\n`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect((await calico(['get', 'ippools', '-o', 'custom-columns=COLOUR'])).err).toBe(
        'custom-columns: COLOUR is not a column of IPPool (NAME, CIDR, SELECTOR, NAT, IPIPMODE, VXLANMODE, DISABLED, DISABLEBGPEXPORT, NAMESPACE); give HEADING:PATH for any field\n',
      );
      expect((await calico(['get', 'ippools', '-o', 'custom-columns=X:.spec..cidr'])).err).toBe(
        'invalid field path ".spec..cidr": cannot read ".cidr"\n',
      );
    });

    it('rejects bad arguments', async () => {
      expect((await calico(['get', 'ippool', '-o', 'xml'])).err).toBe(
        "unrecognized output format 'xml'; use one of ps, wide, yaml, json, name, custom-columns=…, custom-columns-file=…\n",
      );
      expect((await calico(['get', 'networkpolicy', 'x', '-A'])).err).toBe(
        'cannot use --all-namespaces when getting resources by name; use -n\n',
      );
      expect((await calico(['get'])).err).toBe("error: missing required argument 'KIND'\n");
    });

    it('prints the other kinds with their calicoctl columns', async () => {
      const docs = [
        { kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerIP: '192.0.2.1', asNumber: 64513 } },
        {
          kind: 'BGPPeer',
          metadata: { name: 'rr' },
          spec: { peerIP: '192.0.2.2', asNumber: 64512, nodeSelector: 'rr == "true"' },
        },
        {
          kind: 'BGPConfiguration',
          metadata: { name: 'default' },
          spec: { logSeverityScreen: 'Info', nodeToNodeMeshEnabled: false, asNumber: 64600 },
        },
        { kind: 'Node', metadata: { name: 'n1' }, spec: { bgp: { ipv4Address: '192.0.2.10/24' } } },
        {
          kind: 'Node',
          metadata: { name: 'n2' },
          spec: { bgp: { ipv4Address: '192.0.2.11/24', asNumber: 65001 } },
        },
        {
          kind: 'HostEndpoint',
          metadata: { name: 'h1' },
          spec: { node: 'n1', interfaceName: 'eth0', expectedIPs: ['192.0.2.10'] },
        },
        {
          kind: 'GlobalNetworkSet',
          metadata: { name: 'gs' },
          spec: { nets: ['10.0.0.0/8', '172.16.0.0/12'] },
        },
        {
          kind: 'WorkloadEndpoint',
          metadata: { name: 'n1-k8s-web-eth0', namespace: 'default' },
          spec: {
            node: 'n1',
            pod: 'web',
            interfaceName: 'cali0123456789a',
            ipNetworks: ['10.0.0.5/32'],
            profiles: ['kns.default'],
          },
        },
      ].map((d) => ({ apiVersion: 'projectcalico.org/v3', ...d }));
      expect(
        (await calico(['apply', '-f', '-'], { stdin: JSON.stringify({ kind: 'List', items: docs }) })).code,
      ).toBe(0);
      expect((await calico(['get', 'bgppeers'])).out).toBe(
        [
          'NAME   PEERIP      NODE           ASN',
          'rr     192.0.2.2   rr == "true"   64512',
          'tor    192.0.2.1   (global)       64513',
          '',
        ].join('\n'),
      );
      expect((await calico(['get', 'bgpconfig'])).out).toBe(
        [
          'NAME      LOGSEVERITY   MESHENABLED   ASNUMBER',
          'default   Info          false         64600',
          '',
        ].join('\n'),
      );
      expect((await calico(['get', 'nodes', '-o', 'wide'])).out).toBe(
        [
          'NAME   ASN       IPV4            IPV6',
          'n1     (64600)   192.0.2.10/24   ',
          'n2     65001     192.0.2.11/24   ',
          '',
        ].join('\n'),
      );
      expect((await calico(['get', 'hep', '-o', 'wide'])).out).toBe(
        [
          'NAME   NODE   INTERFACE   IPS          PROFILES',
          'h1     n1     eth0        192.0.2.10   ',
          '',
        ].join('\n'),
      );
      expect((await calico(['get', 'globalnetworksets', '-o', 'wide'])).out).toBe(
        ['NAME   NETS', 'gs     10.0.0.0/8,172.16.0.0/12', ''].join('\n'),
      );
      expect((await calico(['get', 'weps'])).out).toBe(
        [
          'WORKLOAD   NODE   NETWORKS      INTERFACE',
          'web        n1     10.0.0.5/32   cali0123456789a',
          '',
        ].join('\n'),
      );
    });
  });

  describe('label', () => {
    beforeEach(async () => {
      await calico(['apply', '-f', '-'], { stdin: MIXED });
    });

    it('sets, refuses to change without --overwrite, overwrites and removes', async () => {
      expect(await calico(['label', 'ippool', 'pool-a', 'env=prod'])).toEqual({
        code: 0,
        out: 'Successfully set label env on IPPool pool-a\n',
        err: '',
      });
      expect(await calico(['label', 'ippool', 'pool-a', 'env=dev'])).toEqual({
        code: 1,
        out: '',
        err: 'label env is already set on IPPool pool-a; use --overwrite to change it\n',
      });
      expect((await calico(['label', 'ippool', 'pool-a', 'env=dev', '--overwrite'])).out).toBe(
        'Successfully updated label env on IPPool pool-a\n',
      );
      expect((await ds.get('IPPool', 'pool-a')).metadata.labels).toEqual({ env: 'dev' });
      expect((await calico(['label', 'ippool', 'pool-a', 'env', '--remove'])).out).toBe(
        'Successfully removed label env from IPPool pool-a\n',
      );
      expect((await ds.get('IPPool', 'pool-a')).metadata.labels).toEqual({});
    });

    it('labels namespaced resources in -n', async () => {
      expect((await calico(['label', 'networkpolicy', 'allow-web', 'team=a', '-n', 'shop'])).code).toBe(0);
      expect((await ds.get('NetworkPolicy', 'allow-web', 'shop')).metadata.labels).toEqual({ team: 'a' });
    });

    it('reports what is wrong', async () => {
      expect((await calico(['label', 'ippool', 'pool-a', 'nokey', '--remove'])).err).toBe(
        'cannot remove label nokey from IPPool pool-a: it is not set\n',
      );
      expect((await calico(['label', 'ippool', 'pool-a', 'a=b=c'])).err).toBe(
        'invalid label a=b=c: expected KEY=VALUE\n',
      );
      expect((await calico(['label', 'ippool', 'pool-a', 'a=b', '--remove', '--overwrite'])).err).toBe(
        '--overwrite and --remove cannot be used together\n',
      );
      expect(await calico(['label', 'ippool', 'nope', 'a=b'])).toEqual({
        code: 1,
        out: '',
        err: 'IPPool nope not found\n',
      });
    });
  });

  describe('patch', () => {
    beforeEach(async () => {
      await calico(['apply', '-f', '-'], { stdin: MIXED });
    });

    it('applies a JSON merge patch', async () => {
      const patch = '{"metadata":{"labels":{"tier":null,"env":"prod"}},"spec":{"natOutgoing":true}}';
      const r = await calico(['patch', 'ippool', 'pool-b', '-p', patch]);
      expect(r).toEqual({ code: 0, out: "Successfully patched 1 'IPPool' resource\n", err: '' });
      const pool = await ds.get('IPPool', 'pool-b');
      expect(pool.spec).toMatchObject({ natOutgoing: true, cidr: '10.1.0.0/16', vxlanMode: 'Always' });
      expect(pool.metadata.labels).toEqual({ env: 'prod' });
    });

    it('refuses what Calico refuses of a pool: a new cidr or blockSize, an overlap; nothing is written', async () => {
      const before = await ds.get('IPPool', 'pool-b');
      expect(await calico(['patch', 'ippool', 'pool-b', '-p', '{"spec":{"cidr":"10.9.0.0/16"}}'])).toEqual({
        code: 1,
        out: '',
        err: 'IPPool pool-b is invalid:\nspec.cidr: "10.9.0.0/16" — cannot be changed after creation: expected the stored 10.1.0.0/16 (create a new pool and migrate to it instead)\n',
      });
      const blockSize = await calico(['patch', 'ippool', 'pool-b', '-p', '{"spec":{"blockSize":29}}']);
      expect(blockSize.code).toBe(1);
      expect(blockSize.err).toContain(
        'spec.blockSize: 29 — cannot be changed after creation: expected the stored 26',
      );
      const overlap = `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-c}\nspec: {cidr: 10.1.128.0/20}\n`;
      expect(await calico(['create', '-f', '-'], { stdin: overlap })).toEqual({
        code: 1,
        out: '',
        err: 'Failed to create \'IPPool\' resource: IPPool pool-c is invalid:\nspec.cidr: "10.1.128.0/20" — overlaps with IPPool pool-b (10.1.0.0/16); pools must not share addresses\n',
      });
      expect(await ds.get('IPPool', 'pool-b')).toEqual(before);
      expect(await names('IPPool')).toEqual(['pool-a', 'pool-b']);
    });

    it('applies a JSON patch', async () => {
      const ops = JSON.stringify([
        { op: 'test', path: '/spec/cidr', value: '10.1.0.0/16' },
        { op: 'add', path: '/metadata/labels/env', value: 'prod' },
        { op: 'replace', path: '/spec/nodeSelector', value: 'all()' },
      ]);
      expect((await calico(['patch', 'ippool', 'pool-b', '-t', 'json', '-p', ops])).code).toBe(0);
      const pool = await ds.get('IPPool', 'pool-b');
      expect(pool.metadata.labels).toEqual({ tier: 'gold', env: 'prod' });
      expect(pool.spec).toMatchObject({ nodeSelector: 'all()' });
    });

    it('changes nothing when a JSON patch operation fails', async () => {
      const before = await ds.get('IPPool', 'pool-b');
      const ops = JSON.stringify([
        { op: 'replace', path: '/spec/natOutgoing', value: true },
        { op: 'test', path: '/spec/cidr', value: '10.9.0.0/16' },
      ]);
      const r = await calico(['patch', 'ippool', 'pool-b', '--type', 'json', '--patch', ops]);
      expect(r).toEqual({
        code: 1,
        out: '',
        err: 'invalid patch: operation 1 (test /spec/cidr): value is not "10.9.0.0/16"\n',
      });
      expect(await ds.get('IPPool', 'pool-b')).toEqual(before);
    });

    it('patches namespaced resources in -n and refuses identity changes', async () => {
      expect(
        (await calico(['patch', 'policy', 'allow-web', '-n', 'shop', '-p', '{"spec":{"order":5}}'])).code,
      ).toBe(0);
      expect((await ds.get('NetworkPolicy', 'allow-web', 'shop')).spec).toMatchObject({ order: 5 });
      expect((await calico(['patch', 'ippool', 'pool-a', '-p', '{"metadata":{"name":"other"}}'])).err).toBe(
        'invalid patch: metadata.name cannot be changed ("pool-a")\n',
      );
    });

    it('rejects unsupported patch types and unparsable patches', async () => {
      expect((await calico(['patch', 'ippool', 'pool-a', '-t', 'strategic', '-p', '{}'])).err).toBe(
        'strategic merge patches are not supported; use -t merge (RFC 7396) or -t json (RFC 6902)\n',
      );
      expect((await calico(['patch', 'ippool', 'pool-a', '-p', '{"spec":'])).err).toMatch(
        /^cannot parse the patch: /,
      );
      expect((await calico(['patch', 'ippool', 'pool-a', '-t', 'json', '-p', '{"op":"add"}'])).err).toBe(
        'invalid patch: a JSON patch must be an array of operations\n',
      );
    });

    it('retries once when another writer gets in between', async () => {
      // A datastore whose first update loses a race against a concurrent label change.
      let raced = false;
      const racing = withUpdate(ds, async (kind, resource) => {
        if (!raced) {
          raced = true;
          const other = await ds.get(kind, resource.metadata.name, resource.metadata.namespace);
          other.metadata.labels = { ...other.metadata.labels, racer: 'won' };
          await ds.update(kind, other as never);
        }
        return ds.update(kind, resource as never);
      });
      const r = await calico(['patch', 'ippool', 'pool-b', '-p', '{"spec":{"natOutgoing":true}}'], {
        datastore: racing,
      });
      expect(r.code).toBe(0);
      const pool = await ds.get('IPPool', 'pool-b');
      expect(pool.metadata.labels).toEqual({ tier: 'gold', racer: 'won' });
      expect(pool.spec).toMatchObject({ natOutgoing: true });
    });

    it('gives up after a second conflict', async () => {
      const losing = withUpdate(ds, async (kind, resource) => {
        const other = await ds.get(kind, resource.metadata.name, resource.metadata.namespace);
        await ds.update(kind, other as never);
        return ds.update(kind, resource as never);
      });
      const r = await calico(['patch', 'ippool', 'pool-b', '-p', '{"spec":{"natOutgoing":true}}'], {
        datastore: losing,
      });
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^IPPool pool-b was modified: expected resourceVersion \d+, found \d+\n$/);
    });
  });

  describe('convert', () => {
    const KNP = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: frontend}}}]
    ports: [{protocol: TCP, port: 80}]
`;

    it('prints the Calico NetworkPolicy a Kubernetes NetworkPolicy becomes, without a datastore', async () => {
      const r = await calico(['convert', '-f', '-'], { stdin: KNP });
      expect(r).toEqual({
        code: 0,
        err: '',
        out: [
          'apiVersion: projectcalico.org/v3',
          'kind: NetworkPolicy',
          'metadata:',
          '  name: knp.default.allow-web',
          '  namespace: shop',
          'spec:',
          '  tier: default',
          '  order: 1000',
          "  selector: projectcalico.org/orchestrator == 'k8s' && app == 'web'",
          '  types:',
          '    - Ingress',
          '  ingress:',
          '    - action: Allow',
          '      protocol: TCP',
          '      source:',
          "        selector: projectcalico.org/orchestrator == 'k8s' && role == 'frontend'",
          '      destination:',
          '        ports:',
          '          - 80',
          '',
        ].join('\n'),
      });
      expect(connects).toBe(0);
      // What it prints is a valid Calico manifest.
      expect((await calico(['validate', '-f', '-'], { stdin: r.out })).code).toBe(0);
    });

    it('prints Calico resources with their defaults, several as a List in JSON', async () => {
      const r = await calico(['convert', '-f', '-', '-o', 'json'], {
        stdin: `${KNP}---\n${POOLS.split('---')[0]}`,
      });
      expect(r.code).toBe(0);
      const list = JSON.parse(r.out);
      expect(list.kind).toBe('List');
      expect(list.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toEqual([
        'knp.default.allow-web',
        'pool-a',
      ]);
      expect(list.items[1].spec).toMatchObject({ cidr: '10.0.0.0/16', blockSize: 26, ipipMode: 'Never' });
      expect((await calico(['convert', '-f', '-'], { stdin: 'kind: Widget\n' })).code).toBe(1);
    });
  });

  describe('the program', () => {
    it('prints the client version, commit and build date, then the cluster’s version and type', async () => {
      const client =
        /^Client Version: {4}v0\.1\.0\nGit commit: {8}[0-9a-f]{9}\nBuild date: {8}not built \(running from source\)\n/;
      const only = await calico(['version', '--client']);
      expect(only.code).toBe(0);
      expect(only.out).toMatch(new RegExp(`${client.source}$`));
      expect(connects).toBe(0);

      const missing = await calico(['version']);
      expect(missing.code).toBe(1);
      expect(missing.out).toMatch(client);
      expect(missing.err).toBe(
        'Unable to retrieve Cluster Version or Type: ClusterInformation default not found (no calico-node has started against this datastore)\n',
      );
      await ds.create('ClusterInformation', {
        metadata: { name: 'default' },
        spec: { calicoVersion: 'v0.1.0', clusterType: 'bgp', clusterGUID: 'c0ffee', datastoreReady: true },
      });
      const full = await calico(['version']);
      expect(full.code).toBe(0);
      expect(full.out).toMatch(
        new RegExp(`${client.source}Cluster Version: {3}v0\\.1\\.0\\nCluster Type: {6}bgp\\n$`),
      );
    });

    it('shows help with every verb, and exits 0', async () => {
      const r = await calico(['--help']);
      expect(r.code).toBe(0);
      for (const verb of [
        'validate',
        'apply',
        'create',
        'replace',
        'delete',
        'get',
        'label',
        'patch',
        'version',
        'convert',
        'ipam',
      ]) {
        expect(r.out).toContain(`  ${verb} `);
      }
      expect((await calico([])).out).toContain('Usage: calico');
      expect((await calico(['get', '--help'])).out).toContain('GlobalNetworkPolicy');
    });

    it('fails on unknown commands and options with exit 1', async () => {
      expect(await calico(['frobnicate'])).toEqual({
        code: 1,
        out: '',
        err: "error: unknown command 'frobnicate'\n",
      });
      expect((await calico(['get', 'ippool', '--bogus'])).code).toBe(1);
    });

    it('reports an unreachable datastore in one line', async () => {
      const io = captureIo();
      const code = await run(['get', 'ippools'], io, {
        connect: async () => {
          throw new DatastoreError(
            'Unavailable',
            'cannot reach etcd at http://127.0.0.1:2379: connection refused\n    at stack',
          );
        },
      });
      expect({ code, out: io.out, err: io.err }).toEqual({
        code: 1,
        out: '',
        err: 'cannot reach etcd at http://127.0.0.1:2379: connection refused\n',
      });
    });

    it('passes the global datastore flags to the connection', async () => {
      const seen: unknown[] = [];
      await run(
        ['--etcd-endpoints', 'http://10.0.0.1:2379', 'get', 'ippools', '-c', '/tmp/x.cfg'],
        captureIo(),
        {
          connect: async (flags) => {
            seen.push(flags);
            return borrowed(ds);
          },
        },
      );
      expect(seen).toEqual([
        { config: '/tmp/x.cfg', datastoreType: undefined, etcdEndpoints: 'http://10.0.0.1:2379' },
      ]);
    });

    it('prints diagnostics only at the asked log level', async () => {
      const connect = async () => {
        throw new Error('boom');
      };
      const quiet = captureIo();
      await run(['get', 'ippools'], quiet, { connect });
      expect(quiet.err).toBe('boom\n');
      const loud = captureIo();
      await run(['--log-level', 'debug', 'get', 'ippools'], loud, { connect });
      expect(loud.err).toMatch(/^\[DEBUG\] Error: boom\n {4}at /);
    });
  });
}

/** `inner` for one run(): run() closes what it opened, but the suite keeps using the store. */
function borrowed(inner: Datastore): Datastore {
  return { ...delegate(inner), close: async () => {} };
}

function delegate(inner: Datastore): Datastore {
  return {
    get: (kind, name, namespace) => inner.get(kind, name, namespace),
    list: (kind, options) => inner.list(kind, options),
    create: (kind, resource) => inner.create(kind, resource),
    update: (kind, resource) => inner.update(kind, resource),
    apply: (kind, resource) => inner.apply(kind, resource),
    delete: (kind, name, namespace, options) => inner.delete(kind, name, namespace, options),
    watch: (options) => inner.watch(options),
    close: () => inner.close(),
  };
}
