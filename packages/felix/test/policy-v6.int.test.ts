/**
 * IPv6 network policy enforced by Felix on a real kernel (ip6tables and inet6 IP sets), driven
 * only through the datastore: a subset of the e2e model with dual-stack pods x/a, x/b, y/a, each
 * serving TCP 80 on IPv4 and IPv6. Every case probes all pairs over both families and compares
 * with the case's expectation and with what `explainFlow` computes from the same objects: a
 * selector becomes a `cali60s:` set, IPv6 nets go to the IPv6 side only, ICMPv6 is matched in
 * ip6tables.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Datastore, EtcdDatastore, namespaceProfile, type ResourceInput } from '@calico-ts/datastore';
import { execInNamespace, Netlink, waitFor } from '@calico-ts/kernel';
import { createLab, type EtcdProcess, type Lab, type LabPod, labNodeIpv4, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { type ApplyStats, explainFlow, Felix, policyChainName, policySnapshot } from '../src/index.ts';
import { clearPolicies as clearPoliciesOf, tearDown } from './policy-harness.ts';
import { PYTHON, writeTcpProbe } from './tcp-probe.ts';

const NODE = 'node-1';
/** The host side of every pod veth answers as the pod's IPv6 gateway. */
const GATEWAY_V6 = 'fe80::1';

interface Pod {
  id: string;
  ns: string;
  pod: string;
  v4: string;
  v6: string;
  iface: string;
  lab: LabPod;
}

/** `<from>><to>/<family>` → reachable. */
type Reach = Record<string, boolean>;

describeWith(
  [root(), command('etcd'), command('ip6tables'), command('ipset'), command('python3'), command('ping')],
  'Felix enforces IPv6 network policy (ip6tables, cali60 sets; e2e subset)',
  () => {
    let lab: Lab;
    let etcd: EtcdProcess;
    let ds: Datastore;
    let felix: Felix;
    let scriptDir: string;
    let script: string;
    const pods: Pod[] = [];
    const prefix = runPrefix('he6');

    async function addPod(ns: string, pod: string, n: number): Promise<Pod> {
      const node = lab.nodes[0]!;
      const labPod = await lab.addPod(node.index, `${ns}${pod}`);
      const iface = `cali${createHash('sha1').update(`${prefix}.${ns}.${pod}`).digest('hex').slice(0, 11)}`;
      const v4 = `10.68.0.${n}`;
      const v6 = `fd68::${n}`;
      // The gateway's address is known up front (no neighbour discovery needed from the pod).
      const { mac } = await lab.wirePod(labPod, {
        iface,
        ipv4: v4,
        ipv6: { address: v6, gateway: GATEWAY_V6 },
      });
      await ds.create('WorkloadEndpoint', {
        metadata: {
          name: `${NODE}-k8s-${pod}-eth0`,
          namespace: ns,
          labels: { pod, 'projectcalico.org/namespace': ns, 'projectcalico.org/orchestrator': 'k8s' },
        },
        spec: {
          node: NODE,
          orchestrator: 'k8s',
          pod,
          endpoint: 'eth0',
          interfaceName: iface,
          mac,
          ipNetworks: [`${v4}/32`, `${v6}/128`],
          profiles: [`kns.${ns}`],
        },
      });
      const p: Pod = { id: `${ns}/${pod}`, ns, pod, v4, v6, iface, lab: labPod };
      pods.push(p);
      return p;
    }

    const save6 = async () => (await execInNamespace(lab.nodes[0]!.namespace, 'ip6tables-save', [])).stdout;

    async function measure(): Promise<Reach> {
      const out: Reach = {};
      await Promise.all(
        pods.map(async (from) => {
          const others = pods.filter((p) => p !== from);
          const targets = others.flatMap((p) => [p.v4, p.v6]);
          const r = await execInNamespace(from.lab.namespace, PYTHON, [script, 'probe', '1.0', ...targets]);
          if (r.exitCode !== 0) throw new Error(`probe from ${from.id} failed: ${r.stderr}`);
          for (const word of r.stdout.trim().split(' ')) {
            const [ip, value] = word.split('=');
            const to = pods.find((p) => p.v4 === ip || p.v6 === ip)!;
            out[`${from.id}>${to.id}/${ip!.includes(':') ? 6 : 4}`] = value === '1';
          }
        }),
      );
      return out;
    }

    async function evaluated(): Promise<Reach> {
      const snapshot = policySnapshot({
        networkPolicies: (await ds.list('NetworkPolicy')).items,
        kubernetesNetworkPolicies: (await ds.list('KubernetesNetworkPolicy')).items,
        profiles: (await ds.list('Profile')).items,
        workloadEndpoints: (await ds.list('WorkloadEndpoint')).items,
      });
      const out: Reach = {};
      for (const from of pods)
        for (const to of pods) {
          if (from === to) continue;
          for (const family of [4, 6] as const) {
            const packet = {
              protocol: 'TCP',
              srcIp: family === 4 ? from.v4 : from.v6,
              dstIp: family === 4 ? to.v4 : to.v6,
              srcPort: 40000,
              dstPort: 80,
            };
            out[`${from.id}>${to.id}/${family}`] = explainFlow(snapshot, packet).allowed;
          }
        }
      return out;
    }

    /** All pairs on both families reachable, except those `closed` lists. */
    function expectation(closed: (key: string) => boolean): Reach {
      const out: Reach = {};
      for (const from of pods)
        for (const to of pods) {
          if (from === to) continue;
          for (const family of [4, 6]) {
            const key = `${from.id}>${to.id}/${family}`;
            out[key] = !closed(key);
          }
        }
      return out;
    }

    async function assertReach(expected: Reach): Promise<void> {
      expect(await evaluated(), 'explainFlow').toEqual(expected);
      let measured: Reach = {};
      await waitFor(
        async () => {
          measured = await measure();
          const keys = Object.keys(expected);
          return (
            keys.length === Object.keys(measured).length && keys.every((k) => measured[k] === expected[k])
          );
        },
        { timeoutMs: 15_000, intervalMs: 200, what: 'reachability as expected' },
      ).catch(() => undefined);
      expect(measured, 'measured').toEqual(expected);
    }

    async function waitChains6(present: readonly string[]): Promise<void> {
      await waitFor(
        async () => {
          const s = await save6();
          return present.every((c) => s.includes(`:${c} `));
        },
        { timeoutMs: 15_000, intervalMs: 50, what: `ip6tables chains ${present.join(', ')}` },
      );
    }

    const clearPolicies = () =>
      clearPoliciesOf(ds, ['NetworkPolicy', 'KubernetesNetworkPolicy'], save6, 'IPv6 policy chains removed');

    const np = (ns: string, name: string, spec: ResourceInput<'NetworkPolicy'>['spec']) =>
      ds.create('NetworkPolicy', { metadata: { name, namespace: ns }, spec });

    beforeAll(async () => {
      scriptDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
      script = writeTcpProbe(scriptDir);
      lab = await createLab({ prefix, nodes: 1, ipv6: true });
      etcd = await startEtcd();
      ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
      await ds.create('IPPool', {
        metadata: { name: 'pool4' },
        spec: { cidr: '10.68.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', blockSize: 26 },
      });
      await ds.create('IPPool', { metadata: { name: 'pool6' }, spec: { cidr: 'fd68::/64', blockSize: 122 } });
      await ds.create('Node', {
        metadata: { name: NODE },
        spec: { bgp: { ipv4Address: `${labNodeIpv4(1)}/24` } },
      });
      for (const ns of ['x', 'y']) await ds.create('Profile', namespaceProfile(ns, { ns }));
      for (const [ns, pod, n] of [
        ['x', 'a', 1],
        ['x', 'b', 2],
        ['y', 'a', 3],
      ] as const) {
        const p = await addPod(ns, pod, n);
        await lab.spawn(p.lab, PYTHON, [script, 'serve']);
      }
      felix = new Felix({ datastore: ds, nodeName: NODE, netns: lab.nodes[0]!.namespace });
      felix.start();
      await felix.whenReady();
    }, 60_000);

    afterAll(() => tearDown({ felix, ds, etcd, lab, scriptDir }), 60_000);

    it('no policy: every pod reaches every pod over IPv4 and IPv6', async () => {
      expect(felix.status()).toMatchObject({ ready: true, endpoints: 3, errors: [] });
      await waitChains6(pods.map((p) => `cali-tw-${p.iface}`));
      await assertReach(expectation(() => false));
    });

    it('Kubernetes default-deny in x plus allow from namespace y: the selector is a cali60s set in ip6tables', async () => {
      await ds.create('KubernetesNetworkPolicy', {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'from-y', namespace: 'x' },
        spec: {
          podSelector: {},
          policyTypes: ['Ingress'],
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
        },
      });
      const chain = policyChainName('ingress', 'knp/x/from-y');
      await waitChains6([chain]);
      const rules = (await save6()).split('\n').filter((l) => l.startsWith(`-A ${chain} `));
      expect(rules.join('\n')).toMatch(/-m set --match-set cali60s:\S+ src/);
      const set = /cali60s:\S+/.exec(rules.join('\n'))![0];
      const list = (await execInNamespace(lab.nodes[0]!.namespace, 'ipset', ['list', set])).stdout;
      expect(list).toContain('family inet6');
      expect(list).toContain('fd68::3');
      expect(list).not.toContain('10.68.0.3');
      await assertReach(expectation((k) => /^x\/.>x\//.test(k)));
      await clearPolicies();
    });

    it('IPv6 nets go to the IPv6 side only: allowing y/a by its IPv6 address leaves IPv4 from it denied', async () => {
      await np('x', 'v6-only', {
        selector: 'all()',
        types: ['Ingress'],
        ingress: [{ action: 'Allow', source: { nets: ['fd68::3/128'] } }],
      });
      await waitChains6([policyChainName('ingress', 'np/x/v6-only')]);
      const save4 = (await execInNamespace(lab.nodes[0]!.namespace, 'iptables-save', ['-t', 'filter']))
        .stdout;
      expect(save4).not.toContain('fd68::3');
      expect(await save6()).toMatch(/-A cali-pi-np\/x\/v6-only .*-s fd68::3\/128/);
      await assertReach(
        expectation((k) =>
          k.startsWith('x/') ? k.includes('>x/') : k.startsWith('y/a>x/') && k.endsWith('/4'),
        ),
      );
      await clearPolicies();
    });

    it('ICMPv6 echo allowed by an ICMPv6 rule while TCP over IPv6 is denied', async () => {
      await np('x', 'ping6', {
        selector: "pod == 'a'",
        types: ['Ingress'],
        ingress: [{ action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128 } }],
      });
      await waitChains6([policyChainName('ingress', 'np/x/ping6')]);
      // ip6tables-save spells protocol 58 `ipv6-icmp`.
      expect(await save6()).toMatch(/-A cali-pi-np\/x\/ping6 -p ipv6-icmp .*-m icmp6 --icmpv6-type 128/);
      const xa = pods.find((p) => p.id === 'x/a')!;
      const ya = pods.find((p) => p.id === 'y/a')!;
      await waitFor(
        async () =>
          (await execInNamespace(ya.lab.namespace, 'ping', ['-6', '-c', '1', '-W', '1', xa.v6])).exitCode ===
          0,
        { timeoutMs: 15_000, intervalMs: 100, what: 'ping6 y/a -> x/a' },
      );
      // IPv4 ICMP is not allowed by an ICMPv6 rule.
      expect(
        (await execInNamespace(ya.lab.namespace, 'ping', ['-4', '-c', '1', '-W', '1', xa.v4])).exitCode,
      ).not.toBe(0);
      await assertReach(expectation((k) => k.includes('>x/a/')));
      await clearPolicies();
    });

    it('a pod resolves its IPv6 gateway by neighbour discovery even under a default-deny egress policy', async () => {
      await ds.create('KubernetesNetworkPolicy', {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'deny-egress', namespace: 'y' },
        spec: { podSelector: {}, policyTypes: ['Egress'] },
      });
      await waitChains6([policyChainName('egress', 'knp/y/deny-egress')]);
      const ya = pods.find((p) => p.id === 'y/a')!;
      // Forget the gateway's address: the pod must ask for it (ICMPv6 135/136 through its egress chain).
      const nl = Netlink.open(ya.lab.namespace);
      try {
        await nl.deleteNeighbour('eth0', GATEWAY_V6);
      } finally {
        nl.close();
      }
      const neighbour = async () =>
        (await execInNamespace(ya.lab.namespace, 'ip', ['-6', 'neigh', 'show', GATEWAY_V6, 'dev', 'eth0']))
          .stdout;
      await waitFor(
        async () => {
          // Any packet towards the gateway starts discovery; the connection itself is denied.
          await execInNamespace(ya.lab.namespace, PYTHON, [script, 'probe', '0.3', pods[0]!.v6]);
          return /lladdr/.test(await neighbour());
        },
        { timeoutMs: 15_000, intervalMs: 100, what: 'the gateway resolved by NDP' },
      );
      await assertReach(expectation((k) => k.startsWith('y/a>')));
      await clearPolicies();
    });

    it('a restarted Felix over the programmed node writes nothing to iptables or ip6tables', async () => {
      await felix.stop();
      felix = new Felix({ datastore: ds, nodeName: NODE, netns: lab.nodes[0]!.namespace });
      let first: ApplyStats | undefined;
      felix.once('applied', (stats) => {
        first = stats;
      });
      felix.start();
      await felix.whenReady();
      expect(first).toMatchObject({ iptablesLines: 0, ip6tablesLines: 0, errors: [] });
      await assertReach(expectation(() => false));
    });
  },
);
